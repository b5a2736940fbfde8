"""End-to-end engine benchmark: frames/s, per-stage seconds and peak RSS of `python -m vibe_engine run`.

Runs the real CLI in a subprocess (peak RSS: VmHWM of that process, see ``PeakRss``) with
random-weight official-layout checkpoints, on clips made from the demo video:

* ``1p-720p``: 1280×720, demo frames 0–39 (only the man is in view) played forwards then
  backwards;
* ``multi-720p``: 1280×720, demo frames 60 onwards (both people in view);
* ``1p-720p-long``: the one-person clip bounced LONG_FACTOR × longer: peak RSS must not grow with
  the video length (two streaming passes, no frame kept), and ``--compile`` pays its warm-up;
* each with the VIBE backend (settings per row: precision, ``--detect-every``, ``--compile``; the
  default ``--compile auto`` uses the compiled bf16 artefacts in BENCH_CACHE, which the benchmark
  builds first with ``vibe_engine prepare`` when they are missing) and with the default
  BlazePose backend (no VIBE files).

The default path's long clip also runs with ``--camera static``: next to the plain long row it shows
what the moving-camera tracker of the default ``--camera auto`` costs end to end.
The first row of each backend is the old behaviour (``--detect-every 1``, fp32) on the one-person
clip: the ``ratio`` columns compare every row of that backend with it (same machine, same run).
The plain default-path rows (1p-720p 80 frames, 1p-720p-long 240 frames, multi-720p 2 people) run
three ways, in turn: ``branch point`` (the checkout of ``--baseline``, unpacked with git archive),
``sequential`` (this checkout with ``VIBE_ENGINE_OVERLAP=0``: no decode thread, one landmark
thread) and ``-`` (this checkout as shipped), the 2-person row also ``2 lm workers``
(``VIBE_ENGINE_LANDMARK_WORKERS=2``); their ratios compare with the branch point row.
``fps`` = video frames / wall second of the whole process (start-up, imports, model load and
compile warm-up included); ``steady`` = video frames / wall seconds after start-up (from the
``detect`` stage line to the exit, compile excluded: what a longer video costs per frame);
``cpu_ms`` = CPU milliseconds of the engine process (user + system, all threads) per video frame,
much less sensitive than wall time to other work on a shared machine; ``loadavg`` = the 1-minute
load average before the run. Each case runs ``--repeat`` times, the fastest run is kept.
Stage seconds come from the ``timings_s`` field of the engine's ``result`` line (stages that run
in threads overlap, so they may add up to more than the wall time).

Usage: ``python benchmarks/engine.py [--frames N] [--repeat R] [--device cpu|cuda] [--out DIR]
[--quick] [--backend all|vibe|blazepose] [--baseline REV|none]``. The default-path table alone:
``python benchmarks/engine.py --backend blazepose --repeat 2`` (about 2 minutes on 2 quiet cores).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures import media, synthetic  # noqa: E402
from vibe_blender.core import motion_file as mf  # noqa: E402
from vibe_blender.core.settings import DEVICES  # noqa: E402
from vibe_engine.blazepose.engine_backend import LANDMARK_WORKERS_ENV  # noqa: E402
from vibe_engine.config import OVERLAP_ENV  # noqa: E402

SIZE_720P = (1280, 720)
LONG_FACTOR = 3
#: Demo frames 0..ONE_PERSON_LAST show only the man (the woman enters at frame 40).
ONE_PERSON_LAST = 39
KIB = 1024
#: Compiled-artefact folder of the benchmarks (shared with benchmarks/generator.py --aoti, which builds
#: the bf16 batch-32 artefact of the same random weights).
BENCH_CACHE = Path(tempfile.gettempdir()) / "vibe_bench_compiled"
#: Default-path rows are also run on this commit (the branch point of the pipeline speed work,
#: issue 15) and sequentially (OVERLAP_ENV=0); the ratios compare with the branch point.
BASELINE_REV = "aa09a13"
BASELINE_MODE = "branch point"


def make_clip(path: Path, n_frames: int, size: tuple[int, int], start: int = 0, bounce: int = 1) -> Path:
    """Demo frames [start, start+n) resized to ``size``; ``bounce`` > 1 plays them back and forth."""
    import cv2

    cap = cv2.VideoCapture(str(media.DEMO_CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    for _ in range(n_frames):
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    cap.release()
    sequence = []
    for k in range(bounce):
        sequence += frames if k % 2 == 0 else frames[::-1]
    return media.write_cv2_clip(path, sequence)


def make_vibe_data(root: Path) -> Path:
    """Random-weight checkpoints in the official layout (written once per root)."""
    if (root / "spin_model_checkpoint.pth.tar").is_file():
        return root
    return synthetic.make_vibe_data(root, 0)


def run_engine(video: Path, out: Path, vibe_data: Path | None, extra: list[str], env_extra: dict | None = None,
               repo: Path = REPO) -> dict:
    """One CLI run of the checkout ``repo`` (``vibe_data`` None: the default BlazePose backend);
    returns wall time, process CPU time (user + system, all threads), the wall time until the
    ``detect`` stage began (interpreter start, imports, video probe, model load), peak RSS (MiB)
    of the engine process, the load average before the run, its stage timings and the motion file."""
    model = ["--vibe-data", str(vibe_data)] if vibe_data else []
    cmd = [sys.executable, "-m", "vibe_engine", "run", str(video), "--out", str(out), *model,
           "--ignore-stdin", *extra]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(repo), **(env_extra or {}))
    env.setdefault("VIBE_ENGINE_COMPILE_CACHE", str(BENCH_CACHE))  # random weights: not the user cache
    loadavg = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=repo)
    peak = PeakRss(proc.pid)
    lines, startup = [], None
    for raw in proc.stdout:
        lines.append(raw.decode())
        if startup is None and '"type":"stage"' in lines[-1] and '"name":"detect"' in lines[-1]:
            startup = time.perf_counter() - start
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak.join()
    if proc.returncode != 0:
        raise RuntimeError(f"engine failed: {lines[-3:]}")
    (result,) = [json.loads(line) for line in lines if '"type":"result"' in line]
    return {"wall_s": wall, "rss_mib": peak.kib * KIB / 2**20, "motion": mf.read_motion(out),
            "timings": result["timings_s"], "cpu_s": usage.ru_utime + usage.ru_stime,
            "startup_s": startup or 0.0, "loadavg": loadavg}


def prepare_artefacts(vibe_data: Path, device: str, batch: int) -> None:
    """``vibe_engine prepare`` for the bf16 rows (their ``--compile auto`` then loads the compiled
    backbone and head; built once into BENCH_CACHE, minutes); its JSON line goes to stderr."""
    cmd = [sys.executable, "-m", "vibe_engine", "prepare", "--vibe-data", str(vibe_data), "--device", device,
           "--precision", "bf16", "--batch-size", str(batch)]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(REPO))
    env.setdefault("VIBE_ENGINE_COMPILE_CACHE", str(BENCH_CACHE))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    print(f"# prepare (bf16): exit {done.returncode} {done.stdout.strip()[-300:]}", file=sys.stderr)


class PeakRss(threading.Thread):
    """Polls /proc/PID/status VmHWM (peak resident set of the process's current image) until the
    process ends; ``kib`` is the last value read.

    Not ``wait4``'s ru_maxrss: that also counts the pages the child shared with this (large,
    torch-importing) benchmark process between fork and exec, which hid the engine's own peak.
    The last ~20 ms before exit may be missed (the write stage: a few MiB at most).
    """

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.path, self.interval_s, self.kib = Path(f"/proc/{pid}/status"), interval_s, 0
        self.start()

    def run(self) -> None:
        while True:
            try:
                text = self.path.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.kib = max(self.kib, int(line.split()[1]))
                elif line.startswith("State:") and line.split()[1] == "Z":
                    return
            time.sleep(self.interval_s)


#: Timing keys that are paid once per run, not per frame.
ONCE_KEYS = ("load_model", "compile")


def row(name: str, backend: str, precision: str, options: str, result: dict) -> dict:
    """Table row: frames, people, crops, fps (video frames per wall second), steady fps, stages (s)."""
    motion = result["motion"]
    t = result["timings"]
    frames = motion.meta["video"]["frames"]
    steady_s = result["wall_s"] - result["startup_s"] - sum(t.get(k, 0.0) for k in ONCE_KEYS if k != "load_model")
    return {"case": name, "backend": backend, "precision": precision, "options": options or "-",
            "frames": frames, "people": len(motion.tracks), "crops": sum(tr.num_frames for tr in motion.tracks),
            "wall_s": result["wall_s"], "fps": frames / result["wall_s"], "steady": frames / steady_s,
            "cpu_ms": 1e3 * result["cpu_s"] / frames, "loadavg": result["loadavg"],
            "rss_mib": result["rss_mib"], "load": t.get("load_model", 0.0), "compile": t.get("compile", 0.0),
            "decode": t.get("decode", 0.0), "detect": t.get("detect", 0.0), "track": t.get("track", 0.0),
            "crop": t.get("crop", 0.0),
            "model": sum(t.get(k, 0.0) for k in ("generator_backbone", "generator_temporal", "landmarks")),
            "fit": t.get("fit", 0.0), "post": t.get("postprocess", 0.0), "write": t.get("write", 0.0)}


def print_table(rows: list[dict]) -> None:
    """Print the results as a fixed-width table (stage columns in seconds). Ratios (fps, steady,
    CPU per frame) against the ``branch point`` row of the same case and options when there is
    one, else against the first row of the same backend."""
    cols = ["case", "backend", "precision", "options", "mode", "frames", "people", "crops", "wall_s", "fps",
            "ratio", "steady", "s_ratio", "cpu_ms", "c_ratio", "loadavg", "rss_mib", "load", "compile", "decode",
            "detect", "track", "crop", "model", "fit", "post", "write"]
    first, reference = {}, {}
    for r in rows:
        first.setdefault(r["backend"], r)
        if r["mode"] == BASELINE_MODE:
            reference[(r["backend"], r["case"], r["options"])] = r
    widths = {c: 22 if c == "options" else 12 if c in ("case", "mode") else 9 for c in cols}
    print(" ".join(f"{c:>{widths[c]}}" for c in cols))
    for r in rows:
        b = reference.get((r["backend"], r["case"], r["options"]), first[r["backend"]])
        r = dict(r, ratio=r["fps"] / b["fps"], s_ratio=r["steady"] / b["steady"], c_ratio=b["cpu_ms"] / r["cpu_ms"])
        print(" ".join(f"{r[c]:>{widths[c]}.2f}" if isinstance(r[c], float) else f"{r[c]:>{widths[c]}}"
                       for c in cols))


def modes(case: str, backend: str, options: str, base_repo: Path | None) -> list[tuple[str, Path, dict]]:
    """(mode, checkout, extra environment) runs of one case. The plain default-path rows also run
    the branch-point checkout and this checkout with ``VIBE_ENGINE_OVERLAP=0`` (sequential), in
    turn with the overlapped default, so machine load drifts over the three alike; the 2-person
    row also runs with two landmark workers (``VIBE_ENGINE_LANDMARK_WORKERS=2``)."""
    now = [("-", REPO, {})]
    if backend != "blazepose" or options:
        return now
    before = [(BASELINE_MODE, base_repo, {})] if base_repo is not None else []
    workers = [("2 lm workers", REPO, {LANDMARK_WORKERS_ENV: "2"})] if "multi" in case else []
    return before + [("sequential", REPO, {OVERLAP_ENV: "0"})] + now + workers


def checkout(rev: str, work: Path) -> Path | None:
    """The files of commit ``rev`` of this repository unpacked under ``work`` (git archive), or
    None when ``rev`` is "none" or cannot be read."""
    if rev == "none":
        return None
    dest = work / f"baseline-{rev}"
    if not (dest / "vibe_engine").is_dir():
        proc = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev], capture_output=True)
        if proc.returncode != 0:
            print(f"baseline {rev} not available ({proc.stderr.decode().strip()}): no branch-point rows",
                  file=sys.stderr)
            return None
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            tar.extractall(dest, filter="data")
    return dest


def cases(one: Path, multi: Path, long: Path, data: Path, quick: bool, backend: str) -> list[tuple]:
    """(case, clip, vibe data or None, precision, extra options) per row; baselines first."""
    vibe = [("1p-720p", one, data, "fp32", "--detect-every 1"), ("1p-720p", one, data, "fp32", ""),
            ("1p-720p", one, data, "bf16", "--compile off"), ("1p-720p", one, data, "bf16", ""),
            ("1p-720p-long", long, data, "bf16", "--compile off"), ("1p-720p-long", long, data, "bf16", ""),
            ("multi-720p", multi, data, "bf16", ""),
            ("1p-720p-long", long, data, "fp32", "")]
    blaze = [("1p-720p", one, None, "fp32", "--detect-every 1"), ("1p-720p", one, None, "fp32", ""),
             ("1p-720p", one, None, "fp32", "--landmark-model lite"), ("multi-720p", multi, None, "fp32", ""),
             ("1p-720p-long", long, None, "fp32", ""), ("1p-720p-long", long, None, "fp32", "--camera static")]
    if quick:
        vibe = [c for c in vibe if c[0] == "1p-720p"]
        blaze = [c for c in blaze if c[0] == "1p-720p"]
    return (vibe if backend in ("all", "vibe") else []) + (blaze if backend in ("all", "blazepose") else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=80, help="frames of the base clips")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest is kept")
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="only the one-person rows")
    parser.add_argument("--backend", choices=("all", "vibe", "blazepose"), default="all",
                        help="only the rows of this backend")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temp folder)")
    parser.add_argument("--baseline", default=BASELINE_REV,
                        help=f"commit whose default-path rows the ratios compare with (default {BASELINE_REV}, "
                             "the branch point of the pipeline speed work; 'none': no such rows)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="vibe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = make_vibe_data(work / "vibe_data") if args.backend != "blazepose" else None
    half = min(args.frames // 2, ONE_PERSON_LAST + 1)
    one = make_clip(work / "one.mp4", half, SIZE_720P, start=0, bounce=2)
    multi = make_clip(work / "multi.mp4", args.frames, SIZE_720P, start=60)
    long = make_clip(work / "long.mp4", half, SIZE_720P, start=0, bounce=2 * LONG_FACTOR)
    common = ["--device", args.device, "--batch-size", str(args.batch_size), "--min-frames", "5"]
    if args.backend in ("all", "vibe"):
        prepare_artefacts(data, args.device, args.batch_size)
    rows = []
    base_repo = checkout(args.baseline, work) if args.backend != "vibe" else None
    for k, (name, clip, vibe_data, precision, options) in enumerate(cases(one, multi, long, data, args.quick, args.backend)):
        backend = "vibe" if vibe_data else "blazepose"
        extra = common + ["--precision", precision, *options.split()]
        variants = modes(name, backend, options, base_repo)
        runs: dict[str, list[dict]] = {mode: [] for mode, _, _ in variants}
        for _ in range(args.repeat):
            for mode, repo, env in variants:
                runs[mode].append(run_engine(clip, work / f"case{k}.motion.npz", vibe_data, extra, env, repo))
        for mode, _, _ in variants:
            rows.append(dict(row(name, backend, precision, options, min(runs[mode], key=lambda r: r["wall_s"])),
                             mode=mode))
            print(json.dumps({c: (round(v, 3) if isinstance(v, float) else v) for c, v in rows[-1].items()}),
                  file=sys.stderr)
    print(f"device={args.device} cpus={os.cpu_count()} batch={args.batch_size} best of {args.repeat} "
          f"(stage columns: seconds; fps = frames / wall second incl. start-up; steady = frames / wall second "
          f"after start-up and model load (compile excluded); cpu_ms = process CPU ms (all threads) per video "
          f"frame; loadavg = 1-min load average before the run; ratios (c_ratio: CPU per frame, >1 = less) vs "
          f"the {BASELINE_MODE} row of the same case, else the first row of the backend)")
    print_table(rows)
    _print_rss(rows)


def _print_rss(rows: list[dict]) -> None:
    """Peak RSS of the short and the long one-person clip, per backend (must not grow)."""
    for backend, precision in (("vibe", "fp32"), ("blazepose", "fp32")):
        rss = {r["case"]: r for r in rows if r["backend"] == backend and r["precision"] == precision
               and r["options"] == "-" and r["mode"] == "-"}
        if "1p-720p" in rss and "1p-720p-long" in rss:
            short, long_ = rss["1p-720p"], rss["1p-720p-long"]
            print(f"{backend}: peak RSS {short['rss_mib']:.0f} MiB at {short['frames']} frames vs "
                  f"{long_['rss_mib']:.0f} MiB at {long_['frames']} frames (ratio "
                  f"{long_['rss_mib'] / short['rss_mib']:.2f})")


if __name__ == "__main__":
    main()
