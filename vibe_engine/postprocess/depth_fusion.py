"""Root depth from every cue at once: one sparse least-squares solve per track.

After the first foot lock, each frame's body may still sit at the wrong distance along its camera
ray. Four cues say where it should be, each wrong in its own way:

* the **body's size** (:mod:`depth_prior`): the fitted trunk's pixel length against the detector's;
  relative (its clip-wide median carries no information), blind to the limbs' pose, noisy where the
  trunk is foreshortened;
* the **stances**: a planted foot does not move, so between two frames of one contact the body's
  along-ray shift must cancel the planted point's horizontal step (the lock's own cue; chained over a
  walk it drifts with every stride the fit gets wrong, e.g. a frontal walker whose legs the fit
  compresses in depth);
* the **ground** (static camera, found floor; not for a moving camera): the camera ray through a planted point meets the floor
  at a distance set by the plane, not by the body's size; relative too (the plane's height is only as
  well known as the body's depth it was fitted with), and as precise as the camera is high above it
  (GROUND_HEIGHT_SD / camera height, :func:`footlock._ground_depth_shift`);
* the **lock's own result**, kept as an anchor (it sets the clip's overall depth).

The unknowns are the per-frame log depth factors λ (T,) (the body moved along its ray to
exp(λ) × its distance) and one free offset per relative cue; the residuals, each divided by its
standard deviation (the module's constants), are: size λ_t − c_s − s_t; stance steps (2 per planted
point and frame pair, metres) p(t+1) − p(t) + λ_{t+1}·d_{t+1}·r_{t+1} − λ_t·d_t·r_t (horizontal);
ground λ_t − c_g − g_t; anchor λ_t; smoothness λ_{t−1} − 2λ_t + λ_{t+1}. Standard deviations are per
frame at REF_FPS: other frame rates scale a step's by dt, a second difference's by dt², and every
row's weight by √(dt / DT_REF) (rows per second), so the solution does not depend on the frame rate.
Linear in λ (the shift along the ray is linearised: exact to first order, |λ| is a few %), banded:
scipy.sparse, O(T) memory and time.

Chosen on the synthetic suites (benchmarks/accuracy.py; docs/motion-file.md, "Root depth fusion"):
the size prior and the lock applied one after the other let whichever ran last win; weighing them
together is what keeps a frontal walker's compressed strides from drifting its root.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from vibe_blender.core import motion_file as mf
from vibe_blender.core.frames import into_cameras

from vibe_engine.postprocess import depth_prior
from vibe_engine.postprocess.footlock import GROUND_HEIGHT_SD, Planted, _floor_slow, ground_moves
from vibe_engine.world.grounding import camera_joints

REF_FPS = 30.0
DT_REF = 1.0 / REF_FPS
STANCE_STEP_SD = 0.005  # m per frame: a planted point's horizontal step left by the fit's leg pose
SIZE_SD = 0.01  # log depth: the size cue (after its temporal smoothing)
ANCHOR_SD = 0.05  # log depth: the first foot lock's depth
ACCEL_SD = 0.005  # log depth per frame²: the depth's second difference
OFFSET_SD = 1e3  # the relative cues' free offsets (a weak prior only to keep the solve well posed)
MAX_GROUND_SHIFT = -0.5  # fraction of the distance: a planted point's ray–floor crossing closer than this is unusable


class _Rows:
    """Accumulates weighted residual rows ``w · (A x − b)`` as sparse triplets."""

    def __init__(self, unknowns: int) -> None:
        self.n, self.count, self.blocks, self.rhs = unknowns, 0, [], []

    def add(self, cols: np.ndarray, coefs: np.ndarray, rhs: np.ndarray, weight: np.ndarray) -> None:
        """Rows (R,) with columns cols (R,C) and coefficients coefs (R,C), right-hand sides rhs (R,)
        and weights (R,) (1 / standard deviation)."""
        r = np.repeat(np.arange(len(rhs)) + self.count, cols.shape[1])
        self.blocks.append((r, cols.ravel(), (coefs * weight[:, None]).ravel()))
        self.rhs.append(rhs * weight)
        self.count += len(rhs)

    def solve(self) -> np.ndarray:
        r, c, v = (np.concatenate(parts) for parts in zip(*self.blocks))
        b = np.concatenate(self.rhs)
        a = sp.csr_matrix((v, (r, c)), shape=(len(b), self.n))
        return spsolve((a.T @ a).tocsc(), a.T @ b)


def _stance_rows(rows: _Rows, points: np.ndarray, planted: np.ndarray, lever: np.ndarray, scale: np.ndarray) -> None:
    """Horizontal steps of points (T,K,3) planted (T,K) in two consecutive frames, cancelled by the
    depth shifts: lever (T,3) the body's world shift per unit λ; scale (T−1,) the rows' weight factors."""
    t, k = np.nonzero(planted[:-1] & planted[1:])
    for axis in (0, 1):
        step = points[t + 1, k, axis] - points[t, k, axis]
        cols = np.stack([t + 1, t], 1)
        coefs = np.stack([lever[t + 1, axis], -lever[t, axis]], 1)
        rows.add(cols, coefs, -step, scale[t] / STANCE_STEP_SD)


def _ground_rows(rows: _Rows, geo: Planted, contacts: np.ndarray, camera: np.ndarray, dist: np.ndarray,
                 density: float, col: int) -> None:
    """λ_t − c_g = g_t where planted points see the floor: g_t the log of the along-ray move that
    puts them (mean horizontal position) where their camera rays meet it."""
    move, ok = ground_moves(geo.points, contacts, geo.rays, camera, geo.floor)
    frames = np.flatnonzero(np.isfinite(move))
    if frames.size == 0:
        return
    frac = move[frames] / dist[frames]  # along-ray move / distance
    drop = np.nanmedian(np.where(ok[frames], camera[2] - geo.floor[None], np.nan), axis=1)
    g = np.log1p(np.maximum(frac, MAX_GROUND_SHIFT))
    cols = np.stack([frames, np.full_like(frames, col)], 1)
    rows.add(cols, np.tile([1.0, -1.0], (len(frames), 1)), g, density * drop / GROUND_HEIGHT_SD)


def _size_cue(body: Any, track: mf.Track, focal_px: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
    """Log depth factors (T,) of the body's size (depth_prior.depth_factors), read in each frame's own
    camera (``ref``: a moving camera's ref_from_camera, or None)."""
    joints = camera_joints(body, track)
    if ref is not None:
        joints = into_cameras(joints, ref[np.asarray(track.frames)])
    return np.log(depth_prior.depth_factors(joints, np.asarray(track.extra["landmarks_image"])[..., :2], focal_px,
                                            track.extra.get("visibility"), np.asarray(track.times, np.float64)))


def _prior_rows(rows: _Rows, dt: np.ndarray, density: float) -> None:
    """The anchor (λ_t = 0) and the smoothness (second differences) rows of T = len(dt) + 1 frames."""
    n = len(dt) + 1
    frames, ones = np.arange(n), np.ones(n)
    rows.add(frames[:, None], ones[:, None], np.zeros(n), ones * density / ANCHOR_SD)
    mid = frames[1:-1]
    accel_scale = density * (DT_REF ** 2 / (0.5 * (dt[1:] + dt[:-1])) ** 2)
    rows.add(np.stack([mid - 1, mid, mid + 1], 1), np.tile([1.0, -2.0, 1.0], (n - 2, 1)), np.zeros(n - 2),
             accel_scale / ACCEL_SD)


def fuse_depth(body: Any, track: mf.Track, world_from_camera: np.ndarray, focal_px: np.ndarray, *,
               floor_check: bool, ground: bool, ref: np.ndarray | None = None) -> np.ndarray | None:
    """Depth factors q (T,) for the track's root (move along the camera rays from each frame's centre:
    depth_prior.move_along_rays), or None without the detector's image landmarks (no size cue: the
    lock's depth stays), with < 3 frames or with times that do not increase.

    track: mf.Track after the first foot lock (pose, transl in the frame-0 camera, times,
    extra["contacts"], extra["landmarks_image"], optional extra["visibility"]); world_from_camera (4,4)
    the lock's world (z up, ground z = 0); focal_px (T,) pixels; ref (N,4,4): a moving camera's
    ref_from_camera per video frame (None: static). ``floor_check``: stance rows only for contacts
    whose floor point stays put (footlock._floor_slow; static centre); ``ground``: ground rows.
    """
    times = np.asarray(track.times, np.float64)
    if track.extra.get("landmarks_image") is None or track.num_frames < 3 or not np.all(np.diff(times) > 0):
        return None
    m = np.asarray(world_from_camera, np.float64)
    contacts = np.asarray(track.extra["contacts"], bool)
    geo = Planted.of(body, track.betas_track, track.pose, track.transl, m)
    camera = m[:3, 3]
    centres = camera if ref is None else ref[np.asarray(track.frames), :3, 3] @ m[:3, :3].T + camera
    lever = geo.root - centres  # (T,3) world shift of the body per unit λ (from each frame's centre)
    dist = np.linalg.norm(geo.root - camera, axis=-1)
    n = len(times)
    dt = np.diff(times)
    density = float(np.sqrt(np.median(dt) / DT_REF))
    rows = _Rows(n + 2)
    planted = _floor_slow(geo.points, contacts, camera, geo.floor, times) if floor_check else contacts
    _stance_rows(rows, geo.points, planted, lever, density * DT_REF / dt)
    size = _size_cue(body, track, focal_px, ref)
    frames, ones = np.arange(n), np.ones(n)
    rows.add(np.stack([frames, np.full(n, n)], 1), np.stack([ones, -ones], 1), size, ones * density / SIZE_SD)
    _prior_rows(rows, dt, density)
    if ground:
        _ground_rows(rows, geo, contacts, camera, dist, density, n + 1)
    rows.add(np.array([[n], [n + 1]]), np.ones((2, 1)), np.zeros(2), np.full(2, 1.0 / OFFSET_SD))
    return np.exp(rows.solve()[:n])

