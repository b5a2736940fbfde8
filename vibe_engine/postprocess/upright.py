"""The body's lean toward the camera from the ground, and the depth that goes with it.

A monocular fit knows a body's lean across the image well and its lean toward or away from the
camera (pitch about the camera's horizontal axis) badly: the 2D joints hardly change with it, and
the 3D landmarks' depths are the network's weak part. On the synthetic suite the fitted trunk's
mean pitch is 3-15 deg further from the camera than the truth's (the fit stands it about across
the camera ray), and 23 deg for the camera 4.2 m up looking down 36 deg (jumps_down). That is not
only a wrong lean: a body seen from above is foreshortened, and a fit that stands it across the
ray explains the short image by a larger distance (there +22 % depth in the raw fit, +12 % after
the post-processing: the camera comes out too high and the feet sink through the true floor).

Once the ground is known, its normal says what upright is. People stand upright on average over a
clip (the suite's truths lean 0-11 deg toward the camera: a jumping person bends forward), so the
clip's mean pitch of the fitted trunk against the normal is the fit's bias. :func:`straighten`
turns each frame's body about the camera's horizontal axis (the one perpendicular to the plane
of the body's ray and the normal) by that bias, about the body's centroid, and then moves it
along its ray by the one depth factor (per clip) that gives it back its image size (least squares
against the fitted joints' own projections, :func:`_depth_factor`). The body's pose, its lean
across the image and the image position of its centroid are kept. At a level camera the turn
hardly changes the image size (tests/unit/test_upright.py: a 5 deg lean, depth factor 0.9998; on
the suite's level clips 0.98-1.0): the depth is corrected where the foreshortening is large.
Figures: docs/motion-file.md ("Upright lean and its depth").

Applied only when the person mostly stands (the trunk within STAND_DEG of the normal in at least
MIN_STANDING of the frames) and the bias is plausible for the fit. Leaning away from the camera: at
most MAX_BIAS_DEG, or the depression of the camera's rays to the body when larger
(:func:`bias_limit`): a fit that stands the body across its ray leans it away by that angle, so from
a camera high above the bias can reach it (down_b of the held-out suite: 33° from 4.2 m up), while a
larger lean seen from a level camera is a posture (a climb). Leaning toward the camera: at most the
rays' elevation to the body from a camera below it (:func:`toward_limit`; none from a camera above
it). A fit errs away from the camera (on the three synthetic suites its clip-mean pitch is at most 1°
further toward the camera than the truth's on 28 of 29 clips), so a lean toward a camera above the
body is the person's own (docs/motion-file.md, "Upright lean and its depth"). Frames: the motion's
camera frame (OpenCV, metres; a moving camera's frame-0 camera, each frame's ray from its own centre).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.spatial.transform import Rotation

from vibe_blender.core import motion_file as mf
from vibe_blender.core.body import shaped_rest
from vibe_blender.core.frames import into_cameras
from vibe_blender.core.rotations import aa_to_matrix, matrix_to_aa

PELVIS, NECK = 0, 12  # SMPL joints of the trunk axis
STAND_DEG = 35.0  # a frame stands when its trunk is within this angle of the ground's normal
MIN_STANDING = 0.6  # share of standing frames a track needs for the correction
MAX_BIAS_DEG = 30.0  # a larger mean pitch is a posture (bowing, lying), not the fit's bias
DEPTH_BOUNDS = (0.6, 1.6)  # the depth factor is searched in this range


def pitch_axes(joints: np.ndarray, up: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame the camera's horizontal axis ``e`` (T,3) perpendicular to the plane of the body's
    ray and the normal ``up`` (3,), and the pitch (T,) deg of the trunk about it: + = its top
    toward the camera. joints (T,24,3), centres (T,3) the cameras' centres, one frame."""
    ray = joints[:, PELVIS] - centres
    away = ray - (ray @ up)[:, None] * up  # horizontal, away from the camera
    away /= np.maximum(np.linalg.norm(away, axis=-1, keepdims=True), 1e-12)
    trunk = joints[:, NECK] - joints[:, PELVIS]
    pitch = np.degrees(np.arctan2(-np.sum(trunk * away, axis=-1), trunk @ up))
    return np.cross(up, away), pitch


def ray_depression_deg(points: np.ndarray, up: np.ndarray, centres: np.ndarray | None = None) -> float:
    """Median angle (deg) below the horizontal of the camera rays to ``points`` (T,3) (one frame:
    the camera at ``centres`` (T,3), or the origin), for the ground's normal ``up`` (3,)."""
    ray = np.asarray(points, np.float64) - (0.0 if centres is None else np.asarray(centres, np.float64))
    sine = -(ray @ np.asarray(up, np.float64)) / np.maximum(np.linalg.norm(ray, axis=-1), 1e-12)
    return float(np.degrees(np.arcsin(np.clip(np.median(sine), -1.0, 1.0))))


