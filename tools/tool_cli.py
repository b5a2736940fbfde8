"""What the command-line tools (tools/demo.py, tools/vibe_batch.py) share: a parser that raises
instead of exiting, the one-line error format and the process exit after bpy was loaded."""
from __future__ import annotations

import argparse
import logging
import os
import sys


class UsageError(Exception):
    """Bad command line: one line for the user, exit code 2 (``EXIT_USAGE``)."""


EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse without its own ``sys.exit(2)``: a bad option raises UsageError(message)."""

    def error(self, message: str) -> None:
        raise UsageError(message)


def print_error(prog: str, message: str) -> None:
    """The tools' one-line failure on stderr: ``<prog>: error: <message>``."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


def running_inside_blender() -> bool:
    """True inside the Blender program (``blender -b -P``), False with the bpy wheel (or no bpy)."""
    bpy = sys.modules.get("bpy")
    return bool(bpy is not None and bpy.app.binary_path)


def exit_process(code: int) -> None:
    """Exit with ``code``. Once the bpy wheel is loaded, skip interpreter shutdown (``os._exit``)
    after flushing: the bpy 4.2 wheel segfaults at shutdown once the glTF exporter was imported,
    which would turn a finished run into exit code 139. Everything is written before this point."""
    if "bpy" not in sys.modules or running_inside_blender():
        sys.exit(code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
