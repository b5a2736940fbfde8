"""Foot locking on a skeleton with known answers: planted feet stay put, clean motion is unchanged."""
import numpy as np
import pytest

from vibe_blender.core import motion_file as mf
from vibe_blender.core.body import forward_kinematics
from vibe_blender.core.rotations import aa_to_matrix
from vibe_engine.postprocess.footlock import BLEND_FRAMES, CONTACT_JOINTS, lock_feet
from vibe_engine.postprocess.ground import GroundPlane, world_from_camera

# Plausible SMPL-like rest joints (y up, facing +z, metres), one vertex per joint.
REST = np.array([
    [0, 0, 0], [0.06, -0.09, 0], [-0.06, -0.09, 0], [0, 0.11, 0], [0.1, -0.47, 0], [-0.1, -0.47, 0],
    [0, 0.25, 0], [0.09, -0.88, -0.04], [-0.09, -0.88, -0.04], [0, 0.3, 0], [0.12, -0.94, 0.08],
    [-0.12, -0.94, 0.08], [0, 0.52, 0], [0.07, 0.44, 0], [-0.07, 0.44, 0], [0, 0.6, 0.05],
    [0.17, 0.45, 0], [-0.17, 0.45, 0], [0.43, 0.45, 0], [-0.43, 0.45, 0], [0.68, 0.45, 0],
    [-0.68, 0.45, 0], [0.77, 0.45, 0], [-0.77, 0.45, 0]], float)


@pytest.fixture(scope="module")
def body():
    eye = np.eye(24, dtype=np.float32)
    return mf.BodyModel(v_template=REST.astype(np.float32), shapedirs=np.zeros((24, 3, 10), np.float32),
                        J_regressor=eye, weights=eye, parents=np.array(mf.SMPL_PARENTS, np.int32),
                        faces=np.array([[0, 1, 2]], np.int32))


# Level camera 1.5 m above the ground; the body stands 4 m in front with its feet on the ground.
M = world_from_camera(GroundPlane(normal=np.array([0.0, -1.0, 0.0]), offset=1.5))
UPRIGHT_IN_CAMERA = np.array([np.pi, 0.0, 0.0])  # SMPL y-up → camera y-down, facing the camera


def _camera_points(pose, transl):
    rot = aa_to_matrix(pose)
    g = forward_kinematics(rot, REST, np.array(mf.SMPL_PARENTS))
    return g[:, :, :3, 3] + transl[:, None]


def _world(points_cam):
    return points_cam @ M[:3, :3].T + M[:3, 3]


def _standing(num_frames, rng, noise=0.0):
    pose = np.zeros((num_frames, 24, 3))
    pose[:, 0] = UPRIGHT_IN_CAMERA
    pose[:, 1:] += rng.normal(0, noise, (num_frames, 23, 3))
    feet_y = 0.94  # lowest rest joint below the pelvis
    transl = np.tile([0.0, 1.5 - feet_y, 4.0], (num_frames, 1))
    return pose, transl


def test_sliding_body_is_pinned_within_1mm(body):
    rng = np.random.default_rng(0)
    pose, transl = _standing(40, rng, noise=0.03)
    transl[:, 0] += np.linspace(0, 0.08, 40)  # the whole body slides 8 cm sideways
    transl[:, 2] += 0.02 * np.sin(np.arange(40))  # and jitters in depth
    contacts = np.ones((40, 4), bool)
    new_pose, new_transl = lock_feet(body, np.zeros(10), pose, transl, M, contacts)
    feet = _world(_camera_points(new_pose, new_transl))[:, CONTACT_JOINTS]
    drift = np.linalg.norm(feet - feet[0], axis=-1).max()
    assert drift < 1e-3
    # bone lengths come from the skeleton: unchanged by construction, check a thigh anyway
    pts = _camera_points(new_pose, new_transl)
    np.testing.assert_allclose(np.linalg.norm(pts[:, 4] - pts[:, 1], axis=-1), np.linalg.norm(REST[4] - REST[1]), atol=1e-9)


