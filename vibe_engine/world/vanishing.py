"""The floor's orientation from the background's straight lines (vanishing points).

Parallel 3D lines meet in the image at one vanishing point; its calibrated ray ``K⁻¹ v`` is their
3D direction in the camera frame. The edges of a floor's tiles, of walls, windows, doors and
furniture are mostly horizontal or vertical in the world: the directions of horizontal families
are perpendicular to the floor's normal, a vertical family is parallel to it. Two horizontal
families (or one vertical) give the normal in the camera frame without any depth: it does not
depend on the people's fitted depth or lean, only on the lines and the focal.

Two halves:

* engine (pass 2, :class:`LineSampler`): on 2 to LINE_FRAMES frames spread over the clip,
  OpenCV's line segment detector (``cv2.createLineSegmentDetector``) off the people's grown boxes;
  the segments' dominant vanishing points by consensus (:func:`vanishing_points`); stored as
  homogeneous pixel points in ``meta["world"]["vanishing"]`` (so a later focal still applies).
* post-processing (:func:`floor_normal`): each point's direction with the final focal (per frame
  for a zoom), turned into the frame-0 camera for a moving camera; classified against the people's
  mean vertical as horizontal (within CLASS_DEG of perpendicular) or vertical (within CLASS_DEG
  of parallel); the best-supported floor over the families (:func:`floor_normal`), refitted as
  the least-squares direction perpendicular to its horizontal ones and along its vertical ones. None
  when the families do not pin it (fewer than two distinct horizontal directions and no
  vertical one).

OpenCV has no vanishing-point estimator; the consensus below is an exhaustive vote over the
directions through pairs of the longest segments (deterministic), not a random search.

Frames: OpenCV camera (x right, y down, z forward); pixels with the principal point at the image
centre (the engine's camera model, :mod:`vibe_engine.world.camera`).
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from vibe_engine.world.camera_motion import BOX_MARGIN  # person boxes grown by this share of their side

#: Frames sampled per clip, evenly over its frames: one per LINE_FRAME_SPACING frames and one more,
#: from MIN_LINE_FRAMES to LINE_FRAMES (a static background gives the same lines on each; a moving
#: camera shows more of the scene; each costs the segment detector once).
LINE_FRAMES, MIN_LINE_FRAMES, LINE_FRAME_SPACING = 5, 2, 30
#: Frames are searched at this width at most (px; area-downscaled). The segment detector's time
#: grows with the pixels: 99 / 54 / 24 ms for a 1280 / 960 / 640 px wide frame of the demo clip.
WORK_WIDTH = 960
#: Segments shorter than this share of the work image's diagonal are ignored (texture, noise). The
#: vanishing points are found twice per frame: from the segments of at least MIN_LENGTH_FRAC
#: ("long", the precise ones) and from those of at least SHORT_LENGTH_FRAC ("short": a small or far
#: floor's lines, a low-resolution clip), used only when the long ones do not pin the floor. On
#: the synthetic suite's 640x360 handheld clip the long ones miss the floor's receding family
#: (the short ones find it: up-axis 5.5 -> 0.3 deg); on a rendered 720p checkerboard the short
#: ones' directions are 0.5 deg worse.
MIN_LENGTH_FRAC, SHORT_LENGTH_FRAC = 0.03, 0.02
TIERS = ("long", "short")
#: A segment supports a direction when its interpretation plane is within this angle of it (deg):
#: about 5 px at a 1000 px focal; for a short segment, within what its ends' error allows (a line
#: through ends ENDPOINT_PX off, in the searched image's pixels, turns by up to 2·ENDPOINT_PX /
#: length rad).
INLIER_DEG = 0.3
ENDPOINT_PX = 1.0
HYPOTHESIS_SEGMENTS = 80  # longest segments whose pairs propose directions
MAX_POINTS = 4  # vanishing points kept per frame
MIN_SEGMENTS = 6  # segments a vanishing point needs
#: A direction within this angle of perpendicular to the people's vertical is horizontal, within
#: this angle of it vertical (deg): the people's vertical is known to a few degrees.
CLASS_DEG = 20.0
#: The second try when CLASS_DEG finds no floor (:func:`vibe_engine.world.grounding.lines_up`): a
#: fit seen from high above can lean 30° off the truth (the floor's receding lines are then
#: neither horizontal nor vertical against it); each floor found this way must put the people's
#: feet below the camera (a family of vertical edges taken for the floor's would not).
LOOSE_CLASS_DEG = 45.0
#: Families farther than this (deg) from the best-supported floor are left out (a ramp, a roof, a
#: slanted line taken for a family); horizontal pairs closer than MIN_PAIR_DEG propose no floor
#: (two families 20° apart give a normal a degree of error in either tilts toward a third).
RESIDUAL_DEG = 2.0
MIN_PAIR_DEG = 40.0
#: The families must pin the normal: the middle eigenvalue of their normal matrix, each family
#: weighing 1 (a family's precision does not grow with its length), over its trace (two
#: horizontal families: sin²(angle between them) / 2; 0.1: at least 27° apart).
MIN_CONDITION = 0.1

#: Focal from perpendicular vanishing points (focal_from_orthogonal): both within this many focals
#: of the image centre; the pair's angle at the run's focal within this of 90° (deg); at least
#: this many pairs, all within this share of their median; the result within this range × the
#: run's focal.
FOCAL_MAX_OFFSET = 4.0
ORTHOGONAL_DEG = 8.0
FOCAL_MIN_PAIRS = 2
FOCAL_AGREEMENT = 0.1
FOCAL_RANGE = (0.5, 2.0)


def segments(grey: np.ndarray, boxes: Iterable[np.ndarray], scale: float,
             min_frac: float = MIN_LENGTH_FRAC) -> np.ndarray:
    """Line segments (S,5) x1, y1, x2, y2 (full-image pixels), length (px) of a grey work image
    (H,W) uint8 at ``scale`` × the video size, without those touching the grown person ``boxes``
    ((cx, cy, w, h) full-image pixels) or shorter than ``min_frac`` of the diagonal."""
    import cv2

    found = cv2.createLineSegmentDetector().detect(grey)[0]
    if found is None:
        return np.zeros((0, 5))
    seg = found.reshape(-1, 4).astype(np.float64) / scale
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    keep = length >= min_frac * np.hypot(*grey.shape) / scale
    for cx, cy, w, h in boxes:
        hw, hh = (1 + BOX_MARGIN) * w / 2, (1 + BOX_MARGIN) * h / 2
        for x, y in ((seg[:, 0], seg[:, 1]), (seg[:, 2], seg[:, 3]), ((seg[:, 0] + seg[:, 2]) / 2, (seg[:, 1] + seg[:, 3]) / 2)):
            keep &= ~((np.abs(x - cx) <= hw) & (np.abs(y - cy) <= hh))
    return np.column_stack([seg, length])[keep]


def plane_normals(seg: np.ndarray, focal: float, centre: tuple[float, float]) -> np.ndarray:
    """Unit normals (S,3) of the planes through the camera centre and each segment (S,≥4), camera frame."""
    k_inv = np.array([[1 / focal, 0, -centre[0] / focal], [0, 1 / focal, -centre[1] / focal], [0, 0, 1]])
    a = np.column_stack([seg[:, 0], seg[:, 1], np.ones(len(seg))]) @ k_inv.T
    b = np.column_stack([seg[:, 2], seg[:, 3], np.ones(len(seg))]) @ k_inv.T
    m = np.cross(a, b)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def _refine(m: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The direction (3,) closest to perpendicular to every plane normal m (M,3), weights w (M,)."""
    return np.linalg.svd(m * np.sqrt(w)[:, None], full_matrices=False)[2][-1]


