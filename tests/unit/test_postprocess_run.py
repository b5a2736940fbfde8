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
