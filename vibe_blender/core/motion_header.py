"""The motion file's ``meta`` header: one schema check with bounds, and its typed form
(``parse_header`` → ``Header`` with ``VideoInfo``, the pinhole camera, ``WorldInfo``,
``Manifest``), read once per file by ``motion_file.read_motion`` (docs/motion-file.md).

``validate_meta`` runs before anything uses the header, so a tampered or foreign header fails
with one line naming the key, its value and the allowed range — never a KeyError, a TypeError
deep in the add-on, or an export that bakes two billion frames. Unknown keys stay allowed
(forward compatible within version 1). Standard library and numpy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .camera_match import PinholeCamera
from .errors import MotionFileError
from .frames import world_from_camera

FORMAT = "vibe-mocap-motion"
VERSION = 1
#: Highest frame rate a motion file may declare (frames per second; the video reader treats
#: higher header rates as time bases, see vibe_engine/decode/video.py).
MAX_FPS = 1000.0
#: Most video frames a motion file may cover: 2 hours at 30 fps. Bounds memory and bake time.
MAX_FRAMES = 216_000
#: Longest clip a header may declare (seconds).
MAX_DURATION_S = 1e7
#: Largest image side (pixels) a header may declare.
MAX_IMAGE_SIDE = 65_536
#: Sections that must be JSON objects when present (``world`` may also be null).
OBJECT_SECTIONS = ("video", "camera", "world", "body", "joints", "manifest")
FIX = "re-run the engine to write a new motion file"


def _fail(what: str, value: Any, allowed: str) -> MotionFileError:
    return MotionFileError(f"meta {what} is {value!r} ({type(value).__name__}); it must be {allowed}: {FIX}")


def _number(section: dict, key: str, where: str, low: float, high: float, *, low_open: bool = False,
            required: bool = True) -> None:
    """``section[key]`` is a finite real number in [low, high] (or (low, high] with ``low_open``)."""
    if key not in section and not required:
        return
    value = section.get(key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise _fail(f"{where}.{key}", value, f"a number in {bracket}{low:g}, {high:g}]")


def _integer(section: dict, key: str, where: str, low: int, high: int, *, required: bool = True) -> None:
    """``section[key]`` is an integer in [low, high]."""
    if key not in section and not required:
        return
    value = section.get(key)
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise _fail(f"{where}.{key}", value, f"an integer in [{low}, {high}]")


def _check_version(meta: dict) -> None:
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MotionFileError(f"meta version is {version!r} ({type(version).__name__}), not an integer; "
                              f"this reader supports version {VERSION}: {FIX}")
    if not 1 <= version <= VERSION:
        raise MotionFileError(f"motion file version {version} is not supported by this reader (supports "
                              f"{VERSION}); update the add-on/engine so both use the same version")


def _check_sections(meta: dict) -> None:
    for name in OBJECT_SECTIONS:
        value = meta.get(name)
        if value is None and (name == "world" or name not in meta):
            continue
        if not isinstance(value, dict):
            raise _fail(name, value, "an object")


def _check_video(video: dict) -> None:
    _number(video, "fps", "video", 0.0, MAX_FPS, low_open=True)
    _integer(video, "frames", "video", 1, MAX_FRAMES)
    _integer(video, "width", "video", 1, MAX_IMAGE_SIDE, required=False)
    _integer(video, "height", "video", 1, MAX_IMAGE_SIDE, required=False)
    _number(video, "duration", "video", 0.0, MAX_DURATION_S, required=False)


def _check_camera(camera: dict) -> None:
    _number(camera, "focal_px", "camera", 0.0, 1e6, low_open=True, required=False)
    for key in ("cx", "cy"):
        _number(camera, key, "camera", -1e6, 1e6, required=False)
    for key in ("width", "height"):
        _integer(camera, key, "camera", 1, MAX_IMAGE_SIDE, required=False)


def validate_meta(meta: Any) -> None:
    """Raise MotionFileError (one line: key, value, allowed range, fix) unless ``meta`` is a
    usable version-1 header: format and integer version, the sections objects, ``video.fps`` in
    (0, MAX_FPS], ``video.frames`` in [1, MAX_FRAMES], image sizes and camera values finite and
    in range."""
    if not isinstance(meta, dict):
        raise MotionFileError(f"the motion file header is a {type(meta).__name__}, not an object: {FIX}")
    if meta.get("format") != FORMAT:
        raise MotionFileError(f"not a vibe-mocap motion file (format {meta.get('format')!r})")
    _check_version(meta)
    _check_sections(meta)
    if "video" not in meta:
        raise MotionFileError(f"meta has no 'video' section (frame rate and frame count): {FIX}")
    _check_video(meta["video"])
    if isinstance(meta.get("camera"), dict):
        _check_camera(meta["camera"])


def check_track_frames(meta: dict, last_frame: int) -> None:
    """A track's last frame index must lie inside the clip (``video.frames``)."""
    if last_frame >= meta["video"]["frames"]:
        raise MotionFileError(f"a track reaches frame {last_frame} but meta video.frames is "
                              f"{meta['video']['frames']}: {FIX}")


# --------------------------------------------------------------------------- typed sections


@dataclass(frozen=True)
class VideoInfo:
    """``meta.video``: the clip as decoded. Sizes in displayed pixels (after ``rotation``,
    clockwise degrees); ``fps`` = frames / ``duration`` (s); ``vfr``: timestamps uneven."""

    fps: float
    frames: int
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    duration: float | None = None
    vfr: bool | None = None
    path: str = ""
    sha256: str | None = None


@dataclass(frozen=True)
class WorldInfo:
    """``meta.world``: ``world_from_camera`` (4×4 float64, OpenCV camera → z-up world with the
    ground at z = 0, metres), the default world of ``frames.default_world_from_camera`` when the
    engine found no ground (``grounded`` False). ``raw``: the section as written."""

    world_from_camera: np.ndarray
    grounded: bool
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """``meta.manifest``: how the file was made. ``raw`` keeps every key (timings, versions…)."""

    engine_version: str | None = None
    backend: str | None = None
    device: str | None = None
    precision: str | None = None
    settings: dict = field(default_factory=dict)
    checkpoints: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Header:
    """The whole header, typed: ``camera`` is the engine's pinhole (None when the file has no
    camera section), ``body``/``joints`` stay plain dicts (free-form descriptions), ``raw`` is
    the JSON object as read (unknown keys kept)."""

    video: VideoInfo
    camera: PinholeCamera | None
    world: WorldInfo
    manifest: Manifest
    body: dict
    joints_set: str | None
    joint_names: tuple[str, ...]
    raw: dict


def _known(cls: type, section: dict) -> dict:
    names = {f.name for f in fields(cls)} - {"raw"}
    return {k: v for k, v in section.items() if k in names}


def parse_header(meta: Any) -> Header:
    """Validate ``meta`` (``validate_meta``) and return it typed. MotionFileError on any problem."""
    validate_meta(meta)
    world = meta.get("world") or {}
    manifest = meta.get("manifest") or {}
    joints = meta.get("joints") or {}
    return Header(
        video=VideoInfo(**_known(VideoInfo, meta["video"])),
        camera=PinholeCamera.from_meta(meta) if meta.get("camera") else None,
        world=WorldInfo(world_from_camera(meta), world.get("world_from_camera") is not None, dict(world)),
        manifest=Manifest(**_known(Manifest, manifest), raw=dict(manifest)),
        body=dict(meta.get("body") or {}),
        joints_set=joints.get("set"),
        joint_names=tuple(joints.get("names") or ()),
        raw=meta,
    )
