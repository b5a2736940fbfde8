"""Multi-person detector: BlazePose's person detector (``pose_detection.tflite``), run with LiteRT.

Interface (used by the pipeline)::

    detector = PersonDetector()                 # assets/models/pose_detection.tflite, 2 threads
    boxes = detector.detect(image_rgb)          # (K, 5) float32 [x1, y1, x2, y2, score], pixels

Pre- and post-processing follow MediaPipe's ``PoseDetectionCpu`` and ``PoseDetectionToRoi``
graphs (mediapipe 0.10.21; the compiled graph configs are embedded in the wheel's
``_framework_bindings`` library, decoded by hand; the values are the constants below):

1. ``ImageToTensorCalculator``: the whole image is letterboxed (aspect kept, centred, zero
   border) into 224 x 224 with bilinear ``warpAffine`` and scaled to float [-1, 1].
2. ``SsdAnchorsCalculator``: 5 layers, strides 8, 16, 32, 32, 32, aspect ratio 1.0, anchor
   offset 0.5, fixed anchor size (w = h = 1); layers of equal stride share one grid, each
   layer adds 2 anchors per cell (aspect 1.0 plus the interpolated scale) -> 28*28*2 + 14*14*2
   + 7*7*6 = 2254 anchors.
3. ``TensorsToDetectionsCalculator``: 12 values per anchor in (x, y, w, h) order, divided by
   the 224 scale and added to the anchor centre; 4 keypoints (x, y) at offset 4; score =
   sigmoid(clip(raw, -100, 100)); min score 0.5.
4. ``NonMaxSuppressionCalculator``: weighted NMS, IoU > 0.3 on the detector's (face) box; the
   kept detection's box and keypoints are the score-weighted mean of its cluster, its score the
   cluster's best.
5. ``DetectionLetterboxRemovalCalculator``: back to image coordinates.

The detector's box is the *face*; its keypoints are 0 = hip centre, 1 = a point whose distance
from the hip centre is the radius of a circle enclosing the whole body, 2 = shoulder centre,
3 = the same for the upper body. MediaPipe's ``PoseDetectionToRoi`` builds the landmark
model's ROI as a square centred on keypoint 0 with side 2 * |kp1 - kp0|, then enlarged by 1.25.
**Our person box** is that square before the landmark model's 1.25 margin: the axis-aligned
bounding box of the body circle (side 2 * |kp1 - kp0|, rotation-invariant), which encloses the
whole body in any orientation and is about as tight as a YOLO person box made square, the box
VIBE's demo crops with its own 1.1 margin. ``body_box_scale`` changes the side (1.25 gives
MediaPipe's landmark ROI).

**Tiling (our addition).** BlazePose's detector was trained for people who fill much of the
frame; letterboxing a whole wide frame into 224 x 224 leaves a walker ~35 px tall, and on the
bundled demo clip it then misses one of the two people in most frames and fires on the sun
flare. Wide or tall images are therefore covered by square tiles of side min(H, W), spaced at
most half a side apart (3 tiles for 16:9), each run through the steps above; a near-square
image (aspect <= 1.2) is one tile. Detections are merged across tiles by greedy NMS on the
detector box (IoU > 0.3), preferring detections whose body box is not cut by an inner tile
edge, then by score. ``tiled=False`` gives MediaPipe's single whole-frame pass.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from vibe_engine.errors import ModelError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "assets" / "models" / "pose_detection.tflite"
NUM_THREADS = 2

INPUT_SIZE = 224
"""Detector input: 224 x 224 x 3 float32 in [-1, 1] (pixels)."""
INPUT_RANGE = (-1.0, 1.0)
ANCHOR_STRIDES = (8, 16, 32, 32, 32)
ANCHOR_OFFSET = 0.5
ANCHORS_PER_LAYER = 2
"""One anchor for aspect ratio 1.0 plus the interpolated-scale anchor, per layer and cell."""
NUM_ANCHORS = 2254
NUM_COORDS = 12
BOX_SCALE = 224.0
"""Raw box/keypoint offsets are in input pixels: divide by this to get normalised units."""
NUM_KEYPOINTS = 4
KEYPOINT_OFFSET = 4
SCORE_CLIP = 100.0
NMS_IOU = 0.3
KP_HIP_CENTRE, KP_BODY_RADIUS = 0, 1
BODY_BOX_SCALE = 1.0
"""Side of the person box in units of the body circle's diameter (MediaPipe's ROI uses 1.25)."""
SQUARE_ASPECT = 1.2
"""Images with max(H, W) / min(H, W) at or below this are detected in one pass (no tiling)."""
TILE_STEP = 0.5
"""Largest distance between neighbouring tiles, as a fraction of the tile side."""
CUT_TOLERANCE = 0.15
"""A body box may cross an inner tile edge by this fraction of its side and still count as whole."""


def generate_anchors() -> np.ndarray:
    """Anchor centres, (2254, 2) float32 (x, y) normalised to [0, 1] of the 224 x 224 input."""
    centres = []
    layer = 0
    while layer < len(ANCHOR_STRIDES):
        stride = ANCHOR_STRIDES[layer]
        same = sum(1 for s in ANCHOR_STRIDES[layer:] if s == stride)
        cells = int(np.ceil(INPUT_SIZE / stride))
        grid = (np.arange(cells, dtype=np.float32) + ANCHOR_OFFSET) / cells
        yy, xx = np.meshgrid(grid, grid, indexing="ij")
        per_cell = np.stack([xx, yy], -1).reshape(-1, 1, 2)
        centres.append(np.repeat(per_cell, ANCHORS_PER_LAYER * same, axis=1).reshape(-1, 2))
        layer += same
    return np.concatenate(centres).astype(np.float32)


def letterbox(image_rgb: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Fit the whole (H, W, 3) uint8 image, aspect kept and centred, into 224 x 224.

    Returns (tensor (224, 224, 3) float32 in [-1, 1], scale s, padding (px, py)) with the
    mapping in continuous pixel coordinates (pixel i spans [i, i+1)): u = s * x + px.
    """
    import cv2

    height, width = image_rgb.shape[:2]
    scale = INPUT_SIZE / max(width, height)
    pad = np.array([(INPUT_SIZE - scale * width) / 2, (INPUT_SIZE - scale * height) / 2])
    # OpenCV samples at pixel centres: u + 0.5 = s * (x + 0.5) + p.
    shift = 0.5 * scale - 0.5 + pad
    matrix = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]], np.float64)
    warped = cv2.warpAffine(image_rgb, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    low, high = INPUT_RANGE
    tensor = warped.astype(np.float32) * ((high - low) / 255.0) + low
    return tensor, scale, pad


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
           score_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode raw outputs (2254, 12) and (2254,) into normalised detections above the threshold.

    Returns (boxes (N, 4) [x1, y1, x2, y2], keypoints (N, 4, 2) (x, y), scores (N,)), all in
    [0, 1] units of the 224 x 224 input.
    """
    logits = np.clip(raw_scores.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = scores >= score_threshold
    raw, anc, scores = raw_boxes[keep], anchors[keep], scores[keep]
    centre = raw[:, 0:2] / BOX_SCALE + anc
    half = raw[:, 2:4] / BOX_SCALE / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    kps = raw[:, KEYPOINT_OFFSET:KEYPOINT_OFFSET + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2)
    keypoints = kps / BOX_SCALE + anc[:, None, :]
    return boxes.astype(np.float32), keypoints.astype(np.float32), scores.astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes [x1, y1, x2, y2] (pixels), broadcast over the leading axes: a (..., 4) and
    b (..., 4) -> (...); 0 where the union is empty. The one IoU of the project."""
    lo = np.maximum(a[..., :2], b[..., :2])
    hi = np.minimum(a[..., 2:4], b[..., 2:4])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[..., 2:4] - a[..., :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[..., 2:4] - b[..., :2], 0, None), axis=-1)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between boxes a (N, 4) and b (M, 4), both [x1, y1, x2, y2] -> (N, M)."""
    return box_iou(a[:, None, :], b[None, :, :])


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou_threshold: float = NMS_IOU) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: clusters of IoU > threshold around the best remaining box are
    replaced by their score-weighted mean box and keypoints, scored by the cluster's best."""
    order = np.argsort(-scores, kind="stable")
    out_boxes, out_kps, out_scores = [], [], []
    while order.size:
        ious = iou_matrix(boxes[order[:1]], boxes[order])[0]
        cluster = order[ious > iou_threshold]
        cluster = cluster if cluster.size else order[:1]
        w = scores[cluster][:, None]
        out_boxes.append((boxes[cluster] * w).sum(0) / w.sum())
        out_kps.append((keypoints[cluster] * w[:, :, None]).sum(0) / w.sum())
        out_scores.append(scores[order[0]])
        order = order[ious <= iou_threshold]
    if not out_scores:
        empty = np.zeros((0, 4), np.float32)
        return empty, np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros(0, np.float32)
    return np.array(out_boxes, np.float32), np.array(out_kps, np.float32), np.array(out_scores, np.float32)


