"""BlazePose landmarks → SMPL pose and root translation, for one whole track at once.

Model: the chosen body's rest skeleton (rest joints = J_regressor · (v_template + shapedirs·β)),
SMPL kinematics (local transform of joint j = [R_j | J_j − J_parent]), and 33 virtual markers
rigidly attached to joint frames (:mod:`vibe_engine.blazepose.topology`). Bone lengths are the
body's by construction: only rotations and the root translation are fitted.

Frames: the global orientation (joint 0) and every output position are in the OpenCV camera frame
(x right, y down, z forward, metres). BlazePose world landmarks are image-aligned hip-centred
metres with the same axes, so they are used as camera-oriented, root-relative targets.

Steps:
1. Initialisation, analytic, per frame: pelvis orientation from the hip line and the hip→shoulder
   direction; the spine's twist/bend to the shoulder frame split equally over spine1-3; neck+head
   from the ears/nose frame; limbs by swing (the minimal rotation that turns the rest bone direction,
   carried by the parent, onto the observed bone direction), with the hip/shoulder twist chosen so
   that the observed knee/elbow bend lies in the hinge's plane; hinge angles from the bone angle.
   Root translation: a per-frame weighted linear least-squares solve of the pinhole equations
   ``f·(X+t)_x − (u−cx)·(Z+t_z) = 0`` (and the same for y) for t, given the posed markers.
2. One batched L-BFGS optimisation (SciPy's L-BFGS-B, strong-Wolfe line search,
   ``FitConfig.iterations``) over the
   whole track of: per-joint rotation increments (axis-angle, R = R_init·exp(δ)), hinge flexions,
   the root translation and one scale of the world landmarks; the objective (metres², in cm²
   internally) is the sum of
   * 3D: ‖(marker − marker hip centre) − s·world‖², weighted by visibility·presence;
   * 2D: the reprojection error converted to metres at the person's depth (px · t_z / f), weighted
     by visibility·presence and ``FitConfig.w2d`` (3× the 3D term: the measured sweep is at the constant);
   * smoothness: squared acceleration of markers and translation (per frame²);
   * joint limits: knees are one-axis hinges about the body's lateral (x) axis with flexion in
     [0°, 150°] (0 = straight; never backwards), elbows hinges about the vertical (y) axis with
     flexion in [0°, 150°]; soft range penalties and a final hard clip;
   * priors: spine1-3 rotations kept equal, collars/neck/wrists/ankles pulled gently to rest;
     feet and hands (no observation) are fixed at rest.
Deterministic: no random numbers. Plain numpy/SciPy (float64 optimisation with a hand-written
gradient in :mod:`vibe_engine.blazepose.objective`): the default backend never imports torch.

Before the fit, ``resolve_flips`` relabels frames that BlazePose read back to front (confident but
left/right-swapped, depth mirrored), by a 2-state Viterbi pass over the torso normal.
"""
from __future__ import annotations

import logging
import math

import numpy as np
from scipy.spatial.transform import Rotation

from vibe_engine.blazepose import topology as topo
# The model (joint groups, settings, observations, skeleton) lives in .model; re-exported here.
from vibe_engine.blazepose.model import (DEG, FIXED_JOINTS, FREE_JOINTS, HINGE_JOINTS, HINGES,  # noqa: F401
                                         LOSS_SCALE, MIN_LEVER_M, REST_PRIOR, SPINE, FitConfig, FitResult,
                                         Observations, Skeleton, chain_kinematics)
from vibe_engine.blazepose.objective import optimise

log = logging.getLogger(__name__)

