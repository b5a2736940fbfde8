"""``python -m vibe_engine inspect FILE [--json]``: summarise a motion file.

``--json`` prints exactly one JSON object (``vibe_blender.core.motion_file.summary`` plus the
camera, the world in brief, manifest summary and per-track value ranges); without it, a readable
table.
Exit 4 with a one-line message on stderr when the file cannot be read.
"""
from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import numpy as np

from vibe_blender.core import motion_file as mf
from vibe_blender.core.errors import MotionFileError

from vibe_engine.errors import EXIT_BAD_INPUT, EXIT_OK


def _track_extra(track: mf.Track) -> dict[str, Any]:
    """Extra per-track numbers: mean root depth (m) and mean box side (px)."""
    return {"mean_depth_m": float(np.mean(track.transl[:, 2])) if track.num_frames else None,
            "mean_box_px": float(np.mean(track.bbox[:, 2])) if track.num_frames else None}


def _world_summary(motion: mf.Motion) -> dict[str, Any]:
    """The world in brief: camera ``static``/``moving``, whether a ground was found, the camera's
    height above it (m), where its normal came from (``up_source``) and the warnings' codes."""
    world = motion.meta.get("world") or {}
    return {"camera_motion": world.get("camera_motion", "static"),
            "ground": world.get("world_from_camera") is not None,
            "camera_height_m": world.get("camera_height_m"), "up_source": world.get("up_source"),
            "warnings": [w.get("code") for w in world.get("warnings", [])]}


def inspect_summary(motion: mf.Motion) -> dict[str, Any]:
    """The JSON summary: video {frames, fps, width, height, ...}, tracks [{id, frames, first, last, ...}]."""
    out = mf.summary(motion)
    for entry, track in zip(out["tracks"], motion.tracks):
        entry.update(_track_extra(track))
    header = motion.header
    out["camera"] = motion.meta.get("camera")  # as written (the JSON object)
    out["world"] = _world_summary(motion)
    out["joints"] = header.joints_set
    out["manifest"] = {k: getattr(header.manifest, k) for k in ("engine_version", "backend", "device", "precision")}
    return out


def format_table(info: dict[str, Any]) -> str:
    """A human-readable multi-line summary."""
    v = info["video"]
    lines = [f"video: {v['frames']} frames, {v['fps']:.3f} fps, {v['width']}x{v['height']}, "
             f"backend {info['manifest'].get('backend')}, joints {info['joints']}",
             f"{'track':>5} {'frames':>7} {'first':>6} {'last':>6} {'conf':>6} {'detected':>9} {'depth m':>8}"]
    for t in info["tracks"]:
        depth = "-" if t["mean_depth_m"] is None else f"{t['mean_depth_m']:.2f}"
        lines.append(f"{t['id']:>5} {t['frames']:>7} {t['first']!s:>6} {t['last']!s:>6} "
                     f"{t['mean_confidence']:>6.2f} {t['detected_fraction']:>9.0%} {depth:>8}")
    return "\n".join(lines + [_world_line(info)])


def _world_line(info: dict[str, Any]) -> str:
    """``world: camera static, 1.52 m above the ground (normal from lines), focal 1547 px (default)``."""
    w, cam = info["world"], info.get("camera") or {}
    where = "no ground" if not w["ground"] else \
        f"{w['camera_height_m']:.2f} m above the ground (normal from {w['up_source'] or 'feet'})"
    focal = f", focal {cam['focal_px']:.0f} px ({cam.get('source')})" if cam.get("focal_px") else ""
    warn = f"; warnings: {', '.join(w['warnings'])}" if w["warnings"] else ""
    return f"world: camera {w['camera_motion']}, {where}{focal}{warn}"


def inspect_main(path: str, as_json: bool, out: TextIO) -> int:
    """Print the summary of the motion file at ``path``; returns the exit code."""
    try:
        info = inspect_summary(mf.read_motion(path))
    except MotionFileError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    out.write((json.dumps(info) if as_json else format_table(info)) + "\n")
    out.flush()
    return EXIT_OK
