"""Camera translation (a walking or dolly camera) from the background floor, with the metric scale
from the people standing on it.

Model: the tracked background is the floor (the plane the people stand on), so a background pixel
of frame n maps to its keyframe k by the plane-induced homography of the two cameras
(``x_k ∝ R_kᵀ (R_n X + c_n − c_k)`` for ``X`` on the plane). Each camera is ``ref_from_camera``
= (R_n, c_n): rotation and centre in the frame-0 camera, with ``c`` in units of the frame-0
camera's distance to the plane (``n0 · X = 1`` in the frame-0 camera, ``n0`` the unit plane normal
pointing away from the camera, i.e. down).

Steps (OpenCV for the robust parts, numpy for the small solves):

1. Parallax test per kept pair: the rotation(+zoom) model's misfit against a free homography
   (``cv2.findHomography``, 8 dof). A camera that only turns (or zooms) fits both alike; a camera that
   moves over a plane fits only the homography.
2. Plane normal: ``cv2.decomposeHomographyMat`` of the pairs with clear translation, the solution
   with every point in front and the normal nearest the image's down direction; the normals, taken
   into the frame-0 camera, averaged (weighted by the translation).
3. Per frame the 6-dof camera (R_n, c_n) with the plane fixed: damped Gauss-Newton on the
   reprojection misfit of the background pairs (px), frames sharing a keyframe solved as one batch,
   keyframes in order.
4. Model selection: the translating path is kept when its misfit is at most
   1/PARALLAX_RATIO of the rotation model's on the median pair and the camera moves by at least
   MIN_TRAVEL plane distances; otherwise the camera is rotation-only (centres exactly zero).
5. Metric scale (:func:`metric_scale`): the plane's distance from the frame-0 camera in metres is
   where the people's lowest foot is, per frame, brought into the frame-0 camera by the path
   (the stance level: an upper quantile over frames, feet in the air are higher).

A background that is not a plane facing the camera from below (a wall, a 3-D scene without a
dominant floor) gives no plane normal: the camera is then treated as rotation-only.
Memory: the kept pairs only (≤ PAIRS_KEPT per frame); cost O(N) small batched solves.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The rotation model must misfit the background this many times more than the free homography on
#: the median pair before translation is considered (a turning camera: ≈ 1–2 with a default focal).
PARALLAX_RATIO = 3.0
#: ... and by at least this much (px at the tracking width).
PARALLAX_MIN_PX = 1.0
#: Pairs whose homography translation (plane distances) is below this give no plane normal.
NORMAL_MIN_T = 0.05
#: The plane normal may be this far (deg) from the frame-0 image's down direction (a floor).
MAX_FLOOR_TILT_DEG = 60.0
#: The translating path must travel at least this far (plane distances) from frame 0.
MIN_TRAVEL = 0.02
GN_ITERATIONS = 12
GN_STEP = 1e-6  # finite-difference step of the Jacobian
CHUNK_FRAMES = 256  # frames solved together at most (bounded memory on long clips)
GN_TOLERANCE = 1e-7  # stop when every parameter step is below this (rad, plane distances)
#: Per frame the stance level is this quantile of the lowest foot's distance below the camera
#: (frames with both feet in the air are closer to the camera).
STANCE_QUANTILE = 75.0
FOOT_JOINTS = (7, 10, 8, 11)  # SMPL ankles and feet


@dataclass
class Translation:
    """A translating path: ``rotations`` (N,3,3) ref_from_camera, ``centres`` (N,3) camera centres in
    the frame-0 camera in units of its distance to the plane, ``normal`` (3,) the plane normal in
    the frame-0 camera (unit, pointing down), ``stats`` for the manifest."""

    rotations: np.ndarray
    centres: np.ndarray
    normal: np.ndarray
    stats: dict


def calibrated(pts: np.ndarray, focal: float, size: tuple[int, int]) -> np.ndarray:
    """Homogeneous normalised coordinates (M,3) of pixels (M,2) (centred pinhole, ``focal`` px)."""
    xy = (np.asarray(pts, np.float64) - np.array(size, np.float64) / 2) / focal
    return np.concatenate([xy, np.ones((len(xy), 1))], 1)


def _rms(pred: np.ndarray, target: np.ndarray, focal: float) -> np.ndarray:
    """RMS pixel misfit (...) of predicted homogeneous points (...,M,3) vs normalised targets (...,M,2)."""
    d = pred[..., :2] / pred[..., 2:3] - target
    return np.sqrt(np.mean(np.sum(d * d, -1), -1)) * focal


def rotation_misfit(pairs, rots: np.ndarray, focal: float, size, zoom: np.ndarray | None = None) -> np.ndarray:
    """Per frame (N,) the rotation(+zoom) model's RMS misfit (px; NaN where no pair)."""
    out = np.full(len(pairs), np.nan)
    for n, pair in enumerate(pairs):
        if pair is None:
            continue
        k, key, cur = pair
        fk, fn = (focal, focal) if zoom is None else (focal * zoom[k], focal * zoom[n])
        a, b = calibrated(cur, fn, size), calibrated(key, fk, size)
        out[n] = _rms(a @ (rots[k].T @ rots[n]).T, b[:, :2], fk)
    return out


