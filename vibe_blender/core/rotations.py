"""Batched rotation conversions: axis-angle ⇄ unit quaternion (w, x, y, z) ⇄ 3×3 matrix.

Pure numpy. Every function accepts any leading batch shape: axis-angle ``(..., 3)`` (radians, the
axis scaled by the angle, SMPL's convention), quaternions ``(..., 4)`` scalar-first (Blender's
``rotation_quaternion`` order), matrices ``(..., 3, 3)`` acting on column vectors (``v' = R @ v``).
Outputs are float64. The conversions are robust near 0 (series expansions) and near π (axis taken
from the matrix' symmetric part / the quaternion's vector part).
"""
from __future__ import annotations

import numpy as np

SMALL_ANGLE_RAD = 1e-6  # below this, sin(θ)/θ-type ratios use their Taylor series


def _as_f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def aa_to_quat(aa: np.ndarray) -> np.ndarray:
    """Axis-angle (..., 3) radians → unit quaternion (..., 4) (w, x, y, z), w ≥ 0 for θ ≤ π."""
    aa = _as_f64(aa)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * theta
    small = theta < SMALL_ANGLE_RAD
    safe = np.where(small, 1.0, theta)
    # sin(θ/2)/θ → 1/2 − θ²/48 near 0
    k = np.where(small, 0.5 - theta**2 / 48.0, np.sin(half) / safe)
    return np.concatenate([np.cos(half), aa * k], axis=-1)


def quat_to_aa(q: np.ndarray) -> np.ndarray:
    """Quaternion (..., 4) (w, x, y, z), any norm → axis-angle (..., 3) with angle in [0, π]."""
    q = quat_normalize(q)
    q = np.where(q[..., :1] < 0.0, -q, q)  # shortest rotation: θ ≤ π
    w = np.clip(q[..., :1], -1.0, 1.0)
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    theta = 2.0 * np.arctan2(s, w)
    small = s < SMALL_ANGLE_RAD
    safe = np.where(small, 1.0, s)
    w_safe = np.where(small, w, 1.0)  # w ≈ 1 where small
    # θ/sin(θ/2) → 2/w · (1 + s²/(6w²)) near 0
    k = np.where(small, 2.0 / w_safe * (1.0 + s**2 / (6.0 * w_safe**2)), theta / safe)
    return v * k


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Quaternion (..., 4) scaled to unit norm (float64). A zero quaternion raises ValueError."""
    q = _as_f64(q)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(n == 0.0):
        raise ValueError("zero-length quaternion cannot be normalised; pass a rotation quaternion")
    return q / n


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Quaternion (..., 4) (w, x, y, z), any non-zero norm → rotation matrix (..., 3, 3)."""
    q = quat_normalize(q)
    w, x, y, z = (q[..., i] for i in range(4))
    m = np.empty(q.shape[:-1] + (3, 3))
    m[..., 0, 0] = 1 - 2 * (y * y + z * z)
    m[..., 0, 1] = 2 * (x * y - w * z)
    m[..., 0, 2] = 2 * (x * z + w * y)
    m[..., 1, 0] = 2 * (x * y + w * z)
    m[..., 1, 1] = 1 - 2 * (x * x + z * z)
    m[..., 1, 2] = 2 * (y * z - w * x)
    m[..., 2, 0] = 2 * (x * z - w * y)
    m[..., 2, 1] = 2 * (y * z + w * x)
    m[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return m


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrix (..., 3, 3) → unit quaternion (..., 4) (w, x, y, z) with w ≥ 0.

    Uses the numerically largest of the four candidate components (Shepperd's method), so it is
    accurate for every angle including π.
    """
    m = _as_f64(m)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    cand = np.stack([
        np.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2],
                  m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        np.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22,
                  m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        np.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                  1 - m00 + m11 - m22, m[..., 1, 2] + m[..., 2, 1]], -1),
        np.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                  m[..., 1, 2] + m[..., 2, 1], 1 - m00 - m11 + m22], -1),
    ], axis=-2)  # (..., 4 candidates, 4 components); candidate i has 4·q_i² at index i
    diag = np.stack([cand[..., i, i] for i in range(4)], axis=-1)
    best = np.argmax(diag, axis=-1)
    q = np.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]
    q = quat_normalize(q)
    return np.where(q[..., :1] < 0.0, -q, q)


def aa_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Axis-angle (..., 3) radians → rotation matrix (..., 3, 3) (Rodrigues, via the quaternion)."""
    return quat_to_matrix(aa_to_quat(aa))


def matrix_to_aa(m: np.ndarray) -> np.ndarray:
    """Rotation matrix (..., 3, 3) → axis-angle (..., 3) with angle in [0, π]."""
    return quat_to_aa(matrix_to_quat(m))


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b of quaternions (..., 4) (w, x, y, z): rotation b, then a."""
    a, b = _as_f64(a), _as_f64(b)
    aw, av = a[..., :1], a[..., 1:]
    bw, bv = b[..., :1], b[..., 1:]
    w = aw * bw - np.sum(av * bv, axis=-1, keepdims=True)
    v = aw * bv + bw * av + np.cross(av, bv)
    return np.concatenate([w, v], axis=-1)


def quat_continuity(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions lie in the same hemisphere.

    q: (..., 4) with time along ``axis``. q and −q are the same rotation, but F-curves interpolate
    components, so a sign flip between keys would spin the bone the long way round. The first
    sample keeps its sign; each later one is negated when its dot product with the previous
    (already fixed) one is negative.
    """
    q = np.moveaxis(_as_f64(q), axis, 0)
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.concatenate([np.zeros((1,) + dots.shape[1:], bool), dots < 0.0], axis=0)
    sign = np.where(np.cumsum(flips, axis=0) % 2 == 1, -1.0, 1.0)
    return np.moveaxis(q * sign[..., None], 0, axis)