def test_clean_motion_is_unchanged(body):
    rng = np.random.default_rng(1)
    pose, transl = _standing(30, rng, noise=0.0)
    pose[:, 16:] += rng.normal(0, 0.2, (30, 8, 3))  # arms move, legs and root still
    contacts = np.ones((30, 4), bool)
    new_pose, new_transl = lock_feet(body, np.zeros(10), pose, transl, M, contacts)
    np.testing.assert_allclose(_camera_points(new_pose, new_transl), _camera_points(pose, transl), atol=1e-6)


def test_feet_lifted_out_of_the_ground(body):
    rng = np.random.default_rng(2)
    pose, transl = _standing(10, rng)
    transl[:, 1] += 0.05  # 5 cm into the ground (camera y points down)
    new_pose, new_transl = lock_feet(body, np.zeros(10), pose, transl, M, np.zeros((10, 4), bool))
    heights = _world(_camera_points(new_pose, new_transl))[..., 2]
    assert heights.min() > -1e-6


def test_only_the_planted_foot_is_pinned(body):
    rng = np.random.default_rng(3)
    pose, transl = _standing(20, rng)
    transl[:, 0] += np.linspace(0, 0.05, 20)
    contacts = np.zeros((20, 4), bool)
    contacts[:, :2] = True  # left foot planted, right foot free
    new_pose, new_transl = lock_feet(body, np.zeros(10), pose, transl, M, contacts)
    feet = _world(_camera_points(new_pose, new_transl))
    left = feet[:, 7]
    assert np.linalg.norm(left - left[0], axis=-1).max() < 1e-3
    # the root no longer slides: the body is held by its planted foot
    assert np.ptp(feet[:, 0, 0]) < 1e-3


@pytest.mark.parametrize("floor_check", [False, True])
def test_depth_drift_corrected_along_the_camera_ray(body, floor_check):
    # A monocular depth error: the body drifts 30 cm away from the camera while standing. Along its
    # camera ray, the root goes back so the feet stay put, and the root's image position is kept.
    # The floor check keeps these contacts: the feet's floor points hardly move.
    rng = np.random.default_rng(4)
    pose, transl = _standing(30, rng)
    transl[:, 0] += 0.3
    transl *= np.linspace(1.0, 1.075, 30)[:, None]  # scaled along the ray through the origin
    times = np.arange(30) / 30.0
    new_pose, new_transl = lock_feet(body, np.zeros(10), pose, transl, M, np.ones((30, 4), bool),
                                     along_ray=True, times=times, floor_check=floor_check)
    pts = _camera_points(new_pose, new_transl)
    feet = _world(pts)[:, CONTACT_JOINTS]
    assert np.linalg.norm(feet - feet[0], axis=-1).max() < 1e-3
    before = _camera_points(pose, transl)[:, 0]
    np.testing.assert_allclose(pts[:, 0, :2] / pts[:, 0, 2:], before[:, :2] / before[:, 2:], atol=1e-6)
    assert np.ptp(pts[:, 0, 2]) < 0.01  # the depth drift is gone


def test_foot_leaving_contact_keeps_its_swing(body):
    # Left foot planted for 15 frames while the body slides, then it swings: after the blend the
    # leg's pose relative to the pelvis is the input's again (not pulled back to the anchor).
    rng = np.random.default_rng(5)
    pose, transl = _standing(40, rng)
    transl[:, 0] += np.linspace(0, 0.1, 40)
    pose[15:, 1, 0] = np.linspace(0, -0.8, 25)  # hip flexion: the foot swings forward
    contacts = np.zeros((40, 4), bool)
    contacts[:15, :2] = True
    new_pose, new_transl = lock_feet(body, np.zeros(10), pose, transl, M, contacts)
    late = slice(15 + BLEND_FRAMES + 1, 40)
    np.testing.assert_allclose(new_pose[late, 1:], pose[late, 1:], atol=1e-6)
    left = _world(_camera_points(new_pose, new_transl))[:15, 7]
    assert np.linalg.norm(left - left[0], axis=-1).max() < 1e-3


