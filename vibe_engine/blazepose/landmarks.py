"""BlazePose landmark model runner (``pose_landmark_{lite,full,heavy}.tflite``) and its ROI logic.

Runs the Apache-2.0 MediaPipe models directly with ``ai_edge_litert`` (no MediaPipe package).
Every number below is taken from MediaPipe's graphs (``pose_landmark_by_roi_cpu.pbtxt``,
``pose_landmark_by_roi_post_processing.pbtxt``, ``pose_landmarks_to_roi.pbtxt``) and calculators:

Pre-processing (``ImageToTensorCalculator``): the ROI is a rotated rectangle (centre, size,
rotation in radians); it is warped to a 256×256 RGB tensor (bilinear, ``BORDER_REPLICATE``, the
default border mode), float32 in [0, 1]. ``keep_aspect_ratio`` letterboxes non-square ROIs; our ROIs
are always square in pixels (``square_long``), so the letterbox padding is zero.

Model outputs (by tensor order): 0 landmarks (1,195) = 39 × (x, y, z, visibility, presence) with
x, y, z in 256-pixel tensor units and raw logits for visibility/presence; 1 pose flag (1,1), the
pose presence score (a probability; < 0.5 means "no pose"); 2 segmentation (unused);
3 heatmap (1,64,64,39) logits; 4 world landmarks (1,117) = 39 × xyz in metres.

Post-processing: visibility = sigmoid, presence = sigmoid; x, y, z divided by 256; refinement from
the heatmap (``RefineLandmarksFromHeatmapCalculator``: kernel 7, sigmoid weights, refine only when
the kernel's max confidence ≥ 0.5, centroid = Σ col·c / Σ c / 64); projection back to the image
(``LandmarkProjectionCalculator``): (x−½, y−½) rotated by the ROI rotation, times the ROI size,
plus the ROI centre; z is scaled like x (times the ROI width). World landmarks
(``WorldLandmarkProjectionCalculator``) are rotated in x, y by the ROI rotation, so they are in
the *image-aligned* frame whatever the ROI rotation was: x right, y down, z away from the camera
(smaller z = closer), metres, origin at the hip centre. Visibility/presence are copied to them.

ROI tracking (``pose_landmarks_to_roi.pbtxt``): from auxiliary landmarks 33 (centre) and 34
(scale/rotation point): ``AlignmentPointsRectsCalculator`` (centre = point 33, side = 2·|p34−p33|
in pixels, rotation = 90° − atan2(−dy, dx), normalised to [−π, π)), then
``RectTransformationCalculator`` (``square_long``, scale 1.25; older copies of the graph, from the
upper-body era, say 1.5: with 1.5 the full-body models' ROI grows frame after frame).

The first ROI of a track comes from the tracker's box instead (MediaPipe would use its own
detector): centre = box centre, side = ``BOX_ROI_SCALE`` × the box's longer side, rotation 0;
then the landmarks of that pass give the landmark ROI and the frame is run a second time.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vibe_engine.blazepose.topology import NUM_LANDMARKS, NUM_MODEL_LANDMARKS
from vibe_engine.errors import ModelError

log = logging.getLogger(__name__)

INPUT_SIZE = 256
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5
POSE_PRESENCE_THRESHOLD = 0.5
LANDMARK_ROI_SCALE = 1.25
ROI_TARGET_ANGLE_RAD = math.pi / 2.0
#: Box → first ROI: side = this × the box's longer side (the tracked landmark ROIs measured on the
#: demo clip were 1.2–1.5 × the person's box height).
BOX_ROI_SCALE = 1.4
#: Detector keypoints → ROI (pose_detection_to_roi.pbtxt: keypoint 0 hip centre, 1 scale point).
DETECTION_ROI_SCALE = 1.25
DEFAULT_THREADS = 2
MODEL_FILES = {"lite": "pose_landmark_lite.tflite", "full": "pose_landmark_full.tflite",
               "heavy": "pose_landmark_heavy.tflite"}
#: Environment variable naming an extra folder searched for the model files (e.g. for heavy).
MODELS_DIR_ENV = "VIBE_MOCAP_MODELS"
ASSET_MODELS_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"


@dataclass(frozen=True)
class Roi:
    """A rotated square region of interest in displayed-image pixels.

    cx, cy: centre (px); size: side (px); rotation: radians, positive turns the ROI's x axis from
    the image's x axis towards the image's y axis (clockwise on screen).
    """

    cx: float
    cy: float
    size: float
    rotation: float = 0.0

    def tensor_to_image(self) -> np.ndarray:
        """(2,3) float64 affine: 256-px tensor coordinates → image pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        k = self.size / INPUT_SIZE
        lin = np.array([[c, -s], [s, c]]) * k
        off = np.array([self.cx, self.cy]) - lin @ np.array([INPUT_SIZE / 2.0, INPUT_SIZE / 2.0])
        return np.hstack([lin, off[:, None]])


