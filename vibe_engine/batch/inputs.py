"""Batch inputs: folders, globs and manifest files (CSV/JSONL) → a list of clips with their options.

A manifest file lists one clip per row: a ``video`` column/key (relative paths are relative to the
manifest's folder) and optional per-clip ``run`` options named like the command-line options
(``min_frames`` or ``min-frames``; ``true``/``false`` for flags such as ``no_smooth``).
Every clip's options are checked with the real ``run`` parser before any work starts.
"""
from __future__ import annotations

import csv
import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from vibe_blender.core.settings import VIDEO_SUFFIXES

#: Manifest file suffixes.
MANIFEST_SUFFIXES = (".csv", ".jsonl")
#: Per-clip keys that a manifest may not set (the batch decides them).
RESERVED_KEYS = {"out", "ignore_stdin", "video"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class InputError(ValueError):
    """A batch input that cannot be used (exit 2: nothing was processed)."""


@dataclass(frozen=True)
class Clip:
    """One video to process and its per-clip ``run`` options (``{"min_frames": "5", ...}``)."""

    video: Path
    options: dict[str, Any] = field(default_factory=dict)


def _folder_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def _rows(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """(line number, row dict) of a CSV (header row) or JSONL manifest."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        for n, row in enumerate(csv.DictReader(text.splitlines()), start=2):
            yield n, {k.strip(): (v or "").strip() for k, v in row.items() if k}
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}: not JSON ({exc.msg}); write one object per line") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n}: expected an object such as {{\"video\": \"a.mp4\"}}")
        yield n, row


def read_manifest(path: Path) -> list[Clip]:
    """Clips listed in a CSV/JSONL manifest; InputError naming the line of any bad row."""
    clips = []
    for n, row in _rows(path):
        video = row.get("video")
        if not video:
            raise InputError(f"{path}:{n}: no 'video' value; every row needs the video path")
        options = {k.replace("-", "_"): v for k, v in row.items() if k != "video"}
        bad = sorted(set(options) & RESERVED_KEYS)
        if bad:
            raise InputError(f"{path}:{n}: '{bad[0]}' cannot be set per clip; the batch chooses it")
        p = Path(str(video)).expanduser()
        clips.append(Clip((p if p.is_absolute() else path.parent / p).resolve(), options))
    return clips


def expand_inputs(inputs: Iterable[str]) -> list[Clip]:
    """Every clip named by ``inputs`` (videos, folders, globs, manifests), first occurrence kept.

    Raises InputError for a name that matches nothing, a missing video or no clip at all.
    """
    clips: list[Clip] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            clips += [Clip(p.resolve()) for p in _folder_videos(path)]
        elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            clips += read_manifest(path)
        elif path.is_file():
            clips.append(Clip(path.resolve()))
        elif glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            videos = [p.resolve() for p in matches if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
            if not videos:
                raise InputError(f"no video matches {item}; check the pattern (quote it for the shell)")
            clips += [Clip(p) for p in videos]
        else:
            raise InputError(f"input not found: {item}; pass a video, a folder, a glob or a .csv/.jsonl manifest")
    for clip in clips:
        if not clip.video.is_file():
            raise InputError(f"video not found: {clip.video}; fix the path in the manifest")
    if not clips:
        raise InputError("no video found in the inputs; folders are searched for "
                         + " ".join(VIDEO_SUFFIXES))
    seen, unique = set(), []
    for clip in clips:
        ident = (clip.video, json.dumps(clip.options, sort_keys=True, default=str))
        if ident not in seen:
            seen.add(ident)
            unique.append(clip)
    return unique


def option_argv(options: dict[str, Any], flags: set[str]) -> list[str]:
    """``run`` command-line arguments for per-clip options; ``flags`` are the store_true option
    names (``no_smooth``). InputError for a flag value that is not true/false."""
    argv: list[str] = []
    for key in sorted(options):
        value = options[key]
        if value is None:
            continue
        name = "--" + key.replace("_", "-")
        if key in flags:
            text = str(value).strip().lower()
            if text not in _TRUE | _FALSE:
                raise InputError(f"option {key}={value!r}: expected true or false")
            if text in _TRUE:
                argv.append(name)
        elif str(value).strip() != "":
            argv += [name, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return argv
