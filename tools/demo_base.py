"""What every step of the demo (tools/demo.py) uses: its error with the exit code, progress lines on
the real stdout while Blender's native output goes to a log, and the scene frame of video time 0."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator, TextIO

REPO = Path(__file__).resolve().parents[1]
EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_ENGINE, EXIT_BLENDER = 0, 1, 2, 3, 4
FRAME_START = 1  # scene frame of video time 0


class DemoError(Exception):
    """A failure with a one-line message for the user and the exit code to use."""

    def __init__(self, message: str, exit_code: int = EXIT_INTERNAL) -> None:
        super().__init__(message)
        self.exit_code = exit_code


_console: TextIO | None = None  # the real stdout while native output goes to blender.log


def echo(text: str) -> None:
    """One progress line on stdout, flushed (make shows it at once)."""
    print(f"[demo] {text}", file=_console or sys.stdout, flush=True)


@contextlib.contextmanager
def native_output_to(log_path: Path) -> Iterator[None]:
    """Send file descriptors 1 and 2 (Blender's exporter and render chatter) to ``log_path``;
    ``echo`` keeps writing to the real stdout."""
    global _console
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8")
    try:
        with open(log_path, "wb") as log_fh:
            os.dup2(log_fh.fileno(), 1)
            os.dup2(log_fh.fileno(), 2)
            _console = console
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        _console = None
        console.close()


def show(path: Path) -> str:
    """A path relative to the repository when inside it (for messages)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)
