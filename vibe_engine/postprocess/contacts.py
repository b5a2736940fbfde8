"""Foot-contact detection from foot points in a z-up world frame (ground at z = 0), metres."""
from __future__ import annotations

import numpy as np

CONTACT_HEIGHT_MAX = 0.06  # m above the ground (foot joints sit a few cm above the sole)
CONTACT_SPEED_MAX = 0.30  # m/s
MIN_CONTACT_FRAMES = 3
MAX_GAP_FRAMES = 2


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, end) runs of True in a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2], edges[1::2]))


def _clean(mask: np.ndarray, min_frames: int, max_gap: int) -> np.ndarray:
    """Fill gaps of at most ``max_gap`` frames, then drop runs shorter than ``min_frames``."""
    out = mask.copy()
    for start, end in _runs(~out):
        if start > 0 and end < len(out) and end - start <= max_gap:
            out[start:end] = True
    for start, end in _runs(out):
        if end - start < min_frames:
            out[start:end] = False
    return out


def detect_contacts(points: np.ndarray, times: np.ndarray, *,
                    height_max: float = CONTACT_HEIGHT_MAX, speed_max: float = CONTACT_SPEED_MAX,
                    min_frames: int = MIN_CONTACT_FRAMES, max_gap: int = MAX_GAP_FRAMES) -> np.ndarray:
    """Contact flags (T,K) bool for foot points (T,K,3) in a z-up world over times (T,) s.

    A point is in contact when it is low (z ≤ height_max above the lowest height it reaches
    near the ground, which absorbs the joint's height above the sole) and slow (horizontal and
    vertical speed ≤ speed_max); short flickers are cleaned up.
    """
    points = np.asarray(points, np.float64)
    times = np.asarray(times, np.float64)
    vel = np.gradient(points, times, axis=0) if len(times) > 1 else np.zeros_like(points)
    speed = np.linalg.norm(vel, axis=-1)
    floor = np.maximum(np.percentile(points[..., 2], 5, axis=0), 0.0)
    raw = (points[..., 2] <= floor + height_max) & (speed <= speed_max)
    return np.stack([_clean(raw[:, k], min_frames, max_gap) for k in range(raw.shape[1])], axis=1)
