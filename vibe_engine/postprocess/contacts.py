"""Foot-contact detection from foot points in a z-up world frame (ground at z = 0), metres.

A monocular estimate knows a person's depth (distance from the camera) far less well than the
image-plane position: the depth drifts by tens of cm when the body's apparent size changes (a
crouch, an arm raised), so a planted foot "moves" along the viewing direction at up to ~2 m/s.
Speeds are therefore measured with the horizontal component along the camera's viewing direction
down-weighted (``depth_weight``); lateral and vertical motion, which the image shows directly,
count in full (run the detection on smoothed points: :mod:`run` passes the smoothed motion).
Thresholds use hysteresis: a contact starts where a point is low and slow, and lasts while it
stays within looser bounds.

Known limit: both allowances together let a step toward the camera with the foot a few cm up
pass for a stance. That motion is along the view (0.3× speed), and the height bound has grown
with the depth uncertainty. On the synthetic zoom clip (benchmarks/accuracy.py), 44 % of the
frames detected as contact are in the air or moving in the truth; across the suite the share is
14-44 %. The foot lock then holds such a foot still; its root correction, which would move the
depth back by the step, follows only the contacts whose floor point stays put (footlock._floor_slow).
"""
from __future__ import annotations

import numpy as np

CONTACT_HEIGHT_MAX = 0.10  # m above the point's own floor level (foot joints sit a few cm above the sole)
CONTACT_SPEED_MAX = 0.50  # m/s, the depth component weighted by DEPTH_WEIGHT
HYSTERESIS = 1.5  # a started contact lasts while height and speed stay within this factor of the bounds
DEPTH_WEIGHT = 0.3  # weight of the speed along the viewing direction (monocular depth is unreliable)
FLOOR_PERCENTILE = 5  # the point's floor level: this percentile of its heights
LEVEL_WINDOW_S = 0.5  # s: a support above the floor (a box, a step) is one held this long (_support_level)
DEPTH_UNCERTAINTY = 0.1  # relative: a monocular distance is known to about 10 %
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


def _hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Runs of ``weak`` (T,) bool that contain at least one ``strong`` frame."""
    out = np.zeros_like(weak)
    for start, end in _runs(weak):
        if strong[start:end].any():
            out[start:end] = True
    return out


def _weighted_speed(points: np.ndarray, times: np.ndarray, view_dir: np.ndarray | None,
                    depth_weight: float) -> np.ndarray:
    """Speed (T,K) m/s of points (T,K,3); horizontal motion along ``view_dir`` counts ``depth_weight``×."""
    if len(times) < 2:
        return np.zeros(points.shape[:-1])
    vel = np.gradient(points, times, axis=0)
    if view_dir is None:
        return np.linalg.norm(vel, axis=-1)
    d = np.array([view_dir[0], view_dir[1], 0.0])
    d /= max(np.linalg.norm(d), 1e-12)
    along = vel @ d
    across = vel - along[..., None] * d
    return np.sqrt(np.sum(across * across, axis=-1) + (depth_weight * along) ** 2)


def _height_slack(points: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """Height uncertainty (T,K) m of points (T,K,3) whose distance from ``camera`` (3,) is known to
    DEPTH_UNCERTAINTY: the vertical part of that error along each point's camera ray."""
    return DEPTH_UNCERTAINTY * np.abs(points[..., 2] - camera[2])  # = uncertainty × distance × |ray_z|


def _floor_level(heights: np.ndarray) -> np.ndarray:
    """Each point's own floor level (K,) m over the clip, heights (T,K): its FLOOR_PERCENTILE, at
    least the ground (z = 0); it absorbs the joint's height above the sole."""
    return np.maximum(np.percentile(heights, FLOOR_PERCENTILE, axis=0), 0.0)


def _support_level(heights: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Support level (T,K) m under each point of heights (T,K) of one person's feet: the point's own
    level over the clip (its FLOOR_PERCENTILE, at least the ground z = 0, which absorbs the joint's
    height above the sole), raised where the person's lowest point stays higher than its own level
    over the clip for a while (that percentile within ±LEVEL_WINDOW_S: standing on a box or a step).
    A foot held up while the other one stands keeps the floor's level."""
    from scipy.ndimage import percentile_filter

    overall = _floor_level(heights)
    lowest = heights.min(axis=1)
    dt = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    size = 2 * round(LEVEL_WINDOW_S / max(dt, 1e-6)) + 1
    local = percentile_filter(lowest, FLOOR_PERCENTILE, size=size, mode="nearest")
    rise = np.maximum(local - _floor_level(lowest[:, None])[0], 0.0)
    return overall[None, :] + rise[:, None]


def detect_contacts(points: np.ndarray, times: np.ndarray, *, view_dir: np.ndarray | None = None,
                    height_max: float = CONTACT_HEIGHT_MAX, speed_max: float = CONTACT_SPEED_MAX,
                    depth_weight: float = DEPTH_WEIGHT, hysteresis: float = HYSTERESIS,
                    min_frames: int = MIN_CONTACT_FRAMES, max_gap: int = MAX_GAP_FRAMES,
                    flat_feet: bool = True, camera: np.ndarray | None = None,
                    raised_supports: bool = False) -> np.ndarray:
    """Contact flags (T,K) bool for foot points (T,K,3) in a z-up world over times (T,) s.

    A point is in contact when it is low (≤ height_max above its own floor level, the
    FLOOR_PERCENTILE of its heights, which absorbs the joint's height above the sole) and slow
    (weighted speed ≤ speed_max); the contact lasts while both stay within ``hysteresis`` times
    these bounds. ``view_dir`` (3,), optional: the camera's viewing direction in the world; its
    horizontal component's speed counts with ``depth_weight``. ``camera`` (3,), optional: the
    camera centre in the world; the height bound then grows by the height uncertainty of each
    point along its camera ray (_height_slack). ``raised_supports`` (this person's stance shows
    several levels: ground.stands_on_levels): a point's level also rises where the person stands
    on something for a while (_support_level). With ``flat_feet`` and the four
    points (heel, toe) × (left, right) of footlock.CONTACT_JOINTS, a toe that is slow while its
    heel is planted is planted too (a foot is rigid; its toe joint's estimated height is the
    noisier one). Short flickers are cleaned up.
    """
    points = np.asarray(points, np.float64)
    times = np.asarray(times, np.float64)
    speed = _weighted_speed(points, times, view_dir, depth_weight)
    z = points[..., 2]
    level = _support_level(z, times) if raised_supports else _floor_level(z)
    height = z - level
    bound = height_max + (0.0 if camera is None else _height_slack(points, camera))
    strong = (height <= bound) & (speed <= speed_max)
    weak = (height <= hysteresis * bound) & (speed <= hysteresis * speed_max)
    flags = np.stack([_hysteresis(strong[:, k], weak[:, k]) for k in range(points.shape[1])], axis=1)
    if flat_feet and points.shape[1] == 4:
        flags[:, 1::2] |= flags[:, 0::2] & (speed[:, 1::2] <= speed_max)
    return np.stack([_clean(flags[:, k], min_frames, max_gap) for k in range(points.shape[1])], axis=1)