def body_boxes(keypoints_px: np.ndarray, scale: float = BODY_BOX_SCALE) -> np.ndarray:
    """Person boxes (N, 4) [x1, y1, x2, y2] from detector keypoints (N, 4, 2) in image pixels:
    the square around the body circle (centre = hip centre, radius = |kp1 - kp0|), times scale."""
    centre = keypoints_px[:, KP_HIP_CENTRE]
    radius = np.linalg.norm(keypoints_px[:, KP_BODY_RADIUS] - centre, axis=-1, keepdims=True)
    half = radius * scale
    return np.concatenate([centre - half, centre + half], axis=1)


def tile_grid(height: int, width: int) -> list[tuple[int, int, int]]:
    """Square tiles (x0, y0, side) in pixels covering an image, see the module docstring.

    A near-square image gives one tile (0, 0, max(H, W)) that ``letterbox`` pads; otherwise the
    tiles have side min(H, W) and neighbours are at most TILE_STEP * side apart."""
    short, long_ = min(height, width), max(height, width)
    if long_ <= SQUARE_ASPECT * short:
        return [(0, 0, long_)]
    count = int(np.ceil((long_ - short) / (TILE_STEP * short))) + 1
    starts = [round(i * (long_ - short) / (count - 1)) for i in range(count)]
    return [(s, 0, short) if width > height else (0, s, short) for s in starts]


