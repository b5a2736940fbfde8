"""Job: the state machine of one engine run, fed by an ``EngineProcess``.

PENDING → RUNNING → DONE | FAILED | CANCELLED. ``update()`` is non-blocking (Blender's modal
timer calls it); ``run_blocking()`` drives the same object to the end (background mode, scripts).

Outcome rules, applied once the process has exited and all its lines were read:
- cancel requested, ``done`` status ``cancelled`` or exit code 3 → CANCELLED;
- an ``error`` message → FAILED with the engine's one-line message;
- ``done`` ``ok``, exit 0 and the result file present → DONE;
- anything else (no ``done``: crash, kill) → FAILED with the last stderr line, the tail in ``detail``.
Garbage stdout lines are counted and surfaced as warnings, never fatal.

A file already at ``result_path`` when the job starts is the user's: the engine writes under a
temporary name and renames only on success, so a failed or cancelled run leaves it untouched, and
the job never deletes it. Only a file this run put there (a different file than at the start) is
removed when the job does not end DONE.
"""
from __future__ import annotations

import enum
import logging
import os
import signal
import time
from pathlib import Path
from typing import Callable

from ..core.protocol import Message
from .engine_process import CancelLadder, EngineLine, EngineProcess
from .errors import EngineCancelledError, EngineCrashedError, EngineProtocolError, EngineRunError

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CANCELLED = 3
STDERR_DETAIL_LINES = 40
MIN_FRACTION_FOR_ETA = 0.05  # below this the stage ETA is noise
POLL_S = 0.1
GARBAGE_SHOWN_CHARS = 80
# Plain commands (venv, pip) do not read the cancel line: terminate them almost at once.
PLAIN_COMMAND_LADDER = CancelLadder(grace_s=0.2, term_s=3.0)


#: Words of the engine's log that mark an INFO/DEBUG line (never the reason of a crash).
QUIET_LOG_MARKS = (" INFO ", " DEBUG ", "INFO:", "DEBUG:")


def _is_error_line(line: str) -> bool:
    """True for a non-empty stderr line that is not an info/debug log line (LiteRT, our logs)."""
    text = line.strip()
    return bool(text) and not any(mark in f" {text} " for mark in QUIET_LOG_MARKS)


