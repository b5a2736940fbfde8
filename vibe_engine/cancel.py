"""Cooperative cancellation: a token set by a stdin watcher thread, checked between batches.

The add-on cancels by writing ``{"type": "cancel"}`` to the engine's stdin, or by closing stdin
(a dead parent closes it too). The pipeline calls ``token.check(stage)`` between batches; once the
token is set, ``check`` raises ``CancelledError``.

Test hook (documented in docs/engine-protocol.md): when the environment variable
``VIBE_ENGINE_PAUSE_AT`` names a stage, the first ``check`` in that stage announces itself with a
``warning`` line of code ``TEST_PAUSE`` and then blocks until the token is set (at most
``VIBE_ENGINE_PAUSE_S`` seconds, default ``PAUSE_TIMEOUT_S``), so a test can cancel
deterministically inside any stage, or change the world (replace the video) while it waits.

Only a pipe (or socket) from a parent is watched: its end means the parent is gone. Stdin at
``/dev/null``, a regular file or a terminal (cron, nohup, CI jobs, a shell) never cancels.
"""
from __future__ import annotations

import logging
import os
import stat
import threading
from typing import Callable, Iterator

from vibe_blender.core.protocol import is_cancel

from vibe_engine.errors import CancelledError

log = logging.getLogger(__name__)

PAUSE_ENV = "VIBE_ENGINE_PAUSE_AT"
PAUSE_SECONDS_ENV = "VIBE_ENGINE_PAUSE_S"
#: Longest time the test pause waits for a cancel before carrying on (seconds).
PAUSE_TIMEOUT_S = 60.0
#: Bytes per read from stdin.
READ_CHUNK_BYTES = 65536
#: Longest stdin line kept (bytes); a longer one is dropped as it streams in (a cancel line is short).
MAX_LINE_BYTES = 65536


class CancelToken:
    """A thread-safe cancel flag with an optional test pause at a named stage."""

    def __init__(self, pause_at: str | None = None,
                 announce: Callable[[str], None] | None = None, pause_s: float = PAUSE_TIMEOUT_S) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        self._pause_at = pause_at
        self._announce = announce
        self._pause_s = pause_s

    @classmethod
    def from_env(cls, announce: Callable[[str], None] | None = None) -> "CancelToken":
        """A token whose test pause stage comes from ``VIBE_ENGINE_PAUSE_AT`` (unset: none) and
        its length from ``VIBE_ENGINE_PAUSE_S`` (seconds)."""
        seconds = float(os.environ.get(PAUSE_SECONDS_ENV) or PAUSE_TIMEOUT_S)
        return cls(os.environ.get(PAUSE_ENV) or None, announce, seconds)

    def cancel(self, reason: str = "cancelled") -> None:
        """Set the token (idempotent; the first reason is kept)."""
        if not self._event.is_set():
            self.reason = reason
            log.info("cancel requested: %s", reason)
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called."""
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Block until cancelled or ``timeout`` seconds pass; True when cancelled."""
        return self._event.wait(timeout)

    def check(self, stage: str) -> None:
        """Raise CancelledError when cancelled; run the test pause when ``stage`` matches."""
        if self._pause_at is not None and stage == self._pause_at:
            self._pause_at = None
            if self._announce is not None:
                self._announce(stage)
            self.wait(self._pause_s)
        if self._event.is_set():
            raise CancelledError(f"cancelled during {stage} ({self.reason})")


def _lines(fd: int) -> Iterator[bytes]:
    """Yield lines read from a raw file descriptor (no Python buffer lock, so a daemon thread
    blocked here never stalls interpreter shutdown); ends at EOF.

    Only each new chunk is searched for newlines, so a huge line costs linear time; a line
    longer than ``MAX_LINE_BYTES`` is dropped while it streams in (it cannot be a cancel line).
    """
    pending: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(fd, READ_CHUNK_BYTES)
        if not chunk:
            rest = b"".join(pending)
            if rest:
                yield rest
            return
        *complete, rest = chunk.split(b"\n")
        for piece in complete:
            if size + len(piece) <= MAX_LINE_BYTES:
                yield b"".join(pending) + piece
            pending, size = [], 0
        if size + len(rest) <= MAX_LINE_BYTES:
            pending.append(rest)
        else:
            pending = [b"\0"]  # over the limit: remember only that the line is not a cancel
        size += len(rest)


def stdin_is_a_pipe(fd: int = 0) -> bool:
    """True when ``fd`` is a pipe or socket (a parent process at the other end)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def watch_stdin(token: CancelToken, fd: int = 0) -> threading.Thread:
    """Start a daemon thread that cancels ``token`` on a cancel line or at EOF of ``fd``."""

    def _watch() -> None:
        try:
            for line in _lines(fd):
                if is_cancel(line):
                    token.cancel("cancel line on stdin")
                    return
                if line.strip():
                    log.warning("ignored stdin line: %.80r", line.strip())
        except OSError as exc:
            log.info("stdin watcher stopped: %s", exc)
        token.cancel("stdin closed")

    thread = threading.Thread(target=_watch, name="vibe-stdin-watcher", daemon=True)
    thread.start()
    return thread
