"""The default backend of the pipeline (``vibe_engine.backend.Backend``): BlazePose landmarks per
tracked person and frame (pass 2, timed ``landmarks``), then the SMPL fit of each track
(``regress``, timed ``fit``) on the CC0 stand-in body. No licensed files, no torch.

The per-track work is :class:`vibe_engine.blazepose.backend.BlazePoseBackend`; this adapter
gives it the pipeline's calls and turns its arrays into motion-file tracks (the raw landmarks
the fit used are kept as optional members, ``LANDMARK_MEMBERS``).
"""
from __future__ import annotations

import importlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from vibe_blender.core import motion_file as mf
from vibe_engine.world import camera
from vibe_engine.backend import RunContext
from vibe_engine.blazepose.backend import BlazePoseBackend
from vibe_engine.blazepose.landmarks import LandmarkModel
from vibe_engine.blazepose.topology import LANDMARK_NAMES, NUM_LANDMARKS
from vibe_engine.people.detect import DEFAULT_MODEL as DETECTOR_MODEL
from vibe_engine.blazepose.standin_body import DEFAULT_PATH, load_standin_body, motion_body_meta

log = logging.getLogger(__name__)

#: Modules the fit and the post-processing need, imported in a background thread while the video
#: is processed (SciPy: ~0.5 CPU s that would otherwise delay the first frames; the GIL is free
#: most of that time, in the decoder, the detector and the landmark network). Third-party only:
#: they never import this package, so the main thread can only wait for them, never deadlock on a
#: module lock.
PRELOAD_MODULES = ("scipy.optimize", "scipy.spatial.transform", "scipy.ndimage")
#: Environment variable: landmark threads for frames with several people (each runs its own
#: one-thread interpreter; default ``LANDMARK_WORKERS``; ignored with ``VIBE_ENGINE_OVERLAP=0``).
LANDMARK_WORKERS_ENV = "VIBE_ENGINE_LANDMARK_WORKERS"
#: One: on the shared 2-core machine two workers made the 2-person benchmark row slower (wall
#: 13.5-13.9 s vs 10.0-10.5 s at load 5-10, twice) and cost 70 MiB; the lead's quiet re-run of
#: ``benchmarks/engine.py`` has a row with two (docs/engine-protocol.md, "Overlap").
LANDMARK_WORKERS = 1
#: BlazePose backend extras kept as optional motion-file members (docs/motion-file.md)
LANDMARK_MEMBERS = ("landmarks_image", "landmarks_world", "visibility", "presence")
#: Body-model arrays the motion file stores for the stand-in body.
BODY_KEYS = ("v_template", "shapedirs", "J_regressor", "weights", "parents", "faces")


class BlazePoseEngineBackend:
    """BlazePose over the tracks of pass 2 (see the module docstring)."""

    name = "blazepose"

    def __init__(self, ctx: RunContext, pose: BlazePoseBackend, body: dict[str, np.ndarray],
                 workers: int = 1) -> None:
        self.ctx, self.pose = ctx, pose
        self.body = mf.BodyModel(**{k: body[k] for k in BODY_KEYS})
        self.body_meta = motion_body_meta(body)
        self.joints = {"set": "blazepose33", "names": list(LANDMARK_NAMES[:NUM_LANDMARKS])}
        self.files: dict[str, Path] = {Path(p).name: Path(p)
                                       for p in (DETECTOR_MODEL, pose.model.path, DEFAULT_PATH)}
        self.done = 0
        self.workers = max(1, int(workers))
        self._pending: list[tuple[Any, int, np.ndarray]] = []
        self._models: list[LandmarkModel] = []

    @classmethod
    def load(cls, ctx: RunContext, info: Any) -> BlazePoseEngineBackend:
        """The shipped landmark model ``cfg.landmark_model`` and the stand-in body."""
        preload_in_background(PRELOAD_MODULES)
        body = load_standin_body()
        focal = camera.camera_meta(info.width, info.height, ctx.cfg.focal_px, ctx.cfg.video)["focal_px"]
        pose = BlazePoseBackend(model=ctx.cfg.landmark_model, body=body, focal_px=focal,
                                image_size=(info.width, info.height))
        from vibe_engine.config import overlap_enabled

        workers = int(os.environ.get(LANDMARK_WORKERS_ENV) or LANDMARK_WORKERS) if overlap_enabled() else 1
        return cls(ctx, pose, body, workers=workers)

    def start(self, tracks: list[Any]) -> None:
        for t in tracks:
            self.pose.start_track(t.id, t.bbox[0])

    def add_frame(self, track: Any, row: int, image: np.ndarray) -> None:
        self._pending.append((track, row, image))

    def end_frame(self) -> int:
        """Landmarks of every person of the frame: one after the other in this thread, or, with
        several people and ``workers`` > 1, on up to that many threads at once, each with its
        own one-thread interpreter (the outputs do not depend on the interpreter's thread count:
        tests/engine/test_pipeline_overlap.py). The threads end with the frame (also on errors)."""
        jobs, self._pending = self._pending, []
        with self.ctx.timings("landmarks"):
            n = min(len(jobs), self.workers)
            if n < 2:
                self._observe(jobs, None)
            else:
                with ThreadPoolExecutor(n, thread_name_prefix="vibe-landmarks") as pool:
                    futures = [pool.submit(self._observe, jobs[w::n], self._worker_model(w)) for w in range(n)]
                for future in futures:
                    future.result()  # a worker's error, raised here
        self.done += len(jobs)
        return self.done

    def end_pass(self) -> int:
        return self.done

    def _observe(self, jobs: list[tuple[Any, int, np.ndarray]], model: LandmarkModel | None) -> None:
        for track, row, image in jobs:
            self.pose.add_frame(track.id, int(track.frames[row]), image, track.bbox[row], model=model)

    def _worker_model(self, k: int) -> LandmarkModel:
        """Worker ``k``'s one-thread interpreter of the backend's model file (loaded once)."""
        while len(self._models) <= k:
            self._models.append(LandmarkModel(str(self.pose.model.path), num_threads=1))
        return self._models[k]

    def finish_track(self, track: Any, times: np.ndarray) -> mf.Track:
        with self.ctx.timings("fit"):
            arrays = self.pose.finish_track(track.id)
        raw = arrays.pop("extra", {})
        kept = {name: raw[name] for name in LANDMARK_MEMBERS if name in raw}
        return mf.Track(id=int(track.id), times=times[arrays["frames"]], extra=kept, **arrays)

    def score_motion(self, motion: mf.Motion) -> None:
        """Nothing: the BlazePose backend has no motion prior to score with."""


def preload_in_background(modules: tuple[str, ...]) -> threading.Thread:
    """Import ``modules`` in a daemon thread (a failure is only logged: the import that needs the
    module raises it again, in the main thread, with its usual message)."""

    def work() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - re-raised by the real import later
                log.debug("background import of %s failed: %s", name, exc)

    thread = threading.Thread(target=work, name="vibe-preload", daemon=True)
    thread.start()
    return thread
