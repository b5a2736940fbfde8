"""Focal self-calibration from the footage: people's hip and shoulder axes are level on a level floor.

Why this works, and when it does not. With a focal ``k·f`` instead of ``f`` the reconstruction
keeps every image position, so root translations scale along the optical axis only
(``T' = (Tx, Ty, k·Tz)``) while each body keeps its own metric shape and orientation. The ground
plane fitted to the feet then tilts: its normal ``(nx, ny, nz)`` becomes ``∝ (nx, ny, nz/k)``.
The bodies' left-right axes (hip to hip, shoulder to shoulder) lie level on average (pelvic and
shoulder obliquity swing both ways; the forward lean of walking and jumping, ≈ 10°, does not
enter, which is why the body's up axis is *not* used), so the ``k`` that makes them level on the
fitted ground is the focal correction.

The cue needs a camera that looks down or up at the floor (``nz ≠ 0``) *and* bodies turned away
from facing the camera (axes with a depth component). For a level camera the focal is not
observable from people on a floor at all (every focal gives the same images); then the prior
(the default focal) stands. The estimate is combined with that prior (log-normal,
``PRIOR_SIGMA``) and only used when its own block-bootstrap uncertainty is below
``MAX_SIGMA``; otherwise the run keeps the default and the manifest says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Left/right joint pairs whose axes should be level: hips, shoulders (SMPL joint indices).
LEVEL_PAIRS = ((1, 2), (16, 17))
#: Spread (log) of real focal lengths around the default (phones' video modes: ≈ 26–40 mm).
PRIOR_SIGMA = 0.15
#: The self-calibrated focal is used only when the data alone pin log(k) to this (≈ 8 %).
MAX_SIGMA = 0.08
#: Search range of the focal correction k.
K_RANGE = (0.5, 2.0)
K_STEPS = 121
#: Block bootstrap: blocks of frames (temporal correlation) and resamples; fixed seed.
BOOTSTRAP_BLOCKS = 12
BOOTSTRAP_DRAWS = 64
BOOTSTRAP_SEED = 0
#: Below this many axes the estimate is not attempted.
MIN_AXES = 30


@dataclass(frozen=True)
class FocalEstimate:
    """Focal correction ``k`` (new focal = k × old) and its log-uncertainty; ``used`` says whether
    it passed MAX_SIGMA; ``reason`` explains a refusal."""

    k: float
    sigma: float
    used: bool
    reason: str = ""

    def as_dict(self) -> dict:
        """For the manifest."""
        return {"scale": round(self.k, 4), "sigma_log": round(self.sigma, 4), "used": self.used,
                "reason": self.reason}


def level_axes(joints: np.ndarray) -> np.ndarray:
    """Unit left-right axes (T·P,3) of camera-frame joints (T,24,3) for LEVEL_PAIRS."""
    axes = np.concatenate([joints[:, b] - joints[:, a] for a, b in LEVEL_PAIRS])
    return axes / np.maximum(np.linalg.norm(axes, axis=-1, keepdims=True), 1e-9)


def _costs(normal: np.ndarray, axes: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Mean squared sine of the axes' tilt off the plane (K,) for each correction in ks (K,)."""
    n = np.stack([np.full_like(ks, normal[0]), np.full_like(ks, normal[1]), normal[2] / ks], -1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return np.mean(np.square(axes @ n.T), axis=0)


def _best_k(normal: np.ndarray, axes: np.ndarray, ks: np.ndarray) -> float:
    """The grid value of ks (geometric) with the lowest cost, refined by a parabola in log k."""
    cost = _costs(normal, axes, ks)
    i = int(np.argmin(cost))
    if i == 0 or i == len(ks) - 1:
        return float(ks[i])
    c0, c1, c2 = cost[i - 1 : i + 2]
    curve = c0 - 2 * c1 + c2
    step = 0.5 * (c0 - c2) / curve if curve > 0 else 0.0
    return float(ks[i] * (ks[i + 1] / ks[i]) ** np.clip(step, -0.5, 0.5))


def estimate_focal_scale(normal: np.ndarray, axes: np.ndarray) -> FocalEstimate:
    """The focal correction from a ground ``normal`` (3,) fitted at the current focal (camera frame)
    and the bodies' unit left-right ``axes`` (N,3) in time order, combined with the prior."""
    normal = np.asarray(normal, np.float64)
    axes = np.asarray(axes, np.float64)
    if len(axes) < MIN_AXES:
        return FocalEstimate(1.0, np.inf, False, "too few body axes")
    ks = np.geomspace(*K_RANGE, K_STEPS)
    k = _best_k(normal, axes, ks)
    blocks = np.array_split(np.arange(len(axes)), BOOTSTRAP_BLOCKS)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = [_best_k(normal, axes[np.concatenate([blocks[i] for i in pick])], ks)
             for pick in rng.integers(0, len(blocks), (BOOTSTRAP_DRAWS, len(blocks)))]
    sigma = float(np.std(np.log(draws)))
    if sigma > MAX_SIGMA or not ks[0] < k < ks[-1]:
        why = "the camera is nearly level or the people face it" if sigma > MAX_SIGMA else "out of range"
        return FocalEstimate(1.0, sigma, False, f"focal not observable from the footage ({why})")
    w = PRIOR_SIGMA**2 / (PRIOR_SIGMA**2 + max(sigma, 1e-3) ** 2)
    return FocalEstimate(float(np.exp(w * np.log(k))), sigma, True)
