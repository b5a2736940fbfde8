"""``joints3d``/``joints2d`` of the final (post-processed) pose and translation.

The backend's joints (VIBE's 49 SPIN joints, BlazePose's 33 markers) come from the raw fit; the
post-processing changes pose and translation (smoothing, the moving-camera frame, foot locking).
Each backend joint is carried by the SMPL bone it moves with: the bone whose frame holds the raw
joint most still over the clip (smallest variance of its local coordinates). Its median local
position, placed by the bone's final transform, is the final joint. The raw members stay in the
file as ``joints3d_raw``/``joints2d_raw``.

Frames: ``joints3d`` is in the frame of ``pose`` without ``transl`` (the camera frame; for a moving
camera the frame-0 camera); ``joints2d`` are pixels of each video frame (for a moving camera
through that frame's camera, ``camera/world_from_camera``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from vibe_blender.core.body import forward_kinematics, shaped_rest
from vibe_blender.core.frames import into_cameras
from vibe_blender.core.rotations import aa_to_matrix


def _bones(body: Any, betas: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """World transforms (T,24,4,4) of the SMPL bones for a pose (T,24,3), no translation."""
    _, rest = shaped_rest(body, betas)
    return forward_kinematics(aa_to_matrix(np.asarray(pose, np.float64)), rest, np.asarray(body.parents))


def _local(g: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (T,J,3) in every bone's frame: (T,24,J,3)."""
    rel = points[:, None] - g[:, :, None, :3, 3]
    return np.einsum("tbji,tbnj->tbni", g[:, :, :3, :3], rel)


def carry_joints(body: Any, betas: np.ndarray, pose_raw: np.ndarray, joints_raw: np.ndarray,
                 pose: np.ndarray) -> np.ndarray:
    """Final joints (T,J,3) from raw joints (T,J,3) (frame of ``pose_raw``, no transl) and poses."""
    joints_raw = np.asarray(joints_raw, np.float64)
    good = np.all(np.isfinite(joints_raw), axis=(1, 2))
    local = _local(_bones(body, betas, pose_raw)[good], joints_raw[good])  # (T',24,J,3)
    bone = np.argmin(local.var(axis=0).sum(-1), axis=0)  # (J,)
    anchor = np.median(local[:, bone, np.arange(joints_raw.shape[1])], axis=0)  # (J,3)
    g = _bones(body, betas, pose)[:, bone]  # (T,J,4,4)
    return np.einsum("tjik,jk->tji", g[..., :3, :3], anchor) + g[..., :3, 3]


def _project(points: np.ndarray, camera: dict, ref: np.ndarray | None, frames: np.ndarray,
             focal: np.ndarray | None) -> np.ndarray:
    """Pixels (T,J,2) of points (T,J,3) in the pose frame (turned into each frame's camera by ``ref``)."""
    if ref is not None:
        points = into_cameras(points, ref[frames])
    f = camera["focal_px"] if focal is None else np.asarray(focal, np.float64)[frames][:, None, None]
    return points[..., :2] / points[..., 2:3] * f + np.array([camera["cx"], camera["cy"]])


def refresh(motion: Any, ref: np.ndarray | None = None) -> None:
    """Recompute every track's joints3d/joints2d from its final pose and transl (raw kept as
    ``joints3d_raw``/``joints2d_raw``); ``ref`` (N,4,4) ref_from_camera of a moving camera."""
    focal = motion.camera.get("focal_px")
    for track in motion.tracks:
        raw3 = track.extra.setdefault("joints3d_raw", np.asarray(track.joints3d, np.float32).copy())
        track.extra.setdefault("joints2d_raw", np.asarray(track.joints2d, np.float32).copy())
        pose_raw = track.extra.get("pose_raw", track.pose)
        joints = carry_joints(motion.body, track.betas_track, pose_raw, raw3, track.pose)
        track.joints3d = joints.astype(np.float32)
        points = joints + np.asarray(track.transl, np.float64)[:, None]
        track.joints2d = _project(points, motion.meta["camera"], ref, np.asarray(track.frames), focal).astype(np.float32)
