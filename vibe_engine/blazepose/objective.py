"""The torch half of the BlazePose fit: parameters, objective and the L-BFGS optimisation.

See :mod:`vibe_engine.blazepose.fit` for the model, the loss terms and their frames/units. This
module is imported only when a window is optimised (or by ``fit.preload_torch``), so that the
engine starts without paying for torch.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from vibe_engine.blazepose import topology as topo
from vibe_engine.blazepose.fit import (FIXED_JOINTS, FREE_JOINTS, HINGE_JOINTS, HINGES, LOSS_SCALE, REST_PRIOR,
                                       SPINE, FitConfig, Observations, Skeleton)

log = logging.getLogger(__name__)


def skeleton_tensors(skeleton: Skeleton) -> dict:
    """The skeleton as torch tensors for ``forward_kinematics``."""
    return {"bones": torch.as_tensor(skeleton.bones), "offsets": torch.as_tensor(skeleton.offsets),
            "levels": [(torch.as_tensor(i), torch.as_tensor(p)) for i, p in skeleton.levels],
            "marker_parent": torch.as_tensor(topo.MARKER_PARENT)}


def optimise(loc: np.ndarray, transl0: np.ndarray, skeleton: Skeleton, obs: Observations,
             cfg: FitConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Optimise one window from the initial local rotations (T,24,3,3) and root translation (T,3).

    Returns the local rotations (T,24,3,3) float32 with the hinge limits clipped, the root
    translation (T,3) float32 metres (camera frame) and the fitted world-landmark scale.
    """
    params = _Params(loc, transl0, skeleton.levers())
    _optimise(params, skeleton_tensors(skeleton), _tensor_obs(obs), cfg)
    with torch.no_grad():
        rot = params.rotations(clip=True).numpy()
    return rot, params.transl.detach().numpy().copy(), float(torch.exp(params.log_scale.detach()))


def forward_kinematics(rot: torch.Tensor, sk: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """SMPL chain: rot (T,24,3,3) local rotations → joints (T,24,3), markers (T,33,3).

    Batched by tree depth (9 levels for SMPL) rather than joint by joint.
    """
    n = rot.shape[0]
    g = rot.new_zeros(n, 24, 3, 3).index_copy(1, torch.tensor([0]), rot[:, :1])
    t = rot.new_zeros(n, 24, 3).index_copy(1, torch.tensor([0]), sk["bones"][:1].expand(n, 1, 3))
    for idx, par in sk["levels"]:
        gp = g[:, par]
        g = g.index_copy(1, idx, gp @ rot[:, idx])
        t = t.index_copy(1, idx, t[:, par] + (gp @ sk["bones"][idx][..., None])[..., 0])
    mp = sk["marker_parent"]
    markers = t[:, mp] + (g[:, mp] @ sk["offsets"][..., None])[..., 0]
    return t, markers


def so3_exp(v: torch.Tensor) -> torch.Tensor:
    """Rodrigues: (...,3) axis-angle → (...,3,3), smooth at zero."""
    theta2 = v.square().sum(-1, keepdim=True)[..., None]
    theta = torch.sqrt(theta2 + 1e-12)
    small = theta2 < 1e-6
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / (theta2 + 1e-12))
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    k = torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(*v.shape[:-1], 3, 3)
    return torch.eye(3) + a * k + b * (k @ k)


