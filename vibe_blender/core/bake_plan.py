"""The whole animation of one person computed in numpy, ready to be written into Blender in one pass.

Maths (armature object at the world origin, identity transform; symbols as in ``skeleton``):
C = ``SMPL_TO_BLENDER``, Q_j = ``skeleton.rest_rot[j]``, R_j = SMPL local rotations (axis-angle
``pose``), K, t_w = rotation and translation of ``world_from_camera`` (OpenCV camera → Blender
world, ``frames.world_from_camera``). Blender poses a bone as
``M_j = M_parent · Rest_parentᵀ·Rest_j · T(location_j) · R(quaternion_j)`` and deforms with
``M_j · Rest_j⁻¹``. Requiring that deformation to equal SMPL's skinning transform (camera frame,
then mapped to the world) gives
- pelvis: ``B_0 = Q_0ᵀ · K · R_0 · Cᵀ · Q_0``; other bones: ``B_j = Q_jᵀ · C · R_j · Cᵀ · Q_j``;
- pelvis world position ``p = K · (J_0 + transl) + t_w`` (J_0 = shaped rest pelvis, canonical).

Root motion (``root_motion``), all exact for the pose, differing only in where the body goes:
- ``"world"``: the ``root`` bone follows the ground projection (p_x, p_y, 0); the pelvis bone
  carries the height (its location is (0, 0, p_z − pelvis rest height) in world axes). Muting the
  root bone's location curves turns this into "in place".
- ``"in_place"``: as ``world`` but the root bone stays at the origin (no horizontal travel; the
  vertical motion stays on the pelvis).
- ``"off"``: no translation at all; the pelvis stays at its rest height (rotation only).
Note: without a ground estimate the world's z = 0 plane is the camera's horizontal plane (frames).

Frame numbers come from the file's timestamps: ``frame = frame_start + time · fps`` (float; values
within ``FRAME_SNAP`` of an integer are snapped), so variable-frame-rate video keeps its timing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .frames import SMPL_TO_BLENDER
from .rotations import aa_to_matrix, matrix_to_quat, quat_continuity, quat_to_matrix
from .settings import ROOT_MOTION_MODES
from .skeleton import NUM_SMPL_JOINTS, ROOT_INDEX, Skeleton
FRAME_SNAP = 1e-4  # frames closer than this to an integer are put on it
LOW_CONFIDENCE = 0.5  # detector score under which a frame is flagged as unreliable
FPS_INT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class BakePlan:
    """One person's animation in Blender terms (float64 unless noted), T keys.

    frames (T,) Blender frame numbers; quats (T,24,4) pose-bone ``rotation_quaternion`` (w,x,y,z),
    hemisphere-continuous; pelvis_loc (T,3) and root_loc (T,3) pose-bone ``location`` (bone axes,
    metres); pose_features (T,207) SMPL pose-corrective features (R_j − I, joints 1..23, row-major);
    flagged (T,) bool: not detected or confidence < LOW_CONFIDENCE; confidence (T,).
    """

    frames: np.ndarray
    quats: np.ndarray
    pelvis_loc: np.ndarray
    root_loc: np.ndarray
    pose_features: np.ndarray
    flagged: np.ndarray
    confidence: np.ndarray

    @property
    def num_keys(self) -> int:
        """Number of keys T."""
        return int(self.frames.shape[0])


def times_to_frames(times: np.ndarray, fps: float, frame_start: float = 1.0) -> np.ndarray:
    """Blender frame numbers (T,) float64 for presentation times (T,) seconds at scene ``fps``."""
    frames = frame_start + np.asarray(times, np.float64) * float(fps)
    near = np.round(frames)
    return np.where(np.abs(frames - near) < FRAME_SNAP, near, frames)


def scene_fps(fps: float) -> tuple[int, float]:
    """Blender's (render.fps, render.fps_base) for a frame rate ``fps`` (> 0): fps = fps_int / base.

    29.97 → (30, 1.001); 25 → (25, 1.0).
    """
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"frame rate must be a positive number, got {fps!r}")
    near = round(fps)
    fps_int = int(near) if abs(near - fps) < FPS_INT_TOLERANCE * fps else math.ceil(fps)
    return fps_int, fps_int / fps


def scene_range(frame_start: int, fps: float, last_time: float, video: Any = None) -> tuple[int, int]:
    """(frame_start, frame_end) covering every key (``last_time`` s) and the whole clip.

    ``video``: the motion file's typed ``motion_header.VideoInfo`` (``frames``, ``fps``), or None;
    its last frame shows at ``frame_start + (frames - 1) / video_fps · fps`` scene frames.
    """
    ends = [float(last_time)]
    if video is not None:
        ends.append((int(video.frames) - 1) / float(video.fps))
    end = frame_start + max(ends) * float(fps)
    return int(frame_start), max(int(frame_start), int(math.ceil(end - FRAME_SNAP)))


def visibility_expression(frames: np.ndarray, frame_start: float) -> str:
    """Driver expression for ``hide_viewport`` / ``hide_render``: true (hidden) from the scene start
    ``frame_start`` to before the first of ``frames`` (T,) scene frames, and after the last.

    Frames before ``frame_start`` stay visible: Blender's glTF exporter gathers the objects at frame 0
    and skips hidden ones. Blender's simple-expression evaluator runs it without Python (no auto-run
    permission needed).
    """
    first, last = float(np.min(frames)), float(np.max(frames))
    return f"(frame >= {float(frame_start):.4f} and frame < {first:.4f}) or frame > {last:.4f}"


def local_rotations(skeleton: Skeleton, rot: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """Pose-bone rotation matrices B (T,24,3,3) for SMPL local rotations ``rot`` (T,24,3,3).

    The root rotation is in the camera frame; see the module docstring for the formula.
    """
    q = skeleton.rest_rot[:NUM_SMPL_JOINTS]
    outer = np.broadcast_to(SMPL_TO_BLENDER, q.shape).copy()
    outer[0] = np.asarray(cam_to_world, np.float64)[:3, :3]
    left = np.swapaxes(q, -1, -2) @ outer  # (24,3,3) constant per bone
    right = SMPL_TO_BLENDER.T @ q
    return np.einsum("jab,tjbc,jcd->tjad", left, rot, right, optimize=True)


def pelvis_world(skeleton: Skeleton, transl: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """Pelvis head in the Blender world (T,3) for camera-frame ``transl`` (T,3)."""
    m = np.asarray(cam_to_world, np.float64)
    cam = skeleton.rest_joints_canonical[0] + np.asarray(transl, np.float64)
    return cam @ m[:3, :3].T + m[:3, 3]


def root_locations(skeleton: Skeleton, pelvis: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(pelvis_loc (T,3), root_loc (T,3)) pose-bone locations for pelvis world positions (T,3)."""
    if mode not in ROOT_MOTION_MODES:
        raise ValueError(f"root_motion must be one of {ROOT_MOTION_MODES}, got {mode!r}")
    zeros = np.zeros_like(pelvis)
    if mode == "off":
        return zeros, zeros
    height = zeros.copy()
    height[:, 2] = pelvis[:, 2] - skeleton.pelvis_height
    pelvis_loc = height @ skeleton.rest_rot[0]  # Q_0ᵀ · v for each row
    root = zeros.copy()
    if mode == "world":
        root[:, :2] = pelvis[:, :2]
    return pelvis_loc, root @ skeleton.rest_rot[ROOT_INDEX]