#: Landmark used for each limb's swing in the initialisation: joint → (from landmark, to landmark).
LIMB_DIRECTIONS = {
    topo.SJ["left_hip"]: ("left_hip", "left_knee"), topo.SJ["right_hip"]: ("right_hip", "right_knee"),
    topo.SJ["left_knee"]: ("left_knee", "left_ankle"), topo.SJ["right_knee"]: ("right_knee", "right_ankle"),
    topo.SJ["left_ankle"]: ("left_heel", "left_foot_index"),
    topo.SJ["right_ankle"]: ("right_heel", "right_foot_index"),
    topo.SJ["left_shoulder"]: ("left_shoulder", "left_elbow"),
    topo.SJ["right_shoulder"]: ("right_shoulder", "right_elbow"),
    topo.SJ["left_elbow"]: ("left_elbow", "left_wrist"),
    topo.SJ["right_elbow"]: ("right_elbow", "right_wrist"),
}
#: Limb joint → (hinge child, flexion direction of the child's bone in the rest frame).
TWIST_FROM_HINGE = {topo.SJ["left_hip"]: (topo.SJ["left_knee"], (0.0, 0.0, -1.0)),
                    topo.SJ["right_hip"]: (topo.SJ["right_knee"], (0.0, 0.0, -1.0)),
                    topo.SJ["left_shoulder"]: (topo.SJ["left_elbow"], (0.0, 0.0, 1.0)),
                    topo.SJ["right_shoulder"]: (topo.SJ["right_elbow"], (0.0, 0.0, 1.0))}
MIN_BEND_FOR_TWIST_RAD = 15 * DEG
EPS = 1e-8


# ----------------------------------------------------------------------------- initialisation
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), EPS)


def _frame(x_dir: np.ndarray, up_dir: np.ndarray) -> np.ndarray:
    """Orthonormal frames (...,3,3) with columns (x, y, z): x along x_dir, y towards up_dir."""
    x = _unit(x_dir)
    y = _unit(up_dir - (up_dir * x).sum(-1, keepdims=True) * x)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimal rotations (T,3,3) turning unit directions a onto b (both (T,3))."""
    a, b = _unit(a), _unit(b)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    ang = np.arctan2(sin, (a * b).sum(-1))
    fallback = np.cross(a, np.where(np.abs(a[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))
    axis = np.where(sin[:, None] > 1e-6, axis, fallback)
    return Rotation.from_rotvec(_unit(axis) * ang[:, None]).as_matrix()


def _obs(world: np.ndarray, name: str) -> np.ndarray:
    return world[:, topo.LM[name]]


def _mid(world: np.ndarray, a: str, b: str) -> np.ndarray:
    return 0.5 * (_obs(world, a) + _obs(world, b))


def _torso_frames(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pelvis, shoulder and head frames (T,3,3) from 33 landmark positions (T,33,3)."""
    up = _mid(pts, "left_shoulder", "right_shoulder") - _mid(pts, "left_hip", "right_hip")
    pelvis = _frame(_obs(pts, "left_hip") - _obs(pts, "right_hip"), up)
    chest = _frame(_obs(pts, "left_shoulder") - _obs(pts, "right_shoulder"), up)
    ear_mid = _mid(pts, "left_ear", "right_ear")
    head_up = np.cross(_obs(pts, "nose") - ear_mid, _obs(pts, "left_ear") - _obs(pts, "right_ear"))
    head = _frame(_obs(pts, "left_ear") - _obs(pts, "right_ear"), head_up)
    return pelvis, chest, head


def _split(rel: np.ndarray, parts: int) -> np.ndarray:
    """(T,3,3) rotations → the rotation by 1/parts of the angle about the same axis."""
    return Rotation.from_rotvec(Rotation.from_matrix(rel).as_rotvec() / parts).as_matrix()


def initial_rotations(world: np.ndarray, sk: Skeleton) -> np.ndarray:
    """Analytic IK: local rotations (T,24,3,3) from camera-oriented landmarks (T,33,3)."""
    t = world.shape[0]
    rest_m = sk.forward(np.broadcast_to(np.eye(3), (1, 24, 3, 3)))[1]
    rest_frames = [f[0] for f in _torso_frames(rest_m)]
    obs_frames = _torso_frames(world)
    loc = np.tile(np.eye(3), (t, 24, 1, 1))
    glob = np.tile(np.eye(3), (t, 24, 1, 1))
    loc[:, 0] = obs_frames[0] @ rest_frames[0].T
    chest = obs_frames[1] @ rest_frames[1].T
    for j in SPINE:
        loc[:, j] = _split(np.swapaxes(loc[:, 0], 1, 2) @ chest, 3)
    head = obs_frames[2] @ rest_frames[2].T
    _propagate(loc, glob, sk.parents, upto=topo.SJ["neck"])
    rel = np.swapaxes(glob[:, topo.SJ["spine3"]], 1, 2) @ head
    loc[:, topo.SJ["neck"]] = loc[:, topo.SJ["head"]] = _split(rel, 2)
    _propagate(loc, glob, sk.parents)
    for j in sorted(LIMB_DIRECTIONS):
        _init_limb(j, world, sk, loc, glob)
    return loc


