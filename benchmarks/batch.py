"""Benchmark: `vibe_engine batch` throughput, sequential vs Ray with 1 and 2 workers, same run.

    PYTHONPATH=. .venv/bin/python benchmarks/batch.py [--clips 8] [--frames 24]

Clips are cut from the demo (1/4 size, different parts of it). Every configuration runs the
same clips with the real engine (default BlazePose backend) through the batch CLI:

* ``sequential``: no Ray, the engine subprocess per clip, unpinned (its own 2 threads);
* ``sequential inprocess``: no Ray, the engine inside the batch process (engine-mode comparison);
* ``ray 1 worker`` / ``ray 2 workers``: ``--ray local --workers N --pin on``: a fresh loopback
  cluster, each task pinned to one CPU (its threads with it), so 2 workers never share a core.

clips/s uses the batch's own ``wall_seconds`` (scheduling + clips, without Ray's start-up, which
is shown separately). Ray per-task overhead: (1-worker wall − Σ task seconds) / clips, and the
round trip of an empty Ray task on the same kind of cluster. Prints a Markdown table; writes
nothing but temporary files.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.batch.helpers import cut_clips  # noqa: E402

RUN_OPTIONS = ["--min-frames", "5", "--max-people", "1"]
NOOP_TASKS = 50


def run_batch(clips_dir: Path, out: Path, extra: list[str]) -> tuple[dict, float]:
    """(report, seconds of the whole command including start-up)."""
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "vibe_engine", "batch", str(clips_dir), "--out", str(out),
                           "--no-progress", *extra, "--", *RUN_OPTIONS], capture_output=True, text=True,
                          env=env, timeout=1800)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"batch {extra} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout), total


def noop_round_trip_s() -> float:
    """Mean seconds of ray.get(f.remote()) for an empty task on a 1-CPU loopback cluster."""
    from vibe_engine.batch.executors import init_ray

    ray = init_ray("local", 1, 0.0)

    @ray.remote(num_cpus=1)
    def noop() -> None:
        return None

    ray.get(noop.remote())  # worker warm
    t0 = time.perf_counter()
    for _ in range(NOOP_TASKS):
        ray.get(noop.remote())
    mean = (time.perf_counter() - t0) / NOOP_TASKS
    ray.shutdown()
    return mean


def _popen_batch(clips_dir: Path, out: Path, extra: list[str]) -> subprocess.Popen:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "vibe_engine", "batch", str(clips_dir), "--out", str(out),
                             "--no-progress", *extra, "--", *RUN_OPTIONS], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def fault_runs(clips_dir: Path, root: Path, mode: str) -> dict:
    """Engine mode ``mode`` on a 2-worker local cluster: SIGKILL the first worker 1 s into its clip,
    then (a second batch) Ctrl-C 1 s after two clips started. Returns what was left behind."""
    import signal

    from tests.batch.helpers import engine_processes, ledger, wait_for

    extra = ["--ray", "local", "--workers", "2", "--engine-mode", mode]
    out = root / f"kill_{mode}"
    proc = _popen_batch(clips_dir, out, extra)
    first = wait_for(lambda: next((r for r in ledger(out) if r["event"] == "start"), None))
    time.sleep(1.0)
    os.kill(first["pid"], signal.SIGKILL)
    stdout, _ = proc.communicate(timeout=1800)
    report = json.loads(stdout)
    kill = {"rc": proc.returncode, "counts": report["counts"],
            "attempts_of_killed": sum(r["event"] == "start" and r["key"] == first["key"] for r in ledger(out)),
            "orphans": len(engine_processes(out)), "tmp_files": len(list(out.glob("*.tmp*")))}
    out = root / f"int_{mode}"
    proc = _popen_batch(clips_dir, out, extra)
    wait_for(lambda: sum(r["event"] == "start" for r in ledger(out)) >= 2)
    time.sleep(1.0)
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=1800)
    last = {r["key"]: r["event"] for r in ledger(out)}
    interrupt = {"rc": proc.returncode, "exit_after_ctrl_c_s": round(time.perf_counter() - t0, 2),
                 "counts": json.loads(stdout)["counts"], "keys_left_running": sum(e == "start" for e in last.values()),
                 "orphans": len(engine_processes(out)), "tmp_files": len(list(out.glob("*.tmp*")))}
    return {"sigkill_worker": kill, "ctrl_c": interrupt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--frames", type=int, default=24, help="frames per clip")
    ap.add_argument("--faults", action="store_true",
                    help="only the engine-mode fault comparison (worker SIGKILL, Ctrl-C) on 4 clips")
    ns = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vibe-batch-bench-"))
    starts = tuple(range(0, 200 - ns.frames, max(1, (200 - ns.frames) // ns.clips)))[:ns.clips]
    clips = cut_clips(root / "clips", starts, ns.frames)
    if ns.faults:
        for mode in ("subprocess", "inprocess"):
            print(f"{mode}: {json.dumps(fault_runs(root / 'clips', root, mode))}")
        return
    configs = [("sequential", []), ("sequential inprocess", ["--engine-mode", "inprocess"]),
               ("ray 1 worker", ["--ray", "local", "--workers", "1", "--pin", "on"]),
               ("ray 2 workers", ["--ray", "local", "--workers", "2", "--pin", "on"])]
    rows = {}
    for name, extra in configs:
        report, total = run_batch(root / "clips", root / name.replace(" ", "_"), extra)
        assert report["counts"] == {"done": len(clips)}, report["counts"]
        task_s = [c["seconds"] for c in report["clips"]]
        rows[name] = {"wall": report["wall_seconds"], "total": total, "task_mean": statistics.mean(task_s),
                      "task_sum": sum(task_s), "cps": len(clips) / report["wall_seconds"]}
        print(f"# {name}: {rows[name]}", file=sys.stderr)
    noop = noop_round_trip_s()
    base = rows["sequential"]["cps"]
    print(f"\n{len(clips)} clips × {ns.frames} frames (442x248), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| configuration | clips/s | × sequential | wall s (batch) | whole command s | mean task s |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['cps']:.3f} | {r['cps'] / base:.2f} | {r['wall']:.1f} | {r['total']:.1f} | "
              f"{r['task_mean']:.2f} |")
    r1, r2 = rows["ray 1 worker"], rows["ray 2 workers"]
    print(f"\nray 2 workers / 1 worker: {r2['cps'] / r1['cps']:.2f}x")
    print(f"ray per-task overhead (1 worker: (wall - sum of task seconds) / clips): "
          f"{(r1['wall'] - r1['task_sum']) / len(clips):.3f} s")
    print(f"empty Ray task round trip: {noop * 1000:.2f} ms")
    print(f"Ray start-up (whole command - batch wall, 1 worker): {r1['total'] - r1['wall']:.1f} s")


if __name__ == "__main__":
    main()