def _two_stances(rng, far_a: float, far_b: float):
    """Stance A (frames 0-9) and stance B (20-29) of a body standing still, scaled along the camera
    ray through the origin by far_a and far_b (1 = on the ground); a flight in between."""
    pose, transl = _standing(30, rng)
    transl[:, 0] = 0.3
    transl[:15] *= far_a
    transl[15:] *= far_b
    contacts = np.zeros((30, 4), bool)
    contacts[:10] = contacts[20:] = True
    return pose, transl, contacts


def test_ground_depth_brings_one_stance_back_in_line_with_the_others(body, monkeypatch):
    # Stance B 10 % too far along its root's camera ray (its feet 6 cm below the ground), stance A
    # on the ground: the ground fixes the stances' depths relative to each other. Trusted fully
    # (SIZE_DEPTH_SD huge), both stances end with their soles on the ground, B nearer the camera and
    # A a little farther (half the gap each: the two stances are equally long). The default weight
    # SIZE_DEPTH_SD² / (SIZE_DEPTH_SD² + (GROUND_HEIGHT_SD / H)²) ≈ 0.86 takes that fraction of the way
    # in depth; H = 1.47 m, the median height of the camera above the planted points' floors (1.5 m
    # for the toes, 1.44 m for the ankles, 6 cm up in REST). Both move only along their rays.
    from vibe_engine.postprocess import footlock

    pose, transl, contacts = _two_stances(np.random.default_rng(6), 1.0, 1.1)
    before = _camera_points(pose, transl)

    def locked():
        new_pose, new_transl = lock_feet(body, np.zeros(10), pose, transl, M, contacts, along_ray=True,
                                         ground_depth=True)
        return _camera_points(new_pose, new_transl)

    sd_size, sd_ground = footlock.SIZE_DEPTH_SD, footlock.GROUND_HEIGHT_SD / 1.47
    weight = sd_size ** 2 / (sd_size ** 2 + sd_ground ** 2)
    default = locked()
    monkeypatch.setattr(footlock, "SIZE_DEPTH_SD", 1e6)
    full = locked()
    assert _world(before)[20:, [10, 11], 2].max() < -0.05
    np.testing.assert_allclose(_world(full)[contacts.any(axis=1)][:, [10, 11], 2], 0.0, atol=0.01)
    depth, full_depth, default_depth = before[:, 0, 2], full[:, 0, 2], default[:, 0, 2]
    assert full_depth[20:].mean() < depth[20:].mean() - 0.05 and full_depth[:10].mean() > depth[:10].mean()
    np.testing.assert_allclose(default_depth, depth + weight * (full_depth - depth), atol=1e-9)
    column = before[:, 0, 0] / before[:, 0, 2]
    np.testing.assert_allclose(default[:, 0, 0] / default[:, 0, 2], column, atol=1e-9)


def test_ground_depth_leaves_a_common_depth_scale_alone(body):
    # Both stances 10 % too far: the plane's height is only as well known as the depth it was fitted
    # with, so a common scale is not the ground's to correct (the body-size prior sets it); the
    # depths stay (the feet below the ground are lifted, which a level camera sees as height only).
    pose, transl, contacts = _two_stances(np.random.default_rng(6), 1.1, 1.1)
    new_pose, new_transl = lock_feet(body, np.zeros(10), pose, transl, M, contacts, along_ray=True,
                                     ground_depth=True)
    before, after = _camera_points(pose, transl), _camera_points(new_pose, new_transl)
    np.testing.assert_allclose(after[:, 0, 2], before[:, 0, 2], atol=1e-9)