def homography_misfit(pairs) -> np.ndarray:
    """Per frame (N,) the RMS misfit (px) of a free least-squares homography (NaN where no pair)."""
    import cv2

    out = np.full(len(pairs), np.nan)
    for n, pair in enumerate(pairs):
        if pair is None:
            continue
        _, key, cur = pair
        h, _ = cv2.findHomography(cur, key, 0)
        if h is not None:
            p = np.concatenate([cur, np.ones((len(cur), 1))], 1) @ h.T
            out[n] = _rms(p, key, 1.0)
    return out


def plane_normal(pairs, rots: np.ndarray, focal: float, size) -> np.ndarray | None:
    """Unit plane normal (3,) in the frame-0 camera from the pairs with clear translation, or None."""
    import cv2

    down = np.array([0.0, 1.0, 0.0])
    total = np.zeros(3)
    for pair in pairs:
        if pair is None:
            continue
        k, key, cur = pair
        a, b = calibrated(cur, focal, size), calibrated(key, focal, size)
        h, _ = cv2.findHomography(a[:, :2], b[:, :2], 0)
        if h is None:
            continue
        _, rs, ts, ns = cv2.decomposeHomographyMat(h, np.eye(3))
        best = None
        for r, t, nrm in zip(rs, ts, ns):
            nrm = nrm.ravel()
            if np.linalg.norm(t) < NORMAL_MIN_T or np.any(a @ nrm <= 0):  # every point in front
                continue
            n_ref = rots[k] @ r @ nrm  # cur → key (r) → frame 0 (rots[k])
            if best is None or n_ref @ down > best[0] @ down:
                best = (n_ref, float(np.linalg.norm(t)))
        if best is not None:
            total += best[0] * best[1]
    if not np.any(total):
        return None
    normal = total / np.linalg.norm(total)
    if np.degrees(np.arccos(np.clip(normal @ down, -1, 1))) > MAX_FLOOR_TILT_DEG:
        return None
    return normal


def _predict(r_key, c_key, r_cur, c_cur, a, normal):
    """Homogeneous key-camera points (B,M,3) of cur rays ``a`` (B,M,3) on the plane ``normal·X = 1``."""
    rays = a @ np.swapaxes(r_cur, 1, 2)  # in the frame-0 camera
    lam = (1.0 - c_cur @ normal)[:, None] / (rays @ normal)
    x = lam[..., None] * rays + (c_cur - c_key)[:, None]
    return x @ r_key


