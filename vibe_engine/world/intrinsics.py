"""Camera intrinsics of a clip: which focal length the engine uses, and where it came from.

Sources, in order of precedence (``meta["camera"]["source"]``):

1. ``"user"``: ``--focal PX``, or ``--focal-35mm MM`` (the add-on's Focal field, a 35 mm
   equivalent: turned into pixels for the video's displayed size by :func:`user_focal_px`).
2. ``"metadata"``: a 35 mm-equivalent focal length written into the container by the camera
   (QuickTime/MP4 ``moov/meta`` keys such as ``com.apple.quicktime.camera.focal_length.35mm_equivalent``;
   ``ffprobe -show_entries format_tags`` lists the same keys). Read here with a small ISO-BMFF box
   walker (standard library only, no ffprobe needed at run time).
3. ``"default"``: :data:`DEFAULT_FOCAL_35MM`, a typical phone main camera in video mode.
4. ``"self_calibrated"``: the default refined after the fit from the footage itself
   (:mod:`vibe_engine.world.selfcal`), when the clip constrains it; see there.

35 mm-equivalent focal → pixels: ``f_px = f35 / FULL_FRAME_DIAGONAL_MM × image_diagonal_px``; the
same lens for portrait and landscape frames.
"""
from __future__ import annotations

import functools
import math
import os
import re
import struct
from dataclasses import dataclass

from vibe_blender.core.settings import FOCAL_35MM_RANGE

#: Diagonal of a 36 × 24 mm full frame (mm): the reference of "35 mm-equivalent" focal lengths.
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
#: Default 35 mm-equivalent focal (mm). Phone main cameras are 24–28 mm for stills; video modes crop
#: for stabilisation (≈ 26–33 mm); a real phone/lab clip measured here was ≈ 33 mm. 33 mm gives
#: f ≈ 0.763 × the image diagonal (diagonal field of view ≈ 66°). The old default (f = diagonal)
#: was a 43 mm lens, placing people ≈ 1.3× too far on phone footage.
DEFAULT_FOCAL_35MM = 33.0
#: Plausible 35 mm-equivalent focal lengths (mm); metadata outside is ignored as corrupt, a user's refused.
PLAUSIBLE_35MM = FOCAL_35MM_RANGE
#: Container keys (lower case) that hold a 35 mm-equivalent focal in mm.
FOCAL_35MM_KEY = re.compile(r"focal.?length.*35|35.?mm.?equiv|focallengthin35mm")
#: ISO-BMFF container boxes walked into while looking for metadata.
CONTAINER_BOXES = {b"moov", b"udta", b"meta", b"trak", b"ilst"}
#: Only this many bytes of ``moov`` are read (metadata is small; very long clips have big tables).
MAX_MOOV_BYTES = 64 << 20


@dataclass(frozen=True)
class Focal:
    """A focal length in pixels with its source (see the module docstring) and the 35 mm
    equivalent (mm) it corresponds to for this image size."""

    focal_px: float
    source: str
    focal_35mm: float


def focal_px_from_35mm(f35: float, width: int, height: int) -> float:
    """Pixels of a 35 mm-equivalent focal ``f35`` (mm) for a ``width`` × ``height`` image."""
    return float(f35) / FULL_FRAME_DIAGONAL_MM * math.hypot(width, height)


def focal_35mm_from_px(focal_px: float, width: int, height: int) -> float:
    """35 mm-equivalent (mm) of a focal in pixels for a ``width`` × ``height`` image."""
    return float(focal_px) * FULL_FRAME_DIAGONAL_MM / math.hypot(width, height)


def default_focal(width: int, height: int) -> float:
    """The default focal (pixels): :data:`DEFAULT_FOCAL_35MM` for this image size."""
    return focal_px_from_35mm(DEFAULT_FOCAL_35MM, width, height)


def user_focal_px(video, focal_35mm: float) -> float | None:
    """Pixels of a user's 35 mm-equivalent focal for ``video``'s displayed size (its header); None
    when the video cannot be opened (the run then fails on the video with its own message)."""
    from vibe_engine.decode.video import open_video
    from vibe_engine.errors import VibeError

    try:
        info = open_video(video).info
    except (VibeError, OSError):
        return None
    return focal_px_from_35mm(focal_35mm, info.width, info.height)


def choose_focal(user_px: float | None, metadata_35mm: float | None, width: int, height: int) -> Focal:
    """The focal a run starts with: the user's, else the container's, else the default."""
    if user_px is not None:
        return Focal(float(user_px), "user", focal_35mm_from_px(user_px, width, height))
    if metadata_35mm is not None:
        return Focal(focal_px_from_35mm(metadata_35mm, width, height), "metadata", float(metadata_35mm))
    return Focal(default_focal(width, height), "default", DEFAULT_FOCAL_35MM)


# ----------------------------------------------------------------------------- container metadata


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, payload end) of the ISO-BMFF boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1 and pos + 16 <= end:
            size, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return
        yield kind, pos + head, pos + size
        pos += size


