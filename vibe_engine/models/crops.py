"""Person crops exactly as VIBE's demo makes them, and the ImageNet normalisation.

Interface (used by the pipeline)::

    A = crop_affine(bbox, scale=1.1, size=224)      # (2, 3) image pixels -> crop pixels
    crops = crop_people(image_rgb, bboxes)          # (B, 224, 224, 3) uint8 RGB
    batch = normalise(crops)                        # (B, 3, 224, 224) float32, network input

* ``bbox`` is a tracker box [cx, cy, w, h] in image pixels (square in practice, w == h == side).
  The crop covers a (scale * w) x (scale * h) window centred at (cx, cy), mapped onto
  size x size: x_dst = (x - cx) * size / (scale * w) + size / 2, same for y with h. So the box
  centre lands exactly on (112, 112). Coordinates are OpenCV's (integer = pixel centre), as in
  VIBE's ``gen_trans_from_patch_cv`` (lib/data_utils/img_utils.py).
* Resampling: ``cv2.warpAffine`` bilinear, constant black border, on uint8 RGB: the same
  resampler as the demo (needed for bit-exact parity).
* ``normalise``: /255, then (x - mean) / std with the ImageNet mean (0.485, 0.456, 0.406) and
  std (0.229, 0.224, 0.225), channels first: what ``ToTensor`` + ``Normalize`` give.
* ``transform_points(invert_affine(A), crop_points)`` maps crop pixels back to the image.
"""
from __future__ import annotations

import numpy as np

CROP_SIZE = 224
"""Network input side (pixels)."""
BBOX_SCALE = 1.1
"""VIBE demo: the crop covers 1.1 x the tracker box."""
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def crop_affine(bbox: np.ndarray, scale: float = BBOX_SCALE, size: int = CROP_SIZE) -> np.ndarray:
    """(2, 3) float64 affine taking image pixels to crop pixels for ``bbox`` [cx, cy, w, h]
    (a 3-vector [cx, cy, side] is accepted for square boxes)."""
    box = np.asarray(bbox, np.float64).ravel()
    cx, cy, w = box[:3]
    h = box[3] if box.size > 3 else w
    if not (w > 0 and h > 0):
        raise ValueError(f"box sides must be positive, got w={w}, h={h}")
    sx, sy = size / (scale * w), size / (scale * h)
    return np.array([[sx, 0.0, size / 2 - sx * cx], [0.0, sy, size / 2 - sy * cy]])


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine, as (2, 3)."""
    full = np.vstack([affine, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def transform_points(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to points (..., 2); returns (..., 2) float64."""
    pts = np.asarray(points, np.float64)
    return pts @ affine[:, :2].T + affine[:, 2]


def crop_image(image_rgb: np.ndarray, bbox: np.ndarray, scale: float = BBOX_SCALE,
               size: int = CROP_SIZE) -> np.ndarray:
    """One crop (size, size, 3) uint8 of an (H, W, 3) uint8 RGB image (bilinear, black border)."""
    import cv2

    return cv2.warpAffine(image_rgb, crop_affine(bbox, scale, size), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def crop_people(image_rgb: np.ndarray, bboxes: np.ndarray, scale: float = BBOX_SCALE,
                size: int = CROP_SIZE) -> np.ndarray:
    """Crops for every box of one frame: bboxes (B, 4) [cx, cy, w, h] -> (B, size, size, 3) uint8."""
    boxes = np.asarray(bboxes, np.float64).reshape(-1, 4)
    out = np.empty((len(boxes), size, size, 3), np.uint8)
    for i, box in enumerate(boxes):
        out[i] = crop_image(image_rgb, box, scale, size)
    return out


def normalise(crops: np.ndarray) -> np.ndarray:
    """uint8 crops (B, S, S, 3) RGB -> float32 (B, 3, S, S): /255 then ImageNet mean/std."""
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[-1] != 3:
        raise ValueError(f"expected (B, S, S, 3) uint8 crops, got {crops.shape} {crops.dtype}")
    x = crops.astype(np.float32) / np.float32(255.0)
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
