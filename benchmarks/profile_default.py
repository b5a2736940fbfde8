"""Where the default (BlazePose) path spends its CPU: process CPU seconds per step of one run.

Runs ``vibe_engine run`` in this process, sequentially (``VIBE_ENGINE_OVERLAP=0``: no decode
thread), with each step wrapped by a process-CPU-time counter (``time.process_time``: all threads,
so the landmark interpreter's worker thread counts too). With nothing running concurrently the
deltas add up to the run's CPU, and CPU seconds hardly depend on what else the shared machine
runs, unlike wall seconds. Printed per step: CPU s, ms per video frame, share of the run.

Usage: ``python benchmarks/profile_default.py VIDEO [VIDEO ...] [--repo DIR]`` (``--repo``: profile
another checkout, e.g. the branch point unpacked with ``git archive``; steps missing there are
skipped).
"""
from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: (label, module, attribute path) of the steps counted; nested steps are counted in both.
STEPS = (
    ("detector load", "vibe_engine.pipeline", "PersonSource.__init__"),
    ("backend load (models, body)", "vibe_engine.pipeline", "load_backend"),
    ("video decode (both passes)", "vibe_engine.decode.video", "VideoReader._decode"),
    ("detector", "vibe_engine.people.detect", "PersonDetector.detect"),
    ("tracker", "vibe_engine.people.track", "Tracker.update"),
    ("camera motion: per frame", "vibe_engine.world.camera_motion", "CameraTracker.add"),
    ("camera motion: solve", "vibe_engine.world.camera_path", "attach"),
    ("landmarks: crop", "vibe_engine.blazepose.landmarks", "LandmarkModel.crop"),
    ("landmarks: network", "vibe_engine.blazepose.landmarks", "LandmarkModel.infer"),
    ("landmarks: decode", "vibe_engine.blazepose.landmarks", "decode"),
    ("fit (per track)", "vibe_engine.blazepose.fit", "fit_track"),
    ("post-processing", "vibe_engine.pipeline", "_postprocess"),
    ("motion file write", "vibe_blender.core.motion_file", "write_motion"),
)


class Counter:
    """CPU seconds and calls per label."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}

    def wrap(self, label: str, fn):
        if _is_generator(fn):
            @functools.wraps(fn)
            def gen(*a, **k):
                it = fn(*a, **k)
                while True:
                    start = time.process_time()
                    try:
                        item = next(it)
                    except StopIteration:
                        self.add(label, start)
                        return
                    self.add(label, start)
                    yield item
            return gen

        @functools.wraps(fn)
        def call(*a, **k):
            start = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                self.add(label, start)
        return call

    def add(self, label: str, start: float) -> None:
        self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - start


def _is_generator(fn) -> bool:
    import inspect

    return inspect.isgeneratorfunction(fn)


def _patch(counter: Counter) -> None:
    for label, module, attr in STEPS:
        try:
            owner = importlib.import_module(module)
        except ImportError:
            continue
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        if owner is None or not hasattr(owner, name):
            continue
        setattr(owner, name, counter.wrap(label, getattr(owner, name)))


def profile(video: Path) -> dict:
    """One in-process run; returns {label: CPU s}, the run's and the engine imports' CPU s. The
    engine's protocol lines go to this process's stdout (the parent reads the frame count there)."""
    os.environ["VIBE_ENGINE_OVERLAP"] = "0"
    cpu0 = time.process_time()
    from vibe_engine.cli import main as engine_main

    counter = Counter()
    _patch(counter)  # imports every module of the run (scipy, LiteRT and OpenCV included)
    imports = time.process_time() - cpu0
    out = Path(tempfile.mkdtemp()) / "p.motion.npz"
    start = time.process_time()
    code = engine_main(["run", str(video), "--out", str(out), "--ignore-stdin", "--min-frames", "5"])
    return {"steps": counter.cpu, "run": time.process_time() - start, "imports": imports, "code": code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path, nargs="+")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(args.repo))
        print(json.dumps(profile(args.videos[0])))
        return
    for video in args.videos:  # one fresh process per video: imports and start-up count each time
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OPENBLAS_NUM_THREADS="1",
                   PYTHONPATH=str(args.repo))
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", "--repo", str(args.repo), str(video)],
                              capture_output=True, text=True, env=env, cwd=args.repo, check=True)
        wall = time.perf_counter() - start
        lines = proc.stdout.strip().splitlines()
        res = json.loads(lines[-1])
        res["frames"] = next(json.loads(line)["frames"] for line in lines if '"type":"result"' in line)
        n = max(res["frames"], 1)
        print(f"\n{video.name}: {res['frames']} frames, imports {res['imports']:.2f} CPU s, run "
              f"{res['run']:.2f} CPU s ({1e3 * res['run'] / n:.1f} ms/frame), process wall {wall:.2f} s, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"{'step':40} {'CPU s':>7} {'ms/frame':>9} {'share':>6}")
        for label, _, _ in STEPS:
            if label in res["steps"]:
                cpu = res["steps"][label]
                print(f"{label:40} {cpu:7.3f} {1e3 * cpu / n:9.2f} {cpu / res['run']:6.1%}")


if __name__ == "__main__":
    main()