def _data_value(data: bytes, start: int, end: int) -> str | float | None:
    """Value of an ``ilst`` item: its ``data`` box (type 1 UTF-8, 23 float32, 24 float64, 21/22 int)."""
    for kind, a, b in _boxes(data, start, end):
        if kind != b"data" or b - a < 8:
            continue
        type_code = struct.unpack_from(">I", data, a)[0] & 0xFFFFFF
        raw = data[a + 8 : b]
        if type_code == 1:
            return raw.decode("utf-8", "replace")
        if type_code == 23 and len(raw) == 4:
            return struct.unpack(">f", raw)[0]
        if type_code == 24 and len(raw) == 8:
            return struct.unpack(">d", raw)[0]
        if type_code in (21, 22) and 1 <= len(raw) <= 8:
            return float(int.from_bytes(raw, "big", signed=type_code == 21))
    return None


def _meta_tags(data: bytes, start: int, end: int) -> dict[str, str | float]:
    """Tags of a QuickTime ``meta`` box (``keys`` + ``ilst``, mdta keys)."""
    keys: list[str] = []
    tags: dict[str, str | float] = {}
    inner = list(_boxes(data, start, end))
    if not any(k in (b"keys", b"ilst", b"hdlr") for k, _, _ in inner):  # ISO meta: 4-byte version/flags first
        inner = list(_boxes(data, start + 4, end))
    for kind, a, b in inner:
        if kind == b"keys" and b - a >= 8:
            count, pos = struct.unpack_from(">I", data, a + 4)[0], a + 8
            for _ in range(count):
                if pos + 8 > b:
                    break
                size = struct.unpack_from(">I", data, pos)[0]
                keys.append(data[pos + 8 : pos + size].decode("utf-8", "replace"))
                pos += max(size, 8)
    for kind, a, b in inner:
        if kind == b"ilst":
            for item, ia, ib in _boxes(data, a, b):
                index = struct.unpack(">I", item)[0]
                name = keys[index - 1] if 1 <= index <= len(keys) else item.decode("latin-1")
                value = _data_value(data, ia, ib)
                if value is not None:
                    tags[name] = value
    return tags


def container_tags(path: str | os.PathLike) -> dict[str, str | float]:
    """Every QuickTime/MP4 metadata tag found in ``moov`` (movie and track ``meta`` boxes).

    Returns {} for files that are not ISO-BMFF or carry no such tags; never raises for bad files.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            pos = 0
            while pos + 8 <= size:
                fh.seek(pos)
                head = fh.read(16)
                box, kind = struct.unpack_from(">I4s", head)
                length = struct.unpack_from(">Q", head, 8)[0] if box == 1 else (size - pos if box == 0 else box)
                if length < 8:
                    return {}
                if kind == b"moov":
                    fh.seek(pos)
                    data = fh.read(min(length, MAX_MOOV_BYTES))
                    return _walk_tags(data, 0, len(data))
                pos += length
    except (OSError, struct.error):
        return {}
    return {}


def _walk_tags(data: bytes, start: int, end: int) -> dict[str, str | float]:
    tags: dict[str, str | float] = {}
    for kind, a, b in _boxes(data, start, end):
        if kind == b"meta":
            tags.update(_meta_tags(data, a, b))
        elif kind in CONTAINER_BOXES:
            tags.update(_walk_tags(data, a, b))
    return tags


def metadata_focal_35mm(path: str | os.PathLike) -> float | None:
    """The container's 35 mm-equivalent focal (mm), or None when it has none (or an implausible one)."""
    for name, value in container_tags(path).items():
        if not FOCAL_35MM_KEY.search(name.lower()):
            continue
        try:
            f35 = float(str(value).strip().split()[0]) if isinstance(value, str) else float(value)
        except (ValueError, IndexError):
            continue
        if PLAUSIBLE_35MM[0] <= f35 <= PLAUSIBLE_35MM[1]:
            return f35
    return None


@functools.lru_cache(maxsize=8)
def _cached_metadata_focal(path: str, mtime_ns: int) -> float | None:
    return metadata_focal_35mm(path)


def camera_meta(user_px: float | None, video: str | os.PathLike | None, width: int, height: int) -> dict:
    """``meta["camera"]`` of a run: pinhole, centred principal point, the chosen focal and its source."""
    meta_f35 = None
    if video is not None and user_px is None:
        try:
            meta_f35 = _cached_metadata_focal(os.fspath(video), os.stat(video).st_mtime_ns)
        except OSError:
            meta_f35 = None
    focal = choose_focal(user_px, meta_f35, width, height)
    return {"model": "pinhole", "focal_px": focal.focal_px, "cx": width / 2.0, "cy": height / 2.0,
            "width": int(width), "height": int(height), "source": focal.source,
            "focal_35mm": round(focal.focal_35mm, 3)}
