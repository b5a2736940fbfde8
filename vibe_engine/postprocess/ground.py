"""Ground plane and world frame from a static camera, estimated from the feet over time (of every
person: :func:`estimate_ground_tracks` pools their stance points; a moving camera's tracks are first
turned into the frame-0 camera by :mod:`vibe_engine.world.camera_motion`).

Input points are in the OpenCV camera frame (x right, y down, z forward), metres. Feet on the
ground lie on one plane: per frame we take the slow foot points near the lowest one (along the
current up estimate), find the best-supported plane among them (OpenCV's robust estimator: feet
on a step or a platform lie on a second, parallel level, which a least-squares fit through both
would tilt), refit it by least squares, combine its tilt with the people's mean vertical by their
uncertainties (:func:`with_body_prior`: the feet fix the tilt along their walking line, the
bodies' vertical across the image), and iterate with that normal as the new up. When the stance
points do not span a plane, the body's own vertical axis gives the normal instead: all of it for
a person standing still; for a walk along one line (:func:`contain_line`), only its tilt about
that line, the floor holding the line's slope. Feet on a step or a platform for a while: the
stance heights along the people's vertical then form separate levels (:func:`dominant_level`);
only the dominant one (the most stance points: the main floor) is fitted, the others are outliers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vibe_blender.core.leg_ik import any_perpendicular

CAMERA_UP = np.array([0.0, -1.0, 0.0])  # a level OpenCV camera: y points down
STANCE_SPEED_MAX = 0.5  # m/s: faster foot points are not on the ground
STANCE_BAND = 0.10  # m: foot points this far above the frame's lowest one still count as planted
MIN_SPREAD = 0.15  # m: second principal extent needed for the stance points to define a plane
OUTLIER_MADS = 3.0
RANSAC_INLIER_M = 0.03  # m: a stance point this close to a hypothesis supports it
#: OpenCV's robust estimator for the floor (:func:`_ransac_normal`): USAC_ACCURATE (RANSAC with graph-cut
#: local optimisation; deterministic: its own fixed seed). Measured on the synthetic suite
#: (benchmarks/accuracy.py --reuse): stable for confidences 0.99-0.99999999 (static camera height
#: 11.8-12.6 %, moving 26.0-26.5 %); plain cv2.RANSAC stopped early on a wrong floor at 0.999
#: (turn_diagonal: up-axis 0.9 -> 3.4 deg, root 6.8 -> 12.1 %).
RANSAC_METHOD_NAME, RANSAC_MAX_ITERS, RANSAC_CONFIDENCE = "USAC_ACCURATE", 2000, 0.999999
BOOTSTRAP_SEED = 0  # deterministic resampling (the tilt's block bootstrap)
MAX_TILT_FROM_PRIOR_DEG = 60.0  # the ground is at most this far from the prior up (body or camera)
MAX_STANCE_POINTS = 2000  # stance points used for the fit (evenly subsampled beyond)
LEVEL_GAP = 0.15  # m: stance heights (along the people's vertical) further apart are on different levels
MIN_LEVEL_SHARE = 0.1  # a level needs this share of the stance points
LEVEL_SLOPE_DEG = 10.0  # levels are looked for when one plane through all stance points is this far off
                        # the people's vertical (a slope from one level to the other)
ITERATIONS = 3
#: The people's mean vertical (pelvis → neck: leans ≈ 10° forward in walking and jumping, plus ≈ 8° of
#: estimation noise) may differ this much from the feet's plane before that ground is refused
#: (world/grounding.py); such a plane is not combined with the vertical either (with_body_prior).
MAX_BODY_TILT_DEG = 18.0
#: The people's mean vertical (pelvis → neck, median over the clip) as a measure of the floor's
#: normal (with_body_prior): its spread (deg) across the image, toward the camera, and its lean
#: along a travel across the image (reached at a path of TRAVEL_FULL_M).
BODY_ACROSS_SIGMA_DEG, BODY_DEPTH_SIGMA_DEG, BODY_LEAN_DEG, TRAVEL_FULL_M = 1.5, 15.0, 5.0, 1.0
FEET_TILT_MIN_DEG = 1.5  # least spread (deg) of the feet plane's tilt: its errors are mostly systematic
TILT_BLOCKS, TILT_DRAWS = 12, 64  # block bootstrap of the feet plane's tilt (blocks of time, resamples)


@dataclass(frozen=True)
class GroundPlane:
    """Plane n·x + offset = 0 in the camera frame; ``normal`` (3,) unit, pointing up (to the body).

    ``offset`` (m) is then the camera's height above the ground.
    """

    normal: np.ndarray
    offset: float

    def height(self, points: np.ndarray) -> np.ndarray:
        """Signed height (m) of camera-frame points (..., 3) above the plane."""
        return points @ self.normal + self.offset


def _speeds(points: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Speed (T,K) m/s of points (T,K,3) by central differences over timestamps (T,) s."""
    vel = np.gradient(points, np.asarray(times, np.float64), axis=0) if len(times) > 1 else np.zeros_like(points)
    return np.linalg.norm(vel, axis=-1)


