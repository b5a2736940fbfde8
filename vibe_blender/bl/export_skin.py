"""Skin-weight pruning of an export's temporary mesh copies, measured on the originals (bpy side).

The maths (prune, renormalise, linear-blend error) is :mod:`..core.skinning`; this module reads the
weights and bone matrices from Blender and writes the pruned weights back to a copy.
"""
from __future__ import annotations

import bpy
import numpy as np

from ..core import skinning


def bone_weights(mesh: bpy.types.Object, bone_names: list) -> tuple:
    """(dense weights (V, J) float64 over ``bone_names``, vertex-group index → column or −1)."""
    column = {n: j for j, n in enumerate(bone_names)}
    group_col = np.array([column.get(g.name, -1) for g in mesh.vertex_groups] or [-1])
    weights = np.zeros((len(mesh.data.vertices), len(bone_names)))
    for v in mesh.data.vertices:
        for g in v.groups:
            j = group_col[g.group] if g.group < len(group_col) else -1
            if j >= 0:
                weights[v.index, j] += g.weight
    return weights, group_col


def _skin_matrices(armature: bpy.types.Object, bone_names: list, frames: range) -> np.ndarray:
    """(T, J, 4, 4) armature-space skinning matrices (posed · rest⁻¹) at the given scene frames."""
    scene = bpy.context.scene
    back = scene.frame_current
    rest_inv = [armature.data.bones[n].matrix_local.inverted() for n in bone_names]
    out = np.zeros((len(frames), len(bone_names), 4, 4))
    try:
        for i, f in enumerate(frames):
            scene.frame_set(f)
            out[i] = [np.array(armature.pose.bones[n].matrix @ r) for n, r in zip(bone_names, rest_inv)]
    finally:
        scene.frame_set(back)
    return out


def prune_mesh(mesh: bpy.types.Object, copy: bpy.types.Object, armature: bpy.types.Object,
                limit: int, frames: range) -> dict:
    """Prune ``copy``'s bone weights to ``limit`` per vertex (renormalised), measured on the original
    ``mesh`` deformed by ``armature`` over ``frames``; returns {vertices changed, max error in m}."""
    names = [b.name for b in armature.data.bones]
    weights, group_col = bone_weights(mesh, names)
    pruned = skinning.prune(weights, limit)
    changed = np.flatnonzero(np.any(np.abs(pruned - skinning.normalised(weights)) > 0, axis=1))
    error = 0.0
    if len(changed):
        co = np.zeros(3 * len(mesh.data.vertices))
        mesh.data.vertices.foreach_get("co", co)
        to_arm = np.array(armature.matrix_world.inverted() @ mesh.matrix_world)
        rest = co.reshape(-1, 3)[changed] @ to_arm[:3, :3].T + to_arm[:3, 3]
        error = float(skinning.pruning_error(rest, weights[changed], pruned[changed],
                                             _skin_matrices(armature, names, frames)).max())
        _write_weights(copy, pruned, group_col, changed)
    return {"vertices_pruned": int(len(changed)), "max_influences_before": int(skinning.influence_counts(
        weights).max(initial=0)), "pruning_error_m": error}


def _write_weights(obj: bpy.types.Object, weights: np.ndarray, group_col: np.ndarray, rows) -> None:
    """Set ``obj``'s bone-group weights of the vertices ``rows`` to ``weights`` (0 removes them)."""
    removals: dict[int, list] = {}
    vertices = obj.data.vertices
    for v in rows:
        for g in vertices[int(v)].groups:
            j = group_col[g.group] if g.group < len(group_col) else -1
            if j < 0:
                continue
            if weights[v, j] > 0:
                g.weight = float(weights[v, j])
            else:
                removals.setdefault(g.group, []).append(int(v))
    for group, indices in removals.items():
        obj.vertex_groups[group].remove(indices)
