"""Video → people → VIBE → one motion file, in two streaming passes (memory flat in video length).

Stages (protocol ``stage`` names, docs/engine-protocol.md):

- ``decode``: open and probe the video, load the generator (fail fast on bad checkpoints).
- ``detect``: pass 1 streams the video: decode → detect (or user boxes) → tracker update.
- ``track``: close the tracks, interpolate gaps, drop short ones, select ``--tracks``/``--max-people``.
- ``features``: pass 2 streams the video again: for every track present in a frame, crop; backbone
  features batched across tracks (``--batch-size``); per track, each time ``GRU_CHUNK_FRAMES``
  features are buffered, the GRU runs on them with its hidden state carried over from the previous
  chunk, then the regressor. Only small per-frame outputs are kept (theta, 49 joints), never verts.
- ``regress``: the GRU/regressor on each track's last partial chunk, then the camera maths.
- ``write``: assemble the motion file and write it atomically.

Backends: VIBE when model files are given (``cfg.models``); otherwise the default BlazePose
backend (``vibe_engine.blazepose``, shipped Apache-2.0 models + the CC0 stand-in body): pass 2
runs the landmark model per track and frame (``features``), then fits each track (``regress``).

Chunking: carrying the GRU hidden state across chunks gives exactly the result of one sequence over
the whole track. The official demo instead feeds the GRU 450-frame batches with the hidden state
restarted at zero for each (vibe-facts.md §3 step 6); ``official_chunks=True`` reproduces that.
"""
from __future__ import annotations

import logging
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from vibe_blender.core import motion_file as mf
from vibe_blender.core.vibe_data import sha256_file

from . import __version__, camera, camera_motion
from .cancel import CancelToken
from .config import OFFICIAL_CHUNK_FRAMES, EngineConfig
from .errors import BadInputError, ModelError, NoPersonError, OutOfMemoryError, OutputError, VideoError
from .protocol import ProtocolWriter
from .video import Prefetcher

log = logging.getLogger(__name__)

SCHEMA = f"{mf.FORMAT}/{mf.VERSION}"
#: Frames whose detector score is at least this are "confident" for the per-track betas median.
CONFIDENT_SCORE = 0.5
#: Bytes per read when hashing files.
#: The 49 output joints of VIBE/SPIN: 25 OpenPose joints, then 24 ground-truth joints.
SPIN49_NAMES = (
    "OP Nose", "OP Neck", "OP RShoulder", "OP RElbow", "OP RWrist", "OP LShoulder", "OP LElbow",
    "OP LWrist", "OP MidHip", "OP RHip", "OP RKnee", "OP RAnkle", "OP LHip", "OP LKnee", "OP LAnkle",
    "OP REye", "OP LEye", "OP REar", "OP LEar", "OP LBigToe", "OP LSmallToe", "OP LHeel", "OP RBigToe",
    "OP RSmallToe", "OP RHeel", "Right Ankle", "Right Knee", "Right Hip", "Left Hip", "Left Knee",
    "Left Ankle", "Right Wrist", "Right Elbow", "Right Shoulder", "Left Shoulder", "Left Elbow",
    "Left Wrist", "Neck (LSP)", "Top of Head (LSP)", "Pelvis (MPII)", "Thorax (MPII)", "Spine (H36M)",
    "Jaw (H36M)", "Head (H36M)", "Nose", "Left Eye", "Right Eye", "Left Ear", "Right Ear",
)


@dataclass
class RunResult:
    """What a successful run produced: the file, its track summaries, and stage timings (s)."""

    path: Path
    people: list[dict[str, Any]]
    fps: float
    frames: int
    timings: dict[str, float] = field(default_factory=dict)


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
class _Run:
    """Everything one run carries between stages.

    ``temporal_frames``: the most frames per GRU/regressor call once the temporal step ran out of
    memory (None: a whole chunk per call).
    """

    cfg: EngineConfig
    writer: ProtocolWriter
    token: CancelToken
    timings: Timings = field(default_factory=Timings)
    temporal_frames: int | None = None
    camera: Any = None  # camera_motion.CameraTracker fed in pass 2 (None: --camera static)


# ----------------------------------------------------------------------------- checks


