"""Camera motion from the background: per-frame camera rotation of a panning, tilting or handheld
camera, people masked out by their boxes (OpenCV feature tracking + robust homography).

Model: the camera turns about its centre (pans, tilts, handheld shake), so background pixels of
a frame map to a reference frame by ``H = K R K⁻¹`` (field-notes §1). Frames are downscaled to
WORK_WIDTH; corners (``cv2.goodFeaturesToTrack``) outside the dilated person boxes are tracked with
pyramidal Lucas-Kanade from a keyframe; per frame, ``cv2.findHomography(..., cv2.USAC_MAGSAC)``
selects the inliers and the rotation is the
least-squares (Kabsch) rotation between their calibrated rays. The keyframe moves on when too
few of its corners survive; rotations chain only at keyframe changes (little drift).

Frames: ``ref_from_camera[n]`` (N,3,3) rotates OpenCV camera-frame vectors of video frame ``n`` into
the camera frame of frame 0 (the reference); a translating camera also has its centre
``CameraPath.centres[n]`` there (units of the frame-0 camera's distance to the floor; metres after
:func:`vibe_engine.world.camera_path.attach`). Memory: per frame ≤ PAIRS_KEPT background point
pairs (≈ 0.6 kB) and a 3×3 rotation, nothing per pixel; the path solves work on ≤ CHUNK_FRAMES
frames at a time.

Decisions (``CameraPath.kind``): ``static`` when the largest rotation from the reference stays below
STATIC_MAX_DEG, the clip does not zoom and the camera does not travel (a tripod clip keeps exactly
today's result), ``moving`` otherwise; a clip whose
background cannot be tracked (a person filling the frame, a blank wall) falls back to ``static``
with a ``reason`` naming why. A per-frame focal is fitted when the clip zooms; a camera that moves
over the floor (walking, dolly) gets its translation from :mod:`vibe_engine.world.camera_translation`
(model selection against the rotation model; metric scale from the people's feet in
:func:`vibe_engine.world.camera_path.attach`, which also applies the path to the motion).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from vibe_engine.world import camera_translation

#: Frames are tracked at this width (px); the result does not depend on it beyond precision.
WORK_WIDTH = 480
MAX_CORNERS = 200
CORNER_QUALITY = 0.01
CORNER_MIN_DISTANCE = 8  # px at WORK_WIDTH
#: Person boxes are grown by this fraction of their side before masking (limbs outside the box).
BOX_MARGIN = 0.2
#: Lucas-Kanade window (px at WORK_WIDTH). 11: the tracker's CPU per 720p frame 5.9 → 4.3 ms (best of 3,
#: 120 frames) with the moving suite as before (benchmarks/accuracy.py --suite all, window 15 → 11:
#: rotation error 0.17 → 0.17°, position 1.34 → 1.36 cm, root 8.32 → 8.34 %, decisions all right);
#: 9 costs 3.8 ms but root 8.42 %, skate 2.0 → 2.2 mm/frame.
LK_WINDOW = (11, 11)
LK_LEVELS = 3
HOMOGRAPHY_PX = 1.5  # MAGSAC threshold (px at WORK_WIDTH)
#: A frame needs this many background inliers; a keyframe is renewed below RENEW_FRACTION survivors.
MIN_INLIERS = 25
RENEW_FRACTION = 0.5
#: Below this largest rotation from frame 0 (deg) the camera is static.
STATIC_MAX_DEG = 0.25
#: More than this share of frames without a usable background: fall back to a static camera.
MAX_FAILED_FRACTION = 0.2
#: Background inlier pairs kept per frame for the final solve (memory ≈ 16 bytes each).
PAIRS_KEPT = 40
#: Focal from the rotation: only with at least this much rotation (deg), within this range of
#: the given focal, and when the misfit rises by FOCAL_SHARPNESS× at k·/÷FOCAL_PROBE.
FOCAL_MIN_ROTATION_DEG = 3.0
FOCAL_RANGE = (0.5, 2.0)
FOCAL_PROBE = 1.1
FOCAL_SHARPNESS = 1.3
#: Zoom: the per-frame focal is fitted within ±ZOOM_MAX_LOG (log) of its keyframe's (a grid of
#: ZOOM_GRID values, narrowed ZOOM_LEVELS times, then a parabola); a clip zooms when some frame's
#: focal differs from frame 0's by more than ZOOM_MIN_LOG (≈ 2 %).
ZOOM_MAX_LOG = 0.5
ZOOM_GRID = 11
ZOOM_LEVELS = 5
#: The zoom is searched only when the plain rotation misfits the background this many times more
#: than a free homography (camera_translation.misfit_ratio; a 2 % zoom gives ≫ 10).
ZOOM_GATE_RATIO = 1.3
#: The path solves work on at most this many frames at a time (bounded memory on long clips).
CHUNK_FRAMES = 256
ZOOM_MIN_LOG = 0.02


@dataclass
class CameraPath:
    """Result: ``kind`` "static" or "moving", ``ref_from_camera`` (N,3,3) float64 (identity when
    static), ``reason`` (why static despite the request, or ""), ``failed`` frames without a fit."""

    kind: str
    ref_from_camera: np.ndarray
    reason: str = ""
    failed: int = 0
    stats: dict[str, float] = field(default_factory=dict)
    focal_scale: float = 1.0  # focal correction found from the rotation (1: none)
    zoom: np.ndarray | None = None  # (N,) focal of each frame / frame 0's, when the camera zooms
    #: (N,3) camera centres in the frame-0 camera in units of its distance to the floor (translation)
    centres: np.ndarray | None = None
    plane_normal: np.ndarray | None = None  # (3,) the floor's normal in the frame-0 camera (down)


def rotation_angle_deg(r: np.ndarray) -> np.ndarray:
    """Angle (deg) of rotation matrices (...,3,3)."""
    cos = (np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _box_mask(shape: tuple[int, int], boxes: Iterable[np.ndarray], scale: float) -> np.ndarray:
    """uint8 mask (H,W) at work scale: 255 on the background, 0 inside the grown person boxes
    (boxes (cx, cy, w, h) in full-image pixels)."""
    mask = np.full(shape, 255, np.uint8)
    for cx, cy, w, h in boxes:
        hw, hh = (1 + BOX_MARGIN) * w / 2 * scale, (1 + BOX_MARGIN) * h / 2 * scale
        x0, x1 = int(max(cx * scale - hw, 0)), int(min(cx * scale + hw + 1, shape[1]))
        y0, y1 = int(max(cy * scale - hh, 0)), int(min(cy * scale + hh + 1, shape[0]))
        mask[y0:y1, x0:x1] = 0
    return mask


class CameraTracker:
    """Streams the frames of one pass; ``finish`` gives the CameraPath.

    ``focal_px``, principal point at the image centre; ``boxes`` maps a frame index to the person
    boxes (K,4) (cx, cy, w, h) seen in it (every track's box). Per frame only up to PAIRS_KEPT
    background inlier pairs (keyframe, frame) are kept (≈ 0.5 kB), so the rotations can be solved
    at the end with a calibrated focal (:func:`calibrate_focal`).
    """

    def __init__(self, width: int, height: int, focal_px: float, boxes: dict[int, list[np.ndarray]]) -> None:
        self.scale = min(1.0, WORK_WIDTH / float(width))
        self.size = (int(round(width * self.scale)), int(round(height * self.scale)))
        self.focal = focal_px * self.scale
        self.boxes = boxes
        self.pairs: list[tuple[int, np.ndarray, np.ndarray] | None] = []  # per frame: (key frame, key, cur)
        self._prev = None  # previous grey frame
        self._key = 0  # keyframe index
        self._key_points = None  # (M,2) corners in the keyframe
        self._points = None  # (M,2) their tracked positions in the previous frame

    def _new_keyframe(self, grey: np.ndarray, index: int) -> None:
        import cv2

        mask = _box_mask(grey.shape, self.boxes.get(index, ()), self.scale)
        pts = cv2.goodFeaturesToTrack(grey, MAX_CORNERS, CORNER_QUALITY, CORNER_MIN_DISTANCE, mask=mask)
        pts = np.zeros((0, 2), np.float32) if pts is None else pts.reshape(-1, 2)
        self._key, self._key_points, self._points = index, pts, pts.copy()

    def _track(self, grey: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Keyframe and current positions (M,2) of corners tracked into ``grey``, off the people.

        One forward Lucas-Kanade pass: a wrong track is an outlier of each frame's MAGSAC
        homography (:meth:`_inliers`). A forward-backward check doubled the tracker's Lucas-Kanade
        time for no measurable gain (moving suite with / without it: rotation error 0.17 / 0.17°,
        position 1.36 / 1.35 cm, root 8.34 / 8.30 %; static decisions right either way)."""
        import cv2

        if len(self._points) == 0:
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        p0 = self._points.reshape(-1, 1, 2).astype(np.float32)
        p1, ok, _ = cv2.calcOpticalFlowPyrLK(self._prev, grey, p0, None, winSize=LK_WINDOW, maxLevel=LK_LEVELS)
        good = ok.ravel() == 1
        p1 = p1.reshape(-1, 2)
        good &= (p1[:, 0] >= 0) & (p1[:, 1] >= 0) & (p1[:, 0] < grey.shape[1]) & (p1[:, 1] < grey.shape[0])
        mask = _box_mask(grey.shape, self.boxes.get(index, ()), self.scale)
        xy = np.clip(p1[good].astype(int), 0, [grey.shape[1] - 1, grey.shape[0] - 1])
        keep = np.flatnonzero(good)[mask[xy[:, 1], xy[:, 0]] > 0]
        self._key_points, self._points = self._key_points[keep], p1[keep]
        return self._key_points, self._points

    def _inliers(self, key: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """MAGSAC homography inliers (key, cur), subsampled to PAIRS_KEPT; None when too few."""
        import cv2

        if len(key) < MIN_INLIERS:
            return None
        _, inl = cv2.findHomography(cur, key, cv2.USAC_MAGSAC, HOMOGRAPHY_PX)
        if inl is None or int(inl.sum()) < MIN_INLIERS:
            return None
        sel = np.flatnonzero(inl.ravel())
        sel = sel[np.linspace(0, len(sel) - 1, min(PAIRS_KEPT, len(sel))).astype(int)]
        return key[sel].astype(np.float32), cur[sel].astype(np.float32)

    def add(self, index: int, image: np.ndarray) -> None:
        """Feed video frame ``index`` (RGB (H,W,3) uint8); frames must come in order without gaps."""
        import cv2

        small = image  # exact halvings first (OpenCV's fast 2× area path), grey on the small image
        while small.shape[1] >= 2 * self.size[0]:
            small = cv2.resize(small, (small.shape[1] // 2, small.shape[0] // 2), interpolation=cv2.INTER_AREA)
        grey = cv2.resize(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), self.size, interpolation=cv2.INTER_AREA)
        if self._prev is None:
            self.pairs.append(None)
            self._new_keyframe(grey, index)
            self._prev = grey
            return
        total = max(len(self._key_points), 1)
        key, cur = self._track(grey, index)
        found = self._inliers(key, cur)
        self.pairs.append(None if found is None else (self._key, *found))
        self._prev = grey
        if found is None or len(key) < RENEW_FRACTION * total or len(key) < 2 * MIN_INLIERS:
            self._new_keyframe(grey, index)

    def rotations(self, focal: float) -> np.ndarray:
        """ref_from_camera (N,3,3) of the frames fed, for a focal (px at work scale).

        A frame without a fit holds the previous rotation; the keyframe's rotation is its own."""
        return self.solve(focal, zoom=False)[0]

    def chunks(self) -> Iterable["PackedPairs"]:
        """The kept pairs as arrays, in keyframe order, at most CHUNK_FRAMES frames (all of one
        keyframe) per chunk: memory per chunk is bounded whatever the clip's length."""
        groups: dict[int, list[int]] = {}
        for n, pair in enumerate(self.pairs):
            if pair is not None:
                groups.setdefault(pair[0], []).append(n)
        for k in sorted(groups):
            frames = groups[k]
            for start in range(0, len(frames), CHUNK_FRAMES):
                yield PackedPairs.of(self.pairs, frames[start : start + CHUNK_FRAMES])

    def solve(self, focal: float, zoom: bool) -> tuple[np.ndarray, np.ndarray]:
        """(ref_from_camera (N,3,3), focal scale per frame (N,) relative to frame 0). With ``zoom``
        each frame's focal relative to its keyframe is fitted too (:func:`_zoom_search`). Frames
        sharing a keyframe are solved as one batch (:meth:`chunks`), keyframes in order."""
        n = len(self.pairs)
        rots, scales = np.repeat(np.eye(3)[None], n, 0), np.ones(n)
        has = np.array([p is not None for p in self.pairs], bool)
        filled = 0

        def hold(upto: int) -> None:  # frames without a fit up to ``upto`` hold the previous camera
            nonlocal filled
            for j in range(filled + 1, upto + 1):
                if not has[j]:
                    rots[j], scales[j] = rots[j - 1], scales[j - 1]
            filled = max(filled, upto)

        for pk in self.chunks():
            k = int(pk.key[0])
            hold(k)
            fk = focal * scales[k]
            b = _rays_batch(pk.key_pts, fk, self.size)
            s = _zoom_search(pk.cur_pts, b, pk.weight, fk, self.size) if zoom else np.ones(len(b))
            rel = _kabsch_batch(_rays_batch(pk.cur_pts, fk * s, self.size), b, pk.weight)
            rots[pk.frame] = rots[k] @ rel
            scales[pk.frame] = scales[k] * s
        hold(n - 1)
        return rots, scales

    @property
    def failed(self) -> int:
        """Frames (after the first) without a usable background fit."""
        return sum(p is None for p in self.pairs[1:])

    def _rotation_model(self, focal: float) -> tuple[np.ndarray, np.ndarray]:
        """(ref_from_camera (N,3,3), zoom (N,)) of the rotation model at ``focal`` (px at work scale):
        per-frame focal only when the clip zooms (ZOOM_MIN_LOG), else ones."""
        rots, zooms = self.solve(focal, zoom=False)
        z_rots, z_scales = self.solve(focal, zoom=True)
        if np.abs(np.log(z_scales)).max() > ZOOM_MIN_LOG:  # a zoom: per-frame focal
            return z_rots, z_scales
        return rots, zooms

    def _translation(self) -> tuple[camera_translation.Translation | None, np.ndarray, np.ndarray, dict]:
        """The translating path (or None), the rotation model's (rotations, zoom) and stats. The
        zoom is searched only when the plain rotation misfits the background ZOOM_GATE_RATIO× more
        than a free homography (a still or turning camera fits both alike)."""
        T = camera_translation
        rots, zooms = self.solve(self.focal, zoom=False)
        free = T.homography_misfit(self.pairs)
        misfit = T.rotation_misfit(self.pairs, rots, self.focal, self.size)
        if T.misfit_ratio(misfit, free) >= ZOOM_GATE_RATIO:
            z_rots, z_scales = self.solve(self.focal, zoom=True)
            if np.abs(np.log(z_scales)).max() > ZOOM_MIN_LOG:  # a zoom: per-frame focal
                rots, zooms = z_rots, z_scales
                misfit = T.rotation_misfit(self.pairs, rots, self.focal, self.size, zooms)
        moved, stats = T.estimate(self.pairs, rots, self.focal, self.size, misfit, free)
        return moved, rots, zooms, stats

    def finish(self, num_frames: int, mode: str = "auto", calibrate: bool = False) -> CameraPath:
        """The path over ``num_frames`` frames (the last camera held past the last frame fed).

        Translation first (:mod:`vibe_engine.world.camera_translation`: a camera moving over the
        floor); otherwise the rotation model, with ``calibrate`` also the focal from the rotation
        (``CameraPath.focal_scale``) and a per-frame focal when the clip zooms."""
        scale, cal, moved = 1.0, {}, None
        rots, zooms = np.eye(3)[None], np.ones(1)
        if self.pairs:
            moved, rots, zooms, cal = self._translation()
            if moved is not None:
                rots, zooms = moved.rotations, np.ones(len(moved.rotations))
            elif calibrate:
                scale, focal_stats = calibrate_focal(self)
                cal.update(focal_stats)
                if scale != 1.0:
                    rots, zooms = self._rotation_model(self.focal * scale)
        rots, zooms = _pad(rots, num_frames), _pad(zooms, num_frames)
        centres = None if moved is None else _pad(moved.centres, num_frames)
        largest = float(rotation_angle_deg(rots).max())
        kept = [len(p[1]) for p in self.pairs if p is not None]
        stats = {"largest_rotation_deg": round(largest, 3), "failed_frames": self.failed,
                 "median_pairs": float(np.median(kept)) if kept else 0.0, **cal}
        identity = np.repeat(np.eye(3)[None], num_frames, 0)
        if self.failed > MAX_FAILED_FRACTION * max(num_frames - 1, 1):
            reason = (f"no usable background in {self.failed} of {num_frames} frames (fewer than "
                      f"{MIN_INLIERS} trackable points outside the people): assuming a static camera")
            return CameraPath("static", identity, reason, self.failed, stats)
        zoomed = bool(np.abs(np.log(zooms)).max() > ZOOM_MIN_LOG)
        stats["zoom_range"] = round(float(zooms.max() / zooms.min()), 4)
        stats["translating"] = moved is not None
        if mode == "moving" or (mode == "auto" and (largest >= STATIC_MAX_DEG or zoomed or moved is not None)):
            return CameraPath("moving", rots, "", self.failed, stats, scale, zooms if zoomed else None,
                              centres, None if moved is None else moved.normal)
        return CameraPath("static", identity, "", self.failed, stats)


def _pad(values: np.ndarray, num_frames: int) -> np.ndarray:
    """``values`` (M,...) cut or extended to ``num_frames`` rows (the last row repeated)."""
    if len(values) < num_frames:
        values = np.concatenate([values, np.repeat(values[-1:], num_frames - len(values), 0)])
    return values[:num_frames]


def _rays(pts: np.ndarray, focal: float, size: tuple[int, int]) -> np.ndarray:
    """Unit rays (M,3) of pixels (M,2) for a centred pinhole of ``focal`` px on an image ``size``."""
    rays = np.concatenate([(pts - np.array(size, np.float64) / 2) / focal, np.ones((len(pts), 1))], 1)
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


@dataclass
class PackedPairs:
    """Kept background pairs as arrays: ``frame``, ``key`` (P,) int, ``key_pts``, ``cur_pts``
    (P,M,2) px at work scale (padded to M = PAIRS_KEPT), ``weight`` (P,M) 1 for a point, 0 for padding."""

    frame: np.ndarray
    key: np.ndarray
    key_pts: np.ndarray
    cur_pts: np.ndarray
    weight: np.ndarray

    @classmethod
    def of(cls, pairs: list, frames: list[int]) -> "PackedPairs":
        """Pack the pairs of ``frames`` (each with a pair) of ``CameraTracker.pairs``."""
        rows = [pairs[n] for n in frames]
        m = max([PAIRS_KEPT] + [len(p[1]) for p in rows])
        key_pts, cur_pts, weight = np.zeros((len(rows), m, 2)), np.zeros((len(rows), m, 2)), np.zeros((len(rows), m))
        for i, (_, key, cur) in enumerate(rows):
            key_pts[i, : len(key)], cur_pts[i, : len(cur)], weight[i, : len(key)] = key, cur, 1.0
        return cls(np.asarray(frames, int), np.array([p[0] for p in rows], int), key_pts, cur_pts, weight)


def _rays_batch(pts: np.ndarray, focal, size: tuple[int, int]) -> np.ndarray:
    """Unit rays (...,M,3) of pixels (...,M,2); ``focal`` a number or an array broadcasting to (...)."""
    f = np.asarray(focal, np.float64)[..., None, None]
    xy = (pts - np.array(size, np.float64) / 2) / f
    rays = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], -1)
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def _kabsch_batch(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rotations (...,3,3) minimising Σ w |b − R a|² for rays a, b (...,M,3) and weights w (...,M)."""
    u, _, vt = np.linalg.svd(np.einsum("...m,...mi,...mj->...ij", w, b, a))
    u[..., :, 2] *= np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)[..., None]
    return u @ vt


def _misfit_batch(cur: np.ndarray, b: np.ndarray, w: np.ndarray, focal: np.ndarray, size) -> np.ndarray:
    """Σ w |b − R a|² (...) of the best rotation, cur rays at ``focal`` (...)."""
    a = _rays_batch(cur, focal, size)
    d = b - np.einsum("...ij,...mj->...mi", _kabsch_batch(a, b, w), a)
    return np.einsum("...m,...mi,...mi->...", w, d, d)


def _zoom_search(cur: np.ndarray, b: np.ndarray, w: np.ndarray, fk: float, size) -> np.ndarray:
    """Per pair (B,) the focal of the current frame relative to its keyframe's (``fk``) that best
    makes the pairs a rotation: grid search within ±ZOOM_MAX_LOG (log), narrowed, then a parabola."""
    centre, half = np.zeros(len(cur)), ZOOM_MAX_LOG
    steps = np.linspace(-1.0, 1.0, ZOOM_GRID)
    rows = np.arange(len(cur))
    for _ in range(ZOOM_LEVELS):
        grid = centre[:, None] + half * steps[None]
        cost = _misfit_batch(cur[:, None], b[:, None], w[:, None], fk * np.exp(grid), size)
        best = np.clip(np.argmin(cost, 1), 1, ZOOM_GRID - 2)
        c0, c1, c2 = (cost[rows, best + i] for i in (-1, 0, 1))
        step = half * (steps[1] - steps[0])
        curv = c0 - 2 * c1 + c2
        shift = np.where(curv > 0, 0.5 * (c0 - c2) / np.where(curv > 0, curv, 1.0), 0.0)
        centre = grid[rows, best] + np.clip(shift, -1, 1) * step
        half = step
    return np.exp(centre)


def _residual(tracker: CameraTracker, focal: float) -> float:
    """Mean squared misfit (px², ray misfit × focal: a longer focal must not look better only
    because it shrinks the angles of the same pixel noise) of every kept pair for a focal (px at
    work scale)."""
    total, count = 0.0, 0.0
    for pk in tracker.chunks():
        b = _rays_batch(pk.key_pts, focal, tracker.size)
        total += float(np.sum(_misfit_batch(pk.cur_pts, b, pk.weight, np.full(len(b), focal), tracker.size)))
        count += float(pk.weight.sum())
    return total / max(count, 1.0) * focal ** 2


def calibrate_focal(tracker: CameraTracker) -> tuple[float, dict]:
    """Focal correction k (new = k × given) that makes the background motion a pure rotation
    (``H = K R K⁻¹`` holds only for the right focal once the camera pans or tilts), with stats.
    k = 1 when the rotation is too small or the minimum not sharp (FOCAL_SHARPNESS)."""
    from scipy.optimize import minimize_scalar

    largest = float(rotation_angle_deg(tracker.rotations(tracker.focal)).max()) if tracker.pairs else 0.0
    if largest < FOCAL_MIN_ROTATION_DEG:
        return 1.0, {"focal_from_rotation": "rotation too small"}
    f0 = tracker.focal
    res = minimize_scalar(lambda lk: _residual(tracker, f0 * np.exp(lk)), bounds=np.log(FOCAL_RANGE),
                          method="bounded", options={"xatol": 1e-3})
    k = float(np.exp(res.x))
    best = _residual(tracker, f0 * k)
    sides = min(_residual(tracker, f0 * k / FOCAL_PROBE), _residual(tracker, f0 * k * FOCAL_PROBE))
    sharp = sides > FOCAL_SHARPNESS * best
    inside = FOCAL_RANGE[0] * 1.01 < k < FOCAL_RANGE[1] / 1.01
    if not (sharp and inside):
        return 1.0, {"focal_from_rotation": "not sharp"}
    return k, {"focal_from_rotation": round(k, 4)}


def boxes_by_frame(tracks: list[Any]) -> dict[int, list[np.ndarray]]:
    """Frame index → the (cx, cy, w, h) boxes of every track present there (tracker tracks)."""
    out: dict[int, list[np.ndarray]] = {}
    for t in tracks:
        for f, b in zip(np.asarray(t.frames), np.asarray(t.bbox, np.float64)):
            out.setdefault(int(f), []).append(b[:4])
    return out


def start(mode: str, width: int, height: int, focal_px: float, tracks: list[Any]) -> CameraTracker | None:
    """A tracker for pass 2, or None with ``--camera static`` (no cost, today's result)."""
    if mode == "static":
        return None
    return CameraTracker(width, height, focal_px, boxes_by_frame(tracks))