def plan_track(skeleton: Skeleton, pose_aa: np.ndarray, transl: np.ndarray, times: np.ndarray,
               cam_to_world: np.ndarray, *, fps: float, frame_start: float = 1.0,
               root_motion: str = "world", confidence: np.ndarray | None = None,
               detected: np.ndarray | None = None) -> BakePlan:
    """Plan one track: pose (T,24,3) axis-angle, transl (T,3) m and times (T,) s, camera frame."""
    r = aa_to_matrix(np.asarray(pose_aa, np.float64).reshape(-1, NUM_SMPL_JOINTS, 3))
    quats = quat_continuity(matrix_to_quat(local_rotations(skeleton, r, cam_to_world)), axis=0)
    pelvis_loc, root_loc = root_locations(skeleton, pelvis_world(skeleton, transl, cam_to_world),
                                          root_motion)
    feats = (r[:, 1:] - np.eye(3)).reshape(r.shape[0], -1)
    n = quats.shape[0]
    conf = np.ones(n) if confidence is None else np.asarray(confidence, np.float64)
    det = np.ones(n, bool) if detected is None else np.asarray(detected, bool)
    return BakePlan(frames=times_to_frames(times, fps, frame_start), quats=quats,
                    pelvis_loc=pelvis_loc, root_loc=root_loc, pose_features=feats,
                    flagged=~det | (conf < LOW_CONFIDENCE), confidence=conf)


def flagged_runs(plan: BakePlan) -> list[tuple[float, float]]:
    """(first frame, last frame) of each run of consecutive flagged keys, in key order."""
    runs: list[tuple[float, float]] = []
    start = None
    for i, bad in enumerate(plan.flagged.tolist() + [False]):
        if bad and start is None:
            start = i
        elif not bad and start is not None:
            runs.append((float(plan.frames[start]), float(plan.frames[i - 1])))
            start = None
    return runs


def posed_bone_matrices(skeleton: Skeleton, plan: BakePlan) -> np.ndarray:
    """World matrices M (T,25,4,4) of the bones, evaluated with Blender's pose rule (for tests/FK)."""
    rest = skeleton.rest_matrices()
    t = plan.num_keys
    basis = np.tile(np.eye(4), (t, len(skeleton.names), 1, 1))
    basis[:, :NUM_SMPL_JOINTS, :3, :3] = quat_to_matrix(plan.quats)
    basis[:, 0, :3, 3] = plan.pelvis_loc
    basis[:, ROOT_INDEX, :3, 3] = plan.root_loc
    out = np.zeros_like(basis)
    out[:, ROOT_INDEX] = rest[ROOT_INDEX] @ basis[:, ROOT_INDEX]
    for j in range(NUM_SMPL_JOINTS):  # SMPL order lists parents first; root done above
        p = int(skeleton.parents[j])
        rel = np.linalg.inv(rest[p]) @ rest[j]
        out[:, j] = out[:, p] @ rel @ basis[:, j]
    return out


def skin(skeleton: Skeleton, plan: BakePlan, rest_verts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Linear-blend skinned vertices (T,V,3) of armature-space ``rest_verts`` (V,3), ``weights`` (V,24)."""
    m = posed_bone_matrices(skeleton, plan)[:, :NUM_SMPL_JOINTS]
    deform = m @ np.linalg.inv(skeleton.rest_matrices()[:NUM_SMPL_JOINTS])
    blend = np.einsum("vj,tjab->tvab", np.asarray(weights, np.float64), deform)
    return np.einsum("tvab,vb->tva", blend[..., :3, :3], rest_verts) + blend[..., :3, 3]