def _signal_name(number: int) -> str:
    """'SIGKILL' for 9, or 'signal N' for an unknown number."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _identity(path: Path | None) -> tuple[int, ...] | None:
    """(device, inode, size, mtime ns) of the file at ``path``, None when there is none."""
    try:
        st = path.stat() if path is not None else None
    except OSError:
        return None
    return None if st is None else (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class JobState(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINAL_STATES = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class Job:
    """One engine run. ``result_path``: the motion file the command was told to write (or None);
    ``stderr_log``: a file for the engine's whole stderr (see ``EngineProcess``).

    ``warnings``: one-line texts (engine warnings and garbage-line notes); ``engine_warnings``:
    the engine's own ``(code, message)`` pairs.
    """

    def __init__(self, argv: list[str], *, result_path: str | os.PathLike | None = None,
                 ladder: CancelLadder = CancelLadder(), env: dict | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 stderr_log: str | os.PathLike | None = None) -> None:
        self.process = EngineProcess(argv, env=env, ladder=ladder, clock=clock, stderr_log=stderr_log)
        self.result_path = None if result_path is None else Path(result_path)
        self._clock = clock
        self.state = JobState.PENDING
        self.hello: dict = {}
        self.result: dict = {}
        self.reports: dict[str, dict] = {}  # report kind (e.g. "doctor") -> its data
        self.stage, self.stage_index, self.stage_count = "", 0, 0
        self.done, self.total = 0, 0
        self.warnings: list[str] = []
        self.engine_warnings: list[tuple[str, str]] = []
        self.garbage_lines: list[str] = []
        self.error = self.error_code = self.error_detail = ""
        self.exit_code: int | None = None
        self._done_status: str | None = None
        self._engine_eta: tuple[float, float] | None = None  # (eta_s, clock when received)
        self._started_at = self._stage_started_at = 0.0
        self._result_before: tuple[int, ...] | None = None

    # -- driving ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine. A command that cannot start ends the job as FAILED (no exception)."""
        self._started_at = self._stage_started_at = self._clock()
        self._result_before = _identity(self.result_path)
        try:
            self.process.start()
        except OSError as exc:
            self._fail(f"Cannot start the engine ({exc.strerror or exc}): check the engine Python "
                       "in the preferences", "NOT_STARTED")
            return
        self.state = JobState.RUNNING

    def update(self) -> bool:
        """Non-blocking: apply every new engine line; returns True when something changed."""
        if self.state is not JobState.RUNNING:
            return False
        lines = self.process.poll()
        for line in lines:
            self.apply(line)
        if self.process.finished:
            self._finish()
            return True
        return bool(lines)

    def run_blocking(self, on_update: Callable[["Job"], None] | None = None) -> JobState:
        """Start (if needed) and run to the end; Ctrl-C becomes a cancel. Returns the final state."""
        if self.state is JobState.PENDING:
            self.start()
        while self.state is JobState.RUNNING:
            try:
                for line in self.process.read(POLL_S):
                    self.apply(line)
                    if on_update is not None:
                        on_update(self)
                if self.process.finished:
                    self._finish()
            except KeyboardInterrupt:
                self.request_cancel()
        if on_update is not None:
            on_update(self)
        return self.state

    def request_cancel(self) -> None:
        """Ask the engine to stop; the ladder (terminate, kill) runs from update()/run_blocking()."""
        if self.state is JobState.RUNNING:
            self.process.request_cancel()

    def close(self) -> None:
        """Kill and reap the engine if it still runs (unregister, errors); the job ends CANCELLED."""
        if self.state is JobState.RUNNING:
            self.process.close()
            self.state = JobState.CANCELLED
            self._remove_result()

    # -- progress view --------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def stage_fraction(self) -> float:
        """Progress of the current stage in [0, 1]."""
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1]: finished stages count as whole, the current one in part."""
        if self.state is JobState.DONE:
            return 1.0
        if self.stage_count <= 0:
            return 0.0
        return min(1.0, (min(self.stage_index, self.stage_count - 1) + self.stage_fraction) / self.stage_count)

    @property
    def eta_s(self) -> float | None:
        """Seconds left in the current stage: the engine's own estimate when it sends one (aged by
        the time since), else from the stage's elapsed time and progress; None if unknown."""
        if self.state is not JobState.RUNNING:
            return None
        now = self._clock()
        if self._engine_eta is not None:
            return max(0.0, self._engine_eta[0] - (now - self._engine_eta[1]))
        frac = self.stage_fraction
        if frac < MIN_FRACTION_FOR_ETA:
            return None
        return (now - self._stage_started_at) * (1.0 - frac) / frac

    @property
    def overall_eta_s(self) -> float | None:
        """Seconds left for the whole run: elapsed time scaled by the overall progress (``fraction``);
        None while below ``MIN_FRACTION_FOR_ETA`` or when not running."""
        frac = self.fraction
        if self.state is not JobState.RUNNING or frac < MIN_FRACTION_FOR_ETA:
            return None
        return self.elapsed_s * (1.0 - frac) / frac

    @property
    def elapsed_s(self) -> float:
        """Seconds since the job started (0 before)."""
        return self._clock() - self._started_at if self._started_at else 0.0

    @property
    def last_warning(self) -> str:
        return self.warnings[-1] if self.warnings else ""

    def raise_for_state(self) -> None:
        """Raise the EngineRunError subclass matching a FAILED/CANCELLED job (no-op when DONE)."""
        kwargs = {"code": self.error_code or "INTERNAL", "detail": self.error_detail,
                  "exit_code": self.exit_code}
        if self.state is JobState.CANCELLED:
            raise EngineCancelledError(self.error or "Cancelled", **kwargs)
        if self.state is JobState.FAILED:
            cls = {"CRASHED": EngineCrashedError, "PROTOCOL": EngineProtocolError}.get(
                self.error_code, EngineRunError)
            raise cls(self.error, **kwargs)
        if self.state is not JobState.DONE:
            raise EngineRunError("The engine run has not finished yet", code="NOT_FINISHED")

    # -- message handling -----------------------------------------------------------------------
    def apply(self, line: EngineLine) -> None:
        """Apply one engine line to the job's view (used by update(); tests feed transcripts)."""
        if line.kind == "version":
            self._protocol_mismatch(line.error)
            return
        if line.kind != "message" or line.message is None:
            self._garbage(line.text)
            return
        msg = line.message
        handler = getattr(self, f"_on_{msg.type}", None)
        if handler is None:
            log.info("ignoring engine message of unknown type %r", msg.type)
        else:
            handler(msg)

    def _garbage(self, text: str) -> None:
        self.garbage_lines.append(text)
        shown = text if len(text) <= GARBAGE_SHOWN_CHARS else text[:GARBAGE_SHOWN_CHARS - 3] + "..."
        self.warnings.append(f"Engine printed a line that is not protocol JSON: {shown!r}")
        log.warning("engine garbage line: %r", text)

    def _protocol_mismatch(self, why: str) -> None:
        if self.error_code != "PROTOCOL":
            self.error, self.error_code = why, "PROTOCOL"
        self.process.request_cancel()

    def _on_hello(self, msg: Message) -> None:
        self.hello = msg.to_dict()

    def _on_stage(self, msg: Message) -> None:
        self.stage = str(msg["name"])
        self.stage_index, self.stage_count = int(msg["index"]), int(msg["count"])
        self.done, self.total, self._engine_eta = 0, 0, None
        self._stage_started_at = self._clock()

    def _on_progress(self, msg: Message) -> None:
        if msg["stage"] != self.stage:
            self.stage = str(msg["stage"])
            self._stage_started_at = self._clock()
        self.done, self.total = int(msg["done"]), int(msg["total"] or 0)
        eta = msg.get("eta_s")
        self._engine_eta = None if eta is None else (float(eta), self._clock())

    def _on_warning(self, msg: Message) -> None:
        self.warnings.append(str(msg["message"]))
        self.engine_warnings.append((str(msg["code"]), str(msg["message"])))

    def _on_result(self, msg: Message) -> None:
        self.result = msg.to_dict()
        if self.result_path is None:
            self.result_path = Path(msg["path"])

    def _on_error(self, msg: Message) -> None:
        if self.error_code == "PROTOCOL":
            return
        self.error, self.error_code = str(msg["message"]), str(msg["code"])
        self.error_detail = str(msg.get("detail") or "")

    def _on_report(self, msg: Message) -> None:
        self.reports[str(msg["kind"])] = dict(msg["data"])

    def _on_done(self, msg: Message) -> None:
        self._done_status = str(msg["status"])

    # -- outcome --------------------------------------------------------------------------------
    def _finish(self) -> None:
        self.exit_code = self.process.returncode
        cancelled = self.process.cancel_requested or self._done_status == "cancelled" or \
            self.exit_code == EXIT_CANCELLED
        if self.error_code == "PROTOCOL":
            self._fail(self.error, self.error_code)
        elif cancelled:
            self.state = JobState.CANCELLED
            self.error = "Cancelled"
            self.error_code = "CANCELLED"
            self._remove_result()
        elif self.error:
            self._fail(self.error, self.error_code or "INTERNAL", self.error_detail)
        elif self._done_status == "ok" and self.exit_code == EXIT_OK:
            self._succeed_or_fail_on_missing_file()
        else:
            self._fail_crashed()

    def _succeed_or_fail_on_missing_file(self) -> None:
        unchanged = self._result_before is not None and _identity(self.result_path) == self._result_before
        if self.result_path is not None and (not self.result_path.is_file() or unchanged):
            self._fail(f"The engine finished but wrote no motion file at {self.result_path}: "
                       "check the disk space and the output folder", "NO_RESULT")
            return
        self.state = JobState.DONE

    def _fail_crashed(self) -> None:
        tail = self.process.stderr_tail(STDERR_DETAIL_LINES)
        if self.exit_code is not None and self.exit_code < 0:
            self._fail(f"The engine was killed ({_signal_name(-self.exit_code)}), e.g. out of memory or "
                       "stopped by another program: run it again, with fewer people or a shorter clip "
                       "if memory is short", "CRASHED", "\n".join(tail))
            return
        last = next((t.strip() for t in reversed(tail) if _is_error_line(t)), None)
        detail = f": {last}" if last else "; the log below has the details"
        self._fail(f"The engine stopped unexpectedly (exit code {self.exit_code}){detail}", "CRASHED",
                   "\n".join(tail))

    def _fail(self, message: str, code: str, detail: str = "") -> None:
        self.state = JobState.FAILED
        self.error, self.error_code = message, code
        self.error_detail = detail or "\n".join(self.process.stderr_tail(STDERR_DETAIL_LINES))
        self._remove_result()
        log.info("engine job failed (%s): %s", code, message)

    def _remove_result(self) -> None:
        """Remove the result file only when this run created or replaced it."""
        now = _identity(self.result_path)
        if now is None or now == self._result_before:
            return
        try:
            self.result_path.unlink()
        except OSError as exc:
            log.warning("could not remove %s: %s", self.result_path, exc)


