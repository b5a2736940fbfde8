"""Post-processing over a whole motion: raw kept, world frame estimated, result still valid."""
import numpy as np

from tests.fixtures.motion import make_motion
from vibe_blender.core import motion_file as mf
from vibe_engine.postprocess.run import PostSettings, postprocess


def test_raw_is_kept_and_file_stays_valid(tmp_path):
    motion = make_motion(num_tracks=2, num_frames=40, seed=5)
    raw = [t.pose.copy() for t in motion.tracks]
    postprocess(motion)
    for track, before in zip(motion.tracks, raw):
        np.testing.assert_array_equal(track.extra["pose_raw"], before.astype(np.float32))
        assert track.extra["contacts"].shape == (40, 4)
    m = np.array(motion.meta["world"]["world_from_camera"])
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-9)
    mf.write_motion(tmp_path / "p.motion.npz", motion)
    back = mf.read_motion(tmp_path / "p.motion.npz")
    assert back.tracks[0].extra["contacts"].dtype == bool


def test_all_steps_off_changes_nothing():
    motion = make_motion(num_tracks=1, num_frames=12, seed=6)
    before = motion.tracks[0].pose.copy()
    postprocess(motion, PostSettings(smooth=False, ground=False, foot_lock=False))
    np.testing.assert_array_equal(motion.tracks[0].pose, before)
    assert motion.meta["world"]["world_from_camera"] is None
