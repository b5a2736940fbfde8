"""Video → people → a pose backend → one motion file, in two streaming passes (memory flat in
video length). One loop for every backend (``vibe_engine.backend.Backend``).

Stages (protocol ``stage`` names, docs/engine-protocol.md):

- ``decode``: open and probe the video, load the backend (fail fast on bad model files).
- ``detect``: pass 1 streams the video: decode → detect (or user boxes) → tracker update.
- ``track``: close the tracks, interpolate gaps, drop short ones, select ``--tracks``/``--max-people``.
- ``features``: pass 2 streams the video again; every track present in a frame goes to the
  backend (VIBE: crop → batched backbone → streaming GRU, ``models/vibe_backend.py``; BlazePose:
  landmarks, ``blazepose/engine_backend.py``).
- ``regress``: the backend finishes each track (VIBE: last GRU chunk + camera maths; BlazePose:
  the SMPL fit) into a motion-file track.
- ``write``: post-process (``postprocess.run``), assemble the motion file and write it atomically.

The backend is chosen by ``backends.load_backend`` (VIBE when model files are given, else the
default BlazePose backend with the shipped models and the CC0 stand-in body).
"""
from __future__ import annotations

import logging
import math
import os
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from vibe_blender.core import motion_file as mf
from vibe_blender.core.atomic import DiskFullError
from vibe_blender.core.vibe_data import sha256_file
from vibe_engine import __version__
from vibe_engine.world import camera, camera_motion, camera_path, vanishing
from vibe_engine.backend import Backend, RunContext, Timings
from vibe_engine.backends import load_backend
from vibe_engine.cancel import CancelToken
from vibe_engine.versions import library_versions
from vibe_engine.config import EngineConfig, overlap_enabled
from vibe_engine.errors import BadInputError, NoPersonError, OutputError, VideoError
from vibe_engine.protocol import ProtocolWriter
from vibe_engine.decode.video import Prefetcher

log = logging.getLogger(__name__)

SCHEMA = f"{mf.FORMAT}/{mf.VERSION}"
__all__ = ["SCHEMA", "RunResult", "Timings", "PersonSource", "run_pipeline", "select_tracks"]


@dataclass
class RunResult:
    """What a successful run produced: the file, its track summaries, and stage timings (s)."""

    path: Path
    people: list[dict[str, Any]]
    fps: float
    frames: int
    timings: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------- checks

#: Fewest frames a video must have: the tracker confirms a person after 3 matched frames.
MIN_VIDEO_FRAMES = 3
#: File signatures of still images (which FFmpeg would open as a 1-frame "video").
STILL_IMAGE_MAGIC = ((0, b"\x89PNG\r\n\x1a\n", "PNG"), (0, b"\xff\xd8\xff", "JPEG"), (8, b"WEBP", "WebP"))


def _is_motion_file(path: Path) -> bool:
    """True when ``path`` is a zip archive with a ``meta.npy`` member (a motion file we may replace)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return "meta.npy" in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def check_output_path(out: Path, video: Path | None = None) -> None:
    """OutputError unless ``out`` can be created (checked before any heavy work).

    ``out`` may replace an earlier motion file, never the input video or any other existing file.
    """
    if out.is_dir():
        raise OutputError(f"output path is a folder: {out}; pass a file name such as clip.motion.npz to --out")
    if not out.parent.is_dir():
        raise OutputError(f"output folder does not exist: {out.parent}; create it or choose another --out")
    if video is not None and out.exists() and video.exists() and os.path.samefile(out, video):
        raise OutputError(f"the output {out.name} is the input video; choose another --out such as "
                          f"{out.with_suffix('.motion.npz').name}")
    if out.exists() and not _is_motion_file(out):
        raise OutputError(f"{out} exists and is not a motion file; it is left untouched: choose another --out")
    probe = out.parent / f".{out.name}.probe-{os.getpid()}"
    try:
        probe.open("wb").close()
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to {out.parent} ({exc.strerror}); choose another --out") from None


def check_video_path(video: Path) -> None:
    """VideoError when the video is missing, a folder, or empty."""
    if video.is_dir():
        raise VideoError(f"{video} is a folder, not a video file; pass the path of a video file")
    if not video.is_file():
        raise VideoError(f"video not found: {video}; check the path")
    if video.stat().st_size == 0:
        raise VideoError(f"video file is empty (0 bytes): {video}; pass a real video file")
    with open(video, "rb") as fh:
        head = fh.read(16)
    kind = next((name for at, magic, name in STILL_IMAGE_MAGIC if head[at:at + len(magic)] == magic), None)
    if kind is not None:
        raise VideoError(f"{video.name} is a still image ({kind}), not a video; pass a video file "
                         "with at least a few frames")


def _check_device(device: str) -> None:
    """BadInputError when CUDA is asked for and there is none (every backend; VIBE loads torch anyway)."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")