def vanishing_points(seg: np.ndarray, focal: float, centre: tuple[float, float],
                     endpoint_px: float = ENDPOINT_PX) -> list[tuple[np.ndarray, float, int]]:
    """Dominant vanishing points of segments (S,5) (full-image pixels): per point (homogeneous
    pixel point (3,) unit, supporting length (px), supporting segments), the best-supported first,
    at most MAX_POINTS. ``endpoint_px``: the segment ends' error in full-image pixels.

    Each round votes over the directions through every pair of the HYPOTHESIS_SEGMENTS longest
    remaining segments (score: the length of the segments within their tolerance: INLIER_DEG, or
    what the ends' error allows a short one), refines the winner by least squares over its
    supporters (twice, weights length²) and removes them.
    """
    m = plane_normals(seg, focal, centre)
    length = seg[:, 4].copy()
    alive = np.ones(len(seg), bool)
    tol = np.maximum(np.sin(np.radians(INLIER_DEG)), 2.0 * endpoint_px / np.maximum(length, 1e-9))
    k = np.array([[focal, 0, centre[0]], [0, focal, centre[1]], [0, 0, 1]])
    out = []
    for _ in range(MAX_POINTS):
        idx = np.flatnonzero(alive)
        if len(idx) < MIN_SEGMENTS:
            break
        top = idx[np.argsort(-length[idx])[:HYPOTHESIS_SEGMENTS]]
        i, j = np.triu_indices(len(top), 1)
        d = np.cross(m[top[i]], m[top[j]])
        norm = np.linalg.norm(d, axis=1)
        d = d[norm > 1e-9] / norm[norm > 1e-9, None]
        if not len(d):
            break
        votes = (np.abs(m[idx] @ d.T) <= tol[idx, None]).T.astype(np.float64) @ length[idx]
        best = d[int(np.argmax(votes))]
        for _ in range(2):
            inl = idx[np.abs(m[idx] @ best) <= tol[idx]]
            if len(inl) < 2:
                break
            best = _refine(m[inl], length[inl] ** 2)  # a segment's plane is known to ∝ 1/length
        inl = idx[np.abs(m[idx] @ best) <= tol[idx]]
        if len(inl) < MIN_SEGMENTS:
            break
        v = k @ best
        out.append((v / np.linalg.norm(v), float(length[inl].sum()), int(len(inl))))
        alive[inl] = False
    return out


