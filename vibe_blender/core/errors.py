"""Typed errors shared by the add-on core, the runner and the engine.

Every message is one line that names the problem and the fix.
"""


class VibeError(Exception):
    """Base class of every error the project raises on purpose."""


class MotionFileError(VibeError):
    """A motion file is missing, unreadable, of a foreign format, or inconsistent."""


class UserInputError(VibeError):
    """Bad input from the user (paths, options, files)."""
