"""Run one robustness case in a subprocess and check every rule of the bad-input contract.

A case (``cases.Case``) builds its inputs in a fresh folder (``Ctx.dir``, the "user's folder") and
returns a ``Call``: the argv, how to read the outcome (``kind``), stdin, interaction hooks, the
address-space limit and the hang guard. ``run_case`` snapshots the folder (sha256 of every file),
runs the call, reads the outcome and snapshots again; ``verify`` returns the broken rules:

* exit code, error code (the last protocol ``error`` line, or the child's exception / report),
  the expected words in a one-line message (and forbidden words absent);
* no "Traceback (most recent call last)" on stderr (nor in the engine stderr a child saw);
* no new path in the folder except the expected outputs (so no ``*.tmp-*`` or probe files), and
  every pre-existing file byte-identical unless the case says it may change;
* the Blender scene unchanged (children report object/action/mesh/armature/camera/marker names
  before and after);
* bounded time (the process group is killed at ``timeout_s``) and memory (``RLIMIT_AS`` set in the
  child before exec, inherited by the engine a child starts; the peak RSS is sampled from
  ``VmHWM`` of every process in the tree, for the report).
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vibe_blender.core import protocol as P

REPO = Path(__file__).resolve().parents[2]
GIB = 1 << 30
MIB = 1 << 20
#: Address-space limits: the engine (torch and LiteRT start under it), inspect, Blender children.
ENGINE_AS = 3 * GIB
INSPECT_AS = 1 * GIB
BLENDER_AS = 6 * GIB
#: Hang guard (generous: a shared 2-core machine); a stuck case costs at most this.
DEFAULT_TIMEOUT_S = 120.0
TRACEBACK = "Traceback (most recent call last)"
#: Seconds between peak-RSS samples of the process tree.
SAMPLE_S = 0.05


@dataclass
class Ctx:
    """Where a case builds its inputs (``dir``: the user's folder, checked before/after) and keeps
    its private files (``scratch``: child results, Blender user folder; not checked)."""

    dir: Path
    scratch: Path
    assets: Any
    finalizers: list[Callable[[], None]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    """How to run a case. ``kind``: "protocol" (engine run/doctor: JSON lines on stdout),
    "inspect" (one stderr line on failure), "child" (a helper script writing ``result_file``
    JSON: rc, code, codes, message, scene_before/after, engine_stderr) or "batch"
    (tools/vibe_batch.py; ``result_file`` is its report). ``stdin``: "pipe" (kept open), "devnull",
    "closed" (a pipe closed at once) or a Path (a regular file)."""

    argv: list[str]
    kind: str = "protocol"
    env: dict[str, str] = field(default_factory=dict)
    stdin: Any = "pipe"
    on_start: Callable[[subprocess.Popen, Ctx], None] | None = None
    on_line: Callable[[str, subprocess.Popen, Ctx], None] | None = None
    rlimit_as: int | None = ENGINE_AS
    timeout_s: float = DEFAULT_TIMEOUT_S
    expect_new: tuple[str, ...] = ()
    mutable: tuple[str, ...] = ()
    result_file: Path | None = None
    require_result: bool = True
    check: Callable[["Outcome", Ctx], list[str]] | None = None


@dataclass
class Outcome:
    rc: int | None = None
    code: str | None = None
    codes: tuple[str, ...] = ()
    message: str = ""
    status: str | None = None
    messages: list[P.Message] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    wall_s: float = 0.0
    peak_rss_mib: float = 0.0  # the largest VmHWM of any process of the tree (sampled)
    timed_out: bool = False
    process_rc: int | None = None
    child: dict[str, Any] = field(default_factory=dict)
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of(self, msg_type: str) -> list[P.Message]:
        return [m for m in self.messages if m.type == msg_type]

    @property
    def stages(self) -> list[str]:
        return [m["name"] for m in self.of("stage")]


def engine_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(REPO))
    env.update(extra or {})
    return env


# ------------------------------------------------------------------------------ snapshots


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """relative path → sha256 (files), "dir", or "link:<target>" (symlinks are not followed)."""
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root, name)
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                try:
                    out[rel] = sha256(p)
                except OSError as exc:  # unreadable: record it, never fail the snapshot
                    out[rel] = f"unreadable:{exc.errno}"
    return out


# ------------------------------------------------------------------------------ running


def _limit(as_bytes: int | None) -> Callable[[], None]:
    def apply() -> None:
        if as_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (as_bytes, as_bytes))

    return apply


def _stdin_arg(mode: Any) -> tuple[Any, Any]:
    """(Popen stdin argument, file to close afterwards)."""
    if mode in ("pipe", "closed"):
        return subprocess.PIPE, None
    if mode == "devnull":
        return subprocess.DEVNULL, None
    fh = open(mode, "rb")  # a regular file
    return fh, fh


def _tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (from /proc/<pid>/task/<tid>/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            continue
    return found


def _hwm_kib(pid: int) -> int:
    """The process's peak RSS so far (VmHWM, KiB; 0 when gone). Unlike wait4's ru_maxrss it starts
    at zero at exec, not at the size of the forking parent."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _sample_peak(pid: int, stop: threading.Event, peak: list[int]) -> None:
    """Until ``stop``: the largest VmHWM of any process in the tree, every SAMPLE_S."""
    while not stop.is_set():
        peak[0] = max([peak[0]] + [_hwm_kib(p) for p in _tree(pid)])
        stop.wait(SAMPLE_S)


def execute(call: Call, ctx: Ctx, out: Outcome) -> None:
    """Run ``call``; fills rc, stdout, stderr, wall time, peak RSS, timed_out."""
    stdin, to_close = _stdin_arg(call.stdin)
    t0 = time.monotonic()
    proc = subprocess.Popen(call.argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=REPO, env=engine_env(call.env), preexec_fn=_limit(call.rlimit_as),
                            start_new_session=True, text=True, encoding="utf-8", errors="replace")
    if to_close is not None:
        to_close.close()
    err_chunks: list[str] = []
    reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    peak, stop = [0], threading.Event()
    sampler = threading.Thread(target=_sample_peak, args=(proc.pid, stop, peak), daemon=True)
    sampler.start()

    def kill() -> None:
        out.timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    guard = threading.Timer(call.timeout_s, kill)
    guard.start()
    lines: list[str] = []
    try:
        if call.stdin == "closed":
            proc.stdin.close()
        if call.on_start is not None:
            call.on_start(proc, ctx)
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if call.on_line is not None:
                call.on_line(line, proc, ctx)
        reader.join()
        peak[0] = max(peak[0], _hwm_kib(proc.pid))  # a zombie-to-be may still report it
        _, status, _usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        stop.set()
        guard.cancel()
        if proc.returncode is None:
            kill()
            proc.wait()
        if proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass
    out.wall_s = time.monotonic() - t0
    sampler.join()
    out.peak_rss_mib = peak[0] / 1024.0
    out.process_rc = out.rc = proc.returncode
    out.stdout = "\n".join(lines)
    out.stderr = "".join(err_chunks)


def parse(call: Call, out: Outcome) -> None:
    """Read rc/code/message from the protocol lines, stderr, the child's or the batch's JSON."""
    if call.kind == "protocol":
        _parse_protocol(call, out)
    elif call.kind == "inspect":
        out.message = out.stderr.strip() if out.rc else ""
    elif call.kind == "child":
        _parse_child(call, out)
    elif call.kind == "batch":
        _parse_batch(call, out)
    else:
        raise ValueError(call.kind)


def _parse_protocol(call: Call, out: Outcome) -> None:
    for i, line in enumerate(out.stdout.splitlines()):
        try:
            out.messages.append(P.decode_line(line))
        except Exception as exc:  # noqa: BLE001 - any undecodable line breaks the contract
            out.problems.append(f"stdout line {i + 1} is not protocol ({type(exc).__name__}): {line[:120]!r}")
    if out.messages:
        done = out.of("done")
        out.status = str(done[-1]["status"]) if done else None
        try:
            P.check_transcript(out.messages, require_result=call.require_result and out.status == "ok")
        except Exception as exc:  # noqa: BLE001
            out.problems.append(f"transcript breaks the protocol rules: {exc}")
    errors = out.of("error")
    if errors:
        out.code, out.message = str(errors[-1]["code"]), str(errors[-1]["message"])
    out.codes = (out.code,) if out.code else ()


def _parse_child(call: Call, out: Outcome) -> None:
    if out.process_rc != 0:
        out.problems.append(f"the child process exited {out.process_rc}: {out.stderr.strip()[-300:]}")
    if call.result_file is None or not call.result_file.is_file():
        out.problems.append("the child wrote no result")
        return
    out.child = json.loads(call.result_file.read_text())
    out.rc = out.child.get("rc")
    out.code = out.child.get("code")
    out.codes = tuple(out.child.get("codes") or ([out.code] if out.code else []))
    out.message = out.child.get("message") or ""
    if "child_error" in out.child:
        out.problems.append("child-side error: " + out.child["child_error"][-600:])


def _parse_batch(call: Call, out: Outcome) -> None:
    if call.result_file is None or not call.result_file.is_file():
        out.message = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
        return
    report = json.loads(call.result_file.read_text())
    out.child = report
    failed = [i for i in report.get("inputs", []) if i.get("status") != "ok"]
    if failed:
        err = failed[0].get("error") or {}
        out.code, out.message = err.get("type"), err.get("message") or ""
        out.codes = (out.code,) if out.code else ()


def run_case(case: Any, assets: Any, root: Path) -> Outcome:
    """Build ``case`` under ``root/<id>``, run it, and return the outcome (``verify`` checks it)."""
    base = Path(root) / case.id
    if base.exists():
        shutil.rmtree(base)
    ctx = Ctx(dir=base / "case", scratch=base / "run", assets=assets)
    ctx.dir.mkdir(parents=True)
    ctx.scratch.mkdir()
    out = Outcome()
    try:
        call = case.build(ctx)
        before = snapshot(ctx.dir)
        execute(call, ctx, out)
        after = snapshot(ctx.dir)
        parse(call, out)
        out.new = sorted(set(after) - set(before) - set(call.expect_new))
        out.changed = sorted(k for k, v in before.items() if after.get(k) != v and k not in call.mutable)
        if call.check is not None:
            out.problems += call.check(out, ctx)
    finally:
        for fin in reversed(ctx.finalizers):
            fin()
    return out


# ------------------------------------------------------------------------------ checks


def _as_tuple(value: Any) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def verify(case: Any, out: Outcome) -> list[str]:
    """Every broken rule of the contract, as one line each (empty: the case passes)."""
    bad = list(out.problems)
    if out.timed_out:
        bad.append(f"hung: killed after {out.wall_s:.0f} s")
    if out.rc not in _as_tuple(case.exit):
        bad.append(f"exit code {out.rc}, expected {case.exit}")
    codes = _as_tuple(case.code)
    if not (out.code in codes or (set(out.codes) & {c for c in codes if c})):
        bad.append(f"error code {out.code}, expected {case.code}")
    low = out.message.lower()
    missing = [w for w in case.words if w.lower() not in low]
    if missing:
        bad.append(f"message lacks {missing}: {out.message[:200]!r}")
    present = [w for w in case.absent if w.lower() in low]
    if present:
        bad.append(f"message must not contain {present}: {out.message[:200]!r}")
    if "\n" in out.message.strip():
        bad.append(f"message is not one line: {out.message[:200]!r}")
    for where, text in (("stderr", out.stderr), ("engine stderr", out.child.get("engine_stderr", ""))):
        if TRACEBACK in (text or ""):
            bad.append(f"traceback on {where}: {_last_line(text)}")
    if out.new:
        bad.append(f"left new files: {out.new}")
    if out.changed:
        bad.append(f"changed or removed the user's files: {out.changed}")
    scene = out.child.get("scene_before"), out.child.get("scene_after")
    if scene[0] is not None and scene[0] != scene[1]:
        bad.append(f"scene changed: {_scene_diff(*scene)}")
    return bad


def _last_line(text: str) -> str:
    lines = [t for t in text.strip().splitlines() if t.strip()]
    return lines[-1][:200] if lines else ""


def _scene_diff(before: dict, after: dict | None) -> str:
    after = after or {}
    parts = [f"{k}: {before.get(k)} -> {after.get(k)}" for k in sorted(set(before) | set(after))
             if before.get(k) != after.get(k)]
    return "; ".join(parts)[:300]


def describe(case: Any, out: Outcome) -> str:
    """Short multi-line diagnosis for an assertion message."""
    return (f"case {case.id}: rc={out.rc} code={out.code} status={out.status} wall={out.wall_s:.1f}s "
            f"rss={out.peak_rss_mib:.0f}MiB\nmessage: {out.message[:300]}\n"
            f"stderr tail: {out.stderr[-1500:]}")


def python() -> str:
    return sys.executable
