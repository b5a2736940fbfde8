"""Named coordinate frames and the conversions between them (pure numpy, metres).

Frames:
- **OpenCV camera** (the motion file's camera frame): x right, y down, z forward into the scene.
- **Blender world**: right-handed, z up, metres. Where the motion file has no ground estimate
  (``meta["world"]["world_from_camera"]`` is null), the default world puts the camera at the
  origin looking along +Y with the image's up along +Z: Blender ``(x, y, z) = (x_cv, z_cv, −y_cv)``.
  The z = 0 plane then is the camera's horizontal plane, not the ground (the camera height is
  unknown). With a ground estimate the file's 4×4 ``world_from_camera`` is used as is (ground at z = 0).
- **SMPL canonical**: the rest pose frame of the body model: y up, the body faces +z, x is the
  body's left. ``SMPL_TO_BLENDER`` turns it z up, so the rest character faces −Y (Blender's
  "front" view looks at its face).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import MotionFileError

#: Rotation taking OpenCV camera coordinates to the default Blender world (camera looks along +Y).
CV_TO_BLENDER_DEFAULT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
#: Rotation taking SMPL canonical coordinates (y up, faces +z) to Blender (z up, faces −Y).
SMPL_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
BLENDER_TO_SMPL = SMPL_TO_BLENDER.T
RIGID_TOLERANCE = 1e-4  # max |RᵀR − I| entry accepted for a world_from_camera rotation


def default_world_from_camera() -> np.ndarray:
    """The default 4×4 world_from_camera (float64): camera at the origin looking along +Y."""
    m = np.eye(4)
    m[:3, :3] = CV_TO_BLENDER_DEFAULT
    return m


def world_from_camera(meta: dict[str, Any]) -> np.ndarray:
    """4×4 float64 transform OpenCV camera → Blender world for a motion file header ``meta``.

    Uses ``meta["world"]["world_from_camera"]`` when present (row-major 4×4, metres), else
    :func:`default_world_from_camera`. Raises MotionFileError if the given matrix is not a
    rigid transform (rotation + translation), because bone rotations cannot absorb scale or shear.
    """
    given = (meta.get("world") or {}).get("world_from_camera")
    if given is None:
        return default_world_from_camera()
    m = np.asarray(given, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise MotionFileError("meta.world.world_from_camera must be a finite 4x4 matrix; "
                              "re-run the engine or set it to null")
    r = m[:3, :3]
    rigid = np.abs(r.T @ r - np.eye(3)).max() < RIGID_TOLERANCE and np.linalg.det(r) > 0
    if not rigid or not np.allclose(m[3], [0, 0, 0, 1]):
        raise MotionFileError("meta.world.world_from_camera is not a rotation plus translation; "
                              "re-run the engine or set it to null")
    return m


def transform_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4×4 transform ``m`` to points (..., 3) → (..., 3) float64."""
    m = np.asarray(m, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]


def into_cameras(points: np.ndarray, ref_from_camera: np.ndarray) -> np.ndarray:
    """Points (T,J,3) in a reference camera's frame (a moving camera's frame-0 camera) → each row's
    own camera: ``ref_from_camera`` (T,4,4) rigid, one per row of points. (T,J,3) float64."""
    r = np.asarray(ref_from_camera, dtype=np.float64)
    return np.einsum("tji,tnj->tni", r[:, :3, :3], np.asarray(points, dtype=np.float64) - r[:, None, :3, 3])


def invert_rigid(m: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4×4 transform (rotation + translation), float64."""
    m = np.asarray(m, dtype=np.float64)
    inv = np.eye(4)
    inv[:3, :3] = m[:3, :3].T
    inv[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return inv


def smpl_to_blender(points: np.ndarray) -> np.ndarray:
    """SMPL canonical (y up) points/vectors (..., 3) → Blender axes (z up), float64."""
    return np.asarray(points, dtype=np.float64) @ SMPL_TO_BLENDER.T


def blender_to_smpl(points: np.ndarray) -> np.ndarray:
    """Blender axes (z up) points/vectors (..., 3) → SMPL canonical (y up), float64."""
    return np.asarray(points, dtype=np.float64) @ BLENDER_TO_SMPL.T
