"""The character's rest skeleton: 24 SMPL bones plus a ``root`` bone on the ground (pure numpy).

Armature space = Blender axes (z up, metres), armature object at the world origin with identity
transform. The rest character is the SMPL canonical body turned z up (``frames.SMPL_TO_BLENDER``,
facing −Y), moved so the pelvis is above the origin and the lowest rest vertex touches z = 0:
``x_armature = SMPL_TO_BLENDER · (x_canonical − J_pelvis) + (0, 0, pelvis_height)``.

Bones (index = SMPL joint index 0..23, then ``root`` = 24):
- ``root``: head at the origin, identity rest orientation (points +Y, x = +X, z = +Z), parent of
  ``pelvis``. It carries the root motion (ground projection of the pelvis) and never rotates.
- SMPL bones: head at the rest joint; the bone points at its child joint (``pelvis`` → ``spine1``,
  ``spine3`` → ``neck``; end bones ``head``, ``*_foot``, ``*_hand`` continue their parent's
  direction). Roll (design.md §8 q3): the bone's x axis is ``y_bone × forward`` with forward = −Y
  (the body's facing direction), which is +X (the body's left) for the vertical spine bones; for
  bones nearly parallel to forward (feet) x is the projection of +X instead. Rest rotations
  ``rest_rot[j]`` (columns = the bone's x, y, z axes in armature space) therefore differ per bone,
  and a pose-bone quaternion is the SMPL local rotation seen in the bone's own axes:
  ``B_j = rest_rotᵀ_j · SMPL_TO_BLENDER · R_j · SMPL_TO_BLENDERᵀ · rest_rot_j`` (see bake_plan).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .frames import SMPL_TO_BLENDER
from .smpl import SMPL_JOINT_NAMES, SMPL_PARENTS

ROOT_NAME = "root"
ROOT_INDEX = 24
NUM_SMPL_JOINTS = 24
BONE_NAMES = SMPL_JOINT_NAMES + (ROOT_NAME,)
#: Child a bone points at when it has several (pelvis → spine1, spine3 → neck).
TAIL_CHILD = {0: 3, 9: 12}
END_BONE_FRACTION = 0.5  # an end bone is this fraction of its parent's length
MIN_BONE_LENGTH_M = 0.02  # Blender drops zero-length bones
ROOT_BONE_LENGTH_M = 0.25
FORWARD = np.array([0.0, -1.0, 0.0])  # the rest character faces −Y
PARALLEL_LIMIT = 0.7  # |cos| above which a bone counts as parallel to FORWARD


@dataclass(frozen=True)
class Skeleton:
    """Rest skeleton in armature space (Blender axes, metres, float64).

    heads (25,3) and tails (25,3) bone ends; rest_rot (25,3,3) bone axes as columns; parents (25,)
    with -1 for ``root`` (index 24); rest_joints_canonical (24,3) the SMPL rest joints the skeleton
    was built from; canonical_offset (3,) the ``r`` in x_armature = SMPL_TO_BLENDER·x_canonical + r.
    """

    heads: np.ndarray
    tails: np.ndarray
    rest_rot: np.ndarray
    parents: np.ndarray
    rest_joints_canonical: np.ndarray
    canonical_offset: np.ndarray
    names: tuple[str, ...] = BONE_NAMES

    def to_armature(self, points_canonical: np.ndarray) -> np.ndarray:
        """SMPL canonical points (...,3) → rest armature-space points (...,3), float64."""
        return np.asarray(points_canonical, np.float64) @ SMPL_TO_BLENDER.T + self.canonical_offset

    def rest_matrices(self) -> np.ndarray:
        """Bone rest matrices (25,4,4) in armature space (Blender's ``bone.matrix_local``)."""
        m = np.tile(np.eye(4), (len(self.names), 1, 1))
        m[:, :3, :3] = self.rest_rot
        m[:, :3, 3] = self.heads
        return m

    @property
    def pelvis_height(self) -> float:
        """Rest height (m) of the pelvis head above the ground."""
        return float(self.heads[0, 2])


def bone_rest_rotation(direction: np.ndarray) -> np.ndarray:
    """Rest rotation (3,3) (columns x, y, z) of a bone whose y axis points along ``direction`` (3,)."""
    y = direction / np.linalg.norm(direction)
    if abs(float(y @ FORWARD)) < PARALLEL_LIMIT:
        x = np.cross(y, FORWARD)
    else:
        x = np.array([1.0, 0.0, 0.0]) - y[0] * y
    x /= np.linalg.norm(x)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def _tails(heads: np.ndarray) -> np.ndarray:
    """Tails (24,3) of the SMPL bones from their heads (24,3), armature space."""
    children: dict[int, list[int]] = {}
    for j, p in enumerate(SMPL_PARENTS):
        children.setdefault(p, []).append(j)
    tails = np.zeros_like(heads)
    for j in range(NUM_SMPL_JOINTS):  # parents come first in SMPL order
        kids = children.get(j, [])
        if kids:
            target = heads[TAIL_CHILD.get(j, kids[0])]
            vec = target - heads[j]
        else:
            pvec = tails[SMPL_PARENTS[j]] - heads[SMPL_PARENTS[j]]
            vec = pvec * END_BONE_FRACTION
        length = np.linalg.norm(vec)
        if length < MIN_BONE_LENGTH_M:
            vec = (vec / length if length > 0 else np.array([0.0, 0.0, 1.0])) * MIN_BONE_LENGTH_M
        tails[j] = heads[j] + vec
    return tails


def build_skeleton(rest_joints: np.ndarray, rest_verts: np.ndarray) -> Skeleton:
    """Skeleton from SMPL canonical rest joints (24,3) and rest vertices (V,3) (``body.shaped_rest``).

    The lowest rest vertex lands on z = 0 and the pelvis above the origin.
    """
    rest_joints = np.asarray(rest_joints, np.float64)
    turned = np.asarray(rest_verts, np.float64) @ SMPL_TO_BLENDER.T
    pelvis = SMPL_TO_BLENDER @ rest_joints[0]
    offset = np.array([0.0, 0.0, pelvis[2] - turned[:, 2].min()]) - pelvis
    return skeleton_from_joints(rest_joints, offset)


def skeleton_from_joints(rest_joints: np.ndarray, canonical_offset: np.ndarray) -> Skeleton:
    """Skeleton from SMPL canonical rest joints (24,3) and the canonical → armature offset (3,).

    Deterministic: the same inputs (e.g. stored on an armature) give the same bones.
    """
    rest_joints = np.asarray(rest_joints, np.float64)
    offset = np.asarray(canonical_offset, np.float64)
    heads = rest_joints @ SMPL_TO_BLENDER.T + offset
    tails = _tails(heads)
    rest_rot = np.stack([bone_rest_rotation(t - h) for h, t in zip(heads, tails)])
    heads = np.vstack([heads, np.zeros(3)])
    tails = np.vstack([tails, [0.0, ROOT_BONE_LENGTH_M, 0.0]])
    rest_rot = np.concatenate([rest_rot, np.eye(3)[None]])
    parents = np.array((ROOT_INDEX,) + SMPL_PARENTS[1:] + (-1,), dtype=np.int64)
    return Skeleton(heads=heads, tails=tails, rest_rot=rest_rot, parents=parents,
                    rest_joints_canonical=rest_joints, canonical_offset=offset)