def _propagate(loc: np.ndarray, glob: np.ndarray, parents: np.ndarray, upto: int = 23) -> None:
    glob[:, 0] = loc[:, 0]
    for j in range(1, upto + 1):
        glob[:, j] = glob[:, parents[j]] @ loc[:, j]


def _init_limb(j: int, world: np.ndarray, sk: Skeleton, loc: np.ndarray, glob: np.ndarray) -> None:
    """Swing joint j so its bone points along the observed direction; hinge joints get an angle."""
    a, b = LIMB_DIRECTIONS[j]
    obs_dir = _obs(world, b) - _obs(world, a)
    pg = glob[:, sk.parents[j]]
    rest_dir = _rest_dir(j, sk)
    if j in HINGES:
        axis, lo, hi, sign = HINGES[j]
        cur = pg @ rest_dir
        ang = np.arccos(np.clip((_unit(cur) * _unit(obs_dir)).sum(-1), -1.0, 1.0))
        loc[:, j] = Rotation.from_rotvec(np.eye(3)[axis] * (sign * np.clip(ang, lo, hi))[:, None]).as_matrix()
    else:
        swing = _swing(pg @ rest_dir, obs_dir)
        loc[:, j] = np.swapaxes(pg, 1, 2) @ swing @ pg
        if j in TWIST_FROM_HINGE:
            loc[:, j] = loc[:, j] @ _hinge_twist(j, world, sk, pg @ loc[:, j])
    _propagate(loc, glob, sk.parents)


def _rest_dir(j: int, sk: Skeleton) -> np.ndarray:
    """Rest direction (3,) of the bone that joint j moves, towards the limb's observed target."""
    a, b = LIMB_DIRECTIONS[j]
    rest_m = sk.forward(np.broadcast_to(np.eye(3), (1, 24, 3, 3)))[1][0]
    return _unit(rest_m[topo.LM[b]] - rest_m[topo.LM[a]])


def _hinge_twist(j: int, world: np.ndarray, sk: Skeleton, g: np.ndarray) -> np.ndarray:
    """Twist (T,3,3) about joint j's rest bone so the observed child bend lies in the hinge plane."""
    child, flex = TWIST_FROM_HINGE[j]
    bone = _rest_dir(j, sk)
    a, b = LIMB_DIRECTIONS[child]
    child_dir = np.einsum("tba,tb->ta", g, _unit(_obs(world, b) - _obs(world, a)))
    perp = child_dir - (child_dir @ bone)[:, None] * bone
    flex = np.asarray(flex) - (np.dot(flex, bone)) * bone
    ang = np.arctan2((np.cross(flex, perp) @ bone), perp @ flex)
    bent = np.linalg.norm(perp, axis=-1) > math.sin(MIN_BEND_FOR_TWIST_RAD)
    return Rotation.from_rotvec(bone[None] * np.where(bent, ang, 0.0)[:, None]).as_matrix()


def solve_translation(markers: np.ndarray, obs: Observations) -> np.ndarray:
    """Per-frame weighted least-squares root translation (T,3) from posed markers (T,33,3)."""
    f = obs.focal_px
    du = obs.image[..., 0] - obs.cx
    dv = obs.image[..., 1] - obs.cy
    w = obs.weight
    rows_x = np.stack([np.full_like(du, f), np.zeros_like(du), -du], -1)
    rows_y = np.stack([np.zeros_like(dv), np.full_like(dv, f), -dv], -1)
    rhs_x = du * markers[..., 2] - f * markers[..., 0]
    rhs_y = dv * markers[..., 2] - f * markers[..., 1]
    a = np.concatenate([rows_x, rows_y], 1) * np.concatenate([w, w], 1)[..., None]
    r = np.concatenate([rhs_x, rhs_y], 1) * np.concatenate([w, w], 1)
    ata = np.einsum("tki,tkj->tij", a, a) + 1e-9 * np.eye(3)
    return np.linalg.solve(ata, np.einsum("tki,tk->ti", a, r)[..., None])[..., 0]