# ----------------------------------------------------------------------------- pass 1


class PersonSource:
    """Where pass 1 gets people from: the detector + tracker, or a ``--boxes`` file.

    A boxes file with track ids gives the identities directly (no tracker); without ids its
    boxes go through the tracker like detections. The file is read when this is built, so a bad
    file fails before any heavy work.
    """

    def __init__(self, cfg: EngineConfig) -> None:
        from vibe_engine.people.track import Tracker

        self.boxes: dict[int, np.ndarray] | None = None
        self.ids: dict[int, np.ndarray] | None = None
        self.detector = None
        if cfg.boxes is not None:
            from vibe_engine.people.boxes import load_boxes_with_ids

            self.boxes, self.ids = load_boxes_with_ids(cfg.boxes)
        else:
            from vibe_engine.people.detect import PersonDetector

            self.detector = PersonDetector()
        self.tracker = Tracker()
        self.every = 1
        self._last_run: int | None = None
        self._held: list[tuple[int, np.ndarray]] = []

    def wants(self, index: int) -> bool:
        """Whether the detector should run on frame ``index``: every ``every``-th frame while the
        tracker is settled (all tracks confirmed and matched), every frame otherwise; always with
        a boxes file."""
        if self.detector is None or self._last_run is None or not self.tracker.settled:
            return True
        return index - self._last_run >= self.every

    def step(self, index: int, image: np.ndarray, timings: Timings) -> None:
        """Detect (when wanted) and feed the tracker for one frame.

        Skipped frames are held (at most ``every - 1`` images). At the next detector run, when
        its detections would unsettle the tracker (a person appeared or was missed), the held
        frames are detected after all, in order, so that tracks start and end where they would
        with the detector on every frame; otherwise they are recorded as skipped.
        """
        if self.wants(index):
            self._run(index, image, timings)
        else:
            self._held.append((index, image))

    def flush(self, timings: Timings) -> None:
        """End of the video: a held last frame is detected after all (tracks reach the end)."""
        if self._held:
            index, image = self._held.pop()
            self._run(index, image, timings)

    def _run(self, index: int, image: np.ndarray, timings: Timings) -> None:
        self._last_run = index
        with timings("detect"):
            dets = self.detect(index, image)
        held, self._held = self._held, []
        with timings("track"):
            settles = not held or self.tracker.would_settle(index, dets)
        for k, img in held:
            if settles:
                with timings("track"):
                    self.tracker.skip(k)
                continue
            with timings("detect"):
                dets_k = self.detect(k, img)
            with timings("track"):
                self.update(k, dets_k)
        with timings("track"):
            self.update(index, dets)

    def detect(self, index: int, image: np.ndarray) -> np.ndarray:
        """(K,5) boxes x1,y1,x2,y2,score (pixels) of one frame."""
        if self.detector is not None:
            return self.detector.detect(image)
        return np.asarray(self.boxes.get(index, np.zeros((0, 5))), np.float32).reshape(-1, 5)

    def update(self, index: int, dets: np.ndarray) -> None:
        """Feed one frame to the tracker (not used with user ids)."""
        if self.ids is None:
            self.tracker.update(index, dets)

    def finish(self, num_frames: int) -> list[Any]:
        """All tracks of at least one frame; boxes past the video's last frame are ignored."""
        from vibe_engine.people.track import tracks_from_ids

        if self.ids is None:
            return self.tracker.finish(1)
        keep = [f for f in self.boxes if 0 <= f < num_frames]
        if len(keep) < len(self.boxes):
            log.warning("%d boxes-file frames lie outside the video (0..%d) and were ignored",
                        len(self.boxes) - len(keep), num_frames - 1)
        return tracks_from_ids({f: self.boxes[f] for f in keep}, {f: self.ids[f] for f in keep}, 1)


