"""The optimisation half of the BlazePose fit: parameters, objective, analytic gradient, L-BFGS.

See :mod:`vibe_engine.blazepose.fit` for the model, the loss terms and their frames and units.
Plain numpy float64 with a hand-written reverse pass (no autograd framework): the default
backend then never imports torch, which costs ~0.9 s of one core and ~300 MB on 2 cores.
The gradient is checked against central finite differences in tests/engine/test_fit_objective.py.

Parameter vector x (float64), in this order:
* ``delta`` (T,F,3): rotation increments of the F free joints, axis-angle scaled by the joint's
  lever arm (metres): local R = R_init · exp(delta / lever);
* ``flex`` (T,4): hinge flexions scaled by the lever: R = exp(sign · flex / lever · axis);
* ``transl`` (T,3): root translation, camera frame, metres;
* ``log_scale`` (1,): log of the scale applied to BlazePose's world landmarks.
The lever preconditioning makes one unit of every parameter move markers by about a metre, so the
root and a wrist have comparable curvature for L-BFGS.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.spatial.transform import Rotation

from vibe_engine.blazepose import topology as topo
from vibe_engine.blazepose.model import (FIXED_JOINTS, FREE_JOINTS, HINGE_JOINTS, HINGES, LOSS_SCALE,
                                         REST_PRIOR, SPINE, FitConfig, Observations, Skeleton, chain_kinematics)

log = logging.getLogger(__name__)

#: Depth floor (metres) for the projection and for the pixel → metre conversion of the 2D term.
MIN_DEPTH_M = 0.1
_LO = np.array([HINGES[j][1] for j in HINGE_JOINTS])
_HI = np.array([HINGES[j][2] for j in HINGE_JOINTS])
_AXES = np.zeros((len(HINGE_JOINTS), 3))
for _k, _j in enumerate(HINGE_JOINTS):
    _AXES[_k, HINGES[_j][0]] = HINGES[_j][3]
_ORDER = np.argsort(FREE_JOINTS + HINGE_JOINTS + FIXED_JOINTS)
_FREE, _HINGE = list(FREE_JOINTS), list(HINGE_JOINTS)
_LHIP, _RHIP = topo.LM["left_hip"], topo.LM["right_hip"]


def hat(v: np.ndarray) -> np.ndarray:
    """(...,3) → (...,3,3) cross-product matrices."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = np.zeros_like(x)
    return np.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(*v.shape[:-1], 3, 3)