def _stance_points(feet: np.ndarray, speeds: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Slow foot points (M,3) no higher than STANCE_BAND above their frame's lowest point along ``up``."""
    heights = feet @ up
    low = heights <= heights.min(axis=1, keepdims=True) + STANCE_BAND
    return feet[low & (speeds <= STANCE_SPEED_MAX)]


def _fit_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares plane through points (M,3): centroid (3,), normal (3,), singular values (3,)."""
    centroid = points.mean(axis=0)
    _, sing, vt = np.linalg.svd(points - centroid, full_matrices=False)
    return centroid, vt[2], sing / np.sqrt(max(len(points), 1))


def _in_plane_axes(up: np.ndarray) -> np.ndarray:
    """Two orthonormal axes (2,3) perpendicular to the unit vector ``up`` (3,)."""
    first = any_perpendicular(up[None])[0]
    return np.stack([first, np.cross(up, first)])


def _ransac_normal(points: np.ndarray, prior_up: np.ndarray) -> np.ndarray | None:
    """Normal (3,) of the plane through most points (M,3) within RANSAC_INLIER_M (along ``prior_up``),
    by OpenCV's robust estimator (RANSAC_METHOD_NAME); None when it finds none or one tilted more
    than MAX_TILT_FROM_PRIOR_DEG from ``prior_up``.

    The plane is a height map over the prior's level: h = a·u + b·v + c with (u, v) the points'
    coordinates on two axes ⊥ ``prior_up`` and h their height along it. ``cv2.estimateAffine2D``
    fits (u, v) → (h, v): the second row of the affine map is exact for any sample, so its
    residual, and the RANSAC's inlier test, is the height residual of the first row alone.
    Feet standing on two levels (the ground and a step or platform) lie on two parallel planes: a
    least-squares fit through both is tilted; the best-supported single level is not.
    """
    import cv2

    axes = _in_plane_axes(prior_up)
    uv = points @ axes.T
    method = getattr(cv2, RANSAC_METHOD_NAME)
    model, _ = cv2.estimateAffine2D(uv, np.stack([points @ prior_up, uv[:, 1]], 1), method=method,
                                    ransacReprojThreshold=RANSAC_INLIER_M, maxIters=RANSAC_MAX_ITERS,
                                    confidence=RANSAC_CONFIDENCE)
    if model is None:
        return None
    normal = prior_up - model[0, 0] * axes[0] - model[0, 1] * axes[1]  # gradient of h − a·u − b·v
    normal /= np.linalg.norm(normal)
    return normal if normal @ prior_up >= np.cos(np.radians(MAX_TILT_FROM_PRIOR_DEG)) else None


def _plane_inliers(points: np.ndarray, prior_up: np.ndarray) -> np.ndarray:
    """The points (N,3) of points (M,3) on their best-supported level: those within OUTLIER_MADS
    median deviations of the RANSAC plane (of the least-squares plane without a RANSAC seed)."""
    centroid, normal, _ = _fit_plane(points)
    seed = _ransac_normal(points, prior_up)
    if seed is not None:
        level = _mode_level(points @ seed)
        centroid, normal = centroid + (level - centroid @ seed) * seed, seed
    resid = np.abs((points - centroid) @ normal)
    mad = np.median(resid) + 1e-4
    inliers = points[resid <= max(OUTLIER_MADS * mad, RANSAC_INLIER_M)]
    return inliers if len(inliers) >= 3 else points


def _robust_plane(points: np.ndarray, prior_up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plane (centroid (3,), normal (3,), spread (3,)) of the best-supported level of points (M,3):
    RANSAC seed, then a least-squares refit of the points near it (:func:`_plane_inliers`)."""
    return _fit_plane(_plane_inliers(points, prior_up))


def _tilt_covariance(points: np.ndarray, normal: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Covariance (2,2) rad² of a least-squares plane's tilt about ``axes`` (2,3) (in-plane unit
    vectors ⊥ ``normal``), by a block bootstrap of the time-ordered points (M,3): stance points of
    one stance share its depth error, so blocks of time, not single points, are the samples."""
    blocks = np.array_split(np.arange(len(points)), TILT_BLOCKS)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = [_fit_plane(points[np.concatenate([blocks[i] for i in pick])])[1]
             for pick in rng.integers(0, len(blocks), (TILT_DRAWS, len(blocks)))]
    tilts = np.array([d * np.sign(d @ normal) for d in draws]) @ axes.T
    return np.cov(tilts.T) + np.eye(2) * 1e-12


def _tilt_axes(normal: np.ndarray, ray: np.ndarray) -> np.ndarray:
    """Unit in-plane axes (2,3) ⊥ ``normal``: [toward the camera's viewing ``ray``, across the image]."""
    depth = ray - (ray @ normal) * normal
    depth /= np.linalg.norm(depth)
    return np.stack([depth, np.cross(normal, depth)])


def _travel_across(tracks: list[tuple[np.ndarray, np.ndarray]], normal: np.ndarray, across: np.ndarray) -> float:
    """How much (0–1) the people travel across the image: |principal direction of their feet's path
    on the floor · ``across``| × the path's extent (up to TRAVEL_FULL_M)."""
    path = np.concatenate([f.mean(axis=1) for f, _ in tracks])
    path = path - np.outer(path @ normal, normal)
    centred = path - path.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    extent = float(np.ptp(centred @ vt[0]))
    return abs(float(vt[0] @ across)) * min(1.0, extent / TRAVEL_FULL_M)


def _systematic_tilt_var(points: np.ndarray, normal: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Variance (2,) rad² of the feet plane's tilt about ``axes`` (2,3) from errors the whole clip
    shares: the points' (M,3) rms distance from the plane over their spread along each axis (one
    error for all of them: no 1/√M), at least FEET_TILT_MIN_DEG."""
    centred = points - points.mean(axis=0)
    rms = np.sqrt(np.mean(np.square(centred @ normal)))
    spread = np.maximum(np.std(centred @ axes.T, axis=0), 1e-6)
    return np.arctan(rms / spread) ** 2 + np.radians(FEET_TILT_MIN_DEG) ** 2


def with_body_prior(points: np.ndarray, normal: np.ndarray, body_up: np.ndarray,
                    tracks: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The floor's normal (3,) from the feet's plane ``normal`` (fitted to the time-ordered stance
    points (M,3)) and the people's mean vertical ``body_up`` (3,), each weighted by its uncertainty;
    ``tracks`` (per person: feet (T,K,3), times) give the viewing ray and the direction of travel.

    Gaussian in two tilt angles of the normal: toward the camera and across the image. The feet's
    plane is uncertain where they do not spread (a block bootstrap over time plus the plane's
    residual over the points' spread, :func:`_systematic_tilt_var`: their errors are mostly
    systematic). The people's vertical is seen in the image across it
    (BODY_ACROSS_SIGMA_DEG) but hardly toward the camera (BODY_DEPTH_SIGMA_DEG: a monocular fit's
    worst direction); across, it leans along the people's travel (up to BODY_LEAN_DEG when they
    move across the image), so it counts for little there.
    """
    axes, feet_info, prior_info = _tilt_information(points, normal, tracks)
    tilt = np.linalg.solve(feet_info + prior_info, prior_info @ (axes @ body_up))
    out = normal + tilt @ axes
    return out / np.linalg.norm(out)


def _tilt_information(points: np.ndarray, normal: np.ndarray,
                      tracks: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """(tilt axes (2,3): toward the camera, across the image; the feet plane's information (2,2)
    rad⁻²; the people's vertical's (2,2) rad⁻²) for the combination in :func:`with_body_prior`."""
    ray = np.median(points, axis=0)
    axes = _tilt_axes(normal, ray / np.linalg.norm(ray))
    feet_cov = _tilt_covariance(points, normal, axes) + np.diag(_systematic_tilt_var(points, normal, axes))
    lean = BODY_LEAN_DEG * _travel_across(tracks, normal, axes[1])
    prior_sd = np.radians([BODY_DEPTH_SIGMA_DEG, np.hypot(BODY_ACROSS_SIGMA_DEG, lean)])
    return axes, np.linalg.inv(feet_cov), np.diag(1.0 / prior_sd**2)


def tilt_sd_toward_camera(points: np.ndarray, normal: np.ndarray,
                          tracks: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Standard deviation (deg) of a feet-and-people floor's tilt toward the camera (the uncertainty
    :func:`with_body_prior` combines; same arguments): what a camera's height above that floor is
    only as good as, when the camera is near the floor's height (:mod:`vibe_engine.world.grounding`)."""
    _, feet_info, prior_info = _tilt_information(points, normal, tracks)
    return float(np.degrees(np.sqrt(np.linalg.inv(feet_info + prior_info)[0, 0])))


def _floor_level(tracks: list[tuple[np.ndarray, np.ndarray]], prior: np.ndarray) -> tuple[float, float] | None:
    """Height bounds (m, along the people's vertical ``prior``) of the main floor's stance points when
    the feet stand on several levels and one plane through all of them would be a slope (more than
    LEVEL_SLOPE_DEG off the people's vertical); None otherwise (one floor: every stance point counts).
    Stance points along one line (a walk: :func:`contain_line` takes its slope) are one floor: the
    heights of successive stances along a leaning vertical step by about the stride × sin(lean), which
    would pass for levels."""
    stance = pooled_stance(tracks, prior)
    bounds = dominant_level(stance @ prior)
    if bounds is None or len(stance) < 3:
        return None
    _, normal, spread = _robust_plane(fit_subset(stance), prior)
    slope = np.degrees(np.arccos(np.clip(abs(normal @ prior), -1.0, 1.0)))
    return bounds if slope > LEVEL_SLOPE_DEG and spread[1] >= MIN_SPREAD / 2 else None


def dominant_level(heights: np.ndarray) -> tuple[float, float] | None:
    """(low, high) m bounds of the dominant level of stance heights (M,) along the prior up, or None
    when there is one level: sorted heights split where they jump by more than LEVEL_GAP; levels
    with fewer than MIN_LEVEL_SHARE of the points are ignored; the level with the most points wins.

    Why along the prior (the people's vertical) and once: two single stances on two levels (a
    box, then the floor) also fit one plane slanted from one to the other (30 cm over 90 cm:
    18°) with every point an inlier, so a fit along its own normal never sees two levels."""
    if len(heights) < 3:
        return None
    hs = np.sort(heights)
    cuts = np.flatnonzero(np.diff(hs) > LEVEL_GAP) + 1
    groups = np.split(hs, cuts)
    groups = [g for g in groups if len(g) >= MIN_LEVEL_SHARE * len(hs)]
    if len(groups) < 2:
        return None
    main = max(groups, key=len)
    return float(main[0] - LEVEL_GAP / 2), float(main[-1] + LEVEL_GAP / 2)


def stands_on_levels(feet: np.ndarray, times: np.ndarray, body_up: np.ndarray) -> bool:
    """Whether one person stood on several levels (a box, steps): their stance heights along their
    mean vertical split into levels (:func:`dominant_level`); ``feet`` (T,K,3) camera frame,
    ``times`` (T,) s, ``body_up`` (T,3) their vertical axes."""
    if len(feet) < 3:
        return False
    up = _mean_direction(np.asarray(body_up, np.float64))
    stance = pooled_stance([(np.asarray(feet, np.float64), np.asarray(times, np.float64))], up)
    return dominant_level(stance @ up) is not None


def _mode_level(offsets: np.ndarray) -> float:
    """The offset (m) with the most others within RANSAC_INLIER_M (offsets (M,))."""
    counts = np.sum(np.abs(offsets[:, None] - offsets[None]) <= RANSAC_INLIER_M, axis=1)
    return float(offsets[int(np.argmax(counts))])


def estimate_ground(feet: np.ndarray, times: np.ndarray, body_up: np.ndarray | None = None) -> GroundPlane:
    """Estimate the ground plane from foot points (T,K,3) in the camera frame over times (T,) s.

    Stance points: every slow foot point within STANCE_BAND of its frame's lowest one (both
    feet and heel and toe, so they span the ground's width, not only the walking line).

    ``body_up`` (T,3), optional: the body's vertical axis per frame (e.g. pelvis → neck), used
    when the stance points do not span a plane. Raises ValueError with fewer than 3 frames.
    """
    return estimate_ground_tracks([(feet, times)], None if body_up is None else [body_up])


def fit_subset(stance: np.ndarray) -> np.ndarray:
    """Stance points (M,3) evenly subsampled to about MAX_STANCE_POINTS (all of them when fewer)."""
    return stance[:: max(1, len(stance) // MAX_STANCE_POINTS)]


def pooled_stance(tracks: list[tuple[np.ndarray, np.ndarray]], up: np.ndarray) -> np.ndarray:
    """Stance points (M,3) of every track (feet (T,K,3), times (T,)) along the current ``up``."""
    points = [_stance_points(f, _speeds(f, t), up) for f, t in tracks]
    return np.concatenate(points) if points else np.zeros((0, 3))


def estimate_ground_tracks(tracks: list[tuple[np.ndarray, np.ndarray]],
                           body_ups: list[np.ndarray] | None = None,
                           lines_up: np.ndarray | None = None) -> GroundPlane:
    """The ground plane from the feet of several people (one static camera, one floor).

    ``tracks``: per person (feet (T,K,3) camera frame, times (T,) s); ``body_ups``: per person (T,3)
    body vertical axes (the prior up and the fallback normal). Stance points of every person and
    frame are pooled; the plane offset is the typical lowest foot height over all of them.
    ``lines_up`` (3,), optional: the floor's normal from the background's vanishing points
    (:mod:`vibe_engine.world.vanishing`); within MAX_BODY_TILT_DEG of the people's vertical it is
    the normal, and the feet give only the offset. Raises ValueError when no person has 3 frames.
    """
    tracks = [(np.asarray(f, np.float64), np.asarray(t, np.float64)) for f, t in tracks]
    keep = [i for i, (f, _) in enumerate(tracks) if f.shape[0] >= 3]
    if not keep:
        raise ValueError("need at least 3 frames of feet to estimate the ground")
    tracks = [tracks[i] for i in keep]
    up = CAMERA_UP if not body_ups else _mean_direction(np.concatenate([body_ups[i] for i in keep]))
    if lines_agree(lines_up, up):
        return plane_below(np.concatenate([f for f, _ in tracks]), np.asarray(lines_up, np.float64))
    prior, floor = up, None
    if body_ups:
        floor = _floor_level(tracks, prior)
    for _ in range(ITERATIONS):
        stance = pooled_stance(tracks, up)
        if floor is not None:
            h = stance @ prior
            stance = stance[(h >= floor[0]) & (h <= floor[1])]
        if len(stance) < 3:
            break
        inliers = _plane_inliers(fit_subset(stance), up)
        _, normal, spread = _fit_plane(inliers)
        if spread[1] < MIN_SPREAD / 2:  # a line or a point: the feet do not determine the normal
            if spread[0] >= MIN_SPREAD:
                up = contain_line(inliers, up)  # a walk along a line: the floor holds its slope
            break
        up = normal if normal @ up > 0 else -normal
        if body_ups and len(inliers) >= TILT_BLOCKS * 3 and up @ prior >= np.cos(np.radians(MAX_BODY_TILT_DEG)):
            up = with_body_prior(inliers, up, prior, tracks)  # a plane that will be refused is left as it is
    return plane_below(np.concatenate([f for f, _ in tracks]), up)


def lines_agree(lines_up: np.ndarray | None, body_up: np.ndarray) -> bool:
    """Whether a floor normal from the background's lines (3,) or None is within MAX_BODY_TILT_DEG
    of the people's vertical ``body_up`` (3,) (the same bound a feet plane must meet)."""
    if lines_up is None:
        return False
    cos = float(np.asarray(lines_up, np.float64) @ body_up) / float(np.linalg.norm(lines_up) * np.linalg.norm(body_up))
    return cos >= np.cos(np.radians(MAX_BODY_TILT_DEG))


def contain_line(points: np.ndarray, up: np.ndarray) -> np.ndarray:
    """``up`` (3,) turned by the least angle to lie ⊥ the principal direction of points (M,3) that
    span a line (the stance points of a walk along one line): the floor then contains the feet's
    line (their slope along it is seen); its tilt about the line stays ``up``'s."""
    direction = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)[2][0]
    out = up - (up @ direction) * direction
    return out / np.linalg.norm(out)


def _mean_direction(vectors: np.ndarray) -> np.ndarray:
    """Unit mean direction of vectors (T,3) (median per axis, robust to outlier frames)."""
    v = np.median(np.asarray(vectors, np.float64), axis=0)
    return v / np.linalg.norm(v)


def plane_below(feet: np.ndarray, up: np.ndarray) -> GroundPlane:
    """The plane with normal ``up`` (3,) through the typical lowest foot height (10th percentile) of
    foot points (T,K,3), camera frame."""
    lowest = np.min(feet @ up, axis=1)
    return GroundPlane(normal=up, offset=-float(np.percentile(lowest, 10)))


def world_from_camera(plane: GroundPlane) -> np.ndarray:
    """4×4 float64 transform camera → z-up world with the ground at z = 0.

    World z is the plane normal, world x the camera's x projected onto the ground, y = z × x
    (so a level camera looks along +y), and the origin the point of the ground below the camera.
    For a level camera this equals (x_cv, z_cv, −y_cv + height).
    """
    z = plane.normal / np.linalg.norm(plane.normal)
    x = np.array([1.0, 0.0, 0.0]) - z[0] * z
    x /= np.linalg.norm(x)
    rot = np.stack([x, np.cross(z, x), z])
    origin = -plane.offset * z
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = -rot @ origin
    return m