def _is_whole(body: np.ndarray, tile: tuple[int, int, int], height: int, width: int) -> np.ndarray:
    """(N,) bool: body boxes (N, 4) not cut by an edge of ``tile`` that lies inside the image."""
    x0, y0, side = tile
    slack = CUT_TOLERANCE * (body[:, 2] - body[:, 0])
    ok_left = (x0 == 0) | (body[:, 0] >= x0 - slack)
    ok_top = (y0 == 0) | (body[:, 1] >= y0 - slack)
    ok_right = (x0 + side >= width) | (body[:, 2] <= x0 + side + slack)
    ok_bottom = (y0 + side >= height) | (body[:, 3] <= y0 + side + slack)
    return ok_left & ok_top & ok_right & ok_bottom


def merge_tiles(faces: np.ndarray, scores: np.ndarray, whole: np.ndarray,
                iou_threshold: float = NMS_IOU) -> np.ndarray:
    """Indices of the detections kept across tiles: greedy NMS on detector boxes (N, 4), ranked
    by (whole, score) so a person seen entirely in one tile wins over a cut-off view."""
    order = np.lexsort((-scores, ~whole))
    keep = []
    while order.size:
        keep.append(order[0])
        ious = iou_matrix(faces[order[:1]], faces[order])[0]
        order = order[ious <= iou_threshold]
    return np.asarray(keep, np.int64)


def _to_pixels(points_norm: np.ndarray, scale: float, pad: np.ndarray) -> np.ndarray:
    """Normalised input-tensor points (..., 2) -> image pixels (letterbox removal)."""
    return (points_norm * INPUT_SIZE - pad) / scale


def _load_interpreter(model_path: str, num_threads: int):
    from ai_edge_litert.interpreter import Interpreter

    if not os.path.isfile(model_path):
        raise ModelError(f"person detector model not found: {model_path!r}: restore "
                         f"assets/models/pose_detection.tflite from the repository")
    try:
        interpreter = Interpreter(model_path=model_path, num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load person detector {model_path!r} ({exc}): restore "
                         f"assets/models/pose_detection.tflite from the repository") from None
    return interpreter


