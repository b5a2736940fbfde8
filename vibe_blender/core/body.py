"""SMPL body maths in numpy: shaped rest vertices/joints and linear blend skinning.

An independent numpy re-implementation of the SMPL forward pass (smplx ``lbs``; vibe-facts §1.5),
used to build the character's rest mesh and as the reference in tests. ``body`` is any object with
the :class:`vibe_blender.core.motion_file.BodyModel` attributes (SMPL canonical frame: y up, the
body faces +z, metres): ``v_template`` (V,3), ``shapedirs`` (V,3,B), ``posedirs`` (207,3V) or None,
``J_regressor`` (24,V), ``weights`` (V,24), ``parents`` (24,).
All outputs are float64 in the frame of the inputs (canonical for the rest, and for posed results
the frame the root orientation and ``transl`` are given in, e.g. the OpenCV camera frame).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .rotations import aa_to_matrix
from .smpl import NUM_JOINTS
from .smpl import NUM_POSE_BASIS as POSE_FEATURES


def shaped_rest(body: Any, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rest vertices (V,3) and joints (24,3) of the body with shape ``betas`` (B',), canonical frame.

    Only the first min(B', B) components are used (missing ones count as 0).
    """
    shapedirs = np.asarray(body.shapedirs, dtype=np.float64)
    betas = np.asarray(betas, dtype=np.float64).reshape(-1)
    n = min(betas.shape[0], shapedirs.shape[2])
    verts = np.asarray(body.v_template, np.float64) + shapedirs[:, :, :n] @ betas[:n]
    joints = np.asarray(body.J_regressor, np.float64) @ verts
    return verts, joints


def depth_levels(parents: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Joints grouped by tree depth (root excluded): [(joint indices, their parents)], root first."""
    parents = np.asarray(parents, dtype=np.int64)
    depth = np.zeros(len(parents), dtype=np.int64)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    return [(np.flatnonzero(depth == d), parents[depth == d]) for d in range(1, int(depth.max()) + 1)]


def chain_rotations(rot: np.ndarray, bones: np.ndarray, levels: list) -> tuple[np.ndarray, np.ndarray]:
    """The kinematic chain, batched by tree depth (the one numpy forward kinematics).

    ``rot`` (T,J,3,3) local rotations; ``bones`` (J,3) each joint's rest offset from its parent
    (the root's: its rest position); ``levels`` from :func:`depth_levels`. Returns global
    rotations (T,J,3,3) and joint positions (T,J,3) without any global translation, in rot's dtype.
    """
    n, j = rot.shape[:2]
    g = np.empty((n, j, 3, 3), rot.dtype)
    t = np.empty((n, j, 3), rot.dtype)
    g[:, 0], t[:, 0] = rot[:, 0], bones[0]
    for idx, par in levels:
        gp = g[:, par]
        g[:, idx] = gp @ rot[:, idx]
        t[:, idx] = t[:, par] + (gp @ bones[idx][..., None])[..., 0]
    return g, t


def forward_kinematics(rot: np.ndarray, rest_joints: np.ndarray,
                       parents: np.ndarray) -> np.ndarray:
    """World transforms G (T,24,4,4) of the joints for local rotations ``rot`` (T,24,3,3).

    ``rest_joints`` (24,3) are the rest joint positions; joint j's local transform is
    [R_j | J_j − J_parent] ([R_0 | J_0] for the root), G_j = G_parent · local_j. The translation
    column of G_j is the posed joint position (without any global translation).
    """
    parents = np.asarray(parents, dtype=np.int64)
    rest = np.asarray(rest_joints, dtype=np.float64)
    bones = rest.copy()
    bones[1:] = rest[1:] - rest[parents[1:]]
    g_rot, t = chain_rotations(np.asarray(rot, dtype=np.float64), bones, depth_levels(parents))
    g = np.zeros((rot.shape[0], NUM_JOINTS, 4, 4))
    g[:, :, :3, :3], g[:, :, :3, 3], g[:, :, 3, 3] = g_rot, t, 1.0
    return g


def pose_offsets(body: Any, rot: np.ndarray) -> np.ndarray:
    """Pose-corrective vertex offsets (T,V,3) for local rotations ``rot`` (T,24,3,3); zeros without posedirs."""
    v = np.asarray(body.v_template).shape[0]
    if getattr(body, "posedirs", None) is None:
        return np.zeros((rot.shape[0], v, 3))
    feat = (rot[:, 1:] - np.eye(3)).reshape(rot.shape[0], POSE_FEATURES)
    return (feat @ np.asarray(body.posedirs, np.float64)).reshape(-1, v, 3)


def lbs_with_joints(body: Any, betas: np.ndarray, pose_aa: np.ndarray, transl: np.ndarray,
                    *, use_posedirs: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Posed vertices (T,V,3) and joints (T,24,3) of SMPL, as smplx computes them.

    betas (B,); pose_aa (T,24,3) axis-angle radians, joint 0 = global orientation; transl (T,3)
    added to everything (smplx's ``transl``). ``use_posedirs`` applies the pose correctives when
    the body has them.
    """
    rot = aa_to_matrix(np.asarray(pose_aa, np.float64).reshape(-1, NUM_JOINTS, 3))
    v_shaped, rest_j = shaped_rest(body, betas)
    g = forward_kinematics(rot, rest_j, np.asarray(body.parents))
    v_posed = v_shaped[None] + (pose_offsets(body, rot) if use_posedirs else 0.0)
    # skinning transforms A_j: G_j with translation t_j − R_j · J_j
    a = g.copy()
    a[:, :, :3, 3] -= np.einsum("tjab,jb->tja", g[:, :, :3, :3], rest_j)
    w = np.asarray(body.weights, np.float64)
    blend = np.einsum("vj,tjab->tvab", w, a)  # (T,V,4,4)
    verts = np.einsum("tvab,tvb->tva", blend[..., :3, :3], v_posed) + blend[..., :3, 3]
    tr = np.asarray(transl, np.float64).reshape(-1, 1, 3)
    return verts + tr, g[:, :, :3, 3] + tr


def lbs(body: Any, betas: np.ndarray, pose_aa: np.ndarray, transl: np.ndarray,
        *, use_posedirs: bool = True) -> np.ndarray:
    """Posed vertices (T,V,3) float64; see :func:`lbs_with_joints` for the arguments."""
    return lbs_with_joints(body, betas, pose_aa, transl, use_posedirs=use_posedirs)[0]
