"""Flight phases: between take-off and landing nothing pushes the body sideways, so its centre of
mass crosses the ground in a straight line at constant speed. A monocular fit does not know that:
its depth swings while the body tucks and stretches in the air (its apparent size changes).

A flight is a run of frames without any foot contact (``contacts`` (T,4) of the foot lock) between
a contact frame ``a`` (take-off) and the next one ``b`` (landing), at most MAX_FLIGHT_S apart (a
longer run without contacts is not a jump: missed contacts, or feet the lock does not see). Inside
it, each frame's body moves along its camera ray (its image position kept, as in
:mod:`vibe_engine.postprocess.depth_prior`) by the amount that puts its centre of mass, over the
ground, on the straight line from the take-off centre to the landing centre at the frame's share of
the flight's time. Frames ``a`` and ``b`` are planted by the lock and do not move, so the path stays
continuous. The centre of mass is taken as the mean of the 24 joints: on the synthetic suite it did
a little better than de Leva's segment masses at their midpoints (world root trajectory 7.93
against 8.01 % of path, 8 static clips; 8.05 against 8.10 %, 5 moving; with the truth's flights the
order was the other way, 7.96 against 7.86 % over all 13), and better than the pelvis alone (8.15 %
static).
"""
from __future__ import annotations

import numpy as np

from vibe_engine.postprocess.footlock import RAY_HORIZONTAL_MIN  # a near-vertical ray moves nothing sideways

MAX_FLIGHT_S = 1.0  # s from take-off to landing (a long jump's flight is under 1 s)
MAX_SHIFT = 0.15  # relative: a shift beyond 15 % of the camera distance is a wrong contact, not depth


def flights(contacts: np.ndarray, times: np.ndarray) -> list[tuple[int, int]]:
    """(a, b) frame pairs of contacts (T,K) bool over times (T,) s: frame ``a`` has a contact, frames
    a+1 … b−1 have none, frame ``b`` has one again, and times[b] − times[a] ≤ MAX_FLIGHT_S."""
    idx = np.flatnonzero(np.asarray(contacts, bool).any(axis=1))
    times = np.asarray(times, np.float64)
    gaps = np.flatnonzero(np.diff(idx) > 1)
    return [(int(idx[g]), int(idx[g + 1])) for g in gaps if times[idx[g + 1]] - times[idx[g]] <= MAX_FLIGHT_S]


def flight_factors(joints: np.ndarray, centres: np.ndarray, contacts: np.ndarray,
                   times: np.ndarray) -> np.ndarray:
    """Per-frame factors q (T,) for the root's distance from the camera that straighten every flight
    (apply with :func:`vibe_engine.postprocess.depth_prior.move_along_rays`: the body moves along
    its root's camera ray).

    joints (T,J,3): the body's joints in a z-up world (metres; joint 0 = the root); centres (T,3):
    each frame's camera centre in that world; contacts (T,K) bool; times (T,) s. 1 outside the
    flights, where the ray is near vertical, and where the move would exceed MAX_SHIFT of the
    root's distance.
    """
    joints = np.asarray(joints, np.float64)
    times = np.asarray(times, np.float64)
    com = joints.mean(axis=1)[:, :2]
    rays = joints[:, 0] - np.asarray(centres, np.float64)
    dist = np.linalg.norm(rays, axis=-1)
    rays = rays / np.maximum(dist, 1e-12)[:, None]
    q = np.ones(len(rays))
    for a, b in flights(contacts, times):
        t = np.arange(a + 1, b)
        share = ((times[t] - times[a]) / (times[b] - times[a]))[:, None]
        target = com[a] + share * (com[b] - com[a])
        horiz = np.sum(rays[t, :2] ** 2, axis=-1)
        move = np.sum((target - com[t]) * rays[t, :2], axis=-1) / np.maximum(horiz, 1e-12)  # m along the ray
        ok = (horiz >= RAY_HORIZONTAL_MIN) & (np.abs(move) <= MAX_SHIFT * dist[t])
        q[t[ok]] = 1.0 + move[ok] / dist[t[ok]]
    return q
