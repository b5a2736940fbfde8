"""Post-processing over a whole motion: raw kept, world frame estimated, result still valid."""
import numpy as np

from tests.fixtures.motion import make_motion
from vibe_blender.core import motion_file as mf
from vibe_engine.postprocess.run import PostSettings, postprocess


def test_raw_is_kept_and_file_stays_valid(tmp_path):
    """Random poses put the feet nowhere near one floor: the ground is refused (world null, a
    NO_GROUND warning naming the reason), never a confident wrong plane; raw kept, file valid."""
    motion = make_motion(num_tracks=2, num_frames=40, seed=5)
    raw = [t.pose.copy() for t in motion.tracks]
    postprocess(motion)
    for track, before in zip(motion.tracks, raw):
        np.testing.assert_array_equal(track.extra["pose_raw"], before.astype(np.float32))
    world = motion.meta["world"]
    assert world["world_from_camera"] is None
    assert world["warnings"][0]["code"] == "NO_GROUND" and "cannot be determined" in world["warnings"][0]["message"]
    mf.write_motion(tmp_path / "p.motion.npz", motion)
    back = mf.read_motion(tmp_path / "p.motion.npz")
    assert back.meta["world"]["world_from_camera"] is None


def test_all_steps_off_changes_nothing():
    motion = make_motion(num_tracks=1, num_frames=12, seed=6)
    before = motion.tracks[0].pose.copy()
    postprocess(motion, PostSettings(smooth=False, ground=False, foot_lock=False))
    np.testing.assert_array_equal(motion.tracks[0].pose, before)
    assert motion.meta["world"]["world_from_camera"] is None


def _trunk(root: np.ndarray, half_shoulder: float, half_hip: float, torso: float) -> np.ndarray:
    """Joints (T,24,3): a trunk facing the camera (constant depth) around ``root`` (T,3); SMPL layout
    (hips 1, 2; shoulders 16, 17), the other joints at the root."""
    joints = np.repeat(root[:, None], 24, axis=1)
    joints[:, 1, 0] += half_hip
    joints[:, 2, 0] -= half_hip
    joints[:, 16] += [half_shoulder, -torso, 0.0]
    joints[:, 17] += [-half_shoulder, -torso, 0.0]
    return joints


def _trunk_landmarks(joints: np.ndarray, focal: float, centre=(0.0, 0.0)) -> np.ndarray:
    """BlazePose image landmarks (T,33,2) px: the shoulders and hips of camera-frame SMPL joints
    (T,24,3) projected with a pinhole (``focal`` px, principal point ``centre``), NaN elsewhere."""
    landmarks = np.full((joints.shape[0], 33, 2), np.nan)
    for smpl, blaze in ((16, 11), (17, 12), (1, 23), (2, 24)):
        landmarks[:, blaze] = joints[:, smpl, :2] / joints[:, smpl, 2:] * focal + np.asarray(centre)
    return landmarks


def test_depth_factors_undo_a_depth_swing_of_the_fit():
    """The true trunk walks 5.5 → 6.5 m deep; the fit's is the same body pushed along each ray by a
    slow ±6 % swing. The detector's landmarks (projections of the truth, its shoulders and hips
    defined 10 % wider: a constant) give factors q with q·swing constant to the local linear fit's
    bias (±½·0.06·π²·σ² for the swing's curvature 0.06·π²: a spread ≈ 0.06·π²·σ², bound 1.25× that),
    from a 12 % spread; the clip's median factor is 1."""
    from vibe_engine.postprocess.depth_prior import RATIO_SMOOTHING, depth_factors

    times = np.arange(90) / 30.0
    root = np.stack([0.3 + 0.2 * times, 0.1 + 0 * times, 5.5 + times / 3.0], axis=1)
    swing = 1.0 + 0.06 * np.sin(np.pi * times)
    fit = _trunk(root * swing[:, None], 0.18, 0.09, 0.5)
    detected = _trunk(root, 0.198, 0.099, 0.5)
    focal = np.full(len(times), 1000.0)
    landmarks = _trunk_landmarks(detected, 1000.0, (640.0, 360.0))
    q = depth_factors(fit, landmarks, focal, None, times)
    assert abs(np.median(np.log(q))) < 1e-12
    assert np.ptp(np.log(swing)) > 0.11
    assert np.ptp(np.log(q * swing)) < 1.25 * 0.06 * np.pi ** 2 * RATIO_SMOOTHING.sigma ** 2 < 0.02


