"""Leg IK and contact anchors shared by the engine's foot lock and the retargeter (pure numpy).

Positions are in a z-up world frame (metres); arrays carry a leading frame/batch axis. Moved here
from ``vibe_engine.postprocess.footlock`` so that the engine (SMPL legs) and
``core.retarget`` (a target rig's legs) pin feet with one implementation.
"""
from __future__ import annotations

import numpy as np

from .rotations import aa_to_matrix

BLEND_FRAMES = 5  # IK weight ramps from 1 (contact) to 0 over this many frames
REACH_MARGIN = 0.9995  # planted legs stay 0.05 % short of full extension (IK stays well-posed)
_EPS = 1e-9


def unit_rows(v: np.ndarray) -> np.ndarray:
    """(N,3) rows scaled to unit length (zero rows stay ~0)."""
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + _EPS)


def any_perpendicular(u: np.ndarray) -> np.ndarray:
    """Unit vectors (N,3) perpendicular to u (N,3)."""
    other = np.where(np.abs(u[:, :1]) < 0.9, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    return unit_rows(np.cross(u, other))


def rotations_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotations (N,3,3) turning directions a (N,3) onto b (N,3); identity where they
    are (anti)parallel."""
    a, b = unit_rows(a), unit_rows(b)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1, keepdims=True)
    c = np.clip((a * b).sum(-1, keepdims=True), -1.0, 1.0)
    aa = np.where(s < 1e-12, 0.0, axis / np.maximum(s, 1e-300) * np.arctan2(s, c))
    return aa_to_matrix(aa)


def two_bone(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New knee and ankle positions (N,3), (N,3) reaching ``target`` (N,3) with fixed bone lengths.

    The knee stays on the side of the hip→target line it was on (its bending plane).
    """
    l1 = np.linalg.norm(knee - hip, axis=-1, keepdims=True)
    l2 = np.linalg.norm(ankle - knee, axis=-1, keepdims=True)
    to_target = target - hip
    d = np.clip(np.linalg.norm(to_target, axis=-1, keepdims=True), np.abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)
    u = unit_rows(to_target)
    pole = (knee - hip) - ((knee - hip) * u).sum(-1, keepdims=True) * u
    v = np.where(np.linalg.norm(pole, axis=-1, keepdims=True) > 1e-6, unit_rows(pole), any_perpendicular(u))
    cos_a = np.clip((l1 * l1 + d * d - l2 * l2) / (2 * l1 * d), -1.0, 1.0)
    new_knee = hip + l1 * (cos_a * u + np.sqrt(1 - cos_a * cos_a) * v)
    return new_knee, hip + d * u


def leg_turns(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (d1, d2) (N,3,3) that bring the ankle onto ``target``: the upper leg's world
    orientation becomes ``d1 · G_upper``, the lower leg's ``d2 · d1 · G_lower`` (two-bone IK)."""
    new_knee, new_ankle = two_bone(hip, knee, ankle, target)
    d1 = rotations_between(knee - hip, new_knee - hip)
    d2 = rotations_between((d1 @ (ankle - knee)[..., None])[..., 0], new_ankle - new_knee)
    return d1, d2


def anchors(points: np.ndarray, contacts: np.ndarray) -> np.ndarray:
    """Per frame and point the anchor (T,K,3): the point's mean over its contact run; NaN off-contact.

    The mean (not the position where the contact began) halves the largest correction the legs
    need, so the blend in and out of a contact stays gentle.
    """
    out = np.full_like(points, np.nan)
    for k in range(points.shape[1]):
        padded = np.concatenate([[False], contacts[:, k], [False]])
        edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
        for start, end in zip(edges[::2], edges[1::2]):
            out[start:end, k] = points[start:end, k].mean(axis=0)
    return out


def nearest_contact(contacts: np.ndarray) -> np.ndarray:
    """Index (T,) int of the nearest contact frame of every frame (contacts (T,) bool, at least one True)."""
    idx = np.flatnonzero(contacts)
    pos = np.clip(np.searchsorted(idx, np.arange(len(contacts))), 1, max(idx.size - 1, 1))
    before, after = idx[np.maximum(pos - 1, 0)], idx[np.minimum(pos, idx.size - 1)]
    here = np.arange(len(contacts))
    return np.where(np.abs(here - before) <= np.abs(after - here), before, after)


def blend_weights(contacts: np.ndarray) -> np.ndarray:
    """IK weights (T,) in [0,1]: 1 in contact, a raised-cosine ramp to 0 over BLEND_FRAMES frames."""
    if not np.any(contacts):
        return np.zeros(len(contacts))
    dist = np.abs(np.arange(len(contacts)) - nearest_contact(contacts))
    return 0.5 * (1.0 + np.cos(np.pi * np.clip(dist / (BLEND_FRAMES + 1), 0.0, 1.0)))


def ankle_targets(ankle: np.ndarray, toe: np.ndarray, heel_c: np.ndarray,
                  toe_c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One leg's ankle targets (T,3), blend weights (T,) and foot directions (T,3) (NaN: keep).

    ankle, toe (T,3): the points' current positions; heel_c, toe_c (T,) bool contacts. Around a
    contact the target is the ankle's own position shifted by the correction of the nearest
    contact frame (not the contact's anchor itself): a foot leaving the ground keeps the shape of
    its swing, offset by a correction that fades out. Toe only: the ankle moves by the toe's slide.
    """
    anc = anchors(np.stack([ankle, toe], 1), np.stack([heel_c, toe_c], 1))
    target = np.where(heel_c[:, None], anc[:, 0], ankle + anc[:, 1] - toe)
    toe_dir = np.where((heel_c & toe_c)[:, None], anc[:, 1] - anc[:, 0], np.nan)
    any_c = heel_c | toe_c
    if any_c.any():
        shift = np.where(any_c[:, None], target - ankle, 0.0)[nearest_contact(any_c)]
        target = ankle + shift
    return target, blend_weights(any_c), toe_dir


def reach_drop(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray,
               weight: np.ndarray) -> np.ndarray:
    """Vertical drops (T,) (≤ 0) of the hip that bring a planted ankle's ``target`` within reach
    (hip, knee, ankle, target (T,3); weight (T,): where > 0 the target applies)."""
    reach = REACH_MARGIN * (np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1))
    horiz = np.linalg.norm((target - hip)[:, :2], axis=-1)
    vert = np.sqrt(np.maximum(reach**2 - horiz**2, 0.0))
    return np.where(weight > 0, np.minimum(target[:, 2] + vert - hip[:, 2], 0.0), 0.0)