def _residuals(x, r0, r_key, c_key, a, b, w, normal, focal):
    """Pixel residuals (B, 2M) for parameters x (B,6): rotation update (rotation vector) and centre;
    weights w (B,M) (0: padding)."""
    from scipy.spatial.transform import Rotation

    r = r0 @ Rotation.from_rotvec(x[:, :3]).as_matrix()
    p = _predict(r_key, c_key, r, x[:, 3:], a, normal)
    return ((p[..., :2] / p[..., 2:3] - b) * (focal * w[..., None])).reshape(len(x), -1)


def _solve_batch(r0, c0, r_key, c_key, a, b, w, normal, focal):
    """Damped Gauss-Newton for a batch of frames; returns rotations (B,3,3), centres (B,3), rms (B,) px."""
    from scipy.spatial.transform import Rotation

    x = np.concatenate([np.zeros((len(r0), 3)), c0], 1)
    args = (r0, r_key, c_key, a, b, w, normal, focal)
    res = _residuals(x, *args)
    cost = np.sum(res * res, 1)
    lam = np.full(len(x), 1e-3)
    for _ in range(GN_ITERATIONS):
        jac = np.stack([(_residuals(x + GN_STEP * np.eye(6)[i], *args) - res) / GN_STEP for i in range(6)], -1)
        jt = np.swapaxes(jac, 1, 2)
        jtj, g = jt @ jac, (jt @ res[..., None])[..., 0]
        damp = lam[:, None, None] * (np.eye(6) * np.diagonal(jtj, 0, 1, 2)[:, None, :] + 1e-12 * np.eye(6))
        step = -np.linalg.solve(jtj + damp, g[..., None])[..., 0]
        trial = _residuals(x + step, *args)
        tcost = np.sum(trial * trial, 1)
        better = tcost < cost
        x[better], res[better], cost[better] = x[better] + step[better], trial[better], tcost[better]
        lam = np.where(better, lam * 0.3, lam * 10.0)
        if np.all(np.abs(step) < GN_TOLERANCE):
            break
    rots = r0 @ Rotation.from_rotvec(x[:, :3]).as_matrix()
    return rots, x[:, 3:], np.sqrt(cost / np.maximum(w.sum(1), 1.0))


