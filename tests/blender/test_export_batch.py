"""tools/vibe_batch.py --timing: every export of a batch in one timing mode, as the report says.

A two-person motion file (person 2 enters at video frame 3, tests.fixtures.motion) through the
batch with ``--timing hidden``: FBX and glTF start at 0 s with person 2 hidden for 3 frames, BVH
shows person 2's first pose from 0 s (the report's note); ``--timing`` takes only the known modes.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bpy")

from tests.fixtures.motion import make_motion  # noqa: E402
from vibe_blender.core.export_presets import HIDDEN_SCALE  # noqa: E402
from vibe_blender.core.motion_file import write_motion  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "vibe_batch.py"
TIMEOUT_S = 300
NUM_FRAMES = 12
FPS = 30.0
LATE_FRAMES = 3  # person 2's first video frame


def _batch(*args):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=env)


def test_batch_timing_hidden(tmp_path):
    src = tmp_path / "duo.motion.npz"
    write_motion(src, make_motion(num_tracks=2, num_frames=NUM_FRAMES, seed=4))
    done = _batch(src, "--motion", "--out", tmp_path / "out", "--formats", "fbx,glb,bvh", "--no-blend",
                  "--timing", "hidden")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "vibe_batch_report.json").read_text())
    assert report["settings"]["timing"] == "hidden"
    people = {p["id"]: p["exports"] for p in report["inputs"][0]["people"]}
    for fmt in ("fbx", "glb"):
        late = people[2][fmt]
        facts = (late["timing"], late["first_key_s"], late["frames"])
        assert facts == ("hidden", 0.0, LATE_FRAMES + NUM_FRAMES)
        assert (late["hidden_frames"], late["hidden_scale"]) == (LATE_FRAMES, HIDDEN_SCALE)
        assert late["hidden_until_s"] == pytest.approx(LATE_FRAMES / FPS)
        assert late["last_key_s"] == pytest.approx((LATE_FRAMES + NUM_FRAMES - 1) / FPS)
        assert people[1][fmt]["hidden_frames"] == 0 and people[1][fmt]["first_key_s"] == 0.0
    bvh = people[2]["bvh"]
    assert (bvh["frames_written"], bvh["lead_in_frames"]) == (LATE_FRAMES + NUM_FRAMES, LATE_FRAMES)
    assert "first pose is shown from 0 s" in bvh["note"]


def test_batch_timing_must_be_known(tmp_path):
    src = tmp_path / "a.motion.npz"
    src.write_bytes(b"")
    done = _batch(src, "--motion", "--timing", "absolute", "--out", tmp_path / "out")
    assert done.returncode == 2 and "--timing: invalid choice: 'absolute'" in done.stderr
    assert not (tmp_path / "out").exists()
