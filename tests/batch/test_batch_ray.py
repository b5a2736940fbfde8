"""`vibe_engine batch --ray local`: a loopback-only Ray cluster with 2 worker processes, started
by each batch run (include_dashboard=False; every server binds 127.0.0.1).

Real engine (BlazePose default backend) on 12-frame clips cut from the demo; the references are
single `python -m vibe_engine run` calls with the same options.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.batch import helpers as h
from tests.fixtures import media

pytest.importorskip("ray")

RAY = ["--ray", "local", "--workers", "2", "--no-progress"]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _listening(pids: set[int]) -> list[str]:
    """Local addresses of the TCP sockets the given processes listen on (ss)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    return [line.split()[3] for line in out.splitlines()
            if any(int(p) in pids for p in re.findall(r"pid=(\d+)", line))]


def test_six_clips_with_a_worker_killed_mid_run_match_single_runs(clips, references, tmp_path):
    out = tmp_path / "out"
    proc = h.batch([clips[0].parent, "--out", out, *RAY, "--", *h.RUN_OPTIONS])
    first = h.wait_for(lambda: next((r for r in h.ledger(out) if r["event"] == "start"), None))
    addresses = _listening(_descendants(proc.pid) | {proc.pid})
    os.kill(first["pid"], signal.SIGKILL)  # the Ray worker running the first clip, mid-engine-run
    rc, report, err = h.finish_batch(proc)
    assert rc == 0, err[-3000:]
    assert report["counts"] == {"done": 6} and report["executor"] == "ray local"
    starts = Counter(r["key"] for r in h.ledger(out) if r["event"] == "start")
    assert starts[first["key"]] == 2 and sum(starts.values()) == 7  # the killed task ran again, once
    retried = [r for r in h.ledger(out) if r["event"] == "start" and r["key"] == first["key"]]
    assert retried[0]["pid"] != retried[1]["pid"]
    for clip in report["clips"]:
        assert clip["frames"] == h.CLIP_FRAMES and clip["people"][0]["frames"] > 0
        h.assert_same_motion(Path(clip["motion_file"]), references[Path(clip["video"]).stem])
    assert sorted(p.name for p in out.glob("*.motion.npz")) == sorted(f"{c.stem}.motion.npz" for c in clips)
    assert not list(out.glob("*.tmp*"))
    assert h.engine_processes(out) == []  # the killed worker's engine stopped itself (stdin closed)
    assert addresses and all(a.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")) for a in addresses), addresses


def test_bad_clip_fails_with_the_engine_message_others_done(clips, references, tmp_path):
    media.make_testsrc_clip(tmp_path / "nobody.mp4", h.CLIP_FRAMES)  # a test pattern: no person
    manifest = tmp_path / "list.csv"  # per-clip option equal to the common one: same settings
    manifest.write_text(f"video,max_people\n{clips[0]},1\n{clips[1]},1\nnobody.mp4,\n")
    out = tmp_path / "out"
    rc, report, err = h.finish_batch(h.batch([manifest, "--out", out, *RAY, "--", *h.RUN_OPTIONS]))
    assert rc == 1, err[-3000:]
    assert report["counts"] == {"done": 2, "failed": 1}
    (bad,) = [c for c in report["clips"] if c["status"] == "failed"]
    assert bad["name"] == "nobody" and bad["error"]["code"] == "NO_PERSON" and bad["error"]["exit_code"] == 4
    assert bad["error"]["message"].startswith("no person was detected in the video")
    assert not (out / "nobody.motion.npz").exists()
    starts = Counter(r["name"] for r in h.ledger(out) if r["event"] == "start")
    assert starts["nobody"] == 1  # bad input is not retried
    for clip in report["clips"]:
        if clip["status"] == "done":
            h.assert_same_motion(Path(clip["motion_file"]), references[Path(clip["video"]).stem])


def test_resume_after_ctrl_c_runs_only_the_unfinished_clips(clips, references, tmp_path):
    out = tmp_path / "out"
    proc = h.batch([clips[0].parent, "--out", out, *RAY, "--", *h.RUN_OPTIONS])
    h.wait_for(lambda: sum(r["event"] == "done" for r in h.ledger(out)) >= 2)
    proc.send_signal(signal.SIGINT)  # Ctrl-C in the driver
    rc, report, err = h.finish_batch(proc)
    assert rc == 3, err[-3000:]
    assert report["cancelled"] and report["counts"].get("done", 0) >= 2
    last = {r["key"]: r for r in h.ledger(out)}
    assert all(r["event"] in ("done", "cancelled") for r in last.values()), last  # nothing left "running"
    finished = {r["name"] for r in last.values() if r["event"] == "done"}
    unfinished = {c.stem for c in clips} - finished
    assert unfinished, "the interrupt came after the last clip"
    mtimes = {n: (out / f"{n}.motion.npz").stat().st_mtime_ns for n in finished}
    assert not list(out.glob("*.tmp*"))
    assert h.engine_processes(out) == []  # cancelled engines are gone
    n_before = len(h.ledger(out))

    rc, report, err = h.finish_batch(h.batch([clips[0].parent, "--out", out, *RAY, "--resume", "--",
                                              *h.RUN_OPTIONS]))
    assert rc == 0, err[-3000:]
    status = {c["name"]: c["status"] for c in report["clips"]}
    assert {n for n, s in status.items() if s == "skipped"} == finished
    assert {n for n, s in status.items() if s == "done"} == unfinished
    rerun = {r["name"] for r in h.ledger(out)[n_before:] if r["event"] == "start"}
    assert rerun == unfinished
    assert {n: (out / f"{n}.motion.npz").stat().st_mtime_ns for n in finished} == mtimes
    for clip in clips:
        h.assert_same_motion(out / f"{clip.stem}.motion.npz", references[clip.stem])


def test_unreachable_cluster_is_a_usage_error_and_writes_nothing(clips, tmp_path):
    out = tmp_path / "out"
    rc, report, err = h.finish_batch(h.batch([clips[0], "--out", out, "--ray", "127.0.0.1:1", "--no-progress"]))
    assert rc == 2 and report == {}
    assert "cannot reach the Ray cluster 127.0.0.1:1" in err
    assert not out.exists()


def test_ctrl_c_right_after_a_submission_still_cancels_that_task(clips, tmp_path):
    """The window of the flaky Ctrl-C test: SIGINT between Ray's submission of a task and the
    driver's note of it. A real local Ray cluster and the real task; the submission call sends the
    signal itself once the task is submitted. The task is still cancelled (or ends) and reported."""
    from vibe_engine.batch.executors import RayExecutor, init_ray
    from vibe_engine.batch.ledger import Ledger
    from vibe_engine.batch.task import TaskSpec

    ray = init_ray("local", 1, 0)
    executor = RayExecutor(ray, 1, 0, max_retries=0)
    submit = executor.remote

    class SignalAfterSubmit:
        def remote(self, spec):
            ref = submit.remote(spec)
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, delivered in this (the driver's) thread
            return ref

    executor.remote = SignalAfterSubmit()
    ledger = tmp_path / "batch.jsonl"
    spec = TaskSpec(key="k", name=clips[0].stem, video=str(clips[0]), out=str(tmp_path / "a.motion.npz"),
                    run_argv=tuple(h.RUN_OPTIONS), ledger=str(ledger), lock=str(tmp_path / "k.lock"), run_id="r")
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in executor.run([spec]):
                pass
        assert list(executor.inflight.values()) == [spec]  # known to the driver, so cancel() reaches it
        (outcome,) = list(executor.cancel())
        assert outcome[0] == spec and outcome[1]["status"] in ("cancelled", "done")
    finally:
        executor.shutdown()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not list(tmp_path.glob("*.tmp*"))
