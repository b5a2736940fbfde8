"""Foot locking: pin the feet while in contact by moving the root and solving the legs (IK).

Works in a z-up world frame (ground at z = 0, from :mod:`ground`) and returns the pose and the
root translation in the camera frame again (the motion file's frame). Contact points are the
SMPL joints (left ankle, left foot, right ankle, right foot) = indices (7, 10, 8, 11), in the
order of the motion file's ``contacts`` member (heel ≈ ankle joint, toe ≈ foot joint).

Steps:
1. Root: a correction, carried from frame to frame, that cancels the mean horizontal slide of
   the planted points from where their contact began. This removes root sliding instead of
   hiding it in the legs. With ``along_ray`` the root moves only along its camera ray (a depth
   correction, for a monocular estimate whose depth is its weak part: the image position is
   kept); with ``ground_depth`` too, each stance is also moved toward where the camera rays
   through its planted points meet the ground, relative to the other stances (a weighted share:
   :func:`_ground_depth_shift`). Feet below the ground lift the root; the offsets are
   smoothed over time (with ``times``). With ``floor_check`` the correction follows only the
   contacts whose floor point (where the point's camera ray meets its floor) stays put
   (:func:`_floor_slow`): a depth jitter slides a planted point along its own ray and leaves that
   point alone, a step along the view moves it, and such a step, which the contacts' down-weighted
   along-view speed lets pass for a stance, then no longer pulls the body back to where it started.
2. Legs: an analytic two-bone IK (hip, knee) per planted ankle puts it exactly on its anchor
   (its mean position over the contact), keeping the knee in its bending plane and the ankle's
   world orientation; around each contact the correction fades in and out (raised cosine over
   BLEND_FRAMES) as a displacement of the foot's own path, so nothing pops and swings keep
   their shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import ndtri

from vibe_blender.core.body import forward_kinematics, shaped_rest
from vibe_blender.core.leg_ik import BLEND_FRAMES, ankle_targets, leg_turns, reach_drop, rotations_between  # noqa: F401
from vibe_blender.core.rotations import aa_to_matrix, matrix_to_aa

from vibe_engine.postprocess.contacts import CONTACT_SPEED_MAX, HYSTERESIS, _runs
from vibe_engine.postprocess.smoothing import LocalFitParams, smooth_vectors

CONTACT_JOINTS = (7, 10, 8, 11)  # left ankle, left foot, right ankle, right foot
LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))  # (hip, knee, ankle, foot) left, right
MIN_RAY_DROP = 0.3  # m: points less far below the camera give no usable ray-ground intersection
# Ground depth (_ground_depth_shift): a planted point's height error (m) and the body size's relative
# depth error that weigh the ground's depth of a stance against the fit's.
GROUND_HEIGHT_SD = 0.03
SIZE_DEPTH_SD = 0.05
RAY_HORIZONTAL_MIN = 0.05  # squared horizontal length of a root ray below which depth is not corrected
# The root offsets follow the planted feet, jitter included; smoothed (with timestamps), they stop
# passing that jitter on to the legs (the leg IK pins the feet exactly anyway). 0.07 s: chosen with
# depth_prior.RATIO_SMOOTHING (the figures are there).
ROOT_OFFSET_SMOOTHING = LocalFitParams(sigma=0.07, order=1)
# Root contacts (floor_check): where a planted point's camera ray meets its floor, that floor point
# must move slower than the contacts' weak speed bound plus FLOOR_NOISE_SDS standard deviations of
# its speed noise, smoothed over FLOOR_SMOOTHING_S (_floor_slow). FLOOR_NOISE_SDS from 0.75 to 2:
# held-out root 14.2-14.6 % static and 9.7-11.6 % moving (holdout), 16.4-16.5 / 17.3-17.4 % (holdout2);
# the suite's static and moving clips trade with it, 7.55-8.02 / 7.02-8.12 %; 1 (chosen) and 1.25
# keep both of the suite's under 8 % (docs/motion-file.md, "Root contacts: the floor check").
FLOOR_SMOOTHING_S = 0.1
FLOOR_NOISE_SDS = 1.0
# Robust sd from the median absolute residual: 1 / Φ⁻¹(3/4) ≈ 1.4826 for normal noise (what
# scipy.stats.median_abs_deviation's scale="normal" uses; scipy.stats itself costs 0.4 CPU s to import).
NORMAL_MAD_SCALE = 1.0 / float(ndtri(0.75))
OFFSET_HOLD_S = 0.5  # s: a root correction is held this long without contacts (a jump's flight) ...
OFFSET_FADE_S = 0.5  # s: ... then fades out over this long


def _world_rotations(pose_aa: np.ndarray, world_from_camera: np.ndarray) -> np.ndarray:
    """Local rotations (T,24,3,3) with the root expressed in the world frame."""
    rot = aa_to_matrix(np.asarray(pose_aa, np.float64))
    rot[:, 0] = world_from_camera[:3, :3] @ rot[:, 0]
    return rot


def _root_world(rest: np.ndarray, transl: np.ndarray, m: np.ndarray) -> np.ndarray:
    """World position (T,3) of the root joint for camera-frame smplx ``transl`` (T,3)."""
    return (rest[0] + transl) @ m[:3, :3].T + m[:3, 3]


def _joints(rot: np.ndarray, rest: np.ndarray, parents: np.ndarray, root: np.ndarray) -> np.ndarray:
    """World transforms (T,24,4,4) with the root joint placed at ``root`` (T,3)."""
    g = forward_kinematics(rot, rest, parents)
    g[:, :, :3, 3] += (root - rest[0])[:, None]
    return g


def _root_correction(points: np.ndarray, contacts: np.ndarray, rays: np.ndarray | None = None) -> np.ndarray:
    """Root offsets (T,3) that cancel the mean horizontal slide of planted points (carried forward).

    Without ``rays`` the offsets are horizontal. With ``rays`` (T,3) (unit world directions of the
    camera rays through the root) the root moves only along its ray, by the amount that best
    cancels the horizontal slide: a depth correction that keeps the root's image position.
    """
    offset = np.zeros(3)
    out = np.zeros((points.shape[0], 3))
    anchors = np.full(points.shape[1:], np.nan)
    for t in range(points.shape[0]):
        moved = points[t] + offset
        for k in range(points.shape[1]):
            if not contacts[t, k]:
                anchors[k] = np.nan
            elif np.isnan(anchors[k, 0]):
                anchors[k] = moved[k]
        planted = contacts[t]
        if planted.any():
            slide = np.mean(anchors[planted, :2] - points[t, planted, :2], axis=0)
            offset = _along_ray(slide, rays[t]) if rays is not None else np.array([*slide, 0.0])
        out[t] = offset
    return out


def _ground_depth_shift(points: np.ndarray, contacts: np.ndarray, rays: np.ndarray, camera: np.ndarray,
                        floor: np.ndarray) -> np.ndarray:
    """Root offsets (T,3) along the root rays that move each stance toward where the image sees it
    on the ground, weighted by how well the ground fixes its depth.

    The camera ray through a planted point meets the plane at that point's floor height
    (``floor`` (K,) m) at a distance set by the ground plane, not by the body's apparent size.
    Per stance (run of frames with any contact) the median shift along the root ray that moves
    the planted points there horizontally, as a fraction of the distance, less the median of
    that fraction over all stances (the plane's height above the camera is only as well known as
    the body's depth it was fitted with, so only the stances' depths *relative to each other*
    are taken from it), times the weight σ_s² / (σ_s² + σ_g²): σ_s =
    SIZE_DEPTH_SD, the relative depth error of the body's size; σ_g = GROUND_HEIGHT_SD / H, the
    relative depth error that a planted point's height error gives: along a ray δ below the
    camera's level it moves the crossing by GROUND_HEIGHT_SD / sin δ of the distance d, and
    d · sin δ = H, the camera's height above the point's floor (a low camera fixes little). Linear in
    between stances, constant beyond. points (T,K,3) world (after the slide correction);
    contacts (T,K); rays (T,3) unit; camera (3,).
    """
    move, ok = ground_moves(points, contacts, rays, camera, floor)
    runs = _runs(ok.any(axis=1))
    if not runs:
        return np.zeros_like(rays)
    lams = np.nan_to_num(move)  # a ray too near vertical: no move (its frame still counts in the run)
    rel, weights, dists = [], [], []
    for start, end in runs:
        lam = lams[start:end]
        dist = float(np.median(np.linalg.norm(points[start:end, 0] - camera, axis=-1)))
        drop = (camera[2] - np.broadcast_to(floor, ok.shape))[start:end][ok[start:end]]
        sd_ground = GROUND_HEIGHT_SD / float(np.median(drop))
        rel.append(float(np.median(lam)) / dist)
        weights.append(SIZE_DEPTH_SD ** 2 / (SIZE_DEPTH_SD ** 2 + sd_ground ** 2))
        dists.append(dist)
    ref = float(np.median(np.repeat(rel, [end - start for start, end in runs])))
    knots = np.ravel(runs) - np.tile([0, 1], len(runs))
    values = np.repeat([w * (r - ref) * d for r, w, d in zip(rel, weights, dists)], 2)
    return np.interp(np.arange(len(rays)), knots, values)[:, None] * rays


def ground_moves(points: np.ndarray, contacts: np.ndarray, rays: np.ndarray, camera: np.ndarray,
                 floor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the shift (T,) in metres along the root ray ``rays`` (T,3, unit) that moves the
    planted points (their mean horizontal position) to where their camera rays meet their floors
    (:func:`_floor_points`), and ok (T,K): the points that count (planted, usable, their floor at
    least MIN_RAY_DROP below the camera centre ``camera`` (3,)). NaN for frames without such a
    point and for root rays too near vertical (RAY_HORIZONTAL_MIN: depth does not move the root
    sideways). points (T,K,3) world; contacts (T,K); floor (K,) m."""
    target, usable = _floor_points(points, camera, floor)
    ok = contacts & usable & (camera[2] - floor[None] > MIN_RAY_DROP)
    count = ok.sum(axis=1)
    slide = ((target - points)[..., :2] * ok[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
    horiz = np.sum(rays[:, :2] ** 2, axis=-1)
    move = np.sum(slide * rays[:, :2], axis=-1) / np.maximum(horiz, RAY_HORIZONTAL_MIN)
    return np.where((count > 0) & (horiz >= RAY_HORIZONTAL_MIN), move, np.nan), ok


def _along_ray(slide: np.ndarray, ray: np.ndarray) -> np.ndarray:
    """Offset (3,) along ``ray`` (3,) whose horizontal part best matches ``slide`` (2,) (least squares)."""
    horiz = ray[:2] @ ray[:2]
    if horiz < RAY_HORIZONTAL_MIN:
        return np.zeros(3)  # a camera looking straight down: depth does not move the root sideways
    return (slide @ ray[:2]) / horiz * ray


def _floor_points(points: np.ndarray, camera: np.ndarray, floor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each camera ray through points (T,K,3) (world, z up) meets the plane at its point's
    floor height ``floor`` (K,) m: (floor points (T,K,3), usable (T,K) bool: the point at least
    MIN_RAY_DROP below the camera centre ``camera`` (3,))."""
    drop = camera[2] - points[..., 2]
    ok = drop > MIN_RAY_DROP
    scale = (camera[2] - floor[None]) / np.where(ok, drop, 1.0)
    return camera + scale[..., None] * (points - camera), ok


def _height_noise(points: np.ndarray, contacts: np.ndarray) -> float | None:
    """Robust standard deviation (m) of the planted points' heights about each contact run's mean
    (points (T,K,3), contacts (T,K)): what the pose's foot heights jitter by; None without a run of
    at least 3 frames."""
    res = [points[a:b, k, 2] - points[a:b, k, 2].mean()
           for k in range(points.shape[1]) for a, b in _runs(contacts[:, k]) if b - a >= 3]
    if not res:
        return None
    return float(np.median(np.abs(np.concatenate(res))) * NORMAL_MAD_SCALE)


def _speed_gain(sigma_frames: float, dt: float) -> float:
    """Standard deviation (1/s) of the speed that white noise of unit standard deviation gets
    after a Gaussian smoothing of ``sigma_frames`` and central differences over ``dt`` s."""
    n = int(np.ceil(4 * sigma_frames)) + 2
    impulse = np.zeros(2 * n + 1)
    impulse[n] = 1.0
    return float(np.linalg.norm(np.gradient(gaussian_filter1d(impulse, sigma_frames, mode="constant")))) / dt


def _floor_slow(points: np.ndarray, contacts: np.ndarray, camera: np.ndarray, floor: np.ndarray,
                times: np.ndarray) -> np.ndarray:
    """``contacts`` (T,K) less the frames whose floor point (:func:`_floor_points`) moves faster
    than the contacts' weak bound (CONTACT_SPEED_MAX × HYSTERESIS) plus FLOOR_NOISE_SDS × its speed
    noise; points (T,K,3) world, camera (3,), floor (K,), times (T,) s.

    A floor point does not move when the fit's depth jitters (the point slides along its own ray),
    so a step along the view — which the contacts' down-weighted along-view speed lets pass for a
    stance — shows in it. Its noise: a foot height error δh moves it by δh × horizontal distance /
    drop (a camera near the floor's height amplifies it), δh the planted points' own height jitter
    (:func:`_height_noise`). Points too close to the camera's height keep their contact."""
    sigma_h = _height_noise(points, contacts)
    if sigma_h is None or len(times) < 3:
        return contacts
    dt = float(np.median(np.diff(times)))
    sigma_frames = FLOOR_SMOOTHING_S / dt
    ground, ok = _floor_points(points, camera, floor)
    smoothed = gaussian_filter1d(ground[..., :2], sigma_frames, axis=0, mode="nearest")
    speed = np.linalg.norm(np.gradient(smoothed, times, axis=0), axis=-1)
    horizontal = np.linalg.norm((points - camera)[..., :2], axis=-1)
    drop = np.maximum(camera[2] - points[..., 2], MIN_RAY_DROP)
    noise = sigma_h * horizontal / drop * _speed_gain(sigma_frames, dt)
    return contacts & (~ok | (speed <= CONTACT_SPEED_MAX * HYSTERESIS + FLOOR_NOISE_SDS * noise))


def _contact_proximity(any_contact: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Weights (T,) for the carried root correction: 1 within OFFSET_HOLD_S of a contact, then down
    to 0 over OFFSET_FADE_S (far from every contact the raw root is trusted again; a correction
    learnt from a wrong contact does not last for the rest of the clip). All 1 when no contact."""
    idx = np.flatnonzero(any_contact)
    if idx.size == 0:
        return np.ones(len(times))
    pos = np.searchsorted(idx, np.arange(len(times)))
    before = times[idx[np.clip(pos - 1, 0, idx.size - 1)]]
    after = times[idx[np.clip(pos, 0, idx.size - 1)]]
    gap = np.minimum(np.abs(times - before), np.abs(after - times))
    gap[any_contact] = 0.0
    return np.clip(1.0 - (gap - OFFSET_HOLD_S) / OFFSET_FADE_S, 0.0, 1.0)


def _ground_lift(points: np.ndarray) -> np.ndarray:
    """Vertical root offsets (T,3) that lift feet out of the ground (never push down)."""
    lift = np.zeros((points.shape[0], 3))
    lift[:, 2] = np.maximum(-points[..., 2].min(axis=1), 0.0)
    return lift


def _leg_targets(g: np.ndarray, contacts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per leg: ankle targets (T,3), blend weights (T,) and foot directions (T,3) (leg_ik.ankle_targets)."""
    return [ankle_targets(g[:, leg[2], :3, 3], g[:, leg[3], :3, 3], contacts[:, 2 * side], contacts[:, 2 * side + 1])
            for side, leg in enumerate(LEGS)]


def _reach_drop(g: np.ndarray, targets: list[np.ndarray], weights: list[np.ndarray]) -> np.ndarray:
    """Vertical root offsets (T,3) (≤ 0) that bring every planted ankle target within leg reach."""
    drop = np.zeros((g.shape[0], 3))
    for leg, target, weight in zip(LEGS, targets, weights):
        hip, knee, ankle = (g[:, j, :3, 3] for j in leg[:3])
        drop[:, 2] = np.minimum(drop[:, 2], reach_drop(hip, knee, ankle, target, weight))
    return drop


def _solve_leg(g: np.ndarray, rot: np.ndarray, leg: tuple[int, ...], target: np.ndarray,
               toe_dir: np.ndarray, parents: np.ndarray) -> None:
    """Rewrite local rotations ``rot`` (N,24,3,3) of N frames so the leg's ankle reaches ``target``
    (N,3); g (N,24,4,4) are the frames' global joint transforms.

    The ankle keeps its world orientation, or turns so the foot points along ``toe_dir`` (N,3)
    where that row is not NaN.
    """
    hip, knee, ankle, foot = leg
    p_hip, p_knee, p_ankle = (g[:, j, :3, 3] for j in (hip, knee, ankle))
    d1, d2 = leg_turns(p_hip, p_knee, p_ankle, target)
    g_hip, g_knee = d1 @ g[:, hip, :3, :3], d2 @ d1 @ g[:, knee, :3, :3]
    g_ankle = g[:, ankle, :3, :3].copy()
    turn = ~np.isnan(toe_dir[:, 0])
    if turn.any():
        g_ankle[turn] = rotations_between(g[turn, foot, :3, 3] - p_ankle[turn], toe_dir[turn]) @ g_ankle[turn]
    rot[:, hip] = np.swapaxes(g[:, parents[hip], :3, :3], -1, -2) @ g_hip
    rot[:, knee] = np.swapaxes(g_hip, -1, -2) @ g_knee
    rot[:, ankle] = np.swapaxes(g_knee, -1, -2) @ g_ankle


def _root_offsets(points: np.ndarray, contacts: np.ndarray, rays: np.ndarray | None, ground: tuple | None,
                  times: np.ndarray | None) -> np.ndarray:
    """World root offsets (T,3): slide correction, optional ground depth, ground lift, smoothing.

    points (T,K,3) planted-point candidates in the world; rays (T,3) or None (horizontal moves);
    ground: (camera centre (3,), floor heights (K,)) for the ground depth shift, or None.
    """
    offset = _root_correction(points, contacts, rays)
    if times is not None:
        offset *= _contact_proximity(contacts.any(axis=1), np.asarray(times, np.float64))[:, None]
    if rays is not None and ground is not None:
        offset = offset + _ground_depth_shift(points + offset[:, None], contacts, rays, *ground)
    offset = offset + _ground_lift(points + offset[:, None])
    if times is not None and len(offset) > 2:
        offset = smooth_vectors(offset, times, ROOT_OFFSET_SMOOTHING)
    return offset


def _solve_legs(rot: np.ndarray, rest: np.ndarray, parents: np.ndarray, root: np.ndarray,
                legs: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """Rewrite leg rotations ``rot`` (T,24,3,3) in place so each ankle follows its blended target."""
    g = _joints(rot, rest, parents, root)
    for leg, (target, weight, toe_dir) in zip(LEGS, legs):
        idx = np.flatnonzero(weight > 0)
        if idx.size:
            current = g[idx, leg[2], :3, 3]
            sub = rot[idx]
            _solve_leg(g[idx], sub, leg, current + weight[idx, None] * (target[idx] - current), toe_dir[idx],
                       parents)
            rot[idx] = sub
        g = _joints(rot, rest, parents, root)


@dataclass(frozen=True)
class Planted:
    """A track's contact points and root rays in the lock's z-up world (ground at z = 0).

    rot (T,24,3,3) local rotations with the root's in the world; rest (24,3) shaped rest joints;
    root (T,3) world root joint; points (T,K,3) world CONTACT_JOINTS; rays (T,3) unit world
    directions of the camera rays through the root (from the camera centre ``m[:3, 3]``); floor (K,)
    m: each contact joint's height above the lowest one in the rest pose (its height when planted).
    """

    rot: np.ndarray
    rest: np.ndarray
    root: np.ndarray
    points: np.ndarray
    rays: np.ndarray
    floor: np.ndarray

    @classmethod
    def of(cls, body: Any, betas: np.ndarray, pose_aa: np.ndarray, transl: np.ndarray,
           world_from_camera: np.ndarray) -> Planted:
        """From smplx pose (T,24,3) and transl (T,3) in the OpenCV camera frame; world_from_camera (4,4)."""
        m = np.asarray(world_from_camera, np.float64)
        _, rest = shaped_rest(body, betas)
        transl = np.asarray(transl, np.float64)
        rot = _world_rotations(pose_aa, m)
        root = _root_world(rest, transl, m)
        points = _joints(rot, rest, np.asarray(body.parents), root)[:, list(CONTACT_JOINTS)][..., :3, 3]
        rays = ((rest[0] + transl) / np.linalg.norm(rest[0] + transl, axis=-1, keepdims=True)) @ m[:3, :3].T
        feet_y = rest[list(CONTACT_JOINTS), 1]  # SMPL rest pose, y up: heights above the lowest foot joint
        return cls(rot, rest, root, points, rays, feet_y - feet_y.min())


def lock_feet(body: Any, betas: np.ndarray, pose_aa: np.ndarray, transl: np.ndarray,
              world_from_camera: np.ndarray, contacts: np.ndarray, *, along_ray: bool = False,
              ground_depth: bool = False, times: np.ndarray | None = None,
              floor_check: bool = False, slide: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Pin planted feet. Returns (pose (T,24,3) axis-angle, transl (T,3)) in the camera frame.

    body: SMPL-layout body (motion_file.BodyModel); betas (B,); pose_aa (T,24,3) and transl (T,3)
    in the OpenCV camera frame (smplx conventions); world_from_camera (4,4) to a z-up world with
    the ground at z = 0; contacts (T,4) bool for CONTACT_JOINTS. ``along_ray``: correct the root
    only along its camera ray; ``ground_depth`` (with along_ray): place stances by the ground
    plane; ``times`` (T,) s: smooth the root offsets; ``floor_check`` (with times; one camera
    centre, world_from_camera's): the root's correction follows only the contacts whose floor
    point stays put (:func:`_floor_slow`), the legs all of them. ``slide`` False: no root slide
    correction (nor ground depth) — the root keeps its depth (set by :mod:`depth_fusion`), only
    lifted out of the ground and brought within the legs' reach, and the legs pin the feet.
    """
    m = np.asarray(world_from_camera, np.float64)
    parents = np.asarray(body.parents)
    geo = Planted.of(body, betas, pose_aa, transl, m)
    rot, rest, points = geo.rot, geo.rest, geo.points
    rays = geo.rays if along_ray else None
    ground = (m[:3, 3], geo.floor) if along_ray and ground_depth and slide else None
    root_contacts = contacts if slide else np.zeros_like(contacts)
    if floor_check and times is not None and slide:
        root_contacts = _floor_slow(points, contacts, m[:3, 3], geo.floor, np.asarray(times, np.float64))
    root = geo.root + _root_offsets(points, root_contacts, rays, ground, times)
    g = _joints(rot, rest, parents, root)
    legs = _leg_targets(g, contacts)
    root = root + _reach_drop(g, [lg[0] for lg in legs], [lg[1] for lg in legs])
    _solve_legs(rot, rest, parents, root, legs)
    rot[:, 0] = m[:3, :3].T @ rot[:, 0]
    transl_cam = (root - m[:3, 3]) @ m[:3, :3] - rest[0]
    return matrix_to_aa(rot), transl_cam