class CommandJob:
    """Named plain-text commands run one after another (``Set up engine``: venv, then pip).

    Same driving API as ``Job`` (start/update/run_blocking/request_cancel/close). Progress is
    the step index; ``last_line`` is the newest output line (pip's "Collecting torch…").
    """

    def __init__(self, steps: list[tuple[str, list[str]]], *, env: dict | None = None,
                 ladder: CancelLadder = PLAIN_COMMAND_LADDER, log_path: str | os.PathLike | None = None,
                 optional: tuple[str, ...] = ()) -> None:
        if not steps:
            raise ValueError("CommandJob needs at least one step")
        self.steps = list(steps)
        #: Names of the steps whose failure is a warning (``warnings``), not a failed job.
        self.optional = frozenset(optional)
        self.warnings: list[str] = []
        #: Output lines of each step run so far (``step_lines`` is the last one's).
        self.outputs: list[list[str]] = []
        self._env, self._ladder = env, ladder
        #: Every output line of every step (and the stderr tail of a failed one) goes to this file.
        self.log_path = None if log_path is None else Path(log_path)
        self.step_lines: list[str] = []  # output of the current (last) step
        self.state = JobState.PENDING
        self.step_index = 0
        self.last_line = ""
        self.error = self.error_detail = ""
        self.process: EngineProcess | None = None
        self._cancel = False

    @property
    def step_name(self) -> str:
        return self.steps[min(self.step_index, len(self.steps) - 1)][0]

    @property
    def fraction(self) -> float:
        return 1.0 if self.state is JobState.DONE else self.step_index / len(self.steps)

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def start(self) -> None:
        self.state = JobState.RUNNING
        self._start_step()

    def _log(self, *lines: str) -> None:
        if self.log_path is not None:
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.writelines(line + "\n" for line in lines)

    def _start_step(self) -> None:
        name, argv = self.steps[self.step_index]
        self.step_lines = []
        self.outputs.append(self.step_lines)
        self._log(f"== {name}: {' '.join(argv)}")
        self.process = EngineProcess(argv, env=self._env, protocol=False, ladder=self._ladder)
        try:
            self.process.start()
        except OSError as exc:
            self.state = JobState.FAILED
            self.error = f"{name}: cannot start {argv[0]} ({exc.strerror or exc}): check the path"
            if name in self.optional:
                self._skip_optional(self.error)
            return
        if self._cancel:  # cancelled while this step was being started
            self.process.request_cancel()

    def update(self, block_s: float = 0.0) -> bool:
        if self.state is not JobState.RUNNING or self.process is None:
            return False
        lines = self.process.read(block_s)
        if lines:
            self.last_line = lines[-1].text
            self.step_lines += [ln.text for ln in lines]
            self._log(*(ln.text for ln in lines))
        if self.process.finished:
            self._step_finished()
            return True
        return bool(lines)

    def _step_finished(self) -> None:
        code = self.process.returncode if self.process else None
        if self._cancel:
            self.state, self.error = JobState.CANCELLED, "Cancelled"
        elif code != EXIT_OK:
            tail = self.process.stderr_tail(STDERR_DETAIL_LINES) if self.process else []
            last = next((t.strip() for t in reversed(tail) if t.strip()), self.last_line or "no output")
            self.state = JobState.FAILED
            self.error = f"{self.step_name} failed (exit code {code}): {last}"
            self.error_detail = "\n".join(tail)
            self._log(*tail)
            if self.step_name in self.optional:
                self._skip_optional(self.error)
        else:
            self._next_step()

    def _next_step(self) -> None:
        if self.step_index + 1 < len(self.steps):
            self.step_index += 1
            self._start_step()
        else:
            self.state = JobState.DONE

    def _skip_optional(self, why: str) -> None:
        """A failed optional step: a warning, and the job goes on."""
        self.warnings.append(why)
        self._log(f"(optional step: the set-up goes on) {why}")
        self.state, self.error, self.error_detail = JobState.RUNNING, "", ""
        self._next_step()

    def run_blocking(self, on_update: Callable[["CommandJob"], None] | None = None) -> JobState:
        if self.state is JobState.PENDING:
            self.start()
        while self.state is JobState.RUNNING:
            try:
                if self.update(POLL_S) and on_update is not None:
                    on_update(self)
            except KeyboardInterrupt:
                self.request_cancel()
        return self.state

    def request_cancel(self) -> None:
        """Cancel the running step (and every later one). Safe from another thread at any moment:
        a cancel that arrives while a step is being started is applied as soon as it runs."""
        if self.state is JobState.RUNNING:
            self._cancel = True
            if self.process is not None:
                self.process.request_cancel()

    def close(self) -> None:
        if self.state is JobState.RUNNING and self.process is not None:
            self.process.close()
            self.state = JobState.CANCELLED
