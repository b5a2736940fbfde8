"""Cooperative cancellation: a token set by a stdin watcher thread, checked between batches.

The add-on cancels by writing ``{"type": "cancel"}`` to the engine's stdin, or by closing stdin
(a dead parent closes it too). The pipeline calls ``token.check(stage)`` between batches; once the
token is set, ``check`` raises ``CancelledError``.

Test hook (documented in docs/engine-protocol.md): when the environment variable
``VIBE_ENGINE_PAUSE_AT`` names a stage, the first ``check`` in that stage announces itself with a
``warning`` line of code ``TEST_PAUSE`` and then blocks until the token is set (at most
``PAUSE_TIMEOUT_S``), so a test can cancel deterministically inside any stage.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Callable, Iterator

from vibe_blender.core.protocol import is_cancel

from vibe_engine.errors import CancelledError

log = logging.getLogger(__name__)

PAUSE_ENV = "VIBE_ENGINE_PAUSE_AT"
#: Longest time the test pause waits for a cancel before carrying on (seconds).
PAUSE_TIMEOUT_S = 60.0
#: Bytes per read from stdin.
READ_CHUNK_BYTES = 4096


class CancelToken:
    """A thread-safe cancel flag with an optional test pause at a named stage."""

    def __init__(self, pause_at: str | None = None,
                 announce: Callable[[str], None] | None = None) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        self._pause_at = pause_at
        self._announce = announce

    @classmethod
    def from_env(cls, announce: Callable[[str], None] | None = None) -> "CancelToken":
        """A token whose test pause stage comes from ``VIBE_ENGINE_PAUSE_AT`` (unset: none)."""
        return cls(os.environ.get(PAUSE_ENV) or None, announce)

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
            self.wait(PAUSE_TIMEOUT_S)
        if self._event.is_set():
            raise CancelledError(f"cancelled during {stage} ({self.reason})")


def _lines(fd: int) -> Iterator[bytes]:
    """Yield lines read from a raw file descriptor (no Python buffer lock, so a daemon thread
    blocked here never stalls interpreter shutdown); ends at EOF."""
    pending = b""
    while True:
        chunk = os.read(fd, READ_CHUNK_BYTES)
        if not chunk:
            if pending:
                yield pending
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines


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
