"""The VIBE backend of the pipeline (``vibe_engine.backend.Backend``): licensed model files.

Pass 2: for every track present in a frame, the crop (``crops.crop_image``); backbone features
batched across tracks (``cfg.batch_size`` crops, ``streaming.Backbone``); per track, full GRU
chunks as they fill (``streaming.Temporal``). Only small per-frame outputs are kept (theta, 49
joints), never vertices. ``regress``: each track's last partial chunk, then the camera maths
(``vibe_engine.world.camera``) into a motion-file track.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vibe_blender.core import motion_file as mf
from vibe_engine.world import camera
from vibe_engine.backend import RunContext
from vibe_engine.models.crops import crop_image, normalise
from vibe_engine.errors import BadInputError, ModelError
from vibe_engine.model_files import model_file_problem
from vibe_engine.models import load_generator
from vibe_engine.models.discriminator import add_realism
from vibe_engine.models.compiled import EMULATED_BF16, bf16_is_emulated
from vibe_engine.models.streaming import Backbone, Stream, Temporal, compile_backbone

#: Frames whose detector score is at least this are "confident" for the per-track betas median.
CONFIDENT_SCORE = 0.5
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


def load_model(cfg: Any) -> Any:
    """Load the VIBE generator; ModelError (exit 4) for unreadable or foreign checkpoints."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    m = cfg.models
    for name, path in m.named().items():
        problem = model_file_problem(path)
        if problem:
            raise ModelError(f"{name} {problem}; replace it with the official file from the VIBE data download")
    try:
        return load_generator(m.vibe_checkpoint, m.spin_checkpoint, body_model=m.body_model,
                              device=cfg.device, precision=cfg.precision)
    except (ModelError, BadInputError):
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure means the file is unusable
        raise ModelError(f"cannot load the VIBE checkpoint {m.vibe_checkpoint.name} "
                         f"({type(exc).__name__}: {str(exc)[:160]}); pass the official "
                         "vibe_model_wo_3dpw.pth.tar") from exc


def robust_betas(betas: np.ndarray, confidence: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Median betas (B,) of betas (T,B) over confident detected frames (all frames when none is)."""
    good = detected & (confidence >= CONFIDENT_SCORE)
    return np.median(betas[good] if good.any() else betas, axis=0)


def assemble_track(stream: Stream, times: np.ndarray, cam_meta: dict[str, Any]) -> mf.Track:
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
        betas=betas.astype(np.float32), betas_track=robust_betas(betas, conf, detected).astype(np.float32),
        transl=camera.root_translation(cam_crop, bbox, cam_meta["focal_px"], cam_meta["cx"],
                                       cam_meta["cy"]).astype(np.float32),
        cam_crop=cam_crop.astype(np.float32), cam_orig=camera.orig_cam(cam_crop, bbox, w, h).astype(np.float32),
        bbox=bbox.astype(np.float32), joints3d=kp_3d.astype(np.float32),
        joints2d=camera.crop_to_image(kp_2d, bbox).astype(np.float32), confidence=conf, detected=detected)


def motion_body(model: Any) -> mf.BodyModel:
    """The motion file's body model from the generator's SMPL arrays."""
    b = model.body
    return mf.BodyModel(v_template=b.v_template, shapedirs=b.shapedirs, J_regressor=b.J_regressor,
                        weights=b.weights, parents=np.asarray(b.parents, np.int32),
                        faces=np.asarray(b.faces, np.int32), posedirs=b.posedirs)


@dataclass
class _Pending:
    """Crops (224,224,3) waiting for the next backbone batch and the stream each belongs to."""

    crops: list[np.ndarray]
    owners: list[Stream]


class VibeBackend:
    """VIBE generator over the tracks of pass 2 (see the module docstring)."""

    name = "vibe"

    def __init__(self, ctx: RunContext, model: Any, cam_meta: dict[str, Any]) -> None:
        cfg = ctx.cfg
        self.ctx, self.model, self.cam_meta = ctx, model, cam_meta
        self.body = motion_body(model)
        self.body_meta = {"kind": "smpl", "name": "SMPL neutral", "num_betas": self.body.num_betas,
                          "source": "file" if cfg.models.body_model else "checkpoint",
                          "licence": "SMPL-derived: the SMPL Model License applies (non-commercial)"}
        self.joints = {"set": "spin49", "names": list(SPIN49_NAMES)}
        self.files: dict[str, Path] = cfg.models.named()
        self.backbone = Backbone(ctx, model)
        self.temporal = Temporal(ctx, model)
        self.streams: dict[int, Stream] = {}
        self.pending = _Pending([], [])
        self.done = 0

    @classmethod
    def load(cls, ctx: RunContext, info: Any) -> VibeBackend:
        """Load the model files of ``ctx.cfg.models`` for a video of ``info``'s size."""
        cam = camera.camera_meta(info.width, info.height, ctx.cfg.focal_px, ctx.cfg.video)
        if bf16_is_emulated(ctx.cfg.device, ctx.cfg.precision):
            ctx.writer.warning("SLOW_PRECISION", EMULATED_BF16)
        return cls(ctx, load_model(ctx.cfg), cam)

    def start(self, tracks: list[Any]) -> None:
        self.streams = {int(t.id): Stream(t) for t in tracks}
        total = sum(len(t.frames) for t in tracks)
        if self.ctx.cfg.compile != "off":  # the AOTInductor artefact: loaded if cached, built if worth it
            compile_backbone(self.ctx, self.model, self.backbone.batch, build=self.ctx.cfg.compiles(total))

    def add_frame(self, track: Any, row: int, image: np.ndarray) -> None:
        with self.ctx.timings("crop"):
            self.pending.crops.append(crop_image(image, track.bbox[row]))
        self.pending.owners.append(self.streams[int(track.id)])

    def end_frame(self) -> int:
        if len(self.pending.crops) >= self.backbone.batch:
            self._flush()
        return self.done

    def end_pass(self) -> int:
        self._flush()
        return self.done

    def finish_track(self, track: Any, times: np.ndarray) -> mf.Track:
        stream = self.streams.pop(int(track.id))
        self.temporal.run_chunks(stream, final=True)
        return assemble_track(stream, times, self.cam_meta)

    def score_motion(self, motion: mf.Motion) -> None:
        with self.ctx.timings("realism"):
            add_realism(motion, self.model.motion_discriminator)

    def _flush(self) -> None:
        """Backbone on the pending crops, features to their streams, then full GRU chunks."""
        crops, owners = self.pending.crops, self.pending.owners
        if not crops:
            return
        with self.ctx.timings("crop"):
            batch = torch.from_numpy(np.ascontiguousarray(normalise(np.stack(crops))))
        with self.ctx.timings("generator_backbone"), torch.inference_mode():
            feats = self.backbone(batch)
        for stream, feat in zip(owners, feats):
            stream.buffer.append(feat)
        for stream in {id(s): s for s in owners}.values():
            self.temporal.run_chunks(stream, final=False)
        self.done += len(crops)
        self.pending = _Pending([], [])
