"""Shared helpers of the batch tests: clips cut from the demo, the engine CLI, motion comparison."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.fixtures import media

#: Frames per test clip and the downscale of the demo (1768x994 → 442x248).
CLIP_FRAMES = 12
CLIP_SCALE = 4
#: First frames of the clips cut from the demo (the man is visible in all of them).
CLIP_STARTS = (0, 30, 60, 90, 120, 150)
#: run options of every test batch (short clips, one person).
RUN_OPTIONS = ["--min-frames", "5", "--max-people", "1"]
TIMEOUT_S = 300
#: Header keys that name the time or the output path of a run (everything else must match).
VOLATILE_META = (("created",), ("manifest", "timings_s"), ("manifest", "settings", "out"))


def env(**extra: str) -> dict[str, str]:
    """The test environment: this checkout on PYTHONPATH, passive OpenMP waits, plus ``extra``."""
    return {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(media.REPO), **extra}


def cut_clips(folder: Path, starts=CLIP_STARTS, length: int = CLIP_FRAMES) -> list[Path]:
    """One small clip per start frame (``length`` frames of the demo at 1/CLIP_SCALE size)."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = media.demo_frames(max(starts) + length, CLIP_SCALE)
    return [media.write_cv2_clip(folder / f"clip{s:03d}.mp4", frames[s:s + length]) for s in starts]


def single_runs(videos: list[Path], out_dir: Path, parallel: int = 2) -> dict[str, Path]:
    """``python -m vibe_engine run`` once per video (the reference), ``parallel`` at a time."""
    out_dir.mkdir(parents=True, exist_ok=True)
    outs, procs = {}, []
    for video in videos:
        out = out_dir / f"{video.stem}.motion.npz"
        procs.append(subprocess.Popen([sys.executable, "-m", "vibe_engine", "run", str(video), "--out", str(out),
                                       "--ignore-stdin", *RUN_OPTIONS], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env()))
        outs[video.stem] = out
        if len(procs) >= parallel:
            _finish(procs.pop(0))
    for proc in procs:
        _finish(proc)
    return outs


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, err.decode()[-2000:]


def batch(args: list, **popen) -> subprocess.Popen:
    """Start ``python -m vibe_engine batch ARGS`` (stdout: the JSON report)."""
    return subprocess.Popen([sys.executable, "-m", "vibe_engine", "batch", *map(str, args)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(), **popen)


def finish_batch(proc: subprocess.Popen) -> tuple[int, dict, str]:
    """(exit code, report, stderr) of a started batch."""
    out, err = proc.communicate(timeout=TIMEOUT_S)
    return proc.returncode, (json.loads(out) if out.strip() else {}), err


def ledger(out: Path) -> list[dict]:
    path = out / "batch.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(predicate, timeout: float = TIMEOUT_S, poll: float = 0.05):
    """Poll ``predicate()`` until it returns something truthy (returned) or fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("timed out waiting")


def _drop(meta: dict, path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        meta = meta.get(key, {})
    meta.pop(path[-1], None)


def assert_same_motion(a: Path, b: Path) -> None:
    """Every array member byte-identical (dtype, shape, bytes); the JSON header identical except
    the creation time, the stage timings and the output path (VOLATILE_META)."""
    with np.load(a) as za, np.load(b) as zb:
        assert sorted(za.files) == sorted(zb.files)
        for name in za.files:
            if name == "meta":
                continue
            x, y = za[name], zb[name]
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert x.tobytes() == y.tobytes(), f"{a.name}: member {name} differs"
        ma, mb = (json.loads(bytes(z["meta"]).decode()) for z in (za, zb))
    for path in VOLATILE_META:
        _drop(ma, path)
        _drop(mb, path)
    assert ma == mb


def engine_processes(out: Path) -> list[int]:
    """Pids of live engine processes writing into ``out`` (from /proc command lines)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"vibe_engine" in argv and b"run" in argv and state != "Z" \
                and any(a.startswith(str(out).encode()) for a in argv):
            pids.append(int(entry))
    return pids
