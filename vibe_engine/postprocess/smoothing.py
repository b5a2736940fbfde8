"""Offline smoothing of rotations (on the unit-quaternion manifold) and vectors by local polynomial fits.

Each frame's value is replaced by a local polynomial regression (quadratic by default) of its
neighbours, weighted by a Gaussian of their time distance (timestamps, not frame indices, so the
result does not depend on the frame rate and tolerates dropped frames). Rotations are never
filtered element-wise in axis-angle: the neighbours are mapped to the tangent space at the frame's
own rotation (rotation vectors of q_t⁻¹ q_s), fitted there and mapped back, so angles near ±π
behave like any other.

Why local polynomials rather than a low-pass (or One-Euro) filter: a quadratic fit follows the
curvature of a swing, so its peak is kept while frame-to-frame jitter is averaged out (at the same
jitter reduction a low-pass flattens peaks). Measured on the synthetic suite (BlazePose backend,
benchmarks/accuracy.py): at ~90 % of swing kept it removes more acceleration error than a
zero-phase One-Euro filter. A quadratic fit can ring at a step; each fitted value (per tangent
component) is therefore clamped to the range of the samples it was fitted to, which leaves a
step monotone and never overshot, and a constant unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vibe_blender.core.rotations import aa_to_quat, quat_continuity, quat_multiply, quat_to_aa

CHUNK_FRAMES = 1024  # frames fitted at once (memory ∝ frames × window × joints)
_RIDGE = 1e-9  # relative ridge on the non-constant terms: a lone sample reproduces itself


@dataclass(frozen=True)
class LocalFitParams:
    """Local polynomial fit: Gaussian weights of width ``sigma`` (s) over neighbours within
    ``reach``·sigma, polynomial degree ``order`` (2: quadratic)."""

    sigma: float = 0.08
    order: int = 2
    reach: float = 2.5


# Chosen on the synthetic suite (benchmarks/accuracy.py): ≥ 90 % of end-effector swing kept.
ROTATION_DEFAULTS = LocalFitParams(sigma=0.08, order=2)
# Root translation in the camera frame: lateral axes like the joints; depth (z), which carries
# most of a monocular estimate's jitter, much more strongly.
TRANSLATION_DEFAULTS = LocalFitParams(sigma=0.08, order=2)
DEPTH_DEFAULTS = LocalFitParams(sigma=0.25, order=2)


def _check_times(times: np.ndarray, n: int) -> np.ndarray:
    """Timestamps (n,) float64 seconds; raises ValueError when they decrease or do not match."""
    t = np.asarray(times, dtype=np.float64)
    if t.shape != (n,):
        raise ValueError(f"need one timestamp per frame ({n}), got shape {t.shape}")
    if np.any(np.diff(t) < 0):
        raise ValueError("timestamps must not decrease")
    return t


def _neighbours(times: np.ndarray, params: LocalFitParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour indices (T,W) int, their time offsets (T,W) s and a validity mask (T,W) bool."""
    span = params.reach * params.sigma
    lo = np.searchsorted(times, times - span, side="left")
    hi = np.searchsorted(times, times + span, side="right")
    before, after = int(np.max(np.arange(len(times)) - lo)), int(np.max(hi - 1 - np.arange(len(times))))
    offsets = np.arange(-before, after + 1)
    raw = np.arange(len(times))[:, None] + offsets[None]
    valid = (raw >= lo[:, None]) & (raw < hi[:, None])
    idx = np.clip(raw, 0, len(times) - 1)
    return idx, times[idx] - times[:, None], valid


def _fit_weights(dt: np.ndarray, valid: np.ndarray, params: LocalFitParams) -> np.ndarray:
    """Equivalent-kernel weights (T,W) whose dot with neighbour values gives each local fit at dt = 0.

    Weighted least squares of a degree-``order`` polynomial in dt (in units of sigma); rows sum to 1.
    """
    u = dt / params.sigma
    w = np.exp(-0.5 * u * u) * valid
    design = u[..., None] ** np.arange(params.order + 1)  # (T,W,P)
    normal = np.einsum("tw,twi,twj->tij", w, design, design)
    ridge = _RIDGE * normal[:, 0, 0][:, None, None] * np.diag([0.0] + [1.0] * params.order)
    e0 = np.zeros(params.order + 1)
    e0[0] = 1.0
    coef = np.linalg.solve(normal + ridge, np.broadcast_to(e0, normal.shape[:2])[..., None])[..., 0]
    return np.einsum("tp,twp->tw", coef, design) * w