def _pack(pairs, idx: list[int], focal: float, size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised cur points (B,M,3), key points (B,M,2) and weights (B,M) of frames ``idx``; pairs
    with fewer than M points are padded with their first point at weight 0."""
    m = max(len(pairs[i][1]) for i in idx)
    a, b, w = np.zeros((len(idx), m, 3)), np.zeros((len(idx), m, 2)), np.zeros((len(idx), m))
    for row, i in enumerate(idx):
        _, key, cur = pairs[i]
        pad = np.r_[np.arange(len(key)), np.zeros(m - len(key), int)]
        a[row], b[row] = calibrated(cur[pad], focal, size), calibrated(key[pad], focal, size)[:, :2]
        w[row, : len(key)] = 1.0
    return a, b, w


def solve_path(pairs, rots: np.ndarray, focal: float, size, normal: np.ndarray):
    """(rotations (N,3,3), centres (N,3), misfit (N,) px) of every frame with the plane fixed;
    ``rots`` (N,3,3) the rotation-only path (start values). Frames without a pair hold the previous
    camera. Frames sharing a keyframe are solved together (≤ CHUNK_FRAMES at a time), keyframes in order."""
    n = len(pairs)
    out_r, out_c, misfit = rots.copy(), np.zeros((n, 3)), np.full(n, np.nan)
    groups: dict[int, list[int]] = {}
    for i, pair in enumerate(pairs):
        if pair is not None:
            groups.setdefault(pair[0], []).append(i)
    filled = 0
    for k in sorted(groups):
        for j in range(filled + 1, k + 1):  # frames without a fit up to the keyframe hold the previous camera
            if pairs[j] is None:
                out_r[j], out_c[j] = out_r[j - 1], out_c[j - 1]
        filled = max(filled, k)
        for start in range(0, len(groups[k]), CHUNK_FRAMES):
            idx = groups[k][start : start + CHUNK_FRAMES]
            a, b, w = _pack(pairs, idx, focal, size)
            r_key, c_key = np.repeat(out_r[k][None], len(idx), 0), np.repeat(out_c[k][None], len(idx), 0)
            init_r = np.einsum("ij,bjk->bik", out_r[k] @ rots[k].T, rots[idx])  # relative rotation on the key
            out_r[idx], out_c[idx], misfit[idx] = _solve_batch(init_r, c_key.copy(), r_key, c_key, a, b, w, normal, focal)
    for j in range(filled + 1, n):
        if pairs[j] is None:
            out_r[j], out_c[j] = out_r[j - 1], out_c[j - 1]
    return out_r, out_c, misfit


def misfit_ratio(model: np.ndarray, free: np.ndarray) -> float:
    """Median over frames of a model's misfit / the free homography's (both (N,) px, NaN: no pair);
    0 without pairs."""
    ok = np.isfinite(model) & np.isfinite(free)
    return float(np.median(model[ok] / np.maximum(free[ok], 1e-6))) if ok.any() else 0.0


def estimate(pairs, rots: np.ndarray, focal: float, size, rot_misfit: np.ndarray,
             free: np.ndarray | None = None) -> tuple[Translation | None, dict]:
    """The translating path of a clip, or None when the rotation model explains the background
    (``rot_misfit`` (N,) px per frame: :func:`rotation_misfit`; ``free``: :func:`homography_misfit`,
    computed when not given), with stats."""
    free = homography_misfit(pairs) if free is None else free
    ok = np.isfinite(free) & np.isfinite(rot_misfit)
    if not ok.any():
        return None, {}
    ratio = misfit_ratio(rot_misfit, free)
    excess = float(np.median(rot_misfit[ok] - free[ok]))
    stats = {"parallax_ratio": round(ratio, 3)}
    if ratio < PARALLAX_RATIO or excess < PARALLAX_MIN_PX:
        return None, stats
    normal = plane_normal(pairs, rots, focal, size)
    if normal is None:
        stats["translation"] = "no floor plane in the background"
        return None, stats
    r, c, misfit = solve_path(pairs, rots, focal, size, normal)
    normal2 = plane_normal(pairs, r, focal, size)  # again with the translating path's rotations
    if normal2 is not None:
        normal = normal2
        r, c, misfit = solve_path(pairs, rots, focal, size, normal)
    fit = np.isfinite(misfit) & ok
    gain = float(np.median(rot_misfit[fit] / np.maximum(misfit[fit], 1e-6))) if fit.any() else 0.0
    travel = float(np.linalg.norm(c, axis=1).max())
    stats.update(translation_gain=round(gain, 3), travel_plane_units=round(travel, 4))
    if gain < PARALLAX_RATIO or travel < MIN_TRAVEL:
        return None, stats
    return Translation(r, c, normal, stats), stats


def metric_scale(feet_ref: list[tuple[np.ndarray, np.ndarray]], centres: np.ndarray, normal: np.ndarray) -> float | None:
    """The frame-0 camera's distance to the plane (m), from the people's feet.

    ``feet_ref``: per track (frames (T,), feet (T,F,3) metres already turned into the frame-0 camera's
    orientation, i.e. R_n X without the translation). The lowest foot of frame n is on the plane
    when ``n0·(R_n X) + s n0·c_n = s``, so ``s_n = n0·R_n X / (1 − n0·c_n)``; the stance level is
    the STANCE_QUANTILE of the s_n. None without feet.
    """
    values = []
    for frames, feet in feet_ref:
        low = np.max(feet @ normal, axis=1)  # the foot farthest along the (down) normal
        denom = 1.0 - centres[np.asarray(frames)] @ normal
        good = denom > 0.1
        values.append(low[good] / denom[good])
    values = np.concatenate(values) if values else np.zeros(0)
    values = values[np.isfinite(values) & (values > 0)]
    if len(values) == 0:
        return None
    return float(np.percentile(values, STANCE_QUANTILE))