def check_output_path(out: Path) -> None:
    """OutputError unless ``out`` can be created (checked before any heavy work)."""
    if out.is_dir():
        raise OutputError(f"output path is a folder: {out}; pass a file name such as clip.motion.npz to --out")
    if not out.parent.is_dir():
        raise OutputError(f"output folder does not exist: {out.parent}; create it or choose another --out")
    probe = out.parent / f".{out.name}.probe-{os.getpid()}"
    try:
        probe.open("wb").close()
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to {out.parent} ({exc.strerror}); choose another --out") from None


def check_video_path(video: Path) -> None:
    """VideoError when the video file does not exist or is empty."""
    if not video.is_file():
        raise VideoError(f"video not found: {video}; check the path")
    if video.stat().st_size == 0:
        raise VideoError(f"video file is empty (0 bytes): {video}; pass a real video file")


# ----------------------------------------------------------------------------- models


def load_model(cfg: EngineConfig) -> Any:
    """Load the VIBE generator; ModelError (exit 4) for unreadable or foreign checkpoints."""
    from .models import load_generator

    _check_device(cfg.device)
    m = cfg.models
    try:
        return load_generator(m.vibe_checkpoint, m.spin_checkpoint, body_model=m.body_model,
                              device=cfg.device, precision=cfg.precision)
    except (ModelError, BadInputError):
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure means the file is unusable
        raise ModelError(f"cannot load the VIBE checkpoint {m.vibe_checkpoint.name} "
                         f"({type(exc).__name__}: {str(exc)[:160]}); pass the official "
                         "vibe_model_wo_3dpw.pth.tar") from exc


def _check_device(device: str) -> None:
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
        from .track import Tracker

        self.boxes: dict[int, np.ndarray] | None = None
        self.ids: dict[int, np.ndarray] | None = None
        self.detector = None
        if cfg.boxes is not None:
            from .boxes import load_boxes_with_ids

            self.boxes, self.ids = load_boxes_with_ids(cfg.boxes)
        else:
            from .detect import PersonDetector

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
        from .track import tracks_from_ids

        if self.ids is None:
            return self.tracker.finish(1)
        keep = [f for f in self.boxes if 0 <= f < num_frames]
        if len(keep) < len(self.boxes):
            log.warning("%d boxes-file frames lie outside the video (0..%d) and were ignored",
                        len(self.boxes) - len(keep), num_frames - 1)
        return tracks_from_ids({f: self.boxes[f] for f in keep}, {f: self.ids[f] for f in keep}, 1)


def detect_and_track(run: _Run, reader: Any, source: PersonSource) -> tuple[Any, np.ndarray, list[Any]]:
    """Pass 1. Returns (video info after the pass, frame times (N,) s, all tracks ≥ 1 frame)."""
    times: list[float] = []
    total = reader.info.frame_count
    with Prefetcher(iter(reader)) as prefetched:
        frames = iter(prefetched)
        while True:
            with run.timings("decode"):
                frame = next(frames, None)
            if frame is None:
                break
            source.step(frame.index, frame.image, run.timings)
            times.append(frame.time)
            run.writer.progress("detect", frame.index + 1, max(total, frame.index + 1))
            run.token.check("detect")
    source.flush(run.timings)
    if not times:
        raise VideoError(f"no frame could be decoded from {run.cfg.video.name}; pass a playable video")
    with run.timings("track"):
        tracks = source.finish(len(times))
    return reader.info, np.asarray(times, np.float64), tracks


def select_tracks(run: _Run, tracks: list[Any]) -> list[Any]:
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


@dataclass
class _Stream:
    """Streaming generator state of one track: buffered features, GRU hidden, outputs."""

    track: Any
    next_row: int = 0
    buffer: list[np.ndarray] = field(default_factory=list)
    hidden: Any = None
    done: int = 0
    outputs: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {"theta": [], "kp_3d": [], "kp_2d": []})


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _oom_fix(device: str) -> str:
    """The fix an OUT_OF_MEMORY message names for ``device``."""
    if device == "cpu":
        return "close other programs to free memory"
    return "free GPU memory or use --device cpu"


def _features_once(run: _Run, model: Any, crops: Any) -> Any:
    """Backbone on one batch; the OOM test hook (config.OOM_ENV) raises for big batches."""
    import torch

    limit = run.cfg.oom_above
    if limit is not None and crops.shape[0] > limit:
        raise torch.cuda.OutOfMemoryError(
            f"CUDA out of memory (injected: batch {crops.shape[0]} > {limit})")
    return model.extract_features(crops)


