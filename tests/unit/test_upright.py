"""The fit's lean toward the camera taken out against the ground's normal, with known answers: a
body standing upright, seen from a camera looking down, fitted leaning away from the camera and
(as a monocular fit does) too far away to keep its image size, comes back upright at its true
distance; a level camera barely changes; a body lying down or reaching behind the camera is left
alone."""
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tests.unit.test_footlock import REST, body  # noqa: F401  (the skeleton body fixture)
from vibe_blender.core import motion_file as mf
from vibe_blender.core.body import forward_kinematics
from vibe_blender.core.rotations import aa_to_matrix, matrix_to_aa
from vibe_engine.postprocess import upright

FRAMES = 40
DISTANCE = 6.0  # m from the camera to the body along the ground


def _joints(pose: np.ndarray, transl: np.ndarray) -> np.ndarray:
    g = forward_kinematics(aa_to_matrix(pose), REST, np.array(mf.SMPL_PARENTS))
    return g[:, :, :3, 3] + transl[:, None]


def _scene(height: float, lean_deg: float = 0.0):
    """(pose (T,24,3), transl (T,3), up (3,)) of a body standing on the ground DISTANCE in front of
    a camera ``height`` m up that looks at its middle, leaning ``lean_deg`` toward it, arms
    swinging a little."""
    depression = np.arctan2(height - 0.9, DISTANCE)
    look = Rotation.from_euler("x", depression).as_matrix()  # level camera frame → the pitched one
    up = look @ np.array([0.0, -1.0, 0.0])  # world up in the camera frame (OpenCV: y down)
    tilt = Rotation.from_rotvec(np.radians(lean_deg) * (look @ np.array([1.0, 0.0, 0.0]))).as_matrix()
    orient = tilt @ look @ aa_to_matrix(np.array([np.pi, 0.0, 0.0]))  # SMPL y-up → camera y-down, facing it
    pose = np.zeros((FRAMES, 24, 3))
    pose[:, 0] = matrix_to_aa(orient)
    swing = 0.4 * np.sin(np.linspace(0, 2 * np.pi, FRAMES))
    pose[:, 16, 2], pose[:, 17, 2] = swing - 1.2, 1.2 - swing  # arms down, swinging
    feet_ground = look @ np.array([0.3, height, DISTANCE])  # the point of the floor it stands on
    transl = np.tile(feet_ground + up * 0.94, (FRAMES, 1))  # pelvis above the soles
    return pose, transl, up


def _fitted(pose, transl, up, bias_deg: float):
    """The same body turned by ``bias_deg`` away from the camera about its centroid and moved along
    its ray to where it keeps its image size (a monocular fit's lean and depth error)."""
    joints = _joints(pose, transl)
    axes, _ = upright.pitch_axes(joints, up, np.zeros((FRAMES, 3)))
    turn = Rotation.from_rotvec(np.radians(bias_deg) * axes).as_matrix()
    pivots = joints.mean(1)
    turned = pivots[:, None] + np.einsum("tij,tnj->tni", turn, joints - pivots[:, None])
    target = joints[..., :2] / joints[..., 2:]
    s = upright._depth_factor(turned, pivots, target, np.zeros((FRAMES, 3)), None)
    fpose = pose.copy()
    fpose[:, 0] = matrix_to_aa(turn @ aa_to_matrix(pose[:, 0]))
    return fpose, turned[:, 0] + (s - 1.0) * pivots - REST[0], s


def _track(pose, transl) -> SimpleNamespace:
    """The members of a motion-file track that the step reads and writes."""
    return SimpleNamespace(frames=np.arange(FRAMES), pose=pose.astype(np.float32),
                           transl=transl.astype(np.float32), betas_track=np.zeros(10, np.float32))


def test_a_lean_away_from_a_camera_looking_down_is_taken_out_with_its_depth(body):
    pose, transl, up = _scene(height=5.0)
    fpose, ftransl, s_fit = _fitted(pose, transl, up, bias_deg=12.0)
    assert s_fit > 1.05  # the leaning fit stands more than 5 % too far (the error being fixed)
    track = _track(fpose, ftransl)
    removed, s = upright.straighten(body, track, _joints(fpose, ftransl), up)
    assert removed == pytest.approx(-12.0, abs=0.3)
    after = _joints(track.pose.astype(np.float64), track.transl.astype(np.float64))
    truth = _joints(pose, transl)
    depth_ratio = np.linalg.norm(after[:, 0], axis=-1) / np.linalg.norm(truth[:, 0], axis=-1)
    assert np.abs(depth_ratio - 1.0).max() < 0.01  # back within 1 % of the true distance
    assert np.abs(after - truth).max() < 0.03  # every joint within 3 cm (the turn axes differ a little)
    assert np.abs(upright.pitch_axes(after, up, np.zeros((FRAMES, 3)))[1]).max() < 0.5
    # the body's centroid keeps its image position (it moved along its ray only; float32 members)
    c0, c1 = truth.mean(1), after.mean(1)
    assert np.abs(c0[:, :2] / c0[:, 2:] - c1[:, :2] / c1[:, 2:]).max() < 1e-5