# ----------------------------------------------------------------------------- optimisation
def _interpolate_missing(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over time of (T,...) values at frames where ``valid`` is False."""
    if valid.all() or not valid.any():
        return x
    idx = np.flatnonzero(valid)
    flat = x.reshape(x.shape[0], -1)
    out = np.stack([np.interp(np.arange(x.shape[0]), idx, flat[idx, c]) for c in range(flat.shape[1])], 1)
    return out.reshape(x.shape).astype(x.dtype)


def fit_track(obs: Observations, skeleton: Skeleton, cfg: FitConfig | None = None) -> FitResult:
    """Fit SMPL rotations and root translation to one track's landmarks (see module docstring).

    Frames with zero total weight are filled by interpolation of the landmarks for the
    initialisation and by the smoothness term in the optimisation. Tracks longer than
    ``cfg.window`` frames are fitted in windows overlapping by ``cfg.overlap`` frames, blended
    linearly across each overlap (quaternion nlerp for rotations), so memory stays bounded.
    """
    cfg = cfg or FitConfig()
    valid = obs.weight.sum(1) > 0
    if not valid.any():
        raise ValueError("no frame of the track has landmarks")
    world = _interpolate_missing(np.nan_to_num(obs.world), valid)
    image = _interpolate_missing(np.nan_to_num(obs.image), valid)
    weight = np.where(valid[:, None], np.nan_to_num(obs.weight), 0.0).astype(np.float32)
    filled = Observations(world, image, weight, obs.focal_px, obs.cx, obs.cy)
    t = len(valid)
    step = max(cfg.window - cfg.overlap, 1)
    starts = [0] + list(range(step, max(t - cfg.overlap, 1), step))
    parts = [(s0, _fit_window(_slice(filled, s0, min(s0 + cfg.window, t)), skeleton, cfg)) for s0 in starts]
    if len(parts) == 1:
        return parts[0][1]
    return _blend(parts, t, cfg.overlap, skeleton)


def _slice(obs: Observations, a: int, b: int) -> Observations:
    return Observations(obs.world[a:b], obs.image[a:b], obs.weight[a:b], obs.focal_px, obs.cx, obs.cy)


def _fit_window(obs: Observations, skeleton: Skeleton, cfg: FitConfig) -> FitResult:
    """Initialise and optimise one window (landmarks already gap-filled; weights 0 in gaps)."""
    loc = initial_rotations(obs.world, skeleton)
    _, markers0 = skeleton.forward(loc)
    init_w = np.maximum(obs.weight, 1e-3)
    init_obs = Observations(obs.world, obs.image, init_w, obs.focal_px, obs.cx, obs.cy)
    transl0 = solve_translation(markers0, init_obs)
    rot, transl, world_scale = optimise(loc, transl0, skeleton, obs, cfg)
    joints, markers = skeleton.forward(rot)
    pose = Rotation.from_matrix(rot.reshape(-1, 3, 3).astype(np.float64)).as_rotvec()
    return FitResult(pose=pose.reshape(-1, 24, 3).astype(np.float32), transl=transl, joints=joints,
                     markers=markers, world_scale=world_scale)


def _blend(parts: list[tuple[int, FitResult]], t: int, overlap: int, skeleton: Skeleton) -> FitResult:
    """Join window results: linear cross-fade over each overlap."""
    quat = np.zeros((t, 24, 4))
    transl = np.zeros((t, 3))
    for start, res in parts:
        n = res.pose.shape[0]
        q = Rotation.from_rotvec(res.pose.reshape(-1, 3)).as_quat().reshape(n, 24, 4)
        ramp = np.ones(n)
        if start > 0:
            k = min(overlap, n)
            ramp[:k] = (np.arange(k) + 0.5) / k
            prev = quat[start:start + k]
            sign = np.sign((prev * q[:k]).sum(-1, keepdims=True))
            q[:k] *= np.where(sign == 0, 1.0, sign)
        sl = slice(start, start + n)
        quat[sl] = (1 - ramp)[:, None, None] * quat[sl] + ramp[:, None, None] * q
        transl[sl] = (1 - ramp)[:, None] * transl[sl] + ramp[:, None] * res.transl
    rot = Rotation.from_quat((quat / np.linalg.norm(quat, axis=-1, keepdims=True)).reshape(-1, 4))
    mats = rot.as_matrix().reshape(t, 24, 3, 3)
    joints, markers = skeleton.forward(mats)
    scale = float(np.mean([res.world_scale for _, res in parts]))
    pose = rot.as_rotvec().reshape(t, 24, 3).astype(np.float32)
    return FitResult(pose=pose, transl=transl.astype(np.float32), joints=joints, markers=markers,
                     world_scale=scale)


# ----------------------------------------------------------------------------- left/right flips
#: Cost of relabelling a frame (in units of 1 − cos between consecutive torso normals).
FLIP_COST = 0.1


def mirror_landmarks(world: np.ndarray, image: np.ndarray, weight: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The other reading of an ambiguous pose: left/right labels swapped and world depth negated.

    BlazePose sometimes reads a person facing the camera as facing away (and vice versa), with
    confident, swapped left/right labels and mirrored depth. Swapping the labels back and negating
    the world z gives the rigidly consistent other interpretation (two reflections).
    Shapes: world (...,33,3), image (...,33,2), weight (...,33).
    """
    idx = list(topo.MIRROR)
    w = world[..., idx, :].copy()
    w[..., 2] *= -1.0
    return w, image[..., idx, :].copy(), weight[..., idx].copy()


def _torso_normal(world: np.ndarray) -> np.ndarray:
    """(T,3) unit forward direction of the torso (left × up) from camera-oriented landmarks."""
    left = (_obs(world, "left_hip") + _obs(world, "left_shoulder")
            - _obs(world, "right_hip") - _obs(world, "right_shoulder"))
    up = _mid(world, "left_shoulder", "right_shoulder") - _mid(world, "left_hip", "right_hip")
    return _unit(np.cross(left, up))


def resolve_flips(obs: Observations) -> tuple[Observations, np.ndarray]:
    """Relabel frames whose left/right reading contradicts their neighbours (Viterbi, 2 states).

    State cost: FLIP_COST for using the mirrored reading; transition cost: 1 − cos of the angle
    between consecutive torso normals. A person turning round turns smoothly and is left alone;
    a reading that jumps by ~180° for a few frames is mirrored back. Frames without landmarks
    carry no cost. Returns the corrected observations and the (T,) bool mask of mirrored frames.
    """
    world = np.nan_to_num(obs.world)
    alt = mirror_landmarks(world, np.nan_to_num(obs.image), obs.weight)
    valid = obs.weight.sum(1) > 0
    normals = np.stack([_torso_normal(world), _torso_normal(alt[0])], 1)  # (T,2,3)
    flipped = _viterbi(normals, valid)
    m = flipped[:, None, None]
    new = Observations(world=np.where(m, alt[0], obs.world), image=np.where(m, alt[1], obs.image),
                       weight=np.where(flipped[:, None], alt[2], obs.weight),
                       focal_px=obs.focal_px, cx=obs.cx, cy=obs.cy)
    return new, flipped


def _viterbi(normals: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Best keep (False) / mirror (True) sequence for (T,2,3) candidate normals; invalid frames False."""
    idx = np.flatnonzero(valid)
    states = np.zeros(len(valid), dtype=bool)
    if idx.size == 0:
        return states
    state_cost = np.array([0.0, FLIP_COST])
    acc = state_cost.copy()
    back = np.zeros((idx.size, 2), dtype=np.int64)
    for k in range(1, idx.size):
        trans = 1.0 - normals[idx[k - 1]] @ normals[idx[k]].T  # [previous state, state]
        total = acc[:, None] + trans
        back[k] = total.argmin(0)
        acc = total.min(0) + state_cost
    state = int(acc.argmin())
    for k in range(idx.size - 1, -1, -1):
        states[idx[k]] = bool(state)
        state = int(back[k][state])
    return states