class _Backbone:
    """Backbone runner that halves its batch on out-of-memory, down to 1."""

    def __init__(self, run: _Run, model: Any) -> None:
        self.run, self.model, self.batch = run, model, run.cfg.batch_size

    def __call__(self, crops: Any) -> np.ndarray:
        """crops (B,3,224,224) → features (B,2048) float32 numpy."""
        out, i = [], 0
        while i < crops.shape[0]:
            n = min(self.batch, crops.shape[0] - i)
            try:
                feats = _features_once(self.run, self.model, crops[i:i + n])
            except RuntimeError as exc:
                if not _is_oom(exc):
                    raise
                self._shrink(n)
                continue
            out.append(feats.float().cpu().numpy())
            i += n
        return np.concatenate(out)

    def _shrink(self, failed: int) -> None:
        import torch

        if failed <= 1:
            raise OutOfMemoryError(f"the {self.run.cfg.device} device ran out of memory even with one "
                                   f"crop per batch; {_oom_fix(self.run.cfg.device)}") from None
        self.batch = max(1, failed // 2)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.run.writer.warning("OOM_RETRY", f"out of memory with {failed} crops per batch; "
                                f"retrying with {self.batch}")


def _run_chunks(run: _Run, model: Any, stream: _Stream, final: bool) -> None:
    """GRU + regressor over the buffered features, one chunk at a time, hidden state carried."""
    chunk = run.cfg.chunk_frames
    while len(stream.buffer) >= chunk or (final and stream.buffer):
        n = min(chunk, len(stream.buffer))
        if run.cfg.official_chunks:
            n = min(n, OFFICIAL_CHUNK_FRAMES - stream.done % OFFICIAL_CHUNK_FRAMES)
            if stream.done % OFFICIAL_CHUNK_FRAMES == 0:
                stream.hidden = None
        _temporal_chunk(run, model, stream, n)


def _temporal_chunk(run: _Run, model: Any, stream: _Stream, n: int) -> None:
    """The first ``n`` buffered features through the GRU + regressor, in calls of at most
    ``run.temporal_frames`` frames with the hidden state carried (the same result as one call).

    On out-of-memory the call size is halved and the failed call retried, down to one frame;
    one ``OOM_RETRY`` warning per chunk that needed it, and the smaller size stays for the run.
    """
    failed = None
    while n > 0:
        m = min(n, run.temporal_frames or n)
        if _temporal_step(run, model, stream, m):
            n -= m
            continue
        failed = failed or m
        _shrink_temporal(run, m)
    if failed is not None:
        run.writer.warning("OOM_RETRY", f"out of memory in the temporal step with {failed} frames per "
                           f"call; running {run.temporal_frames} frames at a time from now on")


def _temporal_step(run: _Run, model: Any, stream: _Stream, m: int) -> bool:
    """One GRU + regressor call on the first ``m`` buffered features (1,m,2048); moves them to
    the outputs and carries the hidden state. False (nothing changed) on out-of-memory."""
    import torch

    try:
        with run.timings("generator_temporal"), torch.inference_mode():
            x = torch.from_numpy(np.stack(stream.buffer[:m]))[None]
            out, hidden = _temporal_once(run, model, x, stream.hidden)
            arrays = {key: out[key][0].float().cpu().numpy() for key in stream.outputs}
    except RuntimeError as exc:
        if not _is_oom(exc):
            raise
        return False
    for key, value in arrays.items():
        stream.outputs[key].append(value)
    stream.hidden = hidden
    del stream.buffer[:m]
    stream.done += m
    return True


def _temporal_once(run: _Run, model: Any, x: Any, hidden: Any) -> tuple[dict[str, Any], Any]:
    """GRU + regressor on x (1,T,2048) → (outputs (1,T,…), hidden); the temporal OOM test hook
    (config.OOM_TEMPORAL_ENV) raises for more than its limit of frames."""
    import torch

    limit = run.cfg.oom_temporal_above
    if limit is not None and x.shape[1] > limit:
        raise torch.cuda.OutOfMemoryError(
            f"CUDA out of memory (injected: temporal step of {x.shape[1]} frames > {limit})")
    y, hidden = model.encode(x, hidden)
    return model.regress(y, with_verts=False), hidden


