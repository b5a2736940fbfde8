"""A VIBE engine run (CLI subprocess, synthetic official-layout checkpoint) stores the motion
discriminator's per-frame realism in every track, equal to scoring the file's final poses."""
import numpy as np

from tests.engine.test_cli import COMMON, run_engine
from tests.fixtures import media, synthetic
from vibe_blender.core import motion_file as mf
from vibe_engine.models import load_generator
from vibe_engine.models.discriminator import frame_realism

#: float32 GRU + attention on the same poses in two processes: identical code, identical inputs.
FP32_TOLERANCE = 1e-5


def test_run_stores_realism_of_the_final_poses(tmp_path):
    data = synthetic.make_vibe_data(tmp_path / "vibe_data", 0)
    clip = media.write_cv2_clip(tmp_path / "short.mp4", media.demo_frames(12, 2))
    out = tmp_path / "short.motion.npz"
    engine = run_engine(["run", str(clip), "--out", str(out), "--vibe-data", str(data), *COMMON])
    assert engine.rc == 0, engine.stderr[-3000:]
    motion = mf.read_motion(out)
    assert motion.meta["manifest"]["realism"]["enabled"] is True
    disc = load_generator(data / "vibe_model_wo_3dpw.pth.tar").motion_discriminator
    for t in motion.tracks:
        want = frame_realism(disc, t.pose)
        assert t.extra["realism"].shape == (t.num_frames,)
        assert np.abs(t.extra["realism"] - want).max() <= FP32_TOLERANCE * max(1.0, np.abs(want).max())