class _Params(torch.nn.Module):
    """Free parameters: rotation increments (axis-angle, applied after the initial local rotations:
    R = R_init · exp(δ)), hinge flexions, transl (T,3) and the log world scale.

    Preconditioning: δ and the flexions are stored multiplied by each joint's lever arm (metres, the
    RMS distance of the markers it moves), so that one unit of every parameter moves markers by
    about one metre: the root and a wrist then have comparable curvature for L-BFGS.
    """

    def __init__(self, loc: np.ndarray, transl: np.ndarray, levers: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("base", torch.as_tensor(np.array(loc, dtype=np.float32)))
        self.register_buffer("lever", torch.as_tensor(levers, dtype=torch.float32))
        self.register_buffer("flex_lever", self.lever[list(HINGE_JOINTS)])
        self.delta_m = torch.nn.Parameter(torch.zeros(loc.shape[0], len(FREE_JOINTS), 3))
        self.register_buffer("free_lever", self.lever[list(FREE_JOINTS)])
        self.register_buffer("free_base", self.base[:, list(FREE_JOINTS)])
        axes = torch.zeros(len(HINGE_JOINTS), 3)
        for k, j in enumerate(HINGE_JOINTS):
            axes[k, HINGES[j][0]] = HINGES[j][3]
        self.register_buffer("hinge_axes", axes)
        self.register_buffer("order", torch.as_tensor(np.argsort(FREE_JOINTS + HINGE_JOINTS + FIXED_JOINTS)))
        flex = [HINGES[j][3] * Rotation.from_matrix(loc[:, j]).as_rotvec()[:, HINGES[j][0]]
                for j in HINGE_JOINTS]
        flex_m = torch.as_tensor(np.stack(flex, 1), dtype=torch.float32) * self.flex_lever
        self.flex_m = torch.nn.Parameter(flex_m)
        self.transl = torch.nn.Parameter(torch.as_tensor(transl, dtype=torch.float32))
        self.log_scale = torch.nn.Parameter(torch.zeros(()))

    @property
    def flex(self) -> torch.Tensor:
        """Hinge flexions (T,4), radians."""
        return self.flex_m / self.flex_lever

    def rotations(self, clip: bool = False) -> torch.Tensor:
        """Local rotations (T,24,3,3) with hinges and fixed joints applied."""
        free = self.free_base @ so3_exp(self.delta_m / self.free_lever[:, None])
        flex = self.flex
        if clip:
            lo = torch.tensor([HINGES[j][1] for j in HINGE_JOINTS])
            hi = torch.tensor([HINGES[j][2] for j in HINGE_JOINTS])
            flex = torch.minimum(torch.maximum(flex, lo), hi)
        hinge = so3_exp(flex[..., None] * self.hinge_axes)
        fixed = torch.eye(3).expand(free.shape[0], len(FIXED_JOINTS), 3, 3)
        return torch.cat([free, hinge, fixed], 1)[:, self.order]


def _losses(p: _Params, sk: dict, obs: dict, cfg: FitConfig) -> dict[str, torch.Tensor]:
    rot = p.rotations()
    _, m = forward_kinematics(rot, sk)
    w = obs["weight"]
    hip = 0.5 * (m[:, topo.LM["left_hip"]] + m[:, topo.LM["right_hip"]])
    d3 = ((m - hip[:, None]) - torch.exp(p.log_scale) * obs["world"]).square().sum(-1)
    cam = m + p.transl[:, None]
    z = cam[..., 2].clamp(min=0.1)
    proj = obs["focal"] * cam[..., :2] / z[..., None] + obs["center"]
    depth = p.transl[:, 2].detach().clamp(min=0.1)[:, None]
    d2 = ((proj - obs["image"]) * (depth / obs["focal"])[..., None]).square().sum(-1)
    fw = obs["fit_w"]
    out = {"3d": cfg.w3d * (w * fw * d3).sum() / obs["norm"],
           "2d": cfg.w2d * (w * fw * d2).sum() / obs["norm"]}
    if m.shape[0] > 2:
        acc = cam[2:] - 2 * cam[1:-1] + cam[:-2]
        out["smooth"] = cfg.w_smooth * acc.square().sum() / (m.shape[0] * topo.NUM_LANDMARKS)
    out["limit"] = cfg.w_limit * _limit_penalty(p.flex)
    out["prior"] = _prior(rot, cfg)
    return out


def _limit_penalty(flex: torch.Tensor) -> torch.Tensor:
    lo = torch.tensor([HINGES[j][1] for j in HINGE_JOINTS])
    hi = torch.tensor([HINGES[j][2] for j in HINGE_JOINTS])
    return ((lo - flex).clamp(min=0).square() + (flex - hi).clamp(min=0).square()).mean()


def _prior(rot: torch.Tensor, cfg: FitConfig) -> torch.Tensor:
    spine = rot[:, list(SPINE)]
    loss = cfg.w_spine * (spine - spine.mean(1, keepdim=True)).square().sum((-1, -2)).mean()
    rest = (rot[:, list(REST_PRIOR)] - torch.eye(3)).square().sum((-1, -2)).mean(0)
    return loss + cfg.w_prior * (rest * torch.tensor(list(REST_PRIOR.values()))).sum()


def _tensor_obs(obs: Observations) -> dict[str, torch.Tensor]:
    valid = obs.weight.sum(1) > 0
    w = np.where(np.isfinite(obs.weight), obs.weight, 0.0).astype(np.float32)
    return {"world": torch.as_tensor(np.nan_to_num(obs.world), dtype=torch.float32),
            "image": torch.as_tensor(np.nan_to_num(obs.image), dtype=torch.float32),
            "weight": torch.as_tensor(w), "focal": torch.tensor(float(obs.focal_px)),
            "center": torch.tensor([obs.cx, obs.cy], dtype=torch.float32),
            "fit_w": torch.as_tensor(topo.FIT_WEIGHTS),
            "norm": torch.tensor(float(max(valid.sum(), 1)) * topo.NUM_LANDMARKS)}


def _optimise(params: _Params, sk: dict, tobs: dict, cfg: FitConfig) -> None:
    """Minimise the objective in place with SciPy's L-BFGS-B (float64 steps, float32 torch
    objective and gradient), at most ``cfg.iterations`` iterations.

    Not ``torch.optim.LBFGS``: constructing any torch optimiser imports ``torch._dynamo`` (0.9 s
    of the engine's start-up on 2 cores, measured); SciPy's Moré–Thuente line search is the same
    strong-Wolfe search.
    """
    from scipy.optimize import minimize

    tensors = list(params.parameters())
    sizes = [t.numel() for t in tensors]

    def assign(x: np.ndarray) -> None:
        with torch.no_grad():
            for t, chunk in zip(tensors, np.split(x, np.cumsum(sizes)[:-1])):
                t.copy_(torch.from_numpy(chunk.astype(np.float32)).view_as(t))

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        assign(x)
        for t in tensors:
            t.grad = None
        total = LOSS_SCALE * sum(_losses(params, sk, tobs, cfg).values())
        total.backward()
        grad = torch.cat([t.grad.reshape(-1) for t in tensors]).double().numpy()
        return float(total.detach()), grad

    x0 = torch.cat([t.detach().reshape(-1) for t in tensors]).double().numpy()
    res = minimize(objective, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": cfg.iterations, "maxfun": int(cfg.iterations * 1.25), "maxcor": 20,
                            "ftol": 1e-12, "gtol": 1e-9})
    assign(res.x)
    with torch.no_grad():
        log.debug("fit: %d iterations, %s", res.nit,
                  {k: round(float(v), 8) for k, v in _losses(params, sk, tobs, cfg).items()})