def _shrink_temporal(run: _Run, failed: int) -> None:
    """Halve the GRU/regressor call size after ``failed`` frames ran out of memory;
    OutOfMemoryError when one frame already failed."""
    import torch

    if failed <= 1:
        raise OutOfMemoryError(f"the {run.cfg.device} device ran out of memory in the temporal step "
                               f"(GRU + regressor) even one frame at a time; {_oom_fix(run.cfg.device)}")
    run.temporal_frames = max(1, failed // 2)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _flush_batch(run: _Run, model: Any, backbone: _Backbone, crops: list, owners: list,
                 streams: list[_Stream]) -> None:
    """Backbone on the pending crops, features to their tracks, then full GRU chunks."""
    import torch

    from .crops import normalise

    if not crops:
        return
    with run.timings("crop"):
        batch = torch.from_numpy(np.ascontiguousarray(normalise(np.stack(crops))))
    with run.timings("generator_backbone"), torch.inference_mode():
        feats = backbone(batch)
    for k, feat in zip(owners, feats):
        streams[k].buffer.append(feat)
    for k in set(owners):
        _run_chunks(run, model, streams[k], final=False)
    crops.clear()
    owners.clear()


def _crops_at(frame: Any, streams: list[_Stream], crops: list, owners: list) -> None:
    """Crop every track present in this frame (tracks' frames are strictly increasing)."""
    from .crops import crop_image

    for k, s in enumerate(streams):
        frames = s.track.frames
        if s.next_row < len(frames) and frames[s.next_row] == frame.index:
            crops.append(crop_image(frame.image, s.track.bbox[s.next_row]))
            owners.append(k)
            s.next_row += 1


def _frames_until(run: _Run, reader: Any, last: int) -> Iterator[Any]:
    """Pass 2 of either backend: the video's frames up to index ``last``, decoded ahead in a
    background thread (the wait is timed as ``decode``)."""
    with Prefetcher(iter(reader)) as prefetched:
        frames = iter(prefetched)
        while True:
            with run.timings("decode"):
                frame = next(frames, None)
            if frame is None or frame.index > last:
                return
            if run.camera is not None:  # moving-camera estimation from the background (camera_motion)
                with run.timings("camera_motion"):
                    run.camera.add(frame.index, frame.image)
            yield frame


def features_pass(run: _Run, reader: Any, model: Any, tracks: list[Any]) -> list[_Stream]:
    """Pass 2: stream the video again; crops → batched backbone → per-track streaming GRU."""
    streams = [_Stream(t) for t in tracks]
    backbone = _Backbone(run, model)
    total = sum(len(t.frames) for t in tracks)
    if run.cfg.compiles(total):
        _compile(run, model, min(backbone.batch, total))
    last = max(int(t.frames[-1]) for t in tracks)
    crops: list[np.ndarray] = []
    owners: list[int] = []
    done = 0
    for frame in _frames_until(run, reader, last):
        with run.timings("crop"):
            _crops_at(frame, streams, crops, owners)
        if len(crops) >= backbone.batch:
            done += len(crops)
            _flush_batch(run, model, backbone, crops, owners, streams)
            run.writer.progress("features", done, total)
            run.token.check("features")
    done += len(crops)
    _flush_batch(run, model, backbone, crops, owners, streams)
    run.writer.progress("features", done, total)
    run.token.check("features")
    _check_complete(streams)
    return streams


def _compile(run: _Run, model: Any, batch: int) -> None:
    """Compile the backbone for ``batch`` crops (timed as ``compile``); eager on failure
    (e.g. no C++ compiler), with a ``COMPILE_FAILED`` warning."""
    with run.timings("compile"):
        model.compile_backbone()
        try:
            model.warm_up(batch)
        except Exception as exc:  # noqa: BLE001 - any Inductor failure: the eager model still works
            model.uncompile_backbone()
            log.warning("torch.compile failed, running eager: %s", exc)
            run.writer.warning("COMPILE_FAILED", f"torch.compile failed ({type(exc).__name__}: "
                               f"{str(exc)[:120]}); running without it (--compile off hides this)")


