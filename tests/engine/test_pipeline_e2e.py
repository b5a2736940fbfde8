"""End to end on the real two-person clip: detector → tracker → VIBE (random weights) → motion file.

One CLI run per session (~390 crops through ResNet-50) with bf16: the cheapest path on a CPU with
native bfloat16; on one without, the run warns SLOW_PRECISION (checked below).
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.engine.test_cli import _env, run_engine
from tests.fixtures import media, synthetic
from vibe_blender.core import motion_file as mf

# Manual annotation of assets/video/demo_two_people.mp4 (1768×994, 230 frames), checked on a
# contact sheet of every 10th frame: a torso point per person at some frames, and the frames
# where each person is visible (the man: on the roof, mid-air, then running off to the right;
# the woman: enters from behind the tree at the right, leaves at the left edge).
MAN = {10: (650, 260), 50: (640, 250), 80: (640, 260), 130: (760, 230), 195: (1110, 790)}
WOMAN = {50: (1490, 740), 80: (1230, 700), 130: (730, 740), 195: (50, 700)}
MAN_VISIBLE = np.arange(0, 226)
WOMAN_VISIBLE = np.arange(40, 198)
MIN_COVERAGE = 0.9


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    data = synthetic.make_vibe_data(tmp_path_factory.mktemp("e2e_vibe_data"), 1)
    out = tmp_path_factory.mktemp("e2e") / "demo.motion.npz"
    engine = run_engine(["run", str(media.DEMO_CLIP), "--out", str(out), "--vibe-data", str(data),
                         "--precision", "bf16", "--batch-size", "32"])
    assert engine.rc == 0, engine.stderr[-3000:]
    return engine, out


def _holds(track: mf.Track, frame: int, point: tuple[int, int]) -> bool:
    rows = np.flatnonzero(track.frames == frame)
    if not len(rows):
        return False
    cx, cy, w, _ = track.bbox[rows[0]]
    return abs(point[0] - cx) <= w / 2 and abs(point[1] - cy) <= w / 2


def _person(motion: mf.Motion, points: dict) -> mf.Track:
    """The track whose boxes hold the person's annotated torso points (most of them)."""
    scores = [sum(_holds(t, f, p) for f, p in points.items()) for t in motion.tracks]
    assert max(scores) >= len(points) - 1, scores
    return motion.tracks[int(np.argmax(scores))]


def test_both_people_are_tracked_over_90_percent_of_their_visible_frames(demo_run):
    engine, out = demo_run
    motion = mf.read_motion(out)
    mf.validate(motion)
    assert len(motion.tracks) == 2
    man, woman = _person(motion, MAN), _person(motion, WOMAN)
    assert man.id != woman.id
    for track, visible in ((man, MAN_VISIBLE), (woman, WOMAN_VISIBLE)):
        assert np.isin(visible, track.frames).mean() >= MIN_COVERAGE, (track.id, track.frames[[0, -1]])
    (result,) = engine.of("result")
    assert result["frames"] == 230 and result["fps"] == pytest.approx(30.0, rel=1e-3)
    assert sorted(p["id"] for p in result["people"]) == sorted(t.id for t in motion.tracks)


def test_demo_motion_file_is_consistent(demo_run):
    _, out = demo_run
    motion = mf.read_motion(out)
    meta = motion.meta
    assert (meta["video"]["width"], meta["video"]["height"], meta["video"]["frames"]) == (1768, 994, 230)
    assert meta["manifest"]["precision"] == "bf16" and meta["body"]["kind"] == "smpl"
    for t in motion.tracks:
        assert np.all(np.diff(t.frames) == 1) and np.all(np.diff(t.times) > 0)
        assert t.joints3d.shape == (t.num_frames, 49, 3) and t.joints2d.shape == (t.num_frames, 49, 2)
        assert np.all(np.isfinite(t.pose)) and np.all(t.extra["transl_raw"][:, 2] > 0)
        assert t.detected.mean() > 0.5 and np.all(t.confidence[~t.detected] == 0)


def test_inspect_json_reads_the_demo_file(demo_run):
    _, out = demo_run
    proc = subprocess.run([sys.executable, "-m", "vibe_engine", "inspect", str(out), "--json"],
                          capture_output=True, text=True, env=_env(None), timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert {k: info["video"][k] for k in ("frames", "width", "height")} == {
        "frames": 230, "width": 1768, "height": 994}
    assert len(info["tracks"]) == 2 and all(t["last"] - t["first"] + 1 == t["frames"] for t in info["tracks"])


def _cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return set(next((ln.split(":", 1)[1].split() for ln in fh if ln.startswith("flags")), []))
    except OSError:
        return set()


def test_bf16_warns_exactly_when_this_cpu_lacks_native_bf16(demo_run):
    """The run used --precision bf16 on the CPU: SLOW_PRECISION is reported exactly when the CPU
    flags (read independently from /proc/cpuinfo) show neither AVX512-BF16 nor AMX tiles."""
    flags = _cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags on this system")
    engine, _ = demo_run
    warned = [w for w in engine.of("warning") if w.get("code") == "SLOW_PRECISION"]
    assert len(warned) == (0 if {"avx512_bf16", "amx_tile"} & flags else 1)
    assert all("--precision fp32" in w["message"] for w in warned)