def detect_and_track(run: RunContext, reader: Any, source: PersonSource) -> tuple[Any, np.ndarray, list[Any]]:
    """Pass 1. Returns (video info after the pass, frame times (N,) s, all tracks ≥ 1 frame)."""
    times: list[float] = []
    total = reader.info.frame_count
    for frame in _frames(run, reader):
        source.step(frame.index, frame.image, run.timings)
        times.append(frame.time)
        run.writer.progress("detect", frame.index + 1, max(total, frame.index + 1))
        run.token.check("detect")
    source.flush(run.timings)
    if not times:
        raise VideoError(f"no frame could be decoded from {run.cfg.video.name}; pass a playable video")
    if len(times) < MIN_VIDEO_FRAMES:
        raise VideoError(f"{run.cfg.video.name} has only {len(times)} frame(s); the tracker needs at least "
                         f"{MIN_VIDEO_FRAMES}: pass a longer video")
    with run.timings("track"):
        tracks = source.finish(len(times))
    return reader.info, np.asarray(times, np.float64), tracks


def select_tracks(run: RunContext, tracks: list[Any]) -> list[Any]:
    """Drop tracks shorter than min_frames (warning each), apply --tracks and --max-people."""
    cfg = run.cfg
    if not tracks:
        raise NoPersonError("no person was detected in the video; use a video where a person is "
                            "clearly visible, or pass --boxes FILE")
    kept = [t for t in tracks if len(t.frames) >= cfg.min_frames]
    for t in tracks:
        if len(t.frames) < cfg.min_frames:
            run.writer.warning("SHORT_TRACK_DROPPED", f"track {t.id} ({len(t.frames)} frames) is shorter "
                               f"than --min-frames {cfg.min_frames} and was dropped")
    if not kept:
        longest = max(len(t.frames) for t in tracks)
        raise NoPersonError(f"no person was followed for at least {cfg.min_frames} frames (longest "
                            f"track: {longest} frames); lower --min-frames or use a longer video")
    if cfg.tracks is not None:
        chosen = [t for t in kept if t.id in cfg.tracks]
        if not chosen:
            ids = ", ".join(str(t.id) for t in kept)
            raise BadInputError(f"--tracks {','.join(map(str, cfg.tracks))} matches no track (tracks: {ids})")
        kept = chosen
    if cfg.max_people is not None:
        kept = sorted(kept, key=lambda t: (-len(t.frames), t.id))[: cfg.max_people]
    return sorted(kept, key=lambda t: t.id)


# ----------------------------------------------------------------------------- pass 2




def _decoded(run: RunContext, reader: Any, last: float) -> Iterator[Any]:
    """The video's frames up to index ``last``, each fed first, in order, to the moving-camera
    estimation (``run.camera``, from the background; timed ``camera_motion``) and to the
    background's lines (``run.lines``; timed ``vanishing``)."""
    frames = iter(reader)
    try:
        for frame in frames:
            if frame.index > last:
                return
            if run.camera is not None:
                with run.timings("camera_motion"):
                    run.camera.add(frame.index, frame.image)
            if run.lines is not None:
                with run.timings("vanishing"):
                    run.lines.add(frame.index, frame.image)
            yield frame
    finally:
        if hasattr(frames, "close"):  # the decoder ends here (a reader's iterator is a generator)
            frames.close()


def _frames(run: RunContext, reader: Any, last: float = math.inf) -> Iterator[Any]:
    """The video's frames up to index ``last`` (both passes read the video through this).

    Overlapped (default): decoding and the camera-motion tracker run ahead in the decode thread,
    at most ``PREFETCH_FRAMES`` frames ahead (``Prefetcher``: cv2 releases the GIL, so they
    overlap the detector and landmark models; its errors are raised here). ``decode`` times the
    main thread's wait for the next frame (with ``VIBE_ENGINE_OVERLAP=0``: the decoding itself,
    camera motion included)."""
    source = _decoded(run, reader, last)
    with Prefetcher(source) if overlap_enabled() else closing(source) as ahead:
        frames = iter(ahead)
        while True:
            with run.timings("decode"):
                frame = next(frames, None)
            if frame is None:
                return
            yield frame