def test_depth_factors_ignore_a_trunk_along_the_ray_and_missing_landmarks():
    """A trunk seen edge-on and end-on (every segment along the ray) or without landmarks says nothing
    about its distance: every factor stays 1."""
    from vibe_engine.postprocess.depth_prior import depth_factors

    times = np.arange(30) / 30.0
    root = np.tile([0.0, 0.0, 6.0], (30, 1))
    joints = np.repeat(root[:, None], 24, axis=1)
    joints[:, [1, 16], 2] += 0.2  # hips, shoulders and the torso all lie along the optical axis
    joints[:, [2, 17], 2] -= 0.2
    landmarks = np.random.default_rng(0).normal(0.0, 50.0, (30, 33, 2))
    np.testing.assert_allclose(depth_factors(joints, landmarks, np.full(30, 900.0), None, times), 1.0, atol=1e-12)
    trunk = _trunk(root, 0.18, 0.09, 0.5)
    nan = np.full((30, 33, 2), np.nan)
    np.testing.assert_allclose(depth_factors(trunk, nan, np.full(30, 900.0), None, times), 1.0, atol=1e-12)


def test_move_along_rays_keeps_the_image_position_and_scales_the_distance():
    """The root joint moves along its ray from each frame's camera centre: the distance is multiplied
    by the factor, the direction is unchanged (float64, exact to rounding)."""
    from vibe_engine.postprocess.depth_prior import move_along_rays

    rng = np.random.default_rng(3)
    transl, rest_root = rng.normal(0, 1, (20, 3)) + [0, 0, 6], np.array([0.0, -0.2, 0.02])
    centres, q = rng.normal(0, 0.5, (20, 3)), rng.uniform(0.9, 1.1, 20)
    out = move_along_rays(transl, rest_root, q, centres)
    before, after = transl + rest_root - centres, out + rest_root - centres
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), q * np.linalg.norm(before, axis=1), rtol=1e-12)
    np.testing.assert_allclose(np.cross(before, after), 0.0, atol=1e-12)
    np.testing.assert_allclose(move_along_rays(transl, rest_root, np.ones(20)), transl, atol=1e-12)


def test_depth_factors_fill_frames_without_landmarks_from_their_neighbours():
    """No pose found for a third of a second (NaN landmark rows): those frames take the factor of the
    frames around them (linear in time), not 1: a constant depth error of the fit (8 % too far) is
    undone on both sides of the gap and in it alike, beyond the smoothing's reach of the error's onset."""
    from vibe_engine.postprocess.depth_prior import RATIO_SMOOTHING, depth_factors

    times = np.arange(60) / 30.0
    root = np.stack([0.2 * times, 0 * times, 6.0 + 0 * times], axis=1)
    error = np.where(times < 1.0, 1.0, 1.08)  # the fit jumps 8 % too far at 1 s and stays there
    fit, detected = _trunk(root * error[:, None], 0.18, 0.09, 0.5), _trunk(root, 0.18, 0.09, 0.5)
    landmarks = _trunk_landmarks(detected, 1000.0)
    landmarks[45:55] = np.nan  # inside the minority (not the median) part of the clip
    q = depth_factors(fit, landmarks, np.full(60, 1000.0), None, times)
    settled = times > 1.0 + RATIO_SMOOTHING.reach * RATIO_SMOOTHING.sigma
    assert settled[44] and not settled[30]
    np.testing.assert_allclose((q * error)[settled], (q * error)[-1], rtol=1e-9)