def so3_exp(v: np.ndarray) -> np.ndarray:
    """Rodrigues: (...,3) axis-angle → (...,3,3), series near zero."""
    th2 = (v * v).sum(-1)[..., None, None]
    th = np.sqrt(th2)
    small = th2 < 1e-8
    safe = np.where(small, 1.0, th)
    a = np.where(small, 1.0 - th2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - th2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
    k = hat(v)
    return np.eye(3) + a * k + b * (k @ k)


def right_jacobian_t(v: np.ndarray, g: np.ndarray) -> np.ndarray:
    """J_r(v)ᵀ · g for (...,3) v and g: maps a body-frame rotation gradient to d/dv of exp(v)."""
    th2 = (v * v).sum(-1)[..., None]
    th = np.sqrt(th2)
    small = th2 < 1e-8
    safe = np.where(small, 1.0, th)
    c1 = np.where(small, 0.5 - th2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
    c2 = np.where(small, 1.0 / 6.0 - th2 / 120.0, (safe - np.sin(safe)) / (safe * safe * safe))
    # J_r = I − c1·[v]× + c2·[v]×²;  J_rᵀ g = g + c1·(v × g) + c2·[v]×² g (([v]×²)ᵀ = [v]×²)
    vxg = np.cross(v, g)
    return g + c1 * vxg + c2 * np.cross(v, vxg)


def _vee_grad(r: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gradient (...,3) w.r.t. ω of L(R·exp([ω]×)) at ω = 0, given R and G = dL/dR (...,3,3)."""
    m = np.swapaxes(r, -1, -2) @ g
    return np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1)


@dataclass
class Problem:
    """Everything fixed during one window's optimisation (float64 arrays)."""

    base: np.ndarray        # (T,F,3,3) initial local rotations of the free joints
    lever_free: np.ndarray  # (F,)
    lever_flex: np.ndarray  # (4,)
    bones: np.ndarray       # (24,3)
    offsets: np.ndarray     # (33,3)
    levels: list            # [(joint indices, parent indices)] by tree depth
    world: np.ndarray       # (T,33,3)
    image: np.ndarray       # (T,33,2)
    weight: np.ndarray      # (T,33) visibility·presence·per-landmark fit weight / norm
    focal: float
    center: np.ndarray      # (2,)
    cfg: FitConfig

    def __post_init__(self) -> None:
        self.marker_to_joint = _one_hot(topo.MARKER_PARENT, 24)
        self.level_groups = [_unique_parent_groups(par) for _, par in self.levels]

    @property
    def frames(self) -> int:
        return self.base.shape[0]

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """x → delta (T,F,3), flex_m (T,4), transl (T,3), log_scale."""
        t, f = self.frames, len(_FREE)
        a, b = t * f * 3, t * f * 3 + t * 4
        return x[:a].reshape(t, f, 3), x[a:b].reshape(t, 4), x[b:b + 3 * t].reshape(t, 3), float(x[-1])

    def rotations(self, x: np.ndarray, clip: bool = False) -> np.ndarray:
        """Local rotations (T,24,3,3) for parameters x (hinges clipped to their range if asked)."""
        delta, flex_m, _, _ = self.split(x)
        flex = flex_m / self.lever_flex
        if clip:
            flex = np.clip(flex, _LO, _HI)
        return self.assemble(self.base @ so3_exp(delta / self.lever_free[:, None]), so3_exp(flex[..., None] * _AXES))

    def assemble(self, free: np.ndarray, hinge: np.ndarray) -> np.ndarray:
        """Local rotations (T,24,3,3) from free (T,F,3,3) and hinge (T,4,3,3) rotations (others: I)."""
        fixed = np.broadcast_to(np.eye(3), (free.shape[0], len(FIXED_JOINTS), 3, 3))
        return np.concatenate([free, hinge, fixed], 1)[:, _ORDER]


def build_problem(loc: np.ndarray, skeleton: Skeleton, obs: Observations, cfg: FitConfig) -> Problem:
    """The fixed data of one window: initial rotations (T,24,3,3), skeleton, observations."""
    valid = obs.weight.sum(1) > 0
    norm = float(max(valid.sum(), 1)) * topo.NUM_LANDMARKS
    w = np.where(np.isfinite(obs.weight), obs.weight, 0.0) * topo.FIT_WEIGHTS / norm
    lever = skeleton.levers().astype(np.float64)
    return Problem(base=np.asarray(loc, np.float64)[:, _FREE], lever_free=lever[_FREE], lever_flex=lever[_HINGE],
                   bones=skeleton.bones.astype(np.float64), offsets=skeleton.offsets.astype(np.float64),
                   levels=skeleton.levels, world=np.nan_to_num(obs.world).astype(np.float64),
                   image=np.nan_to_num(obs.image).astype(np.float64), weight=w.astype(np.float64),
                   focal=float(obs.focal_px), center=np.array([obs.cx, obs.cy], np.float64), cfg=cfg)


def initial_vector(loc: np.ndarray, transl0: np.ndarray, prob: Problem) -> np.ndarray:
    """x0: zero increments, the hinge angles of ``loc`` (T,24,3,3), ``transl0`` (T,3), scale 1."""
    flex = [HINGES[j][3] * Rotation.from_matrix(loc[:, j]).as_rotvec()[:, HINGES[j][0]] for j in HINGE_JOINTS]
    flex_m = np.stack(flex, 1) * prob.lever_flex
    delta = np.zeros((prob.frames, len(_FREE), 3))
    return np.concatenate([delta.ravel(), flex_m.ravel(), np.asarray(transl0, np.float64).ravel(), [0.0]])


def _unique_parent_groups(parents: np.ndarray) -> list[np.ndarray]:
    """Split a level's children (positions into ``parents``) into groups whose parents are all
    different, so each group's gradients can be added to its parents by plain fancy indexing."""
    groups: list[list[int]] = []
    for k, p in enumerate(parents):
        for g in groups:
            if all(parents[i] != p for i in g):
                g.append(k)
                break
        else:
            groups.append([k])
    return [np.array(g) for g in groups]


def _one_hot(targets: np.ndarray, size: int) -> np.ndarray:
    """(size, K) float64 matrix that sums K rows into their target rows 0..size-1."""
    return (np.arange(size)[:, None] == np.asarray(targets)[None]).astype(np.float64)


def _gather_sum(onehot: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Sum rows of x (T,K,...) into (T,U,...) with a (U,K) one-hot matrix (one BLAS product)."""
    return np.moveaxis(np.tensordot(onehot, x, axes=([1], [1])), 0, 1)


def _fk_backward(rot: np.ndarray, g: np.ndarray, d_markers: np.ndarray, d_rot: np.ndarray,
                 prob: Problem) -> np.ndarray:
    """Add dL/d(local rotations) (T,24,3,3) to ``d_rot`` given dL/dmarkers (T,33,3).

    Reverse pass of ``fit.chain_kinematics``, deepest level first. Markers are summed into their
    joints with a one-hot matrix product, children into parents group by group (siblings in
    different groups): both much faster than ``np.add.at``.
    """
    to_joint = prob.marker_to_joint
    d_t = _gather_sum(to_joint, d_markers)
    d_g = _gather_sum(to_joint, d_markers[..., :, None] * prob.offsets[None, :, None, :])
    for (idx, par), groups in zip(reversed(prob.levels), reversed(prob.level_groups)):
        gp = g[:, par]
        d_rot[:, idx] += np.swapaxes(gp, -1, -2) @ d_g[:, idx]
        contrib = d_g[:, idx] @ np.swapaxes(rot[:, idx], -1, -2) + d_t[:, idx, :, None] * prob.bones[idx][None, :, None, :]
        d_tc = d_t[:, idx]
        for grp in groups:
            d_g[:, par[grp]] += contrib[:, grp]
            d_t[:, par[grp]] += d_tc[:, grp]
    d_rot[:, 0] += d_g[:, 0]
    return d_rot


def _data_terms(markers: np.ndarray, transl: np.ndarray, scale: float, prob: Problem
                ) -> tuple[dict[str, float], np.ndarray, np.ndarray, float]:
    """3D, 2D and smoothness terms: (losses, dL/dmarkers (T,33,3), dL/dtransl (T,3), dL/dlog_scale)."""
    cfg, w = prob.cfg, prob.weight
    hip = 0.5 * (markers[:, _LHIP] + markers[:, _RHIP])
    r = markers - hip[:, None] - scale * prob.world
    d_r = 2.0 * cfg.w3d * w[..., None] * r
    d_m = d_r.copy()
    back = d_r.sum(1)
    d_m[:, _LHIP] -= 0.5 * back
    d_m[:, _RHIP] -= 0.5 * back
    losses = {"3d": cfg.w3d * float((w * (r * r).sum(-1)).sum())}
    d_log_scale = -scale * float((d_r * prob.world).sum())
    cam = markers + transl[:, None]
    z_raw = cam[..., 2]
    z = np.maximum(z_raw, MIN_DEPTH_M)
    q = np.maximum(transl[:, 2], MIN_DEPTH_M)[:, None, None] / prob.focal  # metres per pixel (no gradient)
    e = (prob.focal * cam[..., :2] / z[..., None] + prob.center - prob.image) * q
    losses["2d"] = cfg.w2d * float((w * (e * e).sum(-1)).sum())
    d_proj = 2.0 * cfg.w2d * w[..., None] * e * q
    d_cam = np.zeros_like(cam)
    d_cam[..., :2] = d_proj * prob.focal / z[..., None]
    d_z = -(d_proj * prob.focal * cam[..., :2]).sum(-1) / (z * z)
    d_cam[..., 2] = np.where(z_raw > MIN_DEPTH_M, d_z, 0.0)
    if cam.shape[0] > 2:
        c = cfg.w_smooth / (cam.shape[0] * topo.NUM_LANDMARKS)
        acc = cam[2:] - 2 * cam[1:-1] + cam[:-2]
        losses["smooth"] = c * float((acc * acc).sum())
        d_acc = 2.0 * c * acc
        d_cam[2:] += d_acc
        d_cam[1:-1] -= 2.0 * d_acc
        d_cam[:-2] += d_acc
    d_m += d_cam
    return losses, d_m, d_cam.sum(1), d_log_scale


def _prior_terms(rot: np.ndarray, d_rot: np.ndarray, cfg: FitConfig) -> dict[str, float]:
    """Spine-equality and rest priors on local rotations; adds their gradient to ``d_rot``."""
    n = rot.shape[0]
    spine = rot[:, list(SPINE)]
    dev = spine - spine.mean(1, keepdims=True)
    c = cfg.w_spine / (n * len(SPINE))
    d_rot[:, list(SPINE)] += 2.0 * c * dev
    out = {"prior": c * float((dev * dev).sum())}
    for j, wj in REST_PRIOR.items():
        diff = rot[:, j] - np.eye(3)
        out["prior"] += cfg.w_prior * wj / n * float((diff * diff).sum())
        d_rot[:, j] += 2.0 * cfg.w_prior * wj / n * diff
    return out


def evaluate(x: np.ndarray, prob: Problem) -> tuple[dict[str, float], np.ndarray]:
    """Loss terms (unscaled, metres²) and the gradient dL/dx of their sum (same layout as x)."""
    delta, flex_m, transl, log_scale = prob.split(x)
    v = delta / prob.lever_free[:, None]
    flex = flex_m / prob.lever_flex
    exp_free = so3_exp(v)
    free = prob.base @ exp_free
    hinge = so3_exp(flex[..., None] * _AXES)
    rot = prob.assemble(free, hinge)
    g, _, markers = chain_kinematics(rot, prob.bones, prob.offsets, prob.levels)
    scale = float(np.exp(log_scale))
    losses, d_m, d_transl, d_ls = _data_terms(markers, transl, scale, prob)
    d_rot = np.zeros_like(rot)
    losses.update(_prior_terms(rot, d_rot, prob.cfg))
    _fk_backward(rot, g, d_m, d_rot, prob)
    d_v = right_jacobian_t(v, _vee_grad(free, d_rot[:, _FREE]))
    d_flex = (_vee_grad(hinge, d_rot[:, _HINGE]) * _AXES).sum(-1)
    c = prob.cfg.w_limit / flex.size
    below, above = np.minimum(flex - _LO, 0.0), np.maximum(flex - _HI, 0.0)
    losses["limit"] = c * float((below * below + above * above).sum())
    d_flex += 2.0 * c * (below + above)
    grad = np.concatenate([(d_v / prob.lever_free[:, None]).ravel(), (d_flex / prob.lever_flex).ravel(),
                           d_transl.ravel(), [d_ls]])
    return losses, grad


def optimise(loc: np.ndarray, transl0: np.ndarray, skeleton: Skeleton, obs: Observations,
             cfg: FitConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Optimise one window from the initial local rotations (T,24,3,3) and root translation (T,3).

    SciPy's L-BFGS-B (Moré–Thuente strong-Wolfe line search), at most ``cfg.iterations``
    iterations. Returns the local rotations (T,24,3,3) float32 with the hinge limits clipped, the
    root translation (T,3) float32 metres (camera frame) and the fitted world-landmark scale.
    """
    prob = build_problem(loc, skeleton, obs, cfg)

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        losses, grad = evaluate(x, prob)
        return LOSS_SCALE * sum(losses.values()), LOSS_SCALE * grad

    res = minimize(objective, initial_vector(loc, transl0, prob), jac=True, method="L-BFGS-B",
                   options={"maxiter": cfg.iterations, "maxfun": int(cfg.iterations * 1.25), "maxcor": 20,
                            "ftol": 1e-12, "gtol": 1e-9})
    if log.isEnabledFor(logging.DEBUG):  # one more evaluation, only for the log
        losses = evaluate(res.x, prob)[0]
        log.debug("fit: %d iterations, %s", res.nit, {k: round(v, 8) for k, v in losses.items()})
    _, _, transl, log_scale = prob.split(res.x)
    return (prob.rotations(res.x, clip=True).astype(np.float32), transl.astype(np.float32).copy(),
            float(np.exp(log_scale)))
