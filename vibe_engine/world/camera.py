"""Camera maths: from VIBE's weak-perspective crop camera to the full image (numpy only).

Conventions (docs/motion-file.md "Camera maths", vibe-facts.md §3 steps 10–12):
- ``cam_crop`` (T,3) = (s, tx, ty): weak perspective in normalised crop coordinates, where the crop
  is the square box of side ``CROP_SCALE·h`` centred on the tracker box and mapped onto
  224×224 px; a point X (metres, OpenCV camera frame) lands at ``s·(X.xy + (tx, ty))`` ∈ [-1, 1].
- ``bbox`` (T,4) = (cx, cy, w, h): the square tracker box in displayed-image pixels, **before**
  the 1.1 crop scale.
- The camera frame is OpenCV's: x right, y down, z forward, metres.

``orig_cam`` reproduces the official demo exactly, including its slip of ignoring the 1.1 crop
scale (for parity with published outputs). ``joints_to_image`` and ``root_translation`` use the
correct crop side ``1.1·h``.
"""
from __future__ import annotations

import numpy as np

#: The official demo's crop scale: the crop side is 1.1 × the square tracker box side.
CROP_SCALE = 1.1
#: Crop size fed to the network (pixels).
CROP_SIZE_PX = 224


def default_focal(width: int, height: int) -> float:
    """Default focal length in pixels: a typical phone video lens (``intrinsics.DEFAULT_FOCAL_35MM``,
    33 mm equivalent ≈ 0.763 × the image diagonal; the same lens for portrait and landscape)."""
    from vibe_engine.world.intrinsics import default_focal as focal

    return focal(width, height)


def camera_meta(width: int, height: int, focal_px: float | None, video=None) -> dict:
    """The motion file's ``meta.camera``: pinhole, principal point at the image centre (px);
    the focal from ``focal_px``, else the ``video`` container's 35 mm-equivalent tag, else
    :func:`default_focal` (``source`` records which: :mod:`vibe_engine.world.intrinsics`)."""
    from vibe_engine.world.intrinsics import camera_meta as meta

    return meta(focal_px, video, width, height)


def orig_cam(cam_crop: np.ndarray, bbox: np.ndarray, width: int, height: int) -> np.ndarray:
    """(T,4) (sx, sy, tx, ty) exactly as the official ``convert_crop_cam_to_orig_img``.

    Uses the box side ``h = bbox[:, 2]`` without the 1.1 crop scale (the official slip), so
    projections with it are 1/1.1 too small around the box centre. Kept for parity only.
    """
    cam = np.asarray(cam_crop, dtype=np.float64)
    box = np.asarray(bbox, dtype=np.float64)
    cx, cy, h = box[:, 0], box[:, 1], box[:, 2]
    hw, hh = width / 2.0, height / 2.0
    sx = cam[:, 0] * (1.0 / (width / h))
    sy = cam[:, 0] * (1.0 / (height / h))
    tx = ((cx - hw) / hw / sx) + cam[:, 1]
    ty = ((cy - hh) / hh / sy) + cam[:, 2]
    return np.stack([sx, sy, tx, ty], axis=-1)


def crop_to_image(points: np.ndarray, bbox: np.ndarray, scale: float = CROP_SCALE) -> np.ndarray:
    """Map normalised crop coordinates (T,J,2) in [-1,1] to displayed-image pixels (T,J,2).

    The crop of side ``scale·h`` is centred on (cx, cy): ``u = cx + p.x·scale·h/2`` (and v alike).
    ``scale=1.0`` gives the official demo's ``joints2d_img_coord`` (its 1.1 slip).
    """
    pts = np.asarray(points, dtype=np.float64)
    box = np.asarray(bbox, dtype=np.float64)
    half = (scale * box[:, 2] / 2.0)[:, None, None]
    return box[:, None, :2] + pts * half


def root_translation(cam_crop: np.ndarray, bbox: np.ndarray, focal: float, cx: float, cy: float,
                     scale: float = CROP_SCALE) -> np.ndarray:
    """(T,3) perspective root translation in the camera frame (metres) for a pinhole camera.

    ``focal`` and principal point (cx, cy) are in displayed-image pixels. For a body small against
    its distance, projecting ``X + transl`` with the pinhole camera reproduces the weak-perspective
    crop projection mapped to the image: ``tz = 2f / (scale·h·s)``,
    ``tx = t_x + (bx − cx)·tz/f``, ``ty = t_y + (by − cy)·tz/f``.
    """
    cam = np.asarray(cam_crop, dtype=np.float64)
    box = np.asarray(bbox, dtype=np.float64)
    s = np.where(np.abs(cam[:, 0]) < 1e-9, 1e-9, cam[:, 0])
    tz = 2.0 * focal / (scale * box[:, 2] * s)
    tx = cam[:, 1] + (box[:, 0] - cx) * tz / focal
    ty = cam[:, 2] + (box[:, 1] - cy) * tz / focal
    return np.stack([tx, ty, tz], axis=-1)


def project_pinhole(points: np.ndarray, focal: float, cx: float, cy: float) -> np.ndarray:
    """Project camera-frame points (...,3) in metres to pixels (...,2): ``u = f·x/z + cx``."""
    pts = np.asarray(points, dtype=np.float64)
    return np.stack([focal * pts[..., 0] / pts[..., 2] + cx,
                     focal * pts[..., 1] / pts[..., 2] + cy], axis=-1)


def project_weak_crop(points: np.ndarray, cam_crop: np.ndarray) -> np.ndarray:
    """Weak-perspective crop projection (T,J,2) of points (T,J,3): ``s·(X.xy + t)``."""
    pts = np.asarray(points, dtype=np.float64)
    cam = np.asarray(cam_crop, dtype=np.float64)
    return cam[:, None, :1] * (pts[..., :2] + cam[:, None, 1:3])
