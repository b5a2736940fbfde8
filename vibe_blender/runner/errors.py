"""Errors raised when the engine run fails (one-line, user-facing messages)."""
from __future__ import annotations

from ..core.errors import VibeError


class EngineRunError(VibeError):
    """The engine reported an error or stopped. ``code`` is the protocol error code
    (e.g. ``VIDEO_UNREADABLE``, ``CRASHED``); ``detail`` holds the traceback or stderr tail."""

    def __init__(self, message: str, *, code: str = "INTERNAL", detail: str = "",
                 exit_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail
        self.exit_code = exit_code


class EngineCrashedError(EngineRunError):
    """The engine exited without its final ``done`` line (crash, killed, OOM killer)."""


class EngineCancelledError(EngineRunError):
    """The run was cancelled by the user; no motion file was kept."""


class EngineProtocolError(EngineRunError):
    """The engine speaks another protocol version (add-on and engine do not match)."""