def last_frame(tracks: list[Any]) -> int:
    """The last video frame index any of ``tracks`` is in (pass 2 stops there)."""
    return max(int(t.frames[-1]) for t in tracks)


def pose_pass(run: RunContext, reader: Any, backend: Backend, tracks: list[Any]) -> None:
    """Pass 2 (``features``): stream the video again; every track present in a frame goes to the
    backend (``Backend.add_frame``)."""
    rows = [0] * len(tracks)
    backend.start(tracks)
    total, last = sum(len(t.frames) for t in tracks), last_frame(tracks)
    for frame in _frames(run, reader, last):
        for k, t in enumerate(tracks):
            if rows[k] < len(t.frames) and t.frames[rows[k]] == frame.index:
                backend.add_frame(t, rows[k], frame.image)
                rows[k] += 1
        run.writer.progress("features", backend.end_frame(), total)
        run.token.check("features")
    run.writer.progress("features", backend.end_pass(), total)
    run.token.check("features")
    for k, t in enumerate(tracks):
        if rows[k] != len(t.frames):
            raise VideoError(f"the second pass over the video ended early (track {t.id}: "
                             f"{rows[k]} of {len(t.frames)} frames); the file changed or "
                             "cannot be decoded twice")


def regress(run: RunContext, backend: Backend, tracks: list[Any], times: np.ndarray) -> list[mf.Track]:
    """The ``regress`` stage: one motion-file track per selected track.

    A track where the backend found no pose at all is dropped with a warning; NoPersonError when
    that leaves none.
    """
    out = []
    for k, t in enumerate(tracks):
        try:
            out.append(backend.finish_track(t, times))
        except NoPersonError as exc:
            run.writer.warning("NO_POSE_TRACK_DROPPED", str(exc))
            continue
        run.writer.progress("regress", k + 1, len(tracks))
        run.token.check("regress")
    if not out:
        raise NoPersonError(f"the {backend.name} backend found no body pose in any tracked person; use "
                            "a video where people are seen whole, or the VIBE backend (--vibe-data)")
    return out


# ----------------------------------------------------------------------------- assembly


def start_hashes(video: Path, files: dict[str, Path]) -> Future:
    """sha256 of the video and of each model file (name → path) in a background thread: a Future
    of (the video's hex digest, {name: hex digest}).

    Started when the ``regress`` stage begins, whose per-track work (the BlazePose fit) leaves a
    core idle, and read when the motion file is assembled: the hashes (the video, VIBE's 260 MB of
    checkpoints; 1.6 GB/s on the 2-core test machine) no longer run after everything else. File
    reads and hashlib release the GIL. An error (a file gone) is raised where the result is read.
    """
    pool = ThreadPoolExecutor(1, thread_name_prefix="vibe-hash")
    try:
        return pool.submit(lambda: (sha256_file(video), {name: sha256_file(p) for name, p in files.items()}))
    finally:
        pool.shutdown(wait=False)


def _video_meta(cfg: EngineConfig, info: Any, times: np.ndarray, sha256: str) -> dict[str, Any]:
    n = int(times.shape[0])
    duration = float(info.duration) if info.duration else float(times[-1])
    return {"path": str(cfg.video), "sha256": sha256, "width": int(info.width),
            "height": int(info.height), "rotation": int(info.rotation),
            "fps": float(n / duration) if duration > 0 else float(info.fps), "frames": n,
            "duration": duration, "vfr": bool(info.vfr)}


def build_motion(run: RunContext, backend: Backend, info: Any, times: np.ndarray,
                 tracks: list[mf.Track], hashes: Future | None = None) -> mf.Motion:
    """The complete Motion (header, body model, tracks). ``hashes``: :func:`start_hashes` of the
    video and ``backend.files``; None: hashed here."""
    cfg = run.cfg
    video_sha256, checkpoints = (hashes or start_hashes(cfg.video, backend.files)).result()
    manifest = {"engine_version": __version__, "backend": backend.name, "device": cfg.device,
                "precision": cfg.precision, "settings": cfg.settings(), "checkpoints": checkpoints,
                "detect_every": cfg.detector_stride(backend.name) if cfg.boxes is None else None,
                **library_versions()}
    meta = mf.new_meta(
        video=_video_meta(cfg, info, times, video_sha256),
        camera=camera.camera_meta(info.width, info.height, cfg.focal_px, cfg.video),
        world={"world_from_camera": None}, body=backend.body_meta, joints=backend.joints, manifest=manifest)
    return mf.Motion(meta=meta, body=backend.body, tracks=tracks)