class PersonDetector:
    """BlazePose person detector; ``detect`` returns whole-body boxes in image pixels."""

    def __init__(self, model_path: str | os.PathLike | None = None, score_threshold: float = 0.5,
                 max_people: int = 10, num_threads: int = NUM_THREADS,
                 body_box_scale: float = BODY_BOX_SCALE, tiled: bool = True) -> None:
        self.model_path = os.fspath(model_path or DEFAULT_MODEL)
        self.score_threshold = float(score_threshold)
        self.max_people = int(max_people)
        self.body_box_scale = float(body_box_scale)
        self.tiled = bool(tiled)
        self._interpreter = _load_interpreter(self.model_path, num_threads)
        self._input = self._interpreter.get_input_details()[0]
        self._check_io()
        self.anchors = generate_anchors()

    def _check_io(self) -> None:
        """Identify the two outputs by shape: (1, 2254, 12) boxes and (1, 2254, 1) scores."""
        outputs = {tuple(d["shape"]): d["index"] for d in self._interpreter.get_output_details()}
        expected_in = (1, INPUT_SIZE, INPUT_SIZE, 3)
        boxes_shape, scores_shape = (1, NUM_ANCHORS, NUM_COORDS), (1, NUM_ANCHORS, 1)
        if tuple(self._input["shape"]) != expected_in or set(outputs) != {boxes_shape, scores_shape}:
            raise ModelError(f"{self.model_path!r} is not BlazePose's pose_detection.tflite (input "
                             f"{tuple(self._input['shape'])}, outputs {sorted(outputs)})")
        self._boxes_index, self._scores_index = outputs[boxes_shape], outputs[scores_shape]

    def raw_detections(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detections after NMS in image pixels: (face boxes (N, 4), keypoints (N, 4, 2), scores (N,))."""
        tensor, scale, pad = letterbox(image_rgb)
        self._interpreter.set_tensor(self._input["index"], tensor[None])
        self._interpreter.invoke()
        raw_boxes = self._interpreter.get_tensor(self._boxes_index)[0]
        raw_scores = self._interpreter.get_tensor(self._scores_index)[0, :, 0]
        boxes, kps, scores = weighted_nms(*decode(raw_boxes, raw_scores, self.anchors, self.score_threshold))
        order = np.argsort(-scores, kind="stable")[: self.max_people]
        face = _to_pixels(boxes[order].reshape(-1, 2, 2), scale, pad).reshape(-1, 4)
        return face.astype(np.float32), _to_pixels(kps[order], scale, pad).astype(np.float32), scores[order]

    def detect(self, image_rgb: np.ndarray) -> np.ndarray:
        """Whole-body person boxes in ``image_rgb`` ((H, W, 3) uint8 RGB).

        Returns (K, 5) float32 rows [x1, y1, x2, y2, score], pixels of the given image
        (continuous coordinates; may extend past the border), best score first, K <= max_people.
        """
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image_rgb.shape} "
                             f"{image_rgb.dtype}")
        height, width = image_rgb.shape[:2]
        tiles = tile_grid(height, width) if self.tiled else [(0, 0, max(height, width))]
        faces, bodies, scores, whole = [], [], [], []
        for tile in tiles:
            x0, y0, side = tile
            face, keypoints, score = self.raw_detections(image_rgb[y0:y0 + side, x0:x0 + side])
            body = body_boxes(keypoints, self.body_box_scale) + np.float32([x0, y0, x0, y0])
            faces.append(face + np.float32([x0, y0, x0, y0]))
            bodies.append(body)
            scores.append(score)
            whole.append(_is_whole(body, tile, height, width))
        faces_a, bodies_a, scores_a = np.concatenate(faces), np.concatenate(bodies), np.concatenate(scores)
        keep = merge_tiles(faces_a, scores_a, np.concatenate(whole))
        keep = keep[np.argsort(-scores_a[keep], kind="stable")][: self.max_people]
        return np.concatenate([bodies_a[keep], scores_a[keep, None]], axis=1).astype(np.float32)
