"""The free pose backend: BlazePose landmarks per tracked person → SMPL motion per track.

Usage by the pipeline (streaming; one backend per run, any number of interleaved tracks)::

    backend = BlazePoseBackend(model="full", body=body_arrays, focal_px=f, image_size=(W, H))
    backend.start_track(tid, first_bbox)                  # bbox = (cx, cy, w, h) displayed px
    lm = backend.add_frame(tid, frame_index, rgb, bbox)   # per frame; keeps the ROI state
    # optional: add_frame(..., alignment=detector keypoints 0,1 (2,2) px) seeds a rotated ROI
    arrays = backend.finish_track(tid)                     # dict for the motion file's Track

``body``: SMPL-format arrays (``v_template`` (V,3), ``shapedirs`` (V,3,B), ``J_regressor`` (24,V),
``parents`` (24,)), e.g. the stand-in body. With ``shape`` (a :class:`~vibe_engine.blazepose.shape.ShapeConfig`)
each track's betas are estimated from its world-landmark proportions (:mod:`vibe_engine.blazepose.shape`)
and the track is fitted with that body's skeleton; with ``shape=None`` (the default,
``DEFAULT_SHAPE``: the estimate did not improve the synthetic suite) every track keeps the body's
mean shape (betas = 0).

``add_frame`` returns the frame's :class:`~vibe_engine.blazepose.landmarks.PoseLandmarks`
(33 image landmarks in pixels with relative z, 33 world landmarks in metres, visibility,
presence, pose presence score, ROI). The ROI follows MediaPipe: from the previous frame's
landmarks while the pose stays present and its centre stays inside the tracker box, otherwise from
the detector's alignment keypoints if given (rotated ROI), else from the upright tracker box
(``landmarks.RoiTracker``). A gap in the frame indices restarts the ROI from the box.
Limitation: an upright box seed cannot start a lying/upside-down person (the model expects the
body upright in the crop); pass ``alignment`` for those.

``finish_track`` fits the whole track (``fit.fit_track``) and returns, T = frames added:

=============== ============ ===================================================================
key             shape        content
=============== ============ ===================================================================
frames          (T,) int64   frame indices as passed to ``add_frame``
pose            (T,24,3) f32 SMPL axis-angle; joint 0 = global orientation in the camera frame
betas           (T,B) f32    the track's betas on every row (B = body's shapedirs); zeros with shape=None
betas_track     (B,) f32     the track's betas (``shape.estimate_betas``), the shape the fit used
transl          (T,3) f32    root translation, OpenCV camera frame, metres (smplx convention)
joints3d        (T,33,3) f32 the fitted body's 33 BlazePose-topology markers, camera frame,
                             without ``transl`` (as VIBE's kp_3d); names: topology.LANDMARK_NAMES
joints2d        (T,33,2) f32 ``joints3d + transl`` projected through the pinhole camera (px)
confidence      (T,) f32     BlazePose pose presence score; 0 where the pose was not found
detected        (T,) bool    True where the landmark model found the pose (score ≥ 0.5)
bbox            (T,4) f32    the tracker boxes passed in (cx, cy, w, h)
cam_crop        (T,3) f32    the VIBE-style weak-perspective crop camera (s, tx, ty) equivalent to
                             ``transl`` for the crop of side 1.1·h around the box (exact inverse of
                             docs/motion-file.md "Camera maths": s = 2f/(1.1·h·tz),
                             tx = t.x − (bx−cx)·tz/f, ty = t.y − (by−cy)·tz/f)
cam_orig        (T,4) f32    ``camera.orig_cam(cam_crop, bbox, W, H)`` (the official formula)
extra           dict         raw observations: ``landmarks_image`` (T,33,3) px (z relative,
                             pixel scale), ``landmarks_world`` (T,33,3) m, ``visibility`` (T,33),
                             ``presence`` (T,33), ``roi`` (T,4) (cx, cy, side px, rotation rad),
                             ``mirrored`` (T,) bool: frames whose left/right reading was swapped
                             back before the fit (``fit.resolve_flips``; the raw arrays are as
                             the model gave them),
                             ``world_scale`` (1,) fitted body/BlazePose size ratio; NaN rows where
                             the pose was not found
=============== ============ ===================================================================
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from typing import TYPE_CHECKING

from vibe_engine.world import camera
from vibe_engine.blazepose import model as fit_model
from vibe_engine.blazepose import topology as topo
from vibe_engine.blazepose.landmarks import DEFAULT_THREADS, LandmarkModel, PoseLandmarks, RoiTracker
from vibe_engine.errors import BadInputError, ModelError, NoPersonError

if TYPE_CHECKING:  # fit and shape import SciPy (~0.5 s): loaded when the first track is fitted
    from vibe_engine.blazepose import shape as body_shape

log = logging.getLogger(__name__)

#: Depth floor for the crop-camera conversion (metres).
MIN_DEPTH_M = 0.1
#: Per-track shape estimation by default; None: every track keeps the body's mean shape, because
#: the estimate did not improve the synthetic suite (measurements: ``shape`` module docstring).
DEFAULT_SHAPE: body_shape.ShapeConfig | None = None


@dataclass
class _TrackState:
    roi: RoiTracker
    frames: list[int] = field(default_factory=list)
    bboxes: list[np.ndarray] = field(default_factory=list)
    landmarks: list[PoseLandmarks] = field(default_factory=list)


class BlazePoseBackend:
    """Per-track BlazePose landmarks + SMPL fit (see the module docstring for the arrays)."""

    def __init__(self, model: str = "full", body: Mapping[str, np.ndarray] | None = None,
                 focal_px: float | None = None, image_size: tuple[int, int] = (1920, 1080),
                 principal_point: tuple[float, float] | None = None,
                 num_threads: int = DEFAULT_THREADS, fit_config: fit_model.FitConfig | None = None,
                 shape: body_shape.ShapeConfig | None = DEFAULT_SHAPE) -> None:
        if body is None:
            raise BadInputError("the BlazePose backend needs a body model (SMPL-format arrays); "
                                "pass the stand-in body or an SMPL model")
        self.width, self.height = int(image_size[0]), int(image_size[1])
        self.focal = float(focal_px) if focal_px else camera.default_focal(self.width, self.height)
        self.cx, self.cy = principal_point or (self.width / 2.0, self.height / 2.0)
        self.model = LandmarkModel(model, num_threads=num_threads)
        try:
            self.skeleton = fit_model.Skeleton.from_body(body)
            self.num_betas = int(np.asarray(body["shapedirs"]).shape[2])
            self.shape_model = None
            if shape is not None:
                from vibe_engine.blazepose import shape as body_shape

                self.shape_model = body_shape.ShapeModel.from_body(body)
        except (KeyError, ValueError, IndexError) as exc:
            raise ModelError(f"the body model cannot drive the BlazePose fit ({exc}); pass an "
                             f"SMPL-format body (24 joints, SMPL kinematic tree)") from exc
        self.fit_config = fit_config or fit_model.FitConfig()
        self.body, self.shape_config = body, shape
        self._tracks: dict[int, _TrackState] = {}

    def start_track(self, track_id: int, first_bbox: np.ndarray) -> None:
        """Begin a track. ``first_bbox`` (cx, cy, w, h) px is accepted for symmetry with the other
        backend; the ROI is seeded from the box (or keypoints) passed with the first frame."""
        self._tracks[int(track_id)] = _TrackState(roi=RoiTracker(self.model))

    def add_frame(self, track_id: int, frame_index: int, image_rgb: np.ndarray, bbox: np.ndarray,
                  alignment: np.ndarray | None = None, model: LandmarkModel | None = None) -> PoseLandmarks:
        """Run the landmark model for one person in one frame ((H,W,3) uint8 RGB, displayed).

        ``alignment``: optional (2,2) px detector keypoints 0 and 1 (hip centre, body-circle point)
        of this person, used to seed a rotated ROI when the track (re)starts. ``model``: another
        interpreter of the same file (a worker thread's own; default ``self.model``). Different
        tracks may be added from different threads at once, one track from one thread at a time.
        """
        state = self._tracks.get(int(track_id))
        if state is None:
            raise KeyError(f"track {track_id} was not started")
        box = np.asarray(bbox, dtype=np.float32).reshape(4)
        if state.frames and frame_index != state.frames[-1] + 1:
            state.roi.reset()  # a gap in the track: the person was lost, re-seed from the box
        lm = state.roi.step(image_rgb, box, None if alignment is None else np.asarray(alignment, np.float64),
                            model=model)
        state.frames.append(int(frame_index))
        state.bboxes.append(box)
        state.landmarks.append(lm)
        return lm

    def finish_track(self, track_id: int) -> dict:
        """Fit the track and return the motion-file arrays (see the module docstring).

        Raises NoPersonError when the pose was found in none of its frames (drop the track).
        """
        from vibe_engine.blazepose import fit

        state = self._tracks.pop(int(track_id))
        raw = _stack_landmarks(state.landmarks)
        if not raw["detected"].any():
            raise NoPersonError(f"track {track_id}: BlazePose found no pose in any of its "
                                f"{len(state.frames)} frames; check the video or the person boxes")
        obs = fit.Observations(world=raw["world"], image=raw["image"][..., :2], weight=raw["weight"],
                               focal_px=self.focal, cx=self.cx, cy=self.cy)
        obs, raw["mirrored"] = fit.resolve_flips(obs)
        if raw["mirrored"].any():
            log.info("track %s: %d frames read back to front by BlazePose were relabelled",
                     track_id, int(raw["mirrored"].sum()))
        betas = self._betas(obs)
        skeleton = fit_model.Skeleton.from_body(self.body, betas) if betas.any() else self.skeleton
        res = fit.fit_track(obs, skeleton, self.fit_config)
        bbox = np.stack(state.bboxes).astype(np.float32)
        return self._arrays(state, raw, res, bbox, betas)

    def _betas(self, obs: fit_model.Observations) -> np.ndarray:
        """(B,) float32 betas of one track: estimated, or zeros when shape estimation is off."""
        if self.shape_model is None:
            return np.zeros(self.num_betas, np.float32)
        from vibe_engine.blazepose import shape as body_shape

        return body_shape.estimate_betas(obs.world, obs.weight, self.shape_model, self.shape_config)

    def _arrays(self, state: _TrackState, raw: dict, res: fit_model.FitResult, bbox: np.ndarray,
                betas: np.ndarray) -> dict:
        t = len(state.frames)
        cam_crop = crop_camera(res.transl, bbox, self.focal, self.cx, self.cy)
        joints2d = camera.project_pinhole(res.markers + res.transl[:, None], self.focal, self.cx, self.cy)
        return {
            "frames": np.asarray(state.frames, dtype=np.int64), "pose": res.pose,
            "betas": np.tile(betas.astype(np.float32), (t, 1)),
            "betas_track": betas.astype(np.float32), "transl": res.transl.astype(np.float32),
            "joints3d": res.markers.astype(np.float32), "joints2d": joints2d.astype(np.float32),
            "confidence": np.where(raw["detected"], raw["score"], 0.0).astype(np.float32),
            "detected": raw["detected"], "bbox": bbox, "cam_crop": cam_crop.astype(np.float32),
            "cam_orig": camera.orig_cam(cam_crop, _square(bbox), self.width, self.height).astype(np.float32),
            "extra": {"landmarks_image": raw["image"], "landmarks_world": raw["world"],
                      "visibility": raw["visibility"], "presence": raw["presence"], "roi": raw["roi"],
                      "mirrored": raw["mirrored"],
                      "world_scale": np.array([res.world_scale], np.float32)},
        }


def _square(bbox: np.ndarray) -> np.ndarray:
    """(T,4) boxes with h replaced by the longer side (the tracker's boxes are square already)."""
    out = np.array(bbox, dtype=np.float64)
    out[:, 2] = out[:, 3] = np.maximum(out[:, 2], out[:, 3])
    return out


def crop_camera(transl: np.ndarray, bbox: np.ndarray, focal: float, cx: float, cy: float,
                scale: float = camera.CROP_SCALE) -> np.ndarray:
    """(T,3) VIBE crop camera (s, tx, ty) equivalent to root translations (T,3) for the boxes.

    Exact inverse of ``camera.root_translation``: tz = 2f/(scale·h·s).
    """
    t = np.asarray(transl, dtype=np.float64)
    box = _square(bbox)
    tz = np.maximum(t[:, 2], MIN_DEPTH_M)
    s = 2.0 * focal / (scale * box[:, 2] * tz)
    return np.stack([s, t[:, 0] - (box[:, 0] - cx) * tz / focal, t[:, 1] - (box[:, 1] - cy) * tz / focal], -1)


def _stack_landmarks(lms: list[PoseLandmarks]) -> dict[str, np.ndarray]:
    """Stack per-frame landmarks; frames without a pose get NaN positions and zero weight."""
    t, n = len(lms), topo.NUM_LANDMARKS
    out = {"image": np.full((t, n, 3), np.nan, np.float32), "world": np.full((t, n, 3), np.nan, np.float32),
           "visibility": np.zeros((t, n), np.float32), "presence": np.zeros((t, n), np.float32),
           "score": np.array([lm.score for lm in lms], np.float32),
           "roi": np.array([[lm.roi.cx, lm.roi.cy, lm.roi.size, lm.roi.rotation] for lm in lms], np.float32)}
    out["detected"] = out["score"] >= 0.5
    for i, lm in enumerate(lms):
        if out["detected"][i]:
            out["image"][i], out["world"][i] = lm.image, lm.world
            out["visibility"][i], out["presence"][i] = lm.visibility, lm.presence
    out["weight"] = out["visibility"] * out["presence"]
    return out
