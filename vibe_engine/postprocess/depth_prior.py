"""Root depth from body-size consistency: move each frame's body along its camera ray so that the
fitted body's rigid trunk segments project to the lengths the 2D detector sees.

A monocular fit places the body at the depth where its whole projection matches best; when its
3D pose is off (legs straighter or more bent than they are), the depth absorbs it and swings from
frame to frame (±5 % at 6 m on the synthetic suite). The body's metric size is fixed over the
clip, so the apparent length of a rigid segment lying across the camera ray says how far the body
is: per frame and segment, q = (fitted segment length in pixels) / (detected length in pixels) is
the factor the depth is off by. The segments are the trunk's (shoulder width, hip width, hip to
shoulder midpoints), whose length does not depend on the limbs' pose. Each segment's log ratio is
first centred on its median over the clip (the fit's joints and the detector's landmarks are not
defined at the same place: a constant per segment; the clip's overall depth scale stays the
fit's), segments are averaged with weights (fraction of the segment across the ray)^ACROSS_POWER
× landmark visibility (a foreshortened segment says little about depth), and the result is
smoothed over time. Applied after the first foot lock (postprocess/run.py): the lock's stance
anchoring carries one stance's depth error into the next; this prior removes that drift, and the
final re-pin keeps the feet planted.
"""
from __future__ import annotations

import numpy as np

from vibe_engine.postprocess.smoothing import LocalFitParams, smooth_vectors

# (SMPL joints, BlazePose landmarks) of rigid trunk segments; four indices = between two midpoints.
SEGMENTS = (
    ((16, 17), (11, 12)),                # shoulder width
    ((1, 2), (23, 24)),                  # hip width
    ((1, 2, 16, 17), (23, 24, 11, 12)),  # hip midpoint to shoulder midpoint
)
NUM_LANDMARKS = 33  # BlazePose image landmarks per frame
# Of the per-frame log depth factor (s), chosen with footlock.ROOT_OFFSET_SMOOTHING (the two trade the
# static clips against the moving ones). Grid on the suite (benchmarks/accuracy.py --suite all --reuse,
# this one 0.08-0.15 s × that one 0.05-0.10 s): world root trajectory 7.71-8.13 % static, 7.76-8.33 %
# moving; 0.12 × 0.07 s the best worst-of-both (7.91 / 7.94 %, against 7.93 / 8.05 % at the former
# 0.15 × 0.10 s). Chosen before the held-out suite (--suite holdout) was looked at, where it also did
# better: 17.29 → 17.17 % static, 14.37 → 14.09 % moving. 0.05 s passes detection noise on.
RATIO_SMOOTHING = LocalFitParams(sigma=0.12, order=1)
MAX_LOG_FACTOR = 0.15  # |log q| per segment: beyond ±15 % it is a detection failure, not depth
ACROSS_POWER = 4  # segment weight: (fraction of its length across the camera ray) ** ACROSS_POWER
MIN_WEIGHT = 1e-3  # summed segment weight below which a frame's factor comes from its neighbours
MIN_PIXELS = 1.0  # segments shorter than this (fitted or detected) are not used


def _segment(points: np.ndarray, pair: tuple[int, ...]) -> np.ndarray:
    """Segment vectors (T,D) between two joints, or two joint midpoints, of points (T,J,D)."""
    if len(pair) == 4:
        return (points[:, pair[0]] + points[:, pair[1]]) / 2 - (points[:, pair[2]] + points[:, pair[3]]) / 2
    return points[:, pair[0]] - points[:, pair[1]]


def _across_fraction(joints_cam: np.ndarray, pair: tuple[int, ...]) -> np.ndarray:
    """Fraction (T,) of a 3-D segment's length perpendicular to the camera ray through its joints."""
    seg = _segment(joints_cam, pair)
    ray = joints_cam[:, list(pair)].mean(1)
    ray = ray / np.linalg.norm(ray, axis=-1, keepdims=True)
    across = seg - np.sum(seg * ray, axis=-1, keepdims=True) * ray
    return np.linalg.norm(across, axis=-1) / np.maximum(np.linalg.norm(seg, axis=-1), 1e-12)


