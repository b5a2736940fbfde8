"""The pose-backend protocol: what the pipeline's second pass and ``regress`` stage call.

A backend turns the frames of the selected tracks into one motion-file track each. The
pipeline (``vibe_engine.pipeline``) drives every backend with the same loop::

    backend.start(tracks)                        # before pass 2
    for frame in video:                          # pass 2 (stage ``features``)
        for track present in frame:
            backend.add_frame(track, row, frame.image)   # row: index into track.frames
        done = backend.end_frame()               # observations finished so far (progress)
    done = backend.end_pass()                    # pending work of the pass
    for track in tracks:                         # stage ``regress``
        motion_track = backend.finish_track(track, times)   # NoPersonError: track dropped

Implementations: :class:`vibe_engine.models.vibe_backend.VibeBackend` (the VIBE generator,
licensed files) and :class:`vibe_engine.blazepose.engine_backend.BlazePoseEngineBackend` (the
default: shipped landmark models + the CC0 stand-in body). ``vibe_engine.backends.load_backend``
chooses by the configuration. To add a backend: implement :class:`Backend` in its own package
and add one branch to ``load_backend`` (docs/architecture.md).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol

import numpy as np

from vibe_engine.cancel import CancelToken
from vibe_engine.config import EngineConfig
from vibe_engine.protocol import ProtocolWriter

if TYPE_CHECKING:
    from vibe_blender.core import motion_file as mf


class Timings:
    """Accumulated wall time per named step (seconds)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


@dataclass
class RunContext:
    """What one run carries between stages (and what a backend may use): the settings, the
    protocol writer (warnings), the cancel token and the step timings."""

    cfg: EngineConfig
    writer: ProtocolWriter
    token: CancelToken
    timings: Timings = field(default_factory=Timings)
    camera: Any = None  # camera_motion.CameraTracker fed in pass 2 (None: --camera static)
    lines: Any = None  # vanishing.LineSampler fed in pass 2 (the floor's orientation from the background)


class Backend(Protocol):
    """A pose backend (see the module docstring for the call order).

    ``name`` goes into the manifest (``backend``) and picks ``config.DEFAULT_DETECT_EVERY``;
    ``body`` / ``body_meta`` / ``joints`` are the motion file's body model, ``meta.body`` and
    ``meta.joints``; ``files`` (name → path) are hashed into the manifest's ``checkpoints``.
    Tracks are the tracker's (``track.Track``: ``id``, ``frames`` (N,), ``bbox`` (N,4) cx, cy,
    w, h px, ``confidence``, ``detected``); images are (H,W,3) uint8 RGB as displayed.
    """

    name: str
    body: mf.BodyModel
    body_meta: dict[str, Any]
    joints: dict[str, Any]
    files: dict[str, Path]

    def start(self, tracks: list[Any]) -> None:
        """Prepare pass 2 for these tracks."""

    def add_frame(self, track: Any, row: int, image: np.ndarray) -> None:
        """Observe ``track`` in frame ``track.frames[row]`` (rows arrive in increasing order)."""

    def end_frame(self) -> int:
        """After every frame: run what is due; returns the observations finished so far."""

    def end_pass(self) -> int:
        """After the last frame: run what is pending; returns the observations finished."""

    def finish_track(self, track: Any, times: np.ndarray) -> mf.Track:
        """The motion-file track (``times`` (N,) s: every frame's time); NoPersonError drops it."""

    def score_motion(self, motion: mf.Motion) -> None:
        """After post-processing: add what the backend computes from the final poses (VIBE: the
        motion discriminator's per-frame ``realism``); nothing for a backend without such a model."""