def test_root_correction_held_through_a_flight_then_released(body):
    # The body slides 10 cm while planted (frames 0-9), then no contact for 4 s: the correction is
    # held for 0.5 s (a jump's flight), and 1 s after the last contact the raw root is back.
    rng = np.random.default_rng(7)
    pose, transl = _standing(130, rng)
    transl[:10, 0] += np.linspace(0, 0.1, 10)
    transl[10:, 0] += 0.1
    contacts = np.zeros((130, 4), bool)
    contacts[:10] = True
    times = np.arange(130) / 30.0
    _, new_transl = lock_feet(body, np.zeros(10), pose, transl, M, contacts, times=times)
    shift = new_transl[:, 0] - transl[:, 0]
    np.testing.assert_allclose(shift[13:22], -0.1, atol=2e-3)  # held
    np.testing.assert_allclose(shift[50:], 0.0, atol=1e-6)  # released (after the smoothing's reach)


def test_floor_check_keeps_depth_jitter_and_drops_a_step_along_the_view():
    # A camera 1.5 m up; a foot 5 cm up, 4 m away, planted throughout, 5 mm height noise. Moved along
    # its own camera ray by ±10 % (a fit's depth jitter) its floor point stays put: kept. Stepping away
    # along the view at 1.2 m/s for 0.5 s (still flagged): dropped there. Seen from 0.2 m up
    # (less than MIN_RAY_DROP above it): no floor point, kept.
    from vibe_engine.postprocess.footlock import _floor_slow

    rng = np.random.default_rng(8)
    times = np.arange(60) / 30.0
    camera = np.array([0.0, 0.0, 1.5])
    foot = np.array([0.0, 4.0, 0.05])
    floor = np.array([0.05])
    flags = np.ones((60, 1), bool)
    jitter = 1.0 + 0.1 * np.sin(2 * np.pi * 2.0 * times)  # 2 Hz, up to 2.5 m/s along the ray
    points = camera + jitter[:, None, None] * (foot - camera)[None, None]
    points[..., 2] += rng.normal(0, 0.005, (60, 1))
    assert _floor_slow(points, flags, camera, floor, times).all()

    step = np.clip(times - 0.75, 0.0, 0.5) * 1.2  # metres walked away along the view
    stepping = foot + step[:, None, None] * np.array([0.0, 1.0, 0.0])
    stepping[..., 2] += rng.normal(0, 0.005, (60, 1))
    kept = _floor_slow(stepping, flags, camera, floor, times)[:, 0]
    mid = (times > 0.85) & (times < 1.15)
    assert not kept[mid].any() and kept[times < 0.5].all() and kept[times > 1.5].all()

    low = np.array([0.0, 0.0, 0.2])
    assert _floor_slow(stepping, flags, low, floor, times).all()


def test_height_noise_is_the_robust_sd_of_the_planted_heights() -> None:
    """The planted points' height jitter about each run's mean: scipy.stats' normal-scale median
    absolute deviation (the constant without importing scipy.stats in the engine); 1 cm of normal
    jitter reads as 1 cm."""
    from scipy.stats import median_abs_deviation, norm

    from vibe_engine.postprocess import footlock

    assert footlock.NORMAL_MAD_SCALE == pytest.approx(1.0 / norm.ppf(0.75), rel=1e-12)
    rng = np.random.default_rng(5)
    points = np.zeros((400, 4, 3))
    points[..., 2] = 0.05 + 0.01 * rng.standard_normal((400, 4))
    contacts = np.ones((400, 4), bool)
    res = np.concatenate([points[:, k, 2] - points[:, k, 2].mean() for k in range(4)])
    got = footlock._height_noise(points, contacts)
    want = median_abs_deviation(res, center=lambda x, axis=None: 0.0, scale="normal")
    assert got == pytest.approx(want, rel=1e-12)
    assert got == pytest.approx(0.01, rel=0.1)
