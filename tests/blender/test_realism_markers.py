"""Motion realism (VIBE's motion discriminator, the optional ``realism`` track member) in real
Blender: each run of frames under REALISM_IMPLAUSIBLE_BELOW gets one ``VIBE_<id> implausible``
marker, next to the low-confidence markers; a file without the member adds none."""
import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.fixtures.motion import make_motion  # noqa: E402
from vibe_blender.bl import bake, character  # noqa: E402
from vibe_blender.core import motion_file as mf  # noqa: E402

NUM_FRAMES = 10


def _read_back(tmp_path, realism):
    m = make_motion(num_tracks=1, num_frames=NUM_FRAMES, seed=3, posedirs=False)
    t = m.tracks[0]
    t.confidence = np.where(np.arange(NUM_FRAMES) == 8, 0.2, 0.9)  # one low-confidence frame (index 8)
    if realism is not None:
        t.extra["realism"] = np.asarray(realism, np.float32)
    path = tmp_path / "take.motion.npz"
    mf.write_motion(path, m)
    return mf.read_motion(path)


def _markers(label):
    return sorted(mk.frame for mk in bpy.context.scene.timeline_markers if mk.name == f"VIBE_1 {label}")


def test_implausible_runs_get_one_marker_each(tmp_path):
    below = mf.REALISM_IMPLAUSIBLE_BELOW
    realism = [1.0, below - 0.1, below - 0.3, 0.9, 0.9, below - 0.01, 0.8, 0.8, 0.8, below - 0.2]
    motion = _read_back(tmp_path, realism)
    np.testing.assert_array_equal(motion.track(1).extra["realism"], np.asarray(realism, np.float32))
    arm = character.build_character(motion, 1)
    bake.bake_track(arm, motion, 1, fps=30)  # frame i lands on scene frame 1 + i
    assert _markers("implausible") == [2, 6, 10]
    assert _markers("low") == [9]
    bake.bake_track(arm, _read_back(tmp_path, None), 1, fps=30)  # no member: no implausible marker
    assert _markers("implausible") == [] and _markers("low") == [9]