def bias_limit(depression_deg: float) -> float:
    """The largest lean away from the camera (deg) taken for the fit's bias: MAX_BIAS_DEG, or the
    rays' depression when larger (see the module docstring)."""
    return max(MAX_BIAS_DEG, depression_deg)


def toward_limit(depression_deg: float) -> float:
    """The largest lean toward the camera (deg) taken for the fit's bias: the rays' elevation to
    the body when the camera is below it (a body stood across those rays leans its top toward the
    camera), else none (see the module docstring)."""
    return min(MAX_BIAS_DEG, max(0.0, -depression_deg))


def _standing(joints: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Frames (T,) bool whose trunk is within STAND_DEG of ``up``."""
    trunk = joints[:, NECK] - joints[:, PELVIS]
    cos = (trunk @ up) / np.maximum(np.linalg.norm(trunk, axis=-1), 1e-12)
    return cos >= np.cos(np.radians(STAND_DEG))


def _project(points: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
    """Normalised image coordinates (T,J,2) of points (T,J,3) seen from each frame's camera
    (``ref`` (T,4,4): ref_from_camera of the points' frames, or None: one static camera)."""
    p = points if ref is None else into_cameras(points, ref)
    z = p[..., 2:3]
    return np.where(z > 0, p[..., :2] / np.where(z > 0, z, 1.0), np.inf)  # behind a camera: not seen


def _depth_factor(turned: np.ndarray, pivots: np.ndarray, target: np.ndarray, centres: np.ndarray,
                  ref: np.ndarray | None) -> float:
    """The factor s on the pivots' distances from their cameras (centres (T,3)) that makes
    ``turned`` (T,J,3, about ``pivots`` (T,3)) project closest to ``target`` (T,J,2) in the
    least-squares sense; ``ref`` as for :func:`_project`."""
    def cost(s: float) -> float:
        moved = turned + (s - 1.0) * (pivots - centres)[:, None]
        return float(np.sum((_project(moved, ref) - target) ** 2))
    return float(minimize_scalar(cost, bounds=DEPTH_BOUNDS, method="bounded", options={"xatol": 1e-6}).x)


def straighten(body: mf.BodyModel, track: mf.Track, joints: np.ndarray, up: np.ndarray,
               ref: np.ndarray | None = None) -> tuple[float, float] | None:
    """Turn one track upright on average and move it to the depth of its image size (in place).

    joints (T,24,3): the track's camera-frame joints; up (3,): the ground's normal in that frame;
    ref (N,4,4) or None: a moving camera's ref_from_camera per video frame. Returns (the mean pitch
    removed (deg), the depth factor), or None when the track is left alone (too few standing
    frames, a bias beyond bias_limit or toward_limit, a joint behind its camera)."""
    frames = np.asarray(track.frames)
    ref = None if ref is None else ref[frames]
    centres = np.zeros((len(frames), 3)) if ref is None else ref[:, :3, 3]
    target = _project(joints, ref)
    standing = _standing(joints, up)
    if standing.mean() < MIN_STANDING or not np.all(np.isfinite(target)):
        return None
    axes, pitch = pitch_axes(joints, up, centres)
    bias = float(np.mean(pitch[standing]))
    depression = ray_depression_deg(joints[:, PELVIS], up, centres)
    if bias > toward_limit(depression) or bias < -bias_limit(depression):
        return None
    turn = Rotation.from_rotvec(np.radians(bias) * axes).as_matrix()  # by θ about e: the pitch drops by θ
    pivots = joints.mean(axis=1)  # the body's centroid (about its pelvis: jumps_down depth 3.0 -> 5.3 %)
    turned = pivots[:, None] + np.einsum("tij,tnj->tni", turn, joints - pivots[:, None])
    s = _depth_factor(turned, pivots, target, centres, ref)
    new_root = turned[:, PELVIS] + (s - 1.0) * (pivots - centres)
    pose = np.asarray(track.pose, np.float64).copy()
    pose[:, PELVIS] = matrix_to_aa(turn @ aa_to_matrix(pose[:, PELVIS]))  # (T,24,3): the root joint first
    _, rest = shaped_rest(body, track.betas_track)
    track.pose = pose.astype(np.float32)
    track.transl = (new_root - rest[0]).astype(np.float32)
    return bias, s