def _local_fit(deltas: np.ndarray, weights: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fitted offsets (T,...,D) from neighbour offsets (T,W,...,D), clamped to their range (no overshoot)."""
    shape = weights.shape + (1,) * (deltas.ndim - 2)
    fit = np.sum(weights.reshape(shape) * deltas, axis=1)
    mask = valid.reshape(shape)
    lo = np.min(np.where(mask, deltas, np.inf), axis=1)
    hi = np.max(np.where(mask, deltas, -np.inf), axis=1)
    return np.clip(fit, lo, hi)


def _chunks(n: int) -> list[slice]:
    """Consecutive frame slices of at most CHUNK_FRAMES covering range(n)."""
    return [slice(i, min(i + CHUNK_FRAMES, n)) for i in range(0, n, CHUNK_FRAMES)]


def smooth_rotations(pose_aa: np.ndarray, times: np.ndarray,
                     params: LocalFitParams = ROTATION_DEFAULTS) -> np.ndarray:
    """Smooth axis-angle rotations (T, J, 3) radians over timestamps (T,) seconds.

    Local polynomial fit in each frame's tangent space on continuity-fixed unit quaternions.
    Returns axis-angle (T, J, 3) float64, angles in [0, π]; a constant input comes back unchanged.
    """
    pose_aa = np.asarray(pose_aa, dtype=np.float64)
    t = _check_times(times, pose_aa.shape[0])
    q = quat_continuity(aa_to_quat(pose_aa), axis=0)
    if len(t) < 2:
        return quat_to_aa(q)
    idx, dt, valid = _neighbours(t, params)
    weights = _fit_weights(dt, valid, params)
    conj = q * np.array([1.0, -1.0, -1.0, -1.0])
    step = np.empty(q.shape[:-1] + (3,))
    for rows in _chunks(len(t)):  # bounded memory: (rows, W, J, 3) rotation vectors at a time
        deltas = quat_to_aa(quat_multiply(conj[rows, None], q[idx[rows]]))
        step[rows] = _local_fit(deltas, weights[rows], valid[rows])
    out = quat_multiply(q, aa_to_quat(step))
    return quat_to_aa(out / np.linalg.norm(out, axis=-1, keepdims=True))


def smooth_vectors(x: np.ndarray, times: np.ndarray,
                   params: LocalFitParams = TRANSLATION_DEFAULTS) -> np.ndarray:
    """Smooth vectors (T, ..., D) (e.g. root translation in metres) over timestamps (T,) seconds.

    Returns float64 of the same shape; constants and straight lines (uniform motion) pass unchanged.
    """
    x = np.asarray(x, dtype=np.float64)
    t = _check_times(times, x.shape[0])
    if len(t) < 2:
        return x.copy()
    idx, dt, valid = _neighbours(t, params)
    deltas = x[idx] - x[:, None]
    return x + _local_fit(deltas, _fit_weights(dt, valid, params), valid)


def smooth_translation(transl: np.ndarray, times: np.ndarray, lateral: LocalFitParams = TRANSLATION_DEFAULTS,
                       depth: LocalFitParams = DEPTH_DEFAULTS) -> np.ndarray:
    """Smooth a camera-frame root translation (T,3) metres (OpenCV: x right, y down, z depth).

    x and y with ``lateral``, the depth z with the stronger ``depth`` settings. Returns (T,3) float64.
    """
    transl = np.asarray(transl, dtype=np.float64)
    out = smooth_vectors(transl, times, lateral)
    out[:, 2] = smooth_vectors(transl[:, 2:3], times, depth)[:, 0]
    return out