class LineSampler:
    """Pass 2: vanishing points of up to LINE_FRAMES frames spread over ``frame_count`` frames.

    ``boxes`` maps a frame index to the person boxes (cx, cy, w, h) seen in it; ``focal_px`` the
    run's focal (only for the consensus' angles: the stored points are pixels).
    """

    def __init__(self, width: int, height: int, focal_px: float, frame_count: int,
                 boxes: dict[int, list[np.ndarray]]) -> None:
        self.width, self.height, self.focal = width, height, float(focal_px)
        count = int(np.clip(1 + frame_count // LINE_FRAME_SPACING, MIN_LINE_FRAMES, LINE_FRAMES))
        self.wanted = set(np.unique(np.linspace(0, max(frame_count - 1, 0), count).round().astype(int)).tolist())
        self.boxes = boxes
        self.found: list[dict[str, Any]] = []

    def add(self, index: int, image: np.ndarray) -> None:
        """Feed video frame ``index`` (RGB (H,W,3) uint8); only the sampled frames are searched."""
        import cv2

        if index not in self.wanted:
            return
        scale = min(1.0, WORK_WIDTH / image.shape[1])
        small = image if scale == 1.0 else cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                                                       interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        seg = segments(grey, self.boxes.get(index, ()), scale, SHORT_LENGTH_FRAC)
        centre = (self.width / 2.0, self.height / 2.0)
        long_enough = seg[:, 4] >= MIN_LENGTH_FRAC * np.hypot(*grey.shape) / scale
        for tier, sub in zip(TIERS, (seg[long_enough], seg)):
            for v, length, count in vanishing_points(sub, self.focal, centre, ENDPOINT_PX / scale):
                self.found.append({"frame": int(index), "point": [float(x) for x in v],
                                   "length_px": round(length, 1), "segments": count, "tier": tier})

    def meta(self) -> dict[str, Any]:
        """``meta["world"]["vanishing"]``: the frames searched and the points found."""
        return {"frames": sorted(self.wanted), "points": self.found}


def tier_points(found: dict[str, Any] | None, tier: str) -> dict[str, Any]:
    """``found`` with only the points of one tier (TIERS; a point without a tier is "long")."""
    found = found or {}
    return {**found, "points": [p for p in found.get("points", []) if p.get("tier", TIERS[0]) == tier]}


def directions(found: dict[str, Any], focal: np.ndarray | float, centre: tuple[float, float],
               ref_rotations: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions (P,3) and weights (P,) (supporting length, px) of the stored vanishing
    points, in the frame-0 camera: ``focal`` px (scalar, or (N,) per video frame for a zoom);
    ``ref_rotations`` (N,3,3) ref_from_camera of a moving camera, or None."""
    pts = found.get("points", []) if found else []
    if not pts:
        return np.zeros((0, 3)), np.zeros(0)
    frames = np.array([p["frame"] for p in pts], int)
    v = np.array([p["point"] for p in pts], np.float64)
    f = np.broadcast_to(np.asarray(focal, np.float64), (int(frames.max()) + 1,)) if np.ndim(focal) == 0 \
        else np.asarray(focal, np.float64)
    fr = f[frames]
    d = np.column_stack([(v[:, 0] - centre[0] * v[:, 2]) / fr, (v[:, 1] - centre[1] * v[:, 2]) / fr, v[:, 2]])
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    if ref_rotations is not None:
        d = np.einsum("pij,pj->pi", np.asarray(ref_rotations, np.float64)[frames], d)
    return d, np.array([p["length_px"] for p in pts], np.float64)


def focal_from_orthogonal(found: dict[str, Any] | None, centre: tuple[float, float],
                          focal_px: float) -> tuple[float | None, int]:
    """The focal (px) from pairs of vanishing points of one frame whose directions are
    perpendicular (the two edge directions of floor tiles, of a room, of a building), and the
    number of such pairs; (None, n) when there are fewer than FOCAL_MIN_PAIRS or they disagree.

    For perpendicular directions ``(a, f)·(b, f) = 0`` with ``a``, ``b`` (2,) the points' offsets
    from the principal point (px), so ``f = sqrt(−a·b)``. A pair counts when both points lie within
    FOCAL_MAX_OFFSET × ``focal_px`` of the centre (farther ones pin f poorly) and its angle at the
    run's focal is within ORTHOGONAL_DEG of 90° (a focal off by 20 % turns a right angle by a few
    degrees). Their median is used when all lie within FOCAL_AGREEMENT of it and it lies in
    FOCAL_RANGE × ``focal_px``.
    """
    pts = (found or {}).get("points", [])
    est = []
    for i, p in enumerate(pts):
        for q in pts[i + 1:]:
            f = _pair_focal(p, q, centre, focal_px) if p["frame"] == q["frame"] else None
            if f is not None:
                est.append(f)
    if len(est) < FOCAL_MIN_PAIRS:
        return None, len(est)
    f = float(np.median(est))
    ok = np.all(np.abs(np.asarray(est) / f - 1.0) <= FOCAL_AGREEMENT) and \
        FOCAL_RANGE[0] <= f / focal_px <= FOCAL_RANGE[1]
    return (f if ok else None), len(est)


def _pair_focal(p: dict[str, Any], q: dict[str, Any], centre: tuple[float, float], focal_px: float) -> float | None:
    """The focal (px) that makes two stored vanishing points perpendicular, or None (module rules)."""
    (x1, y1, w1), (x2, y2, w2) = p["point"], q["point"]
    if min(abs(w1), abs(w2)) < 1e-12:
        return None
    a = np.array([x1 / w1 - centre[0], y1 / w1 - centre[1]])
    b = np.array([x2 / w2 - centre[0], y2 / w2 - centre[1]])
    if max(np.linalg.norm(a), np.linalg.norm(b)) > FOCAL_MAX_OFFSET * focal_px or a @ b >= 0:
        return None
    da, db = np.append(a, focal_px), np.append(b, focal_px)
    angle = np.degrees(np.arccos(abs(da @ db) / (np.linalg.norm(da) * np.linalg.norm(db))))
    return float(np.sqrt(-(a @ b))) if angle >= 90.0 - ORTHOGONAL_DEG else None


def _solve(d: np.ndarray, w: np.ndarray, vertical: np.ndarray) -> tuple[np.ndarray, float]:
    """Normal (3,) (weights w (P,)) and condition (middle eigenvalue / trace, unit weights) of
    families d (P,3), ``vertical`` (P,) bool."""
    along = d[:, :, None] * d[:, None, :]
    mats = np.where(vertical[:, None, None], np.eye(3) - along, along)
    vecs = np.linalg.eigh(np.einsum("p,pij->ij", w, mats))[1]
    vals = np.linalg.eigvalsh(mats.sum(axis=0))
    return vecs[:, 0], float(vals[1] / max(vals.sum(), 1e-12))


def _off_floor(d: np.ndarray, vertical: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Sine of each family's angle (P,) from fitting a floor with normal n (3,): horizontal ones
    from perpendicular, vertical ones from parallel."""
    along = np.abs(d @ n)
    return np.where(vertical, np.sqrt(np.maximum(1.0 - along ** 2, 0.0)), along)


def _hypotheses(d: np.ndarray, vertical: np.ndarray) -> np.ndarray:
    """Candidate normals (M,3): every vertical family, and the normal of every pair of horizontal
    families at least MIN_PAIR_DEG apart."""
    hor = d[~vertical]
    i, j = np.triu_indices(len(hor), 1)
    cross = np.cross(hor[i], hor[j])
    norm = np.linalg.norm(cross, axis=1)
    keep = norm >= np.sin(np.radians(MIN_PAIR_DEG))
    return np.concatenate([d[vertical], cross[keep] / norm[keep, None]])


def floor_normal(d: np.ndarray, w: np.ndarray, prior_up: np.ndarray,
                 class_deg: float = CLASS_DEG) -> np.ndarray | None:
    """The floor's unit normal (3,) (camera frame, on ``prior_up``'s side) from vanishing
    directions d (P,3) with weights w (P,), or None when they do not pin it (module docstring).
    ``prior_up`` (3,): the people's mean vertical, only to tell horizontal from vertical families
    (within ``class_deg`` of perpendicular / parallel to it).

    Consensus over the families: each vertical one and each pair of horizontal ones proposes a
    normal; the one whose families agree best wins: each family within RESIDUAL_DEG adds its
    weight × (1 − (angle off / RESIDUAL_DEG)²) (a truncated quadratic, as MSAC scores) × the
    constraints it puts on the normal (two for a vertical family, one for a horizontal one), and
    the normal is refitted to the families within RESIDUAL_DEG by least squares."""
    up = np.asarray(prior_up, np.float64) / np.linalg.norm(prior_up)
    cos = np.abs(d @ up)
    vertical = cos >= np.cos(np.radians(class_deg))
    keep = vertical | (cos <= np.sin(np.radians(class_deg)))
    d, w, vertical = d[keep], w[keep], vertical[keep]
    hyp = _hypotheses(d, vertical)
    if not len(hyp):
        return None
    tol = np.sin(np.radians(RESIDUAL_DEG))
    support = w * np.where(vertical, 2.0, 1.0)  # a vertical family pins two of the normal's degrees of freedom
    scores = [support @ np.maximum(1.0 - (_off_floor(d, vertical, n) / tol) ** 2, 0.0) for n in hyp]
    agree = _off_floor(d, vertical, hyp[int(np.argmax(scores))]) <= tol
    n, cond = _solve(d[agree], w[agree], vertical[agree])
    if cond < MIN_CONDITION:
        return None
    return n if n @ up > 0 else -n
