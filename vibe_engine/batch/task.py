"""One batch task: a video → its motion file (the engine's ``run``), then the optional exports.

The same function runs in the batch process (sequential mode) and inside a Ray worker. The
engine runs either as the ``python -m vibe_engine run`` subprocess (default; ``mode="subprocess"``)
or in the task's own process (``mode="inprocess"``); both write the motion file with
``motion_file.write_motion`` (temporary name in the same folder, fsync, rename), so a reader never
sees a partial file. docs/batch.md ("Engine mode") says why the subprocess is the default.

An optional upload hook (``--upload CMD``) then copies the finished take elsewhere.

Outcomes (``TaskResult.status``): ``done``; ``failed`` with the engine's error code and one-line
message (bad input, exit 4, and internal errors are not retried); ``cancelled`` (Ctrl-C or a Ray
cancel). An engine process killed by a signal raises ``EngineCrashed``, which Ray retries
(``retry_exceptions``) like a dead worker.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from vibe_blender.core.vibe_data import sha256_file
from vibe_engine.batch.ledger import Ledger, locked
from vibe_engine.errors import EXIT_CANCELLED, EXIT_OK, EXIT_USAGE

#: Package root on sys.path for the engine subprocess (a checkout or site-packages).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
#: tools/vibe_batch.py: the Blender batch export (present in a checkout).
EXPORT_SCRIPT = PACKAGE_ROOT / "tools" / "vibe_batch.py"
#: Seconds a cancelled engine gets to stop by itself before it is killed.
CANCEL_GRACE_S = 20.0
#: Node-local folder of per-CPU lock files used to pin one task per core.
CPU_LOCK_DIR = Path("/tmp/vibe-batch-cpus")
#: Export formats run by tools/vibe_batch.py (``motion`` is the engine's own output).
EXPORT_FORMATS = ("fbx", "bvh", "glb")


class EngineCrashed(RuntimeError):
    """The engine process died from a signal (OOM killer, segfault): retried like a dead worker."""


@dataclass(frozen=True)
class TaskSpec:
    """Everything a task needs (picklable; paths absolute, on a filesystem every node sees)."""

    key: str
    name: str
    video: str
    out: str
    run_argv: tuple[str, ...]
    ledger: str
    lock: str
    run_id: str
    mode: str = "subprocess"
    formats: tuple[str, ...] = ()
    export_dir: str | None = None
    log: str | None = None
    pin: bool = False
    upload: tuple[str, ...] = ()
    resume: bool = False
    #: (build_parser, make_config) of vibe_engine.cli, for the in-process mode (pickled by name).
    cli: tuple[Callable[[], Any], Callable[[Any], Any]] | None = None


@dataclass
class TaskResult:
    """What a task reports back to the driver (JSON-ready via ``as_dict``)."""

    key: str
    status: str
    seconds: float = 0.0
    frames: int | None = None
    people: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, str] | None = None
    exports: list[str] = field(default_factory=list)
    output_sha256: str | None = None
    attempt_pid: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def pinned_cpu(enabled: bool) -> Iterator[int | None]:
    """Pin the calling thread (and every process/thread it starts) to one free CPU of this node.

    A free CPU is one whose lock file in CPU_LOCK_DIR no other task holds; with none free (or
    ``enabled`` False) nothing is pinned. Yields the CPU index or None.
    """
    if not enabled or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    CPU_LOCK_DIR.mkdir(parents=True, exist_ok=True)
    before = os.sched_getaffinity(0)
    for cpu in sorted(before):
        with locked(CPU_LOCK_DIR / f"cpu{cpu}.lock", blocking=False) as got:
            if not got:
                continue
            os.sched_setaffinity(0, {cpu})
            try:
                yield cpu
            finally:
                os.sched_setaffinity(0, before)
            return
    yield None


def _engine_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(PACKAGE_ROOT), path) if p))


def _decode(line: str) -> dict[str, Any] | None:
    try:
        msg = json.loads(line)
    except json.JSONDecodeError:
        return None
    return msg if isinstance(msg, dict) else None


def _stop(proc: subprocess.Popen) -> None:
    """Cancel the engine like the add-on does (close its stdin); kill it after CANCEL_GRACE_S."""
    with contextlib.suppress(OSError):
        proc.stdin.close()
    try:
        proc.wait(CANCEL_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_subprocess(spec: TaskSpec, result: TaskResult) -> None:
    """The engine CLI in a child process; fills ``result`` from its protocol lines and exit code."""
    argv = [sys.executable, "-m", "vibe_engine", "run", spec.video, "--out", spec.out, *spec.run_argv]
    log = open(spec.log, "w", encoding="utf-8") if spec.log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                            env=_engine_env(), start_new_session=True)
    messages = []
    try:
        for line in proc.stdout:
            msg = _decode(line)
            if msg is not None:
                messages.append(msg)
        rc = proc.wait()
    except BaseException:  # KeyboardInterrupt (Ctrl-C or ray.cancel): stop the engine cleanly
        _stop(proc)
        raise
    finally:
        if log is not subprocess.DEVNULL:
            log.close()
    _fill(result, rc, messages)


def _fill(result: TaskResult, rc: int, messages: list[dict[str, Any]]) -> None:
    errors = [m for m in messages if m.get("type") == "error"]
    done = [m for m in messages if m.get("type") == "result"]
    if rc < 0:
        raise EngineCrashed(f"engine killed by signal {signal.Signals(-rc).name}")
    if rc == EXIT_OK and done:
        result.status, result.frames, result.people = "done", done[0].get("frames"), done[0].get("people", [])
    elif rc == EXIT_CANCELLED:
        result.status = "cancelled"
    else:
        code = errors[0].get("code", "INTERNAL") if errors else "INTERNAL"
        message = errors[0].get("message", "") if errors else f"engine exited with {rc} and no error line"
        result.status, result.error = "failed", {"code": code, "message": message, "exit_code": rc}


def run_inprocess(spec: TaskSpec, result: TaskResult) -> None:
    """The engine's ``run`` in this process: the CLI's parser and config builder (``spec.cli``,
    passed in by vibe_engine.cli, so this package never imports it) and the pipeline."""
    from vibe_engine.cancel import CancelToken
    from vibe_engine.errors import CancelledError, EngineError
    from vibe_engine.pipeline import run_pipeline
    from vibe_engine.protocol import ProtocolWriter

    build_parser, make_config = spec.cli
    args = build_parser().parse_args(["run", spec.video, "--out", spec.out, *spec.run_argv])
    try:
        run = run_pipeline(make_config(args), ProtocolWriter(io.StringIO()), CancelToken())
    except (CancelledError, KeyboardInterrupt):
        result.status = "cancelled"
        raise KeyboardInterrupt from None
    except EngineError as exc:
        result.status = "failed"
        result.error = {"code": exc.code, "message": str(exc), "exit_code": exc.exit_code}
        return
    result.status, result.frames, result.people = "done", run.frames, run.people


def export_available() -> str | None:
    """None when this environment can run the Blender export, else the reason (one line)."""
    if not EXPORT_SCRIPT.is_file():
        return f"{EXPORT_SCRIPT} not found: run the batch from a checkout of vibe-mocap to export"
    if importlib.util.find_spec("bpy") is None:
        return "bpy is not installed in this worker's Python: pip install bpy (see docs/batch.md) or drop --formats"
    return None


def run_export(spec: TaskSpec, result: TaskResult) -> None:
    """tools/vibe_batch.py on the finished motion file: one file per person and format."""
    reason = export_available()
    if reason:
        result.status, result.error = "failed", {"code": "EXPORT_UNAVAILABLE", "message": reason,
                                                 "exit_code": EXIT_USAGE}
        return
    folder = Path(spec.export_dir)
    argv = [sys.executable, str(EXPORT_SCRIPT), spec.out, "--motion", "--out", str(folder),
            "--formats", ",".join(spec.formats), "--no-blend"]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=_engine_env())
    report_path = folder / "vibe_batch_report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {"inputs": []}
    entry = (report.get("inputs") or [{}])[0]
    if proc.returncode != 0 or entry.get("status") != "ok":
        error = entry.get("error") or {"message": proc.stderr.strip().splitlines()[-1:] or "export failed"}
        result.status, result.error = "failed", {"code": "EXPORT_FAILED", "message": str(error.get("message")),
                                                 "exit_code": proc.returncode}
        return
    result.exports = sorted(entry.get("files", []))


def run_upload(spec: TaskSpec, result: TaskResult) -> None:
    """The per-clip upload hook: ``spec.upload`` argv with ``{motion}``, ``{name}``, ``{exports}``
    replaced, run without a shell on the worker once the clip is done (exit 0 expected)."""
    values = {"motion": spec.out, "name": spec.name, "exports": spec.export_dir or ""}
    argv = [arg.format(**values) for arg in spec.upload]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=_engine_env())
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        result.status, result.error = "failed", {"code": "UPLOAD_FAILED", "exit_code": proc.returncode,
                                                 "message": f"upload hook failed: {tail[:300]}"}


def run_task(spec: TaskSpec) -> dict[str, Any]:
    """Run one clip (engine, exports, upload) under the clip's lock; returns ``TaskResult.as_dict()``.

    The per-clip lock file serialises batch runs working on the same output. With ``resume``, a
    clip that another run finished while this one waited for the lock is ``skipped``. A finished
    clip's ``done`` event is appended before the lock is released. KeyboardInterrupt (Ctrl-C,
    ``ray.cancel``) stops the engine and propagates.
    """
    start = time.perf_counter()
    result = TaskResult(key=spec.key, status="failed", attempt_pid=os.getpid())
    ledger = Ledger(spec.ledger)
    with locked(spec.lock), pinned_cpu(spec.pin) as cpu:
        if spec.resume and ledger.finished(spec.key, Path(spec.out)):
            done = ledger.last()[spec.key]
            result.status, result.frames, result.people = "skipped", done.get("frames"), done.get("people", [])
            return result.as_dict()
        ledger.append("start", spec.key, run_id=spec.run_id, name=spec.name, cpu=cpu)
        (run_inprocess if spec.mode == "inprocess" else run_subprocess)(spec, result)
        if result.status == "done":
            result.output_sha256 = sha256_file(spec.out)
            if spec.formats:
                run_export(spec, result)
            if spec.upload and result.status == "done":
                run_upload(spec, result)
        result.seconds = round(time.perf_counter() - start, 3)
        if result.status == "done":
            ledger.append("done", spec.key, **end_fields(spec, result.as_dict()))
    return result.as_dict()


def end_fields(spec: TaskSpec, result: dict[str, Any]) -> dict[str, Any]:
    """The fields of an end event in the run manifest (besides event, key, time, host, pid)."""
    return {"run_id": spec.run_id, "name": spec.name, "video": spec.video, "output": spec.out,
            **{k: result.get(k) for k in ("seconds", "frames", "people", "error", "exports", "output_sha256")}}
