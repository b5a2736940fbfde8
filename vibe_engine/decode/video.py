"""Streaming video reader: one RGB frame at a time, with true presentation timestamps.

Interface (used by the pipeline)::

    with open_video(path, on_warning=callback) as reader:
        reader.info          # VideoInfo, from the container header until a full pass ends
        for frame in reader: # Frame(index, time, image); iterate again for a second pass
            ...
        reader.info          # after a complete pass: exact counts, measured fps, vfr flag

* ``Frame.image`` is ``(H, W, 3) uint8 RGB`` in the *displayed* orientation: rotation metadata
  (display matrix / ``rotate`` tag, 90/180/270 degrees) is applied, so H and W are what a player
  shows.
* ``Frame.time`` is in seconds from the first frame, taken from each frame's presentation
  timestamp (PTS), never from ``index / fps``: variable-frame-rate phone video keeps its true
  timing. Where a container carries no usable timestamps (PTS missing or not increasing), that
  frame's time is the previous time plus one nominal frame interval, and a warning is issued.
* Memory stays flat for any length: nothing is kept between frames. Every ``iter(reader)``
  opens its own decoder, so a second pass (e.g. cropping after tracking) simply iterates again.
* Warnings (truncated file, missing timestamps) go to ``logging`` and to the optional
  ``on_warning(message: str)`` callback. Errors raise :class:`vibe_engine.errors.VideoError`
  with a one-line message: missing file, not a video / unreadable, zero decodable frames.
  A truncated file is decoded up to where it breaks; the warning names how many frames of the
  header's count were decoded.

Backend: OpenCV's FFmpeg backend (``opencv-python-headless``). Verified here (tests/engine/
test_video.py) that ``CAP_PROP_POS_MSEC`` returns the frame's PTS on VFR clips (to < 1 ms) and
that ``CAP_PROP_ORIENTATION_AUTO`` rotates frames exactly as FFmpeg's own player does.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import threading
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import numpy as np

from vibe_engine.errors import VideoError

logger = logging.getLogger(__name__)

WarningCallback = Callable[[str], None]

MS_PER_S = 1000.0
DEFAULT_FPS = 30.0
"""Nominal rate assumed when the container states no plausible one (frames per second)."""
MAX_PLAUSIBLE_FPS = 1000.0
"""Header rates above this are time bases, not frame rates (raw H.264 streams report 90000)."""
VFR_TOLERANCE_S = 0.002
"""Frame intervals that differ by more than this (and by > VFR_TOLERANCE_REL) mark a clip VFR."""
VFR_TOLERANCE_REL = 0.1
TRUNCATION_SLACK_S = 0.25
#: Frames decoded ahead by ``Prefetcher`` (each 720p RGB frame is 2.8 MB).
PREFETCH_FRAMES = 4
#: How often a blocked prefetch thread or its consumer re-checks for a stop (seconds).
QUEUE_POLL_S = 0.05
"""A pass that ends this much (or 3 frame intervals, if more) before the header's duration, with
fewer frames than the header's count, is reported as truncated. Both conditions are needed:
for Matroska/WebM the count is only FFmpeg's duration x fps estimate, wrong for VFR video."""
TEXT_CODECS = frozenset({"ansi"})
"""FFmpeg 'codecs' that render text files (e.g. a .txt opens as ANSI art): not videos."""
CONVERT_HINT = "convert it to MP4 (H.264), e.g. `ffmpeg -i input.mov output.mp4`"


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video.

    width, height: pixels as displayed (after rotation). rotation: clockwise degrees (0, 90, 180,
    270) applied to the stored frames to display them. fps: frames per second (header value before
    a full pass; measured as (n-1)/(t_last - t_first) after it). frame_count: before a full pass
    the container's count (MP4/MOV) or FFmpeg's duration x fps estimate (Matroska/WebM: can be far
    off for VFR video; 0 if unknown); once ``exact`` is True, the number of frames decoded.
    duration: seconds, time of the last frame plus one mean frame interval (header: count / fps).
    vfr: True if frame intervals vary, None until a full pass. codec: FourCC text, e.g. "h264",
    "hevc", "VP90". exact: False until one complete pass has replaced the header values.
    """

    width: int
    height: int
    rotation: int
    fps: float
    frame_count: int
    duration: float
    vfr: bool | None
    codec: str
    exact: bool = False


@dataclass(frozen=True)
class Frame:
    """One decoded frame: index (0-based decode order = display order), time (s from the first
    frame, from its PTS), image (H, W, 3) uint8 RGB in displayed orientation."""

    index: int
    time: float
    image: np.ndarray


class _TimingStats:
    """Streaming statistics of frame times for the post-pass VideoInfo (O(1) memory)."""

    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.min_dt = math.inf
        self.max_dt = 0.0

    def add(self, t: float) -> None:
        if self.count:
            dt = t - self.last
            self.min_dt = min(self.min_dt, dt)
            self.max_dt = max(self.max_dt, dt)
        else:
            self.first = t
        self.last = t
        self.count += 1

    def is_vfr(self) -> bool:
        if self.count < 3:
            return False
        spread = self.max_dt - self.min_dt
        return spread > max(VFR_TOLERANCE_S, VFR_TOLERANCE_REL * self.min_dt)

    def fps(self, fallback: float) -> float:
        span = self.last - self.first
        return (self.count - 1) / span if self.count > 1 and span > 0 else fallback


def _fourcc_text(value: float) -> str:
    code = int(value)
    chars = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return chars.strip("\x00 ") if chars.isprintable() else ""


def _open_capture(path: str):
    """Open an OpenCV capture with auto-rotation on; raise VideoError if it cannot be opened."""
    import cv2

    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise VideoError(
            f"cannot read {path!r} as a video (not a video file, an unsupported codec, or a file "
            f"cut off before its index was written): {CONVERT_HINT}"
        )
    if _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)).lower() in TEXT_CODECS:
        cap.release()
        raise VideoError(f"{path!r} is a text file, not a video: {CONVERT_HINT}")
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def _header_info(cap) -> VideoInfo:
    import cv2

    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if math.isfinite(fps) and 0 < fps <= MAX_PLAUSIBLE_FPS else 0.0
    count = max(int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT))), 0) if fps else 0
    return VideoInfo(
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        rotation=int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META))) % 360,
        fps=float(fps or DEFAULT_FPS),
        frame_count=count,
        duration=count / (fps or DEFAULT_FPS),
        vfr=None,
        codec=_fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)),
    )


def _file_identity(path: str) -> tuple[int, int, int, int]:
    """(device, inode, size, modification time ns) of ``path``: changes when it is replaced or written."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class VideoReader:
    """Streaming reader over one video file; see the module docstring for the contract."""

    def __init__(self, path: str | os.PathLike, on_warning: WarningCallback | None = None) -> None:
        self.path = os.fspath(path)
        self._on_warning = on_warning
        self._captures: list = []
        if not os.path.exists(self.path):
            raise VideoError(f"video file not found: {self.path!r}: check the path")
        if not os.path.isfile(self.path):
            raise VideoError(f"{self.path!r} is not a file: give the path of a video file")
        if not os.access(self.path, os.R_OK):
            raise VideoError(f"video file {self.path!r} is not readable: check its permissions")
        self._identity = _file_identity(self.path)
        cap = _open_capture(self.path)
        try:
            self._info = _header_info(cap)
            if self._info.frame_count == 0:
                self._warn(f"{self.path!r} states no usable frame rate or frame count (a raw stream?); "
                           f"frame times fall back to {self._info.fps:g} fps where timestamps are missing")
        finally:
            cap.release()

    @property
    def info(self) -> VideoInfo:
        """Header information, replaced by exact values after a complete pass."""
        return self._info

    def _warn(self, message: str) -> None:
        logger.warning(message)
        if self._on_warning is not None:
            self._on_warning(message)

    def verify_unchanged(self) -> None:
        """VideoError when the file was replaced or modified since it was opened (a second pass
        over another file would mix two videos, and the manifest would hash the wrong one)."""
        try:
            same = _file_identity(self.path) == self._identity
        except OSError:
            same = False
        if not same:
            raise VideoError(f"{self.path!r} changed during the run (replaced, modified or removed); "
                             "leave the video as it is until the run ends, then run again")

    def __iter__(self) -> Iterator[Frame]:
        self.verify_unchanged()
        cap = _open_capture(self.path)
        self._captures.append(cap)
        try:
            yield from self._decode(cap)
        finally:
            cap.release()
            self._captures.remove(cap)

    def _decode(self, cap) -> Iterator[Frame]:
        import cv2

        stats = _TimingStats()
        first_ms: float | None = None
        prev_t = -math.inf
        warned_pts = False
        while True:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            pts_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            first_ms = pts_ms if first_ms is None else first_ms
            t = (pts_ms - first_ms) / MS_PER_S
            if stats.count and not t > prev_t:
                t = prev_t + 1.0 / self._info.fps
                if not warned_pts:
                    warned_pts = True
                    self._warn(f"{self.path!r}: missing or non-increasing timestamps from frame "
                               f"{stats.count}; assuming {self._info.fps:.3f} fps there")
            prev_t = t
            stats.add(t)
            yield Frame(index=stats.count - 1, time=t, image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        self._finish_pass(stats)

    def _finish_pass(self, stats: _TimingStats) -> None:
        """Check the pass against the header (truncation) and store the exact information."""
        if stats.count == 0:
            raise VideoError(f"video {self.path!r} contains no decodable frames: {CONVERT_HINT}")
        header = self._info
        fps = stats.fps(header.fps)
        duration = stats.last + 1.0 / fps
        slack = max(TRUNCATION_SLACK_S, 3.0 / header.fps)
        if not header.exact and stats.count < header.frame_count and duration < header.duration - slack:
            self._warn(f"{self.path!r} looks truncated: decoded {stats.count} of the "
                       f"{header.frame_count} frames its header announces; using those {stats.count}")
        self._info = replace(header, frame_count=stats.count, fps=fps, vfr=stats.is_vfr(),
                             duration=duration, exact=True)

    def close(self) -> None:
        """Release every decoder still open (from iterations that were not run to the end)."""
        for cap in list(self._captures):
            cap.release()
        self._captures.clear()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(path: str | os.PathLike, on_warning: WarningCallback | None = None) -> VideoReader:
    """Open ``path`` for streaming; raises VideoError (one line) if it is missing or unreadable."""
    return VideoReader(path, on_warning=on_warning)


class Prefetcher:
    """Decode ahead: iterates ``frames`` in a background thread, at most ``depth`` frames ahead.

    OpenCV's decoder releases the GIL, so decoding overlaps the model work of the main thread.
    Use as a context manager; leaving it early stops the thread and closes the source iterator
    (in the thread that ran it). Exceptions of the source are raised in the consumer::

        with Prefetcher(iter(reader)) as frames:
            for frame in frames: ...
    """

    _END = object()

    def __init__(self, frames: Iterator[Frame], depth: int = PREFETCH_FRAMES) -> None:
        self._source = frames
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="video-prefetch", daemon=True)

    def _work(self) -> None:
        item: object = self._END
        try:
            for frame in self._source:
                if not self._put(frame):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            item = exc
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()
        self._put(item)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=QUEUE_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __enter__(self) -> "Prefetcher":
        self._thread.start()
        return self

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=QUEUE_POLL_S)
            except queue.Empty:
                pass
        self._thread.join()