def _postprocess(cfg: EngineConfig, motion: mf.Motion) -> None:
    """Smoothing, ground plane and foot locking as configured (raw output kept as *_raw)."""
    from vibe_engine.postprocess.run import PostSettings, postprocess

    settings = PostSettings(smooth=cfg.smooth, ground=cfg.ground, foot_lock=cfg.foot_lock)
    postprocess(motion, settings)
    motion.meta["manifest"]["postprocess"] = settings.as_dict()


# ----------------------------------------------------------------------------- run


def _open(run: RunContext) -> Any:
    from vibe_engine.decode.video import open_video

    return open_video(run.cfg.video, on_warning=lambda m: run.writer.warning("VIDEO", m))


def run_pipeline(cfg: EngineConfig, writer: ProtocolWriter, token: CancelToken) -> RunResult:
    """Run every stage; raises EngineError subclasses (CancelledError on cancel)."""
    run = RunContext(cfg, writer, token)
    writer.stage("decode")
    check_video_path(cfg.video)
    check_output_path(cfg.out, cfg.video)
    if cfg.device == "cuda":
        _check_device(cfg.device)
    with _open(run) as reader:
        log.info("video %s: %s", cfg.video.name, reader.info)
        token.check("decode")
        with run.timings("load_model"):
            source = PersonSource(cfg)
            backend = load_backend(run, reader.info)
            source.every = cfg.detector_stride(backend.name)
        token.check("decode")
        writer.stage("detect")
        info, times, all_tracks = detect_and_track(run, reader, source)
        writer.stage("track")
        token.check("track")
        tracks = select_tracks(run, all_tracks)
        writer.stage("features")
        focal = camera.camera_meta(info.width, info.height, cfg.focal_px, cfg.video)["focal_px"]
        run.camera = camera_motion.start(cfg.camera, info.width, info.height, focal, tracks)
        run.lines = vanishing.LineSampler(info.width, info.height, focal, min(len(times), last_frame(tracks) + 1),
                                          camera_motion.boxes_by_frame(tracks))
        pose_pass(run, reader, backend, tracks)
        writer.stage("regress")
        hashes = start_hashes(cfg.video, backend.files)  # alongside the fit (start_hashes)
        motion_tracks = regress(run, backend, tracks, times)
        reader.verify_unchanged()
    writer.stage("write")
    motion = build_motion(run, backend, info, times, motion_tracks, hashes)
    motion.meta["world"]["vanishing"] = run.lines.meta()
    if run.camera is not None:
        with run.timings("camera_motion"):  # the path solve (focal, zoom) counts with the tracking
            msg = camera_path.attach(motion, run.camera, cfg.camera)
        if msg:
            writer.warning("CAMERA_STATIC_FALLBACK", msg)
    return _write(run, motion, backend)


def _write(run: RunContext, motion: mf.Motion, backend: Backend) -> RunResult:
    """Post-process, let the backend score the final motion (``Backend.score_motion``: VIBE's
    motion discriminator) and write the motion file atomically (the ``write`` stage)."""
    with run.timings("postprocess"):
        _postprocess(run.cfg, motion)
    backend.score_motion(motion)
    for w in motion.meta.get("world", {}).get("warnings", []):  # e.g. NO_GROUND (vibe_engine.world.grounding)
        run.writer.warning(w["code"], w["message"])
    motion.meta["manifest"]["timings_s"] = {k: round(v, 4) for k, v in run.timings.seconds.items()}
    run.token.check("write")
    with run.timings("write"):
        try:
            mf.write_motion(run.cfg.out, motion)
        except DiskFullError as exc:
            raise OutputError(str(exc)) from None
        except OSError as exc:
            raise OutputError(f"cannot write {run.cfg.out} ({exc.strerror or exc}); "
                              "check the folder's permissions or choose another --out") from None
    people = [mf.track_summary(t) for t in motion.tracks]
    video = motion.meta["video"]
    return RunResult(run.cfg.out, [{k: p[k] for k in ("id", "frames", "first", "last")} for p in people],
                     video["fps"], int(video["frames"]), run.timings.seconds)