def test_size_depth_step_undoes_the_fits_depth_swing_on_a_body():
    """The post-processing's size-depth step as wired (``run._size_depth``: the root depth with
    DEPTH_FUSION off; the fusion's size cue is the same depth factors): a body
    in a fixed pose walks 4 → 5 m deep; the fit's root is the truth pushed along each camera ray by a
    slow ±5 % swing; the track's BlazePose image landmarks are the true trunk's projections. After the
    step the root's distance from the camera follows the truth to the smoothing's bias (one
    sinusoid of curvature 0.05·π²·(2/T)²: spread ≤ 0.05·π²·σ²·1.25, as in the depth-factor test),
    down from 10 % (log range) — with its direction, the image position, unchanged (to float32
    rounding: the step stores float32 translations)."""
    from vibe_blender.core.body import forward_kinematics, shaped_rest
    from vibe_blender.core.rotations import aa_to_matrix
    from vibe_engine.postprocess import run
    from vibe_engine.postprocess.depth_prior import RATIO_SMOOTHING

    assert run.SIZE_DEPTH
    motion = make_motion(num_tracks=1, num_frames=90, seed=7)
    track = motion.tracks[0]
    times = np.asarray(track.times, np.float64)
    track.pose = np.zeros_like(track.pose)  # rest pose: the trunk faces the camera
    _, rest = shaped_rest(motion.body, track.betas_track)
    true_root = np.stack([0.2 * times, 0.1 + 0 * times, 4.0 + times / 3.0], axis=1)
    swing = 1.0 + 0.05 * np.sin(np.pi * times / times[-1] * 2)
    track.transl = true_root * swing[:, None] - rest[0]
    joints = forward_kinematics(aa_to_matrix(np.asarray(track.pose, np.float64)), rest,
                                np.asarray(motion.body.parents))[:, :, :3, 3] + (true_root - rest[0])[:, None]
    cam = motion.meta["camera"]
    track.extra["landmarks_image"] = _trunk_landmarks(joints, cam["focal_px"], (cam["cx"], cam["cy"]))
    before = np.asarray(track.transl, np.float64) + rest[0]
    run._size_depth(motion, track, None)
    after = np.asarray(track.transl, np.float64) + rest[0]
    ratio = np.linalg.norm(after, axis=1) / np.linalg.norm(true_root, axis=1)
    assert np.ptp(np.log(swing)) > 0.095
    curvature = 0.05 * (2 * np.pi / times[-1]) ** 2
    assert np.ptp(np.log(ratio)) < 1.25 * curvature * RATIO_SMOOTHING.sigma ** 2 + 1e-3
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)
    # the step stores float32 metres: directions agree to a few float32 roundings
    np.testing.assert_allclose(unit(after), unit(before), atol=16 * np.finfo(np.float32).eps)


def test_the_ground_sets_stance_depths_only_where_it_can():
    """GROUND_DEPTH's gate: a found ground seen from a static camera with a certain height; not the
    people's vertical standing in for a refused ground, a moving camera or an uncertain height."""
    from vibe_engine.postprocess.run import _ground_fixes_depth
    from vibe_engine.world.grounding import WorldResult

    found = WorldResult(matrix=np.eye(4), lock_matrix=np.eye(4))
    assert _ground_fixes_depth(found, None)
    assert not _ground_fixes_depth(found, np.repeat(np.eye(4)[None], 3, 0))
    assert not _ground_fixes_depth(WorldResult(matrix=None, lock_matrix=np.eye(4)), None)
    uncertain = WorldResult(matrix=np.eye(4), lock_matrix=np.eye(4),
                            warnings=[("CAMERA_HEIGHT_UNCERTAIN", "the camera height (0.34 m) ...")])
    assert not _ground_fixes_depth(uncertain, None)
