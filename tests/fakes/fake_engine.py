"""A stdlib-only stand-in for ``python -m vibe_engine`` that speaks the engine protocol.

Usage (the options before the sub-command pick the behaviour; the rest is the real engine CLI):

    fake_engine.py [--scenario NAME] [--step-s S] [--result-from FILE] [--transcript FILE.jsonl]
                   run VIDEO --out FILE [--vibe-data DIR] [--device D] [--precision P] [--tracks IDS]
    fake_engine.py [--scenario NAME] doctor

Scenarios:
  ok          hello, 6 stages with progress, one warning, result file, done ok, exit 0
  slow        like ok with 50 progress steps per stage (cancel-aware)
  cancel      runs ~forever (10 min) until cancelled: done cancelled, exit 3, no result file
  garbage     like ok, plus a non-JSON stdout line in the middle
  crash       hello, a stage, a traceback on stderr, exit 1, no done
  stall       hello, a stage, then ignores cancel, stdin EOF and SIGTERM (needs SIGKILL)
  bad_input   hello, error VIDEO_UNREADABLE, done error, exit 4
  version     hello with protocol v=2, then keeps running until cancelled
  no_result   done ok without writing the result file
The result file is a copy of ``--result-from`` (e.g. a real motion file made by the test) or a
few placeholder bytes, written to ``OUT.tmp-<pid>`` then renamed, as the real engine does.
``--transcript`` replays a golden JSON-lines file instead, writing the result file when it replays
a ``result`` line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time

PROTOCOL_VERSION = 1
STAGES = ("decode", "detect", "track", "features", "regress", "write")
CANCEL_TIMEOUT_S = 600.0
T0 = time.monotonic()
CANCELLED = threading.Event()


def emit(type_: str, v: int = PROTOCOL_VERSION, **fields) -> None:
    """Write one protocol line to stdout and flush (as the real engine does)."""
    msg = {"v": v, "type": type_, "t": round(time.monotonic() - T0, 3), **fields}
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def watch_stdin() -> None:
    """A cancel line or EOF on stdin sets CANCELLED."""
    for line in sys.stdin:
        try:
            if json.loads(line).get("type") == "cancel":
                break
        except ValueError:
            continue
    CANCELLED.set()


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fake_engine")
    p.add_argument("--scenario", default="ok")
    p.add_argument("--step-s", type=float, default=0.002)
    p.add_argument("--result-from")
    p.add_argument("--transcript")
    sub = p.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("video")
    run.add_argument("--out", required=True)
    run.add_argument("--vibe-data")
    run.add_argument("--device", default="cpu")
    run.add_argument("--precision", default="fp32")
    run.add_argument("--tracks")
    run.add_argument("--no-smooth", action="store_true")
    run.add_argument("--no-foot-lock", action="store_true")
    doctor = sub.add_parser("doctor")
    doctor.add_argument("--vibe-data")
    return p.parse_args(argv)


def hello(v: int = PROTOCOL_VERSION) -> None:
    emit("hello", v=v, engine_version="0.0.0-fake", python=sys.version.split()[0], torch=None,
         device="cpu", cuda=False)


def cancelled_exit(tmp: str | None = None) -> None:
    if tmp and os.path.exists(tmp):
        os.remove(tmp)
    emit("done", status="cancelled")
    sys.exit(3)


def run_stages(args: argparse.Namespace, steps: int, garbage: bool = False) -> None:
    for i, name in enumerate(STAGES):
        emit("stage", name=name, index=i, count=len(STAGES))
        for k in range(1, steps + 1):
            if CANCELLED.is_set():
                cancelled_exit()
            time.sleep(args.step_s)
            emit("progress", stage=name, done=k, total=steps, fps=None, eta_s=None)
        if garbage and i == 1:
            sys.stdout.write("Loading weights... this is not JSON\n")
            sys.stdout.flush()
        if i == 2:
            emit("warning", code="SHORT_TRACK_DROPPED", message="Track 7 dropped: shorter than 8 frames")


def write_result(args: argparse.Namespace, announce: bool = True) -> None:
    tmp = f"{args.out}.tmp-{os.getpid()}"
    if args.result_from:
        shutil.copyfile(args.result_from, tmp)
    else:
        with open(tmp, "wb") as fh:
            fh.write(b"fake motion file\n")
    if CANCELLED.is_set():
        cancelled_exit(tmp)
    os.replace(tmp, args.out)
    if announce:
        emit("result", path=args.out, schema="vibe-mocap-motion/1",
             people=[{"id": 1, "frames": 10, "first": 0, "last": 9}], fps=30.0, frames=10)


def scenario_run(args: argparse.Namespace) -> int:
    s = args.scenario
    if s == "bad_input" or (args.cmd == "run" and not os.path.exists(args.video)):
        hello()
        emit("error", code="VIDEO_UNREADABLE", message=f"Cannot read the video {args.video}: choose an "
             "existing video file", detail="Traceback (most recent call last):\n  fake\nVideoError")
        emit("done", status="error")
        return 4
    if s == "crash":
        hello()
        emit("stage", name="decode", index=0, count=len(STAGES))
        sys.stderr.write("Traceback (most recent call last):\n  File \"fake\", line 1\n"
                         "RuntimeError: fake engine crashed on purpose\n")
        sys.stderr.flush()
        return 1
    if s == "stall":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        hello()
        emit("stage", name="decode", index=0, count=len(STAGES))
        time.sleep(CANCEL_TIMEOUT_S)
        return 1
    if s in ("cancel", "version"):
        hello(v=2 if s == "version" else PROTOCOL_VERSION)
        emit("stage", name="decode", index=0, count=len(STAGES))
        if CANCELLED.wait(CANCEL_TIMEOUT_S):
            cancelled_exit()
        return 1
    hello()
    if args.cmd == "doctor":
        emit("report", kind="doctor", data={"engine_version": "0.0.0-fake", "vibe_ready": bool(args.vibe_data),
                                            "files": [], "device": {"cuda": False}})
        emit("done", status="ok")
        return 0
    run_stages(args, 50 if s == "slow" else 3, garbage=(s == "garbage"))
    if s != "no_result":
        write_result(args)
    emit("done", status="ok")
    return 0


def replay(args: argparse.Namespace) -> int:
    """Replay a golden transcript; a ``result`` line gets the real --out path and a file."""
    exit_code = 0
    with open(args.transcript, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            try:
                msg = json.loads(line)
            except ValueError:
                msg = None
            if isinstance(msg, dict) and msg.get("type") == "result" and args.cmd == "run":
                write_result(args, announce=False)
                line = json.dumps({**msg, "path": args.out})
            if isinstance(msg, dict) and msg.get("type") == "done":
                exit_code = {"ok": 0, "cancelled": 3}.get(msg.get("status"), exit_code)
            if isinstance(msg, dict) and msg.get("type") == "error":
                exit_code = 1 if msg.get("code") in ("INTERNAL", "OUT_OF_MEMORY") else 4
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            time.sleep(args.step_s)
    return exit_code


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.scenario != "stall":
        threading.Thread(target=watch_stdin, daemon=True).start()
    return replay(args) if args.transcript else scenario_run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
