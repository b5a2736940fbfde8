"""BVH joint positions → SMPL-layout pose for a given body, by bone-direction alignment.

The ground truth of the benchmark is whatever this produces, posed on the body by SMPL forward
kinematics: the retarget only has to be plausible, not identical to the BVH actor.
Frames: SMPL canonical (y up, facing +z), metres.
"""
from __future__ import annotations

import numpy as np

from vibe_blender.core.rotations import aa_to_matrix, matrix_to_aa

# SMPL joint → CMU BVH joint name.
CMU_MAP = (
    "Hips", "LeftUpLeg", "RightUpLeg", "LowerBack", "LeftLeg", "RightLeg", "Spine", "LeftFoot",
    "RightFoot", "Spine1", "LeftToeBase", "RightToeBase", "Neck1", "LeftShoulder", "RightShoulder",
    "Head", "LeftArm", "RightArm", "LeftForeArm", "RightForeArm", "LeftHand", "RightHand",
    "LFingers", "RFingers",
)
# Joints whose orientation comes from a left-right axis and an up axis: joint → (left, right, up),
# with a fallback used when those points coincide in the source (CMU: LowerBack sits on Hips,
# both collars on Spine1).
FRAMED = {0: ((1, 2, 3), (1, 2, 6)), 9: ((13, 14, 12), (16, 17, 12))}
DEGENERATE = 0.01  # m
CHILD = {3: 6, 6: 9, 1: 4, 2: 5, 4: 7, 5: 8, 7: 10, 8: 11, 12: 15, 13: 16, 14: 17, 16: 18,
         17: 19, 18: 20, 19: 21, 20: 22, 21: 23}


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _basis(left_right: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Orthonormal frames (...,3,3) with columns (x = left-right, y = up ⊥ x, z = x × y)."""
    x = _normalize(left_right)
    y = _normalize(up - np.sum(up * x, -1, keepdims=True) * x)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotations (F,3,3) turning directions a (F,3) onto b (F,3)."""
    a, b = _normalize(a), _normalize(b)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1, keepdims=True)
    c = np.sum(a * b, -1, keepdims=True)
    return aa_to_matrix(axis / np.maximum(s, 1e-12) * np.arctan2(s, c))


def _frame_points(positions: np.ndarray, joint: int) -> tuple[int, int, int]:
    """The (left, right, up) points framing ``joint``: the preferred ones unless they coincide."""
    preferred, fallback = FRAMED[joint]
    l, r, u = preferred
    spans = [np.median(np.linalg.norm(positions[:, a] - positions[:, b], axis=-1)) for a, b in ((l, r), (u, joint))]
    return preferred if min(spans) > DEGENERATE else fallback


def retarget(positions: np.ndarray, rest: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose (F,24,3) axis-angle and smplx ``transl`` (F,3) that put the body's bones along the
    directions of ``positions`` (F,24,3) (the mapped BVH joints, metres, SMPL frame).

    rest: (24,3) rest joints of the body; parents: (24,) SMPL tree.
    """
    f = positions.shape[0]
    glob = np.zeros((f, 24, 3, 3))
    for j in range(24):
        p = parents[j]
        if j in FRAMED:
            l, r, u = _frame_points(positions, j)
            target = _basis(positions[:, l] - positions[:, r], positions[:, u] - positions[:, j])
            rest_b = _basis(rest[l] - rest[r], rest[u] - rest[j])
            glob[:, j] = target @ rest_b.T
        elif j in CHILD:
            c = CHILD[j]
            current = np.einsum("fab,b->fa", glob[:, p], rest[c] - rest[j])
            glob[:, j] = _rotation_between(current, positions[:, c] - positions[:, j]) @ glob[:, p]
        else:
            glob[:, j] = glob[:, p]
    local = glob.copy()
    for j in range(1, 24):
        local[:, j] = np.swapaxes(glob[:, parents[j]], -1, -2) @ glob[:, j]
    return matrix_to_aa(local), positions[:, 0] - rest[0]
