"""Words the panel shows (pure, no bpy): user names for the engine's stages, the overall progress
line, and messages without command-line flags.

Why a module: the engine speaks in its own terms (stage ``regress``, warning ``--min-frames``) that
mean nothing to someone in Blender; everything the sidebar or a report shows goes through here.
"""
from __future__ import annotations

import re

#: Engine stage (``core.protocol.STAGES``) → what the user sees.
STAGE_WORDS = {
    "decode": "Reading the video",
    "detect": "Finding people",
    "track": "Following people",
    "features": "Looking at poses",
    "regress": "Fitting bodies",
    "write": "Saving the take",
}
#: Engine flags that reach user messages → the setting's name in words.
FLAG_WORDS = {
    "--min-frames": "the minimum track length",
    "--tracks": "the chosen people",
    "--vibe-data": "the VIBE data folder",
    "--device": "the device",
    "--precision": "the precision",
    "--no-smooth": "smoothing off",
    "--no-foot-lock": "foot lock off",
}
#: The longest label the sidebar shows uncut at its default width (UI scale 1).
MAX_LABEL_CHARS = 16
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_SECONDS_PER_MINUTE = 60


def stage_words(stage: str) -> str:
    """The user's name of an engine stage ("" → "Starting")."""
    if not stage:
        return "Starting"
    return STAGE_WORDS.get(stage, stage.replace("_", " ").capitalize())


def without_flags(message: str) -> str:
    """``message`` with every ``--flag`` replaced by the setting's name in words."""
    return _FLAG.sub(lambda m: FLAG_WORDS.get(m.group(0), m.group(0)[2:].replace("-", " ")), message)


def duration_words(seconds: float) -> str:
    """"about 40 s" below two minutes, else "about 3 min"."""
    if seconds < 2 * _SECONDS_PER_MINUTE:
        return f"about {max(1, round(seconds))} s"
    return f"about {round(seconds / _SECONDS_PER_MINUTE)} min"


def progress_text(stage: str, fraction: float, eta_s: float | None) -> str:
    """The running line: "Fitting bodies 63% · about 40 s left" (overall ETA, not the stage's)."""
    eta = f" · {duration_words(eta_s)} left" if eta_s is not None else ""
    return f"{stage_words(stage)} {fraction * 100.0:.0f}%{eta}"