def _check_complete(streams: list[_Stream]) -> None:
    for s in streams:
        if s.next_row != len(s.track.frames):
            raise VideoError(f"the second pass over the video ended early (track {s.track.id}: "
                             f"{s.next_row} of {len(s.track.frames)} frames); the file changed or "
                             "cannot be decoded twice")


# ----------------------------------------------------------------------------- assembly


def _camera_meta(cfg: EngineConfig, info: Any) -> dict[str, Any]:
    from .intrinsics import camera_meta  # --focal, else the container's focal, else the default

    return camera_meta(cfg.focal_px, cfg.video, int(info.width), int(info.height))


def _robust_betas(betas: np.ndarray, confidence: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Median betas over confident detected frames (all frames when none is confident)."""
    good = detected & (confidence >= CONFIDENT_SCORE)
    return np.median(betas[good] if good.any() else betas, axis=0)


def assemble_track(stream: _Stream, times: np.ndarray, cam_meta: dict[str, Any]) -> mf.Track:
    """One motion-file track from the generator outputs and the tracker's boxes."""
    t = stream.track
    theta = np.concatenate(stream.outputs["theta"]).astype(np.float64)
    kp_3d = np.concatenate(stream.outputs["kp_3d"])
    kp_2d = np.concatenate(stream.outputs["kp_2d"])
    frames = np.asarray(t.frames, np.int64)
    bbox = np.asarray(t.bbox, np.float64)
    cam_crop, pose, betas = theta[:, :3], theta[:, 3:75].reshape(-1, 24, 3), theta[:, 75:]
    conf = np.asarray(t.confidence, np.float32)
    detected = np.asarray(t.detected, bool)
    w, h = cam_meta["width"], cam_meta["height"]
    return mf.Track(
        id=int(t.id), frames=frames, times=times[frames], pose=pose.astype(np.float32),
        betas=betas.astype(np.float32), betas_track=_robust_betas(betas, conf, detected).astype(np.float32),
        transl=camera.root_translation(cam_crop, bbox, cam_meta["focal_px"], cam_meta["cx"],
                                       cam_meta["cy"]).astype(np.float32),
        cam_crop=cam_crop.astype(np.float32), cam_orig=camera.orig_cam(cam_crop, bbox, w, h).astype(np.float32),
        bbox=bbox.astype(np.float32), joints3d=kp_3d.astype(np.float32),
        joints2d=camera.crop_to_image(kp_2d, bbox).astype(np.float32), confidence=conf, detected=detected)


def _versions() -> dict[str, str]:
    """Library versions for the manifest; torch's from its package metadata when the run did not
    load it (the BlazePose backend never imports torch)."""
    from .cli import torch_version

    torch = sys.modules.get("torch")
    return {"python": platform.python_version(), "torch": torch.__version__ if torch else torch_version(),
            "numpy": np.__version__}


def _video_meta(cfg: EngineConfig, info: Any, times: np.ndarray) -> dict[str, Any]:
    n = int(times.shape[0])
    duration = float(info.duration) if info.duration else float(times[-1])
    return {"path": str(cfg.video), "sha256": sha256_file(cfg.video), "width": int(info.width),
            "height": int(info.height), "rotation": int(info.rotation),
            "fps": float(n / duration) if duration > 0 else float(info.fps), "frames": n,
            "duration": duration, "vfr": bool(info.vfr)}


def build_motion(run: _Run, backend: Backend, info: Any, times: np.ndarray,
                 tracks: list[mf.Track]) -> mf.Motion:
    """The complete Motion (header, body model, tracks)."""
    cfg = run.cfg
    checkpoints = {name: sha256_file(p) for name, p in backend.files.items()}
    manifest = {"engine_version": __version__, "backend": backend.name, "device": cfg.device,
                "precision": cfg.precision, "settings": cfg.settings(), "checkpoints": checkpoints,
                "detect_every": cfg.detector_stride(backend.name) if cfg.boxes is None else None,
                **_versions()}
    meta = mf.new_meta(
        video=_video_meta(cfg, info, times), camera=_camera_meta(cfg, info), world={"world_from_camera": None},
        body=backend.body_meta, joints=backend.joints, manifest=manifest)
    return mf.Motion(meta=meta, body=backend.body, tracks=tracks)


def _postprocess(cfg: EngineConfig, motion: mf.Motion) -> None:
    """Smoothing, ground plane and foot locking as configured (raw output kept as *_raw)."""
    from .postprocess.run import PostSettings, postprocess

    settings = PostSettings(smooth=cfg.smooth, ground=cfg.ground, foot_lock=cfg.foot_lock)
    postprocess(motion, settings)
    motion.meta["manifest"]["postprocess"] = settings.as_dict()


# ----------------------------------------------------------------------------- backends


@dataclass
class Backend:
    """The pose backend of a run: ``vibe`` (VIBE generator) or ``blazepose`` (the default, no
    licensed files). ``files`` (name → path) are hashed into the manifest."""

    name: str
    model: Any
    body: mf.BodyModel
    body_meta: dict[str, Any]
    joints: dict[str, Any]
    files: dict[str, Path]


def load_backend(cfg: EngineConfig, info: Any) -> Backend:
    """VIBE when model files were given, else BlazePose with the stand-in body."""
    if cfg.models is not None:
        model = load_model(cfg)
        b = model.body
        body = mf.BodyModel(v_template=b.v_template, shapedirs=b.shapedirs, J_regressor=b.J_regressor,
                            weights=b.weights, parents=np.asarray(b.parents, np.int32),
                            faces=np.asarray(b.faces, np.int32), posedirs=b.posedirs)
        meta = {"kind": "smpl", "name": "SMPL neutral", "num_betas": body.num_betas,
                "source": "file" if cfg.models.body_model else "checkpoint",
                "licence": "SMPL-derived: the SMPL Model License applies (non-commercial)"}
        return Backend("vibe", model, body, meta, {"set": "spin49", "names": list(SPIN49_NAMES)},
                       cfg.models.named())
    return _load_blazepose(cfg, info)


def _load_blazepose(cfg: EngineConfig, info: Any) -> Backend:
    from .blazepose.backend import BlazePoseBackend
    from .blazepose.topology import LANDMARK_NAMES
    from .detect import DEFAULT_MODEL as DETECTOR_MODEL
    from .standin_body import DEFAULT_PATH, load_standin_body, motion_body_meta

    arrays = load_standin_body()
    bp = BlazePoseBackend(model=cfg.landmark_model, body=arrays, focal_px=_camera_meta(cfg, info)["focal_px"],
                          image_size=(info.width, info.height))
    body = mf.BodyModel(**{k: arrays[k] for k in ("v_template", "shapedirs", "J_regressor", "weights",
                                                   "parents", "faces")})
    files = {Path(p).name: Path(p) for p in (DETECTOR_MODEL, bp.model.path, DEFAULT_PATH)}
    return Backend("blazepose", bp, body, motion_body_meta(arrays),
                   {"set": "blazepose33", "names": list(LANDMARK_NAMES[:33])}, files)


def landmarks_pass(run: _Run, reader: Any, bp: Any, tracks: list[Any]) -> None:
    """BlazePose pass 2: stream the video again; landmarks for every track present in a frame."""
    rows = [0] * len(tracks)
    for t in tracks:
        bp.start_track(t.id, t.bbox[0])
    total, done, last = sum(len(t.frames) for t in tracks), 0, max(int(t.frames[-1]) for t in tracks)
    for frame in _frames_until(run, reader, last):
        for k, t in enumerate(tracks):
            if rows[k] < len(t.frames) and t.frames[rows[k]] == frame.index:
                with run.timings("landmarks"):
                    bp.add_frame(t.id, frame.index, frame.image, t.bbox[rows[k]])
                rows[k] += 1
                done += 1
        run.writer.progress("features", done, total)
        run.token.check("features")
    if rows != [len(t.frames) for t in tracks]:
        raise VideoError("the second pass over the video ended early; the file changed or cannot "
                         "be decoded twice")


#: BlazePose backend extras kept as optional motion-file members (docs/motion-file.md)
LANDMARK_MEMBERS = ("landmarks_image", "landmarks_world", "visibility", "presence")


def blazepose_tracks(run: _Run, bp: Any, tracks: list[Any], times: np.ndarray) -> list[mf.Track]:
    """Fit every track (the ``regress`` stage of the BlazePose backend).

    A track where BlazePose found no pose at all is dropped with a warning; NoPersonError when
    that leaves none. The raw landmarks the fit used are kept as optional motion-file members.
    """
    out = []
    for k, t in enumerate(tracks):
        with run.timings("fit"):
            try:
                arrays = bp.finish_track(t.id)
            except NoPersonError as exc:
                run.writer.warning("NO_POSE_TRACK_DROPPED", str(exc))
                continue
        raw = arrays.pop("extra", {})
        kept = {name: raw[name] for name in LANDMARK_MEMBERS if name in raw}
        out.append(mf.Track(id=int(t.id), times=times[arrays["frames"]], extra=kept, **arrays))
        run.writer.progress("regress", k + 1, len(tracks))
        run.token.check("regress")
    if not out:
        raise NoPersonError("BlazePose found no body pose in any tracked person; use a video where "
                            "people are seen whole, or the VIBE backend (--vibe-data)")
    return out


def vibe_tracks(run: _Run, reader: Any, model: Any, tracks: list[Any], info: Any,
                times: np.ndarray) -> list[mf.Track]:
    """VIBE: pass 2 (``features``), then the tracks' last chunks and camera maths (``regress``)."""
    streams = features_pass(run, reader, model, tracks)
    run.writer.stage("regress")
    for k, s in enumerate(streams):
        _run_chunks(run, model, s, final=True)
        run.writer.progress("regress", k + 1, len(streams))
        run.token.check("regress")
    cam_meta = _camera_meta(run.cfg, info)
    return [assemble_track(s, times, cam_meta) for s in streams]


# ----------------------------------------------------------------------------- run


def _open(run: _Run) -> Any:
    from .video import open_video

    return open_video(run.cfg.video, on_warning=lambda m: run.writer.warning("VIDEO", m))


def run_pipeline(cfg: EngineConfig, writer: ProtocolWriter, token: CancelToken) -> RunResult:
    """Run every stage; raises EngineError subclasses (CancelledError on cancel)."""
    run = _Run(cfg, writer, token)
    writer.stage("decode")
    check_output_path(cfg.out)
    check_video_path(cfg.video)
    with _open(run) as reader:
        log.info("video %s: %s", cfg.video.name, reader.info)
        token.check("decode")
        with run.timings("load_model"):
            source = PersonSource(cfg)
            backend = load_backend(cfg, reader.info)
            source.every = cfg.detector_stride(backend.name)
        token.check("decode")
        writer.stage("detect")
        info, times, all_tracks = detect_and_track(run, reader, source)
        writer.stage("track")
        token.check("track")
        tracks = select_tracks(run, all_tracks)
        writer.stage("features")
        run.camera = camera_motion.start(cfg.camera, info.width, info.height,
                                         _camera_meta(cfg, info)["focal_px"], tracks)
        if backend.name == "vibe":
            motion_tracks = vibe_tracks(run, reader, backend.model, tracks, info, times)
        else:
            landmarks_pass(run, reader, backend.model, tracks)
            writer.stage("regress")
            motion_tracks = blazepose_tracks(run, backend.model, tracks, times)
    writer.stage("write")
    motion = build_motion(run, backend, info, times, motion_tracks)
    if run.camera is not None and (msg := camera_motion.attach(motion, run.camera, cfg.camera)):
        writer.warning("CAMERA_STATIC_FALLBACK", msg)
    return _write(run, motion)


def _write(run: _Run, motion: mf.Motion) -> RunResult:
    """Post-process and write the motion file atomically (the ``write`` stage)."""
    with run.timings("postprocess"):
        _postprocess(run.cfg, motion)
    for w in motion.meta.get("world", {}).get("warnings", []):  # e.g. NO_GROUND (vibe_engine.world)
        run.writer.warning(w["code"], w["message"])
    motion.meta["manifest"]["timings_s"] = {k: round(v, 4) for k, v in run.timings.seconds.items()}
    run.token.check("write")
    with run.timings("write"):
        mf.write_motion(run.cfg.out, motion)
    people = [mf.track_summary(t) for t in motion.tracks]
    video = motion.meta["video"]
    return RunResult(run.cfg.out, [{k: p[k] for k in ("id", "frames", "first", "last")} for p in people],
                     video["fps"], int(video["frames"]), run.timings.seconds)
