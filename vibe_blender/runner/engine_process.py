"""One engine subprocess: start it, read its JSON-lines stdout, keep its stderr, cancel it.

Threads: a stdout reader (parses lines into ``EngineLine`` and puts them on a queue) and a stderr
reader (keeps the last ``stderr_lines`` lines in a ring buffer). Neither touches bpy; the caller
drains the queue on its own thread with ``poll()`` (non-blocking, for Blender's modal timer) or
``wait_blocking()`` (background mode and scripts).

Cancel ladder (``request_cancel`` then ``poll``/``wait_blocking`` advance it; ``cancel`` blocks):
1. write ``{"v":1,"type":"cancel"}`` to stdin and close stdin (EOF also means cancel);
2. wait ``ladder.grace_s`` seconds for the engine to finish on its own (it sends ``done``);
3. ``terminate()`` (SIGTERM), wait ``ladder.term_s`` seconds;
4. ``kill()`` (SIGKILL).
The process is always reaped (``wait``), so no zombie is left behind.
"""
from __future__ import annotations

import collections
import logging
import os
import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..core import protocol

log = logging.getLogger(__name__)

PROTOCOL_VERSION = protocol.PROTOCOL_VERSION
CANCEL_LINE = protocol.cancel_line() + "\n"
STDERR_RING_LINES = 200
POLL_INTERVAL_S = 0.1
# After the process has exited, how long its pipes may stay open (a grandchild holding them).
PIPE_DRAIN_GRACE_S = 2.0


@dataclass(frozen=True)
class CancelLadder:
    """Seconds granted at each rung of the cancel ladder."""

    grace_s: float = 10.0
    term_s: float = 3.0


@dataclass(frozen=True)
class EngineLine:
    """One stdout line.

    kind: "message" (a valid protocol message in ``message``), "version" (a message from another
    protocol version: ``error`` says so), "garbage" (not a valid protocol line: ``text`` verbatim,
    ``error`` why) or "text" (protocol off: plain output such as pip's).
    """

    kind: str
    text: str
    message: protocol.Message | None = None
    error: str = ""


def decode_line(text: str) -> EngineLine:
    """Classify one stdout line with ``core.protocol``; invalid lines become garbage, not errors."""
    stripped = text.strip()
    try:
        return EngineLine("message", stripped, protocol.decode_line(stripped))
    except protocol.ProtocolVersionError as exc:
        return EngineLine("version", stripped, error=str(exc))
    except protocol.ProtocolError as exc:
        return EngineLine("garbage", stripped, error=str(exc))