@dataclass
class PoseLandmarks:
    """One frame's landmarks for one person.

    image: (33,3) float32, x, y in displayed-image pixels, z in the same pixel scale relative to the
    hip centre's depth (smaller = closer). world: (33,3) float32 metres, hip-centred, image-aligned
    axes (x right, y down, z away from the camera). visibility, presence: (33,) float32 in [0,1].
    score: pose presence probability. aux: (2,2) float32 pixels (ROI alignment points). roi: the
    ROI the model ran on.
    """

    image: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    presence: np.ndarray
    score: float
    aux: np.ndarray
    roi: Roi

    @property
    def present(self) -> bool:
        """True when the pose presence score passes MediaPipe's 0.5 threshold."""
        return self.score >= POSE_PRESENCE_THRESHOLD


def normalize_radians(angle: float) -> float:
    """Wrap an angle to [−π, π) as MediaPipe's NormalizeRadians."""
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


def roi_from_alignment(center: np.ndarray, scale_point: np.ndarray,
                       scale: float = LANDMARK_ROI_SCALE) -> Roi:
    """ROI from two alignment points in pixels (AlignmentPointsRects + RectTransformation)."""
    dx, dy = float(scale_point[0] - center[0]), float(scale_point[1] - center[1])
    side = 2.0 * math.hypot(dx, dy)
    rotation = normalize_radians(ROI_TARGET_ANGLE_RAD - math.atan2(-dy, dx))
    return Roi(float(center[0]), float(center[1]), side * scale, rotation)


def roi_from_bbox(bbox_cxcywh: np.ndarray, scale: float = BOX_ROI_SCALE) -> Roi:
    """Upright square ROI around a tracker box (cx, cy, w, h) in pixels."""
    cx, cy, w, h = (float(v) for v in bbox_cxcywh)
    return Roi(cx, cy, max(w, h) * scale, 0.0)