def test_a_level_camera_hardly_changes_the_depth(body):
    pose, transl, up = _scene(height=0.9)
    fpose, ftransl, s_fit = _fitted(pose, transl, up, bias_deg=5.0)
    track = _track(fpose, ftransl)
    _, s = upright.straighten(body, track, _joints(fpose, ftransl), up)
    assert abs(s - 1.0) < 0.01 and abs(s_fit - 1.0) < 0.01


def test_a_body_lying_down_is_left_alone(body):
    pose, transl, up = _scene(height=3.0, lean_deg=80.0)
    track = _track(pose, transl)
    assert upright.straighten(body, track, _joints(pose, transl), up) is None
    np.testing.assert_array_equal(track.pose, pose.astype(np.float32))


def test_a_body_reaching_behind_the_camera_is_left_alone(body):
    pose, transl, up = _scene(height=0.9)
    transl = transl.copy()
    transl[:, 2] = 0.05  # the pelvis 5 cm in front of the camera: the toes reach behind it
    track = _track(pose, transl)
    joints = _joints(pose, transl)
    assert (joints[..., 2] <= 0).any()
    assert upright.straighten(body, track, joints, up) is None


def test_a_lean_beyond_max_bias_is_the_fit_s_bias_only_under_rays_that_steep(body):
    """33° away from the camera: from 6 m up (the rays to the body 40° down, what a fit that
    stands the body across its ray can be off) it is taken out; from 2 m up (rays 10° down) it
    is more than MAX_BIAS_DEG of a posture the fit cannot have made up, and is left alone."""
    assert upright.MAX_BIAS_DEG < 33.0 < upright.STAND_DEG
    pose, transl, up = _scene(height=6.0)
    joints = _joints(pose, transl)
    assert upright.ray_depression_deg(joints[:, 0], up) == pytest.approx(np.degrees(np.arctan2(6.0 - 0.9, DISTANCE)), abs=1.0)
    fpose, ftransl, _ = _fitted(pose, transl, up, bias_deg=33.0)
    removed, _ = upright.straighten(body, _track(fpose, ftransl), _joints(fpose, ftransl), up)
    assert removed == pytest.approx(-33.0, abs=0.5)
    pose, transl, up = _scene(height=2.0)
    fpose, ftransl, _ = _fitted(pose, transl, up, bias_deg=33.0)
    assert upright.straighten(body, _track(fpose, ftransl), _joints(fpose, ftransl), up) is None


def test_a_lean_toward_the_camera_is_taken_out_only_under_rays_that_rise_to_the_body(body):
    """A fit stands a body across its camera ray: it leans it away from a camera above it, and
    toward one below it by at most the rays' elevation. From 2 m up (rays 10° down) a 10° lean
    toward the camera is the person's posture and is left alone; from 0.3 m up (rays about 6°
    up) a 4° lean toward it is taken out, an 8° one left alone."""
    pose, transl, up = _scene(height=2.0)
    fpose, ftransl, _ = _fitted(pose, transl, up, bias_deg=-10.0)
    track = _track(fpose, ftransl)
    assert upright.straighten(body, track, _joints(fpose, ftransl), up) is None
    np.testing.assert_array_equal(track.pose, fpose.astype(np.float32))
    pose, transl, up = _scene(height=0.3)
    elevation = -upright.ray_depression_deg(_joints(pose, transl)[:, 0], up)
    assert 4.0 < elevation < 8.0 and upright.toward_limit(-elevation) == pytest.approx(elevation)
    fpose, ftransl, _ = _fitted(pose, transl, up, bias_deg=-4.0)
    removed, _ = upright.straighten(body, _track(fpose, ftransl), _joints(fpose, ftransl), up)
    assert removed == pytest.approx(4.0, abs=0.3)
    fpose, ftransl, _ = _fitted(pose, transl, up, bias_deg=-8.0)
    assert upright.straighten(body, _track(fpose, ftransl), _joints(fpose, ftransl), up) is None
