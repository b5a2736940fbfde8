"""A target character's rest skeleton in numpy, as Blender poses it (no bpy).

Frame: the target's **world** frame (Blender axes, z up, metres, the ground at z = 0), with the
armature object's rotation and uniform scale already applied (``bl.retarget`` does that), so the
maths is the same for a plain rig and for an FBX import rotated 90° and scaled 0.01. ``rest[j]`` is
the bone's rest matrix (Blender's ``matrix_world @ bone.matrix_local`` with the scale divided out):
columns = the bone's x, y, z axes (y along the bone), translation = its head.

Blender's pose rule (used by :func:`pose_world`): ``M_j = M_parent · Rest_parent⁻¹ · Rest_j · B_j``
with ``B_j = T(location_j) · R(quaternion_j)`` (location in the bone's rest axes, armature units).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from .rotations import aa_to_matrix, quat_to_matrix

ROLL_POLE_EPS = 1e-6  # |1 + y| below which a bone points straight down −Y (Blender's special case)


class RigError(ValueError):
    """A target rig or bone map that cannot be retargeted onto; the message names the fix."""


@dataclass(frozen=True)
class RigSkeleton:
    """Rest skeleton of a target rig, N bones, parents before children (float64).

    names (N,); parents (N,) int, -1 for a root; rest (N,4,4) rest matrices (see module doc);
    tails (N,3) bone tails; scale: armature units per metre (1 / the object's scale).
    """

    names: tuple[str, ...]
    parents: np.ndarray
    rest: np.ndarray
    tails: np.ndarray
    scale: float = 1.0

    @property
    def heads(self) -> np.ndarray:
        """Bone heads (N,3), metres."""
        return self.rest[:, :3, 3]

    def index(self, name: str) -> int:
        """Index of bone ``name``; RigError if the rig has no such bone."""
        try:
            return self.names.index(name)
        except ValueError:
            raise RigError(f"bone {name!r} is not in the target rig; fix the bone map") from None

    def children(self) -> list[list[int]]:
        """Child indices of every bone."""
        kids: list[list[int]] = [[] for _ in self.names]
        for j, p in enumerate(self.parents.tolist()):
            if p >= 0:
                kids[p].append(j)
        return kids

    def chain_to_root(self, j: int) -> list[int]:
        """Indices from bone ``j`` up to its root, ``j`` first."""
        out = []
        while j >= 0:
            out.append(j)
            j = int(self.parents[j])
        return out


def roll_matrix(head: np.ndarray, tail: np.ndarray, roll: float) -> np.ndarray:
    """Bone axes (3,3) (columns x, y, z) from head, tail (3,) and roll (rad), as Blender builds them:
    the smallest rotation taking +Y onto the bone, then the roll about the bone."""
    y = np.asarray(tail, np.float64) - np.asarray(head, np.float64)
    y = y / np.linalg.norm(y)
    if 1.0 + y[1] < ROLL_POLE_EPS:
        base = np.diag([-1.0, -1.0, 1.0])  # 180° about z: +Y → −Y
    else:
        axis = np.cross([0.0, 1.0, 0.0], y)
        s = np.linalg.norm(axis)
        base = np.eye(3) if s < 1e-12 else aa_to_matrix(axis / s * np.arctan2(s, y[1]))
    return aa_to_matrix(y * float(roll)) @ base


def from_bones(bones: Iterable[Mapping], *, scale: float = 1.0) -> RigSkeleton:
    """RigSkeleton from bone dicts ``{"name", "parent", "head", "tail", "roll"}`` (metres, world).

    Bones may come in any order; they are sorted parents first. RigError on a missing parent,
    a zero-length bone or a cycle.
    """
    items = {b["name"]: b for b in bones}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise RigError(f"bone {name!r} is its own ancestor; fix the rig's parents")
        state[name] = 1
        parent = items[name].get("parent")
        if parent:
            if parent not in items:
                raise RigError(f"bone {name!r} has parent {parent!r}, which is not in the rig")
            visit(parent)
        state[name] = 2
        order.append(name)

    for name in items:
        visit(name)
    rest = np.tile(np.eye(4), (len(order), 1, 1))
    tails = np.zeros((len(order), 3))
    for j, name in enumerate(order):
        b = items[name]
        head, tail = np.asarray(b["head"], np.float64), np.asarray(b["tail"], np.float64)
        if np.linalg.norm(tail - head) < 1e-9:
            raise RigError(f"bone {name!r} has zero length; fix the rig")
        rest[j, :3, :3] = roll_matrix(head, tail, float(b.get("roll", 0.0)))
        rest[j, :3, 3] = head
        tails[j] = tail
    parents = np.array([order.index(items[n]["parent"]) if items[n].get("parent") else -1 for n in order])
    return RigSkeleton(names=tuple(order), parents=parents, rest=rest, tails=tails, scale=float(scale))


def pose_world(rig: RigSkeleton, quats: np.ndarray, locs: np.ndarray | None = None) -> np.ndarray:
    """World matrices (T,N,4,4) of the posed bones for pose-bone quaternions (T,N,4) (w,x,y,z) and
    locations (T,N,3) (armature units, bone rest axes; None = zeros), by Blender's pose rule."""
    t, n = quats.shape[:2]
    basis = np.tile(np.eye(4), (t, n, 1, 1))
    basis[:, :, :3, :3] = quat_to_matrix(quats)
    if locs is not None:
        basis[:, :, :3, 3] = np.asarray(locs, np.float64) / rig.scale
    out = np.empty_like(basis)
    inv_rest = np.linalg.inv(rig.rest)
    for j in range(n):
        p = int(rig.parents[j])
        base = rig.rest[j] if p < 0 else out[:, p] @ (inv_rest[p] @ rig.rest[j])
        out[:, j] = base @ basis[:, j]
    return out