def _segment_log_ratio(fit_px: np.ndarray, landmarks_px: np.ndarray, smpl: tuple[int, ...],
                       blaze: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Median-centred log(fitted / detected pixel length) (T,) of one segment and its validity (T,)."""
    fit = np.linalg.norm(_segment(fit_px, smpl), axis=-1)
    det = np.linalg.norm(_segment(landmarks_px, blaze), axis=-1)
    ok = np.isfinite(det) & np.isfinite(fit) & (det > MIN_PIXELS) & (fit > MIN_PIXELS)
    log_r = np.zeros(len(fit))
    log_r[ok] = np.log(fit[ok] / det[ok])
    if ok.any():
        log_r[ok] -= np.median(log_r[ok])
    return np.clip(log_r, -MAX_LOG_FACTOR, MAX_LOG_FACTOR), ok


def depth_factors(joints_cam: np.ndarray, landmarks_px: np.ndarray, focal_px: np.ndarray,
                  visibility: np.ndarray | None, times: np.ndarray) -> np.ndarray:
    """Per-frame factors q (T,) by which the fitted body's distance from the camera should be multiplied.

    joints_cam (T,24,3) m: the fit's SMPL joints in each frame's own camera (OpenCV, z forward);
    landmarks_px (T,33,2): the detected BlazePose image landmarks, pixels (any common origin);
    focal_px (T,) pixels; visibility (T,33) in [0,1] or None; times (T,) s. exp(median log q) = 1.
    """
    joints_cam = np.asarray(joints_cam, np.float64)
    landmarks_px = np.asarray(landmarks_px, np.float64)
    fit_px = joints_cam[..., :2] / joints_cam[..., 2:3] * np.asarray(focal_px, np.float64)[:, None, None]
    vis = None if visibility is None else np.asarray(visibility, np.float64)
    logs, weights = [], []
    for smpl, blaze in SEGMENTS:
        log_r, ok = _segment_log_ratio(fit_px, landmarks_px, smpl, blaze)
        w = _across_fraction(joints_cam, smpl) ** ACROSS_POWER * ok
        if vis is not None:
            w = w * np.nan_to_num(np.min(vis[:, list(blaze)], axis=1))
        logs.append(log_r)
        weights.append(w)
    logs, weights = np.stack(logs, 1), np.stack(weights, 1)
    total = weights.sum(1)
    seen = total > MIN_WEIGHT
    if not seen.any():
        return np.ones(len(total))
    times = np.asarray(times, np.float64)
    log_q = (logs[seen] * weights[seen]).sum(1) / total[seen]
    log_q = np.interp(times, times[seen], log_q)  # frames without a usable segment: from their neighbours
    if len(log_q) > 2:
        log_q = smooth_vectors(log_q[:, None], times, RATIO_SMOOTHING)[:, 0]
    return np.exp(log_q - np.median(log_q))


def move_along_rays(transl: np.ndarray, rest_root: np.ndarray, factors: np.ndarray,
                    centres: np.ndarray | None = None) -> np.ndarray:
    """smplx ``transl`` (T,3) with each frame's root joint moved along its camera ray.

    The root joint (``rest_root`` (3,) + transl) goes to centre + q·(root − centre): its distance
    from the camera centre ``centres`` (T,3) (zeros: a static camera) times ``factors`` (T,), its
    image position unchanged. All in one frame (the motion's camera frame), metres. Returns (T,3) float64.
    """
    transl = np.asarray(transl, np.float64)
    c = np.zeros_like(transl) if centres is None else np.asarray(centres, np.float64)
    root = transl + np.asarray(rest_root, np.float64)
    return c + np.asarray(factors, np.float64)[:, None] * (root - c) - rest_root
