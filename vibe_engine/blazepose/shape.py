"""Per-track body shape (betas) from BlazePose world landmarks; off by default (see Measured).

Model: the body's rest markers (the fit's 33 virtual markers, :mod:`vibe_engine.blazepose.topology`,
T-pose, no rotation) as a function of the betas, ``M(β) = M(0) + Σ_k β_k·∂M/∂β_k`` (joints are
linear in β; the marker offsets very nearly so: the derivative is a central difference of ±1),
and the mean length of each :data:`SEGMENT_GROUPS` entry (upper arm, forearm, thigh, shin, hip
width) between those markers.

Observation: per group, the median length over the frames where both landmarks of a segment are
confident (visibility·presence ≥ ``ShapeConfig.min_weight``) in the world landmarks (metres);
left and right segments are pooled (robust to left/right label swaps).

Estimate (MAP; SciPy ``least_squares`` with bounds over a handful of unknowns): minimise over
``log s`` and the estimated slots of β

    Σ_g ((log L_obs,g − bias_g − log s − log L_g(β)) / σ_noise)²  +  Σ_k (β_k / σ_prior)²

``s`` is a free overall size factor, so only proportions inform β. β is clamped to the range the
body supports (the stand-in's phenotypes in [0, 1]; ±3 for a body without that metadata).
``bias_g`` (:data:`BLAZEPOSE_LENGTH_BIAS`) are BlazePose's systematic log length ratios to the
stand-in's markers (different joint definitions: e.g. its ankle points sit higher, shortening
the shin), measured on held-out synthetic clips (:data:`CALIBRATION_CLIPS`, not in the suite).

Measured (synthetic suite and the 8 calibration clips, stand-in bodies, make_clip.py ground truth):

* Height is not observable: BlazePose's world size does not follow stature (median thigh
  0.393-0.399 m for bodies of 1.41-1.60 m joint height; the sum of 7 segments is 0.92-0.96 of
  the mean body's whatever the true size). β0 is therefore not estimated by default.
* Proportions are barely observable: per clip, the group log lengths scatter by σ ≈ 0.05 around
  their bias (world and image landmarks alike), while one unit of β changes the proportions by at
  most 0.055 (the best-determined combination, ≈ 0.49 β1 − 0.79 β2 − 0.37 β3; the next 0.022;
  weight and muscle together change the skeleton by < 0.4 %). The estimate is no better than
  zeros: sum of |β1-β3 errors| 7.1 vs 5.5 on the suite's 5 clips, 21.3 vs 17.0 leave-one-out
  on the calibration clips.
* In the fit it does not measurably help (overall PA-MPJPE mm / MPJPE mm / accel / root
  trajectory % / ground penetration cm): mean shape 54.6 / 86.4 / 7.6 / 12.2 / 2.3; estimated
  β1-β3 54.7 / 85.9 / 7.6 / 12.5 / 2.3; estimated β0-β3 54.7 / 85.7 / 7.6 / 11.9 / 2.3; with a
  bias from 5 of the clips and σ 0.04, 55.0 / 87.0 / 7.7 / 12.1 / 2.9; the true betas would give
  54.6 / 83.7 / 7.6 / 12.6 / 1.7. Hence ``backend.DEFAULT_SHAPE`` is None; pass a
  :class:`ShapeConfig` to use it.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vibe_engine.blazepose import fit
from vibe_engine.blazepose import topology as topo

log = logging.getLogger(__name__)

#: Segment groups: name → landmark pairs pooled into one observed length (left and right sides).
#: Only segments (nearly) rigid in the fit's body model: shoulder width and torso sides change with
#: the collar and spine rotations (and were the least consistent in BlazePose's output); the thigh
#: starts at the hip landmark, 2.8 cm from the hip joint (≈ 0.1 mm of pose dependence).
SEGMENT_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "upper_arm": (("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow")),
    "forearm": (("left_elbow", "left_wrist"), ("right_elbow", "right_wrist")),
    "thigh": (("left_hip", "left_knee"), ("right_hip", "right_knee")),
    "shin": (("left_knee", "left_ankle"), ("right_knee", "right_ankle")),
    "hip_width": (("left_hip", "right_hip"),),
}
GROUP_NAMES = tuple(SEGMENT_GROUPS)
#: Every segment as a pair of landmark indices, and the group index of each.
SEGMENTS = np.array([[topo.LM[a], topo.LM[b]] for pairs in SEGMENT_GROUPS.values() for a, b in pairs])
SEGMENT_GROUP = np.array([g for g, pairs in enumerate(SEGMENT_GROUPS.values()) for _ in pairs])
#: Held-out calibration clips (benchmarks/synthetic/make_clip.py, ``--bvh 01_03.bvh --seconds 3``
#: plus these arguments; BVH windows not used by the suite): name → (start s, camera, seed, betas).
CALIBRATION_CLIPS = {
    "a_front": (18.0, "front", 10, ()),  # --bvh 01_01.bvh for this one
    "b_side": (21.0, "side", 11, ()), "c_diag": (25.0, "diagonal", 12, (0, 2)),
    "d_high": (29.0, "high", 13, (0, 0, 2)), "e_front": (33.0, "front", 14, (0, -2, -1, 1.5)),
    "f_side": (8.0, "side", 15, (0, 0, -2)), "g_diag": (11.5, "diagonal", 16, (0, -1, 1, -1.5)),
    "h_high": (0.2, "high", 17, (0, 1, 0, -2)),
}
#: log(BlazePose median length / stand-in marker length at the clip's true betas) per group
#: (GROUP_NAMES order), each clip's mean over groups removed (only ratios matter: s is free),
#: averaged over :data:`CALIBRATION_CLIPS`; their scatter is the default ``noise_sigma``.
BLAZEPOSE_LENGTH_BIAS = (-0.0339, 0.0563, 0.0589, -0.0404, -0.0409)
#: Range of a beta slot without phenotype metadata (SMPL-style bodies: ±3 standard deviations).
DEFAULT_BETA_BOUND = 3.0
#: Fewest confident observations (frames × sides) a segment group needs to count.
MIN_FRAMES = 10


@dataclass(frozen=True)
class ShapeConfig:
    """What is estimated and how strongly.

    slots: the beta indices estimated (others stay 0); default: the stand-in's weight, gender
    and muscle (β1-β3); add 0 for height (then informed by proportions only, barely).
    prior_sigma: standard deviation of the zero-mean prior on each estimated beta.
    noise_sigma: standard deviation of one group's observed log length (relative error).
    min_weight: visibility·presence both landmarks of a segment need in a frame to count.
    min_frames: confident observations a group needs to count (fewer: it is ignored).
    length_bias: (G,) log length bias of the landmarks against the body's markers
    (:data:`BLAZEPOSE_LENGTH_BIAS`; zeros for landmarks that are the body's own markers).
    """

    slots: tuple[int, ...] = (1, 2, 3)
    prior_sigma: float = 1.0
    noise_sigma: float = 0.05
    min_weight: float = 0.7
    min_frames: int = MIN_FRAMES
    length_bias: tuple[float, ...] = BLAZEPOSE_LENGTH_BIAS


class ShapeModel:
    """Segment lengths of a body's rest markers as a function of its betas.

    rest: (33,3) float64 rest markers at β = 0 (SMPL canonical frame, metres);
    basis: (B,33,3) their change per +1 of each beta; bounds: (B,2) the supported beta range.
    """

    def __init__(self, rest: np.ndarray, basis: np.ndarray, bounds: np.ndarray) -> None:
        self.rest, self.basis, self.bounds = rest, basis, bounds

    @classmethod
    def from_body(cls, body: Mapping[str, np.ndarray]) -> ShapeModel:
        """From SMPL-format arrays (as ``fit.Skeleton.from_body``); ``meta`` gives the ranges."""
        num = int(np.asarray(body["shapedirs"]).shape[2])
        rest = _rest_markers(body, np.zeros(num))
        basis = np.zeros((num, topo.NUM_LANDMARKS, 3))
        for k in range(num):
            step = np.eye(num)[k]
            basis[k] = 0.5 * (_rest_markers(body, step) - _rest_markers(body, -step))
        return cls(rest, basis, beta_bounds(body, num))

    @property
    def num_betas(self) -> int:
        """B, the body's number of shape slots."""
        return self.basis.shape[0]

    def group_lengths(self, betas: np.ndarray) -> np.ndarray:
        """(G,) metres: mean rest length of each segment group for betas (B,)."""
        m = self.rest + np.tensordot(np.asarray(betas, np.float64), self.basis, 1)
        seg = np.linalg.norm(m[SEGMENTS[:, 0]] - m[SEGMENTS[:, 1]], axis=-1)
        return np.bincount(SEGMENT_GROUP, seg) / np.bincount(SEGMENT_GROUP)


def _rest_markers(body: Mapping[str, np.ndarray], betas: np.ndarray) -> np.ndarray:
    """(33,3) float64 rest markers of the body with these betas."""
    sk = fit.Skeleton.from_body(body, betas)
    return sk.forward(np.broadcast_to(np.eye(3, dtype=np.float32), (1, 24, 3, 3)))[1][0].astype(np.float64)


def beta_bounds(body: Mapping[str, np.ndarray], num: int) -> np.ndarray:
    """(num,2) supported range per beta: the stand-in's phenotype in [0, 1] (its ``meta``), else ±3."""
    out = np.tile([-DEFAULT_BETA_BOUND, DEFAULT_BETA_BOUND], (num, 1))
    meta = body.get("meta") if isinstance(body, Mapping) else None
    if not isinstance(meta, Mapping):
        return out
    base = meta.get("base_phenotype", {})
    for entry in meta.get("betas", []):
        k, step, name = int(entry["slot"]), float(entry["phenotype_step_per_unit"]), entry["phenotype"]
        if k < num and step != 0.0 and name in base:
            out[k] = np.sort([(0.0 - base[name]) / step, (1.0 - base[name]) / step])
    return out


def observed_lengths(world: np.ndarray, weight: np.ndarray, cfg: ShapeConfig | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Robust segment-group lengths of one track.

    world: (T,33,3) metres (NaN rows allowed), weight: (T,33) visibility·presence.
    Returns (G,) median lengths in metres (NaN where a group has fewer than ``min_frames``
    confident observations) and (G,) int counts of the observations used.
    """
    cfg = cfg or ShapeConfig()
    w = np.nan_to_num(np.asarray(weight, np.float64))
    p = np.asarray(world, np.float64)
    seg = np.linalg.norm(p[:, SEGMENTS[:, 0]] - p[:, SEGMENTS[:, 1]], axis=-1)  # (T,S)
    ok = (np.minimum(w[:, SEGMENTS[:, 0]], w[:, SEGMENTS[:, 1]]) >= cfg.min_weight) & np.isfinite(seg)
    lengths = np.full(len(GROUP_NAMES), np.nan)
    counts = np.zeros(len(GROUP_NAMES), np.int64)
    for g in range(len(GROUP_NAMES)):
        cols = SEGMENT_GROUP == g
        values = seg[:, cols][ok[:, cols]]
        counts[g] = values.size
        if values.size >= cfg.min_frames:
            lengths[g] = float(np.median(values))
    return lengths, counts


def estimate_betas(world: np.ndarray, weight: np.ndarray, model: ShapeModel,
                   cfg: ShapeConfig | None = None) -> np.ndarray:
    """MAP betas (B,) float32 of one track (see the module docstring); zeros when fewer than two
    segment groups are observed (proportions need at least two lengths).

    world: (T,33,3) BlazePose world landmarks, metres; weight: (T,33) visibility·presence.
    """
    cfg = cfg or ShapeConfig()
    lengths, _ = observed_lengths(world, weight, cfg)
    seen = np.isfinite(lengths)
    slots = [k for k in cfg.slots if k < model.num_betas and np.any(model.basis[k])]
    betas = np.zeros(model.num_betas)
    if seen.sum() < 2 or not slots:
        log.debug("shape: %d segment groups observed; betas left at 0", int(seen.sum()))
        return betas.astype(np.float32)
    target = np.log(lengths[seen]) - np.asarray(cfg.length_bias, np.float64)[seen]
    betas[slots] = _solve(target, seen, slots, model, cfg)
    log.debug("shape: lengths %s → betas %s", np.round(lengths, 3), np.round(betas[slots], 2))
    return betas.astype(np.float32)


def _solve(target: np.ndarray, seen: np.ndarray, slots: list[int], model: ShapeModel,
           cfg: ShapeConfig) -> np.ndarray:
    """The estimated slots' values: bounded least squares over (log s, β_slots)."""
    from scipy.optimize import least_squares

    def residuals(x: np.ndarray) -> np.ndarray:
        b = np.zeros(model.num_betas)
        b[slots] = x[1:]
        fit_err = (target - x[0] - np.log(model.group_lengths(b)[seen])) / cfg.noise_sigma
        return np.concatenate([fit_err, x[1:] / cfg.prior_sigma])

    lo = np.r_[-np.inf, model.bounds[slots, 0]]
    hi = np.r_[np.inf, model.bounds[slots, 1]]
    x0 = np.r_[float(np.mean(target - np.log(model.group_lengths(np.zeros(model.num_betas))[seen]))),
               np.zeros(len(slots))]
    return least_squares(residuals, x0, bounds=(lo, hi), method="trf").x[1:]
