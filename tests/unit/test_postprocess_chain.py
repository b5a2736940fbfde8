"""The whole post-processing chain on a person standing still with monocular-style errors:
pose jitter and a root whose depth drifts and jitters. Known answer: the feet stand still on the
ground, the depth error is taken out along the camera ray, the image position is kept."""
import numpy as np
import pytest

from tests.fixtures.motion import make_motion
from tests.unit.test_footlock import REST, UPRIGHT_IN_CAMERA
from vibe_blender.core import motion_file as mf
from vibe_blender.core.body import forward_kinematics
from vibe_blender.core.rotations import aa_to_matrix
from vibe_engine.postprocess.footlock import CONTACT_JOINTS
from vibe_engine.postprocess.run import postprocess

FRAMES = 60
CAMERA_HEIGHT = 1.5  # m, level camera


def _skeleton_body() -> mf.BodyModel:
    eye = np.eye(24, dtype=np.float32)
    return mf.BodyModel(v_template=REST.astype(np.float32), shapedirs=np.zeros((24, 3, 10), np.float32),
                        J_regressor=eye, weights=eye, parents=np.array(mf.SMPL_PARENTS, np.int32),
                        faces=np.array([[0, 1, 2]], np.int32))


def _camera_joints(pose, transl):
    g = forward_kinematics(aa_to_matrix(np.asarray(pose, np.float64)), REST, np.array(mf.SMPL_PARENTS))
    return g[:, :, :3, 3] + np.asarray(transl, np.float64)[:, None]


@pytest.fixture(scope="module")
def standing():
    rng = np.random.default_rng(7)
    motion = make_motion(num_tracks=1, num_frames=FRAMES, seed=7)
    motion.body = _skeleton_body()
    track = motion.tracks[0]
    track.betas_track = np.zeros(10)
    pose = np.zeros((FRAMES, 24, 3))
    pose[:, 0] = UPRIGHT_IN_CAMERA
    pose[:, 1:] = rng.normal(0, 0.02, (FRAMES, 23, 3))  # per-frame jitter of every joint
    true_transl = np.tile([0.2, CAMERA_HEIGHT - 0.94, 4.0], (FRAMES, 1))  # soles (ankles) on the ground
    scale = 1.0 + 0.06 * np.sin(np.linspace(0, np.pi, FRAMES)) + rng.normal(0, 0.01, FRAMES)
    track.pose = pose.astype(np.float32)
    track.transl = (true_transl * scale[:, None]).astype(np.float32)  # depth error along the ray
    before = _camera_joints(track.pose, track.transl)
    postprocess(motion)
    return motion, before


def test_feet_found_planted_and_held_still(standing):
    motion, _ = standing
    track = motion.tracks[0]
    assert track.extra["contacts"].mean() > 0.9
    m = np.array(motion.meta["world"]["world_from_camera"])
    feet = _camera_joints(track.pose, track.transl)[:, list(CONTACT_JOINTS)] @ m[:3, :3].T + m[:3, 3]
    assert np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1).mean() < 1e-3  # < 1 mm/frame
    assert feet[..., 2].min() > -0.01  # nothing more than 1 cm below the ground


def test_depth_error_removed_and_image_position_kept(standing):
    motion, before = standing
    track = motion.tracks[0]
    after = _camera_joints(track.pose, track.transl)
    assert np.ptp(before[:, 0, 2]) > 0.2  # the input's pelvis depth swings by more than 20 cm
    assert np.ptp(after[:, 0, 2]) < 0.03
    pixels = lambda p: p[:, 0, :2] / p[:, 0, 2:]
    np.testing.assert_allclose(pixels(after), pixels(before), atol=0.01 / 4.0)  # within ~1 cm at 4 m
