"""Engine errors: each carries a protocol error code and the process exit code it maps to.

Exit codes (docs/engine-protocol.md): 0 ok, 1 internal error, 2 usage, 3 cancelled, 4 bad input.
Messages are one line naming the problem and the fix.
"""
from vibe_blender.core.errors import VibeError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 3
EXIT_BAD_INPUT = 4


class EngineError(VibeError):
    """Base engine error. ``code`` is the protocol error code, ``exit_code`` the process status."""

    code = "INTERNAL"
    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class BadInputError(EngineError):
    """The user's input cannot be used (video, boxes file, checkpoints, output path)."""

    code = "BAD_INPUT"
    exit_code = EXIT_BAD_INPUT


class VideoError(BadInputError):
    """Missing, unreadable, truncated or empty video."""

    code = "VIDEO_UNREADABLE"


class NoPersonError(BadInputError):
    """No person (or no person long enough) was found in the video."""

    code = "NO_PERSON"


class ModelError(BadInputError):
    """A checkpoint or body model is missing, foreign, corrupt or does not match."""

    code = "MODEL_INVALID"


class OutputError(BadInputError):
    """The output path cannot be written."""

    code = "OUTPUT_UNWRITABLE"


class CancelledError(EngineError):
    """The run was cancelled by the user (cancel line on stdin, or stdin closed)."""

    code = "CANCELLED"
    exit_code = EXIT_CANCELLED


class OutOfMemoryError(EngineError):
    """The device ran out of memory even at the smallest batch size."""

    code = "OUT_OF_MEMORY"