class EngineProcess:
    """A started-on-demand engine process. ``argv`` is a list; no shell is ever used.

    ``stderr_log``: a file that also gets every stderr line (the whole log, not just the tail).
    """

    def __init__(self, argv: list[str], *, env: dict | None = None, cwd: str | None = None,
                 protocol: bool = True, ladder: CancelLadder = CancelLadder(),
                 clock: Callable[[], float] = time.monotonic,
                 stderr_log: str | os.PathLike | None = None) -> None:
        if not argv or not all(isinstance(a, str) for a in argv):
            raise TypeError("argv must be a non-empty list of str")
        self.argv = list(argv)
        self.ladder = ladder
        self._env, self._cwd, self._protocol, self._clock = env, cwd, protocol, clock
        self._stderr_log = stderr_log
        self._queue: queue.Queue = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_RING_LINES)
        self._proc: subprocess.Popen | None = None
        self._threads: list[threading.Thread] = []
        self._eof = False
        self._exited_at: float | None = None
        self._cancel_at: float | None = None
        self._term_at: float | None = None
        self.killed = False

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the process and its reader threads. Raises OSError when argv[0] cannot run."""
        env = dict(os.environ if self._env is None else self._env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("PYTHONIOENCODING", "utf-8")
        self._proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=self._cwd, text=True, encoding="utf-8", errors="replace", bufsize=1,
        )
        log.debug("started engine pid %d: %s", self._proc.pid, self.argv)
        self._spawn(self._read_stdout, "stdout")
        self._spawn(self._read_stderr, "stderr")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"vibe-engine-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            if not raw.strip():
                continue
            line = decode_line(raw) if self._protocol else EngineLine("text", raw.rstrip())
            self._queue.put(line)
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        log_fh = None if self._stderr_log is None else open(self._stderr_log, "w", encoding="utf-8")
        try:
            for raw in self._proc.stderr:
                self._stderr.append(raw.rstrip("\n"))
                log.debug("engine stderr: %s", raw.rstrip())
                if log_fh is not None:
                    log_fh.write(raw)
        finally:
            if log_fh is not None:
                log_fh.close()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        """Exit status once the process has been reaped, else None."""
        return None if self._proc is None else self._proc.poll()

    @property
    def finished(self) -> bool:
        """True once the process has exited and every stdout line has been delivered."""
        if self._proc is None or self._proc.poll() is None:
            return False
        now = self._clock()
        if self._exited_at is None:
            self._exited_at = now
        return self._eof or now - self._exited_at > PIPE_DRAIN_GRACE_S

    def stderr_tail(self, n: int = 20) -> list[str]:
        """The last ``n`` stderr lines (the ring buffer keeps at most 200)."""
        return list(self._stderr)[-n:]

    # -- reading --------------------------------------------------------------------------------
    def poll(self) -> list[EngineLine]:
        """Non-blocking: every line received since the last call; advances the cancel ladder."""
        return self.read(0.0)

    def read(self, block_s: float) -> list[EngineLine]:
        """Like ``poll`` but waits up to ``block_s`` seconds for the first line."""
        lines: list[EngineLine] = []
        try:
            item = self._queue.get(timeout=block_s) if block_s > 0 else self._queue.get_nowait()
            while True:
                if item is None:
                    self._eof = True
                else:
                    lines.append(item)
                item = self._queue.get_nowait()
        except queue.Empty:
            pass
        self._advance_ladder()
        if self.finished:
            self._join()
        return lines

    def wait_blocking(self, callback: Callable[[EngineLine], None] | None = None,
                      poll_s: float = POLL_INTERVAL_S) -> int:
        """Block until the process ends, calling ``callback`` for each line; returns the exit code."""
        while True:
            for line in self.read(poll_s):
                if callback is not None:
                    callback(line)
            if self.finished:
                break
        return self.returncode  # type: ignore[return-value]

    # -- cancelling -----------------------------------------------------------------------------
    @property
    def cancel_requested(self) -> bool:
        return self._cancel_at is not None

    def request_cancel(self) -> None:
        """Rung 1: ask politely (cancel line + stdin EOF). Later rungs run from poll()."""
        if self._proc is None or self._cancel_at is not None:
            return
        self._cancel_at = self._clock()
        self._send_and_close_stdin(CANCEL_LINE)

    def close_stdin(self) -> None:
        """Close stdin without a cancel line (an engine that reads stdin sees EOF = cancel)."""
        self._send_and_close_stdin("")

    def _send_and_close_stdin(self, text: str) -> None:
        stdin = self._proc.stdin if self._proc is not None else None
        if stdin is None or stdin.closed:
            return
        try:
            if text:
                stdin.write(text)
                stdin.flush()
            stdin.close()
        except OSError as exc:  # the engine already exited: its pipe is gone
            log.debug("stdin of engine closed early: %s", exc)

    def _advance_ladder(self) -> None:
        if self._cancel_at is None or self._proc is None or self._proc.poll() is not None:
            return
        now = self._clock()
        if self._term_at is None and now - self._cancel_at >= self.ladder.grace_s:
            log.warning("engine ignored cancel for %.1f s: terminating", self.ladder.grace_s)
            self._term_at = now
            self._proc.terminate()
        elif self._term_at is not None and not self.killed and now - self._term_at >= self.ladder.term_s:
            log.warning("engine ignored terminate for %.1f s: killing", self.ladder.term_s)
            self.killed = True
            self._proc.kill()

    def cancel(self) -> int:
        """Blocking cancel: run the whole ladder; returns the exit code."""
        self.request_cancel()
        return self.wait_blocking(None)

    def _join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=0.5)
        for pipe in (self._proc.stdout, self._proc.stderr) if self._proc else ():
            if pipe is not None and not any(t.is_alive() for t in self._threads):
                pipe.close()
        if self._proc is not None and self._proc.stdin is not None and not self._proc.stdin.closed:
            self._send_and_close_stdin("")

    def close(self) -> None:
        """Make sure the process is gone and reaped (used on errors and at unregister)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._eof = True
        self._join()
