"""joints3d/joints2d follow the final pose: joints rigidly attached to bones are carried exactly, and
after the post-processing joints2d is the projection of joints3d + transl (raw members kept)."""
import numpy as np

from tests.fixtures.motion import make_motion
from vibe_blender.core.body import forward_kinematics, shaped_rest
from vibe_blender.core.rotations import aa_to_matrix
from vibe_engine.postprocess import final_joints
from vibe_engine.postprocess.run import postprocess


def _attached(body, betas, pose, bones, offsets):
    _, rest = shaped_rest(body, betas)
    g = forward_kinematics(aa_to_matrix(np.asarray(pose, np.float64)), rest, np.asarray(body.parents))[:, bones]
    return np.einsum("tjik,jk->tji", g[..., :3, :3], offsets) + g[..., :3, 3]


def test_joints_attached_to_bones_are_carried_exactly():
    rng = np.random.default_rng(0)
    motion = make_motion(num_tracks=1, num_frames=30, seed=1)
    body, betas = motion.body, motion.tracks[0].betas_track
    bones = rng.integers(0, 24, 12)
    offsets = rng.normal(0, 0.05, (12, 3))
    pose_raw = rng.normal(0, 0.4, (30, 24, 3))
    pose_new = pose_raw + rng.normal(0, 0.2, (30, 24, 3))
    raw = _attached(body, betas, pose_raw, bones, offsets)
    got = final_joints.carry_joints(body, betas, pose_raw, raw, pose_new)
    np.testing.assert_allclose(got, _attached(body, betas, pose_new, bones, offsets), atol=1e-9)


def test_joints2d_project_the_final_joints3d_after_postprocessing():
    motion = make_motion(num_tracks=2, num_frames=40, seed=5)
    before = [t.joints2d.copy() for t in motion.tracks]
    postprocess(motion)
    cam = motion.meta["camera"]
    for track, raw in zip(motion.tracks, before):
        np.testing.assert_array_equal(track.extra["joints2d_raw"], raw.astype(np.float32))
        points = track.joints3d.astype(np.float64) + track.transl.astype(np.float64)[:, None]
        px = points[..., :2] / points[..., 2:3] * cam["focal_px"] + [cam["cx"], cam["cy"]]
        np.testing.assert_allclose(track.joints2d, px, rtol=1e-5, atol=1e-3)  # float32 storage of ~1e3 px