def resolve_model_path(model: str) -> Path:
    """Path of the named landmark model ('lite' | 'full' | 'heavy') or of a given .tflite file.

    Searched: ``$VIBE_MOCAP_MODELS`` then ``assets/models/``. Raises ModelError naming the fix.
    """
    if model.endswith(".tflite"):
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"BlazePose model file not found: {path}; pass an existing .tflite")
        return path
    if model not in MODEL_FILES:
        raise ModelError(f"unknown BlazePose model {model!r}; choose one of lite, full, heavy")
    dirs = [Path(os.environ[MODELS_DIR_ENV])] if os.environ.get(MODELS_DIR_ENV) else []
    for folder in [*dirs, ASSET_MODELS_DIR]:
        if (folder / MODEL_FILES[model]).is_file():
            return folder / MODEL_FILES[model]
    raise ModelError(
        f"BlazePose model {MODEL_FILES[model]} not found in {ASSET_MODELS_DIR}; get it from the npm "
        f"package @mediapipe/pose@0.5.1675469404 ('npm pack @mediapipe/pose@0.5.1675469404', untar, "
        f"package/{MODEL_FILES[model]}) and copy it into that folder or into ${MODELS_DIR_ENV}")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, float32."""
    return (1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float32)))).astype(np.float32)


def refine_from_heatmap(xy_norm: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """Heatmap refinement of (N,2) normalised tensor coordinates; heatmap (64,64,N) logits.

    Landmarks whose kernel window lies inside the heatmap are refined together (the same float
    operations, in the same order, as one at a time); the few at the border one by one.
    """
    hm_h, hm_w, n = heatmap.shape
    half = (HEATMAP_KERNEL - 1) // 2
    col = np.trunc(xy_norm[:, 0] * hm_w).astype(np.int64)  # C++ int() truncates towards zero
    row = np.trunc(xy_norm[:, 1] * hm_h).astype(np.int64)
    out = xy_norm.copy()
    inner = (col >= half) & (col < hm_w - half) & (row >= half) & (row < hm_h - half)
    if inner.any():
        _refine_inner(out, np.flatnonzero(inner), row, col, heatmap)
    border = (col >= 0) & (col < hm_w) & (row >= 0) & (row < hm_h) & ~inner
    for k in np.flatnonzero(border):
        _refine_one(out, int(k), int(row[k]), int(col[k]), heatmap)
    return out


def _refine_inner(out: np.ndarray, idx: np.ndarray, row: np.ndarray, col: np.ndarray,
                  heatmap: np.ndarray) -> None:
    """Refine landmarks ``idx`` whose whole kernel window is inside the heatmap, in place."""
    hm_h, hm_w, _ = heatmap.shape
    steps = np.arange(HEATMAP_KERNEL) - (HEATMAP_KERNEL - 1) // 2
    rows, cols = row[idx, None] + steps, col[idx, None] + steps  # (M, K)
    conf = sigmoid(heatmap[rows[:, :, None], cols[:, None, :], idx[:, None, None]])  # (M, K, K)
    flat = conf.reshape(len(idx), -1)
    total = flat.sum(axis=1).astype(np.float64)  # float32 sums, as conf.sum() per window
    grid_r = np.broadcast_to(rows[:, :, None], conf.shape).reshape(len(idx), -1)
    grid_c = np.broadcast_to(cols[:, None, :], conf.shape).reshape(len(idx), -1)
    cx = (grid_c * flat).sum(axis=1) / hm_w / total
    cy = (grid_r * flat).sum(axis=1) / hm_h / total
    ok = (flat.max(axis=1) >= HEATMAP_MIN_CONFIDENCE) & (total > 0)
    out[idx[ok]] = np.stack([cx, cy], axis=1)[ok]


def _refine_one(out: np.ndarray, k: int, row: int, col: int, heatmap: np.ndarray) -> None:
    """Refine landmark ``k`` (cell row, col inside the heatmap; window clipped), in place."""
    hm_h, hm_w, _ = heatmap.shape
    half = (HEATMAP_KERNEL - 1) // 2
    r0, r1 = max(0, row - half), min(hm_h, row + half + 1)
    c0, c1 = max(0, col - half), min(hm_w, col + half + 1)
    conf = sigmoid(heatmap[r0:r1, c0:c1, k])
    total = float(conf.sum())
    if conf.max() >= HEATMAP_MIN_CONFIDENCE and total > 0:
        rows, cols = np.mgrid[r0:r1, c0:c1]
        out[k] = ((cols * conf).sum() / hm_w / total, (rows * conf).sum() / hm_h / total)


class LandmarkModel:
    """One BlazePose landmark interpreter (not thread-safe; one per worker).

    model: 'lite' | 'full' | 'heavy' or a path to a .tflite; num_threads: interpreter threads.
    """

    def __init__(self, model: str = "full", num_threads: int = DEFAULT_THREADS) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = resolve_model_path(model)
        try:
            self._interp = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load BlazePose model {self.path}: {exc}; "
                             f"replace the file with the original .tflite") from exc
        self._input = self._interp.get_input_details()[0]["index"]
        outs = self._interp.get_output_details()
        self._outputs = [d["index"] for d in outs]
        if [int(np.prod(d["shape"])) for d in outs][:2] != [NUM_MODEL_LANDMARKS * 5, 1]:
            raise ModelError(f"{self.path} is not a BlazePose landmark model (unexpected outputs)")

    def crop(self, image_rgb: np.ndarray, roi: Roi) -> np.ndarray:
        """(256,256,3) float32 in [0,1]: the ROI warped upright (MediaPipe's ImageToTensor)."""
        img_from_tensor = roi.tensor_to_image()
        tensor_from_img = cv2.invertAffineTransform(img_from_tensor)
        patch = cv2.warpAffine(image_rgb, tensor_from_img, (INPUT_SIZE, INPUT_SIZE),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return patch.astype(np.float32) * np.float32(1.0 / 255.0)

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Raw model outputs for one (256,256,3) float32 tensor, in model output order."""
        self._interp.set_tensor(self._input, tensor[None])
        self._interp.invoke()
        return [self._interp.get_tensor(i)[0] for i in self._outputs]

    def __call__(self, image_rgb: np.ndarray, roi: Roi) -> PoseLandmarks:
        """Landmarks of the person in ``roi`` of an (H,W,3) uint8 RGB image."""
        raw = self.infer(self.crop(image_rgb, roi))
        return decode(raw, roi)


def decode(raw: list[np.ndarray], roi: Roi) -> PoseLandmarks:
    """Post-processing of the five model outputs for a square ROI (see module docstring)."""
    lms = raw[0].reshape(NUM_MODEL_LANDMARKS, 5).astype(np.float32)
    score = float(np.asarray(raw[1]).reshape(-1)[0])
    xy = refine_from_heatmap(lms[:, :2] / INPUT_SIZE, raw[3])
    z = lms[:, 2] / INPUT_SIZE
    aff = roi.tensor_to_image()
    pix = (xy * INPUT_SIZE) @ aff[:, :2].T + aff[:, 2]
    image = np.column_stack([pix, z * roi.size]).astype(np.float32)
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    wl = raw[4].reshape(NUM_MODEL_LANDMARKS, 3).astype(np.float32)
    world = np.column_stack([c * wl[:, 0] - s * wl[:, 1], s * wl[:, 0] + c * wl[:, 1], wl[:, 2]])
    n = NUM_LANDMARKS
    return PoseLandmarks(image=image[:n], world=world[:n].astype(np.float32),
                         visibility=sigmoid(lms[:n, 3]), presence=sigmoid(lms[:n, 4]),
                         score=score, aux=image[n:n + 2, :2].copy(), roi=roi)


def roi_from_landmarks(lm: PoseLandmarks) -> Roi:
    """Next frame's ROI from this frame's auxiliary landmarks (pose_landmarks_to_roi.pbtxt)."""
    return roi_from_alignment(lm.aux[0], lm.aux[1])


class RoiTracker:
    """MediaPipe-style ROI tracking for one person, with the tracker's box as the fallback.

    ``step(image, bbox, alignment)`` runs the model on the ROI from the previous frame's landmarks
    when they were present and their centre lies inside the current tracker box. Otherwise the ROI
    is seeded from the person detector's alignment keypoints when given ((2,2) px: hip centre and
    body-circle point, scale 1.25, rotated: works for lying or upside-down people), else from the
    upright box; then the frame is run a second time on the landmark ROI.
    """

    def __init__(self, model: LandmarkModel) -> None:
        self.model = model
        self.last: PoseLandmarks | None = None

    def reset(self) -> None:
        """Forget the previous frame (new track, or the person was lost)."""
        self.last = None

    def step(self, image_rgb: np.ndarray, bbox_cxcywh: np.ndarray,
             alignment: np.ndarray | None = None, model: LandmarkModel | None = None) -> PoseLandmarks:
        """Landmarks for this frame; updates the tracking state. ``model``: run this interpreter
        instead of the tracker's own (another thread's copy of the same model file)."""
        run = model or self.model
        roi = self._roi_from_last(bbox_cxcywh)
        if roi is None:
            log.debug("ROI seeded from the %s", "box" if alignment is None else "detector keypoints")
            seed = (roi_from_bbox(bbox_cxcywh) if alignment is None else
                    roi_from_alignment(alignment[0], alignment[1], DETECTION_ROI_SCALE))
            lm = run(image_rgb, seed)
            if lm.present:
                lm = run(image_rgb, roi_from_landmarks(lm))
        else:
            lm = run(image_rgb, roi)
        self.last = lm if lm.present else None
        return lm

    def _roi_from_last(self, bbox: np.ndarray) -> Roi | None:
        if self.last is None:
            return None
        roi = roi_from_landmarks(self.last)
        cx, cy, w, h = (float(v) for v in bbox)
        inside = abs(roi.cx - cx) <= w / 2.0 and abs(roi.cy - cy) <= h / 2.0
        return roi if inside and roi.size > 1.0 else None
