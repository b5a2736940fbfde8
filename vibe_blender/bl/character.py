"""Build one person's character: an SMPL armature (``VIBE_<id>``) and its skinned mesh (``VIBE_<id>_body``).

The mesh is the body model in the track's estimated shape (``betas_track``) at rest; skin weights
become 24 vertex groups named after the bones; an Armature modifier deforms it. The rest skeleton
and its conventions (root bone on the ground, bone axes) are defined in ``core.skeleton``. The
armature stores what baking needs to rebuild that skeleton without the motion file:
``["vibe_rest_joints"]`` (72 floats, SMPL canonical metres) and ``["vibe_canonical_offset"]`` (3).
Pose correctives (``posedirs``, when the body has them and ``correctives=True``): one relative shape
key per pose feature (207: ``pc_<joint>_<row><col>``, the entry (row, col) of R_joint − I), holding
that posedirs column turned into armature axes. ``bake_track`` keys their values, so the evaluated
mesh is SMPL exactly (correctives are added at rest, then skinned, as in SMPL). Cost for 6890
vertices: ~17 MB of shape keys, and mesh evaluation ~23 ms per frame instead of ~3 ms (measured on the
project's 2-core machine). ``correctives=False`` gives the lighter rig: plain linear-blend skinning
without SMPL's pose correctives.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from ..core.body import shaped_rest
from ..core.frames import SMPL_TO_BLENDER
from ..core.skeleton import (BONE_NAMES, NUM_SMPL_JOINTS, ROOT_INDEX, Skeleton, build_skeleton,
                             skeleton_from_joints)

log = logging.getLogger(__name__)

PROP_REST_JOINTS = "vibe_rest_joints"
PROP_OFFSET = "vibe_canonical_offset"
PROP_TRACK = "vibe_track_id"
PROP_BODY = "vibe_body"  # on the mesh object: marks it as the character's body
CORRECTIVE_PREFIX = "pc_"
CORRECTIVE_RANGE = 2.0  # |R − I| entries lie in [−2, 2]
WEIGHT_EPS = 0.0  # weights at or below this are not stored in vertex groups


def armature_name(track_id: int) -> str:
    """Name of the armature object and data of a track: ``VIBE_<id>``."""
    return f"VIBE_{int(track_id)}"


def build_character(motion: Any, track_id: int, *, name: str | None = None,
                    collection: bpy.types.Collection | None = None,
                    correctives: bool = True) -> bpy.types.Object:
    """Create the armature + skinned mesh for one track of ``motion`` and return the armature object.

    ``motion``: a ``core.motion_file.Motion``. ``name`` defaults to ``VIBE_<id>``; the mesh is
    ``<name>_body``. Objects go to ``collection`` (default: the scene's master collection).
    ``correctives`` adds the pose-corrective shape keys when the body has ``posedirs``. On any
    error everything created so far is removed and the exception propagates (scene unchanged).
    """
    track = motion.track(track_id)
    verts, joints = shaped_rest(motion.body, track.betas_track)
    skel = build_skeleton(joints, verts)
    name = name or armature_name(track_id)
    collection = collection or bpy.context.scene.collection
    created: list[bpy.types.ID] = []
    try:
        arm_obj = _armature_object(name, skel, collection, created)
        mesh_obj = _mesh_object(f"{name}_body", skel.to_armature(verts), motion.body, collection, created)
        _skin(mesh_obj, arm_obj, np.asarray(motion.body.weights))
        if correctives and motion.body.posedirs is not None:
            _corrective_keys(mesh_obj, np.asarray(motion.body.posedirs))
        arm_obj[PROP_TRACK] = int(track_id)
    except BaseException:
        _remove(created)
        raise
    log.info("built character %s (%d vertices)", name, len(verts))
    return arm_obj


def skeleton_of(armature: bpy.types.Object) -> Skeleton:
    """The core Skeleton of an armature made by :func:`build_character`.

    Rebuilt from the stored rest joints, with the bone rest rotations taken from Blender's own
    ``bone.matrix_local`` (re-orthonormalised): Blender derives them from head/tail/roll in
    float32 (~2e-5 off the numpy design), and baking against the real rest frames removes that error.
    """
    if PROP_REST_JOINTS not in armature or PROP_OFFSET not in armature:
        raise ValueError(f"{armature.name} was not made by build_character (no {PROP_REST_JOINTS}); "
                         "build the character with vibe_blender first")
    joints = np.asarray(armature[PROP_REST_JOINTS], np.float64).reshape(NUM_SMPL_JOINTS, 3)
    skel = skeleton_from_joints(joints, np.asarray(armature[PROP_OFFSET], np.float64))
    bones = armature.data.bones
    actual = np.array([[list(row) for row in bones[n].matrix_local.to_3x3()] for n in BONE_NAMES])
    u, _, vt = np.linalg.svd(actual)
    return replace(skel, rest_rot=u @ vt)


def _armature_object(name: str, skel: Skeleton, collection, created: list) -> bpy.types.Object:
    data = bpy.data.armatures.new(name)
    created.append(data)
    obj = bpy.data.objects.new(name, data)
    created.append(obj)
    collection.objects.link(obj)
    _edit_bones(obj, skel)
    obj[PROP_REST_JOINTS] = skel.rest_joints_canonical.ravel().tolist()
    obj[PROP_OFFSET] = skel.canonical_offset.tolist()
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


def _edit_bones(obj: bpy.types.Object, skel: Skeleton) -> None:
    """Create the 25 bones in EDIT mode (the only mode switch in the add-on)."""
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = obj.data.edit_bones
        rest = skel.rest_matrices()
        order = [ROOT_INDEX] + list(range(NUM_SMPL_JOINTS))  # parents before children
        made = {}
        for j in order:
            eb = bones.new(BONE_NAMES[j])
            eb.head, eb.tail = skel.heads[j].tolist(), skel.tails[j].tolist()
            eb.matrix = Matrix(rest[j].tolist())  # sets the roll; keeps the length
            parent = int(skel.parents[j])
            if parent >= 0:
                eb.parent = made[parent]
            made[j] = eb
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous


def _mesh_object(name: str, verts: np.ndarray, body: Any, collection, created: list) -> bpy.types.Object:
    """Mesh from armature-space vertices (V,3) and the body's faces (F,3), bulk-filled."""
    faces = np.asarray(body.faces, np.int32)
    mesh = bpy.data.meshes.new(name)
    created.append(mesh)
    mesh.vertices.add(len(verts))
    mesh.vertices.foreach_set("co", np.asarray(verts, np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    obj = bpy.data.objects.new(name, mesh)
    created.append(obj)
    collection.objects.link(obj)
    obj[PROP_BODY] = True
    return obj


def corrective_key_names() -> list[str]:
    """Names of the 207 corrective shape keys, in posedirs row order (joints 1..23, R − I row-major)."""
    return [f"{CORRECTIVE_PREFIX}{BONE_NAMES[j]}_{r}{c}"
            for j in range(1, NUM_SMPL_JOINTS) for r in range(3) for c in range(3)]


def _corrective_keys(obj: bpy.types.Object, posedirs: np.ndarray) -> None:
    """Basis + one relative shape key per posedirs row (207, 3V), offsets in armature axes."""
    basis = obj.shape_key_add(name="Basis", from_mix=False)  # owned (and removed) with the mesh
    rest = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", rest)
    rest = rest.reshape(-1, 3).astype(np.float64)
    offsets = posedirs.reshape(posedirs.shape[0], -1, 3).astype(np.float64) @ SMPL_TO_BLENDER.T
    for name, off in zip(corrective_key_names(), offsets):
        kb = obj.shape_key_add(name=name, from_mix=False)
        kb.slider_min, kb.slider_max = -CORRECTIVE_RANGE, CORRECTIVE_RANGE
        kb.data.foreach_set("co", (rest + off).astype(np.float32).ravel())
        kb.relative_key = basis
        kb.value = 0.0


def body_of(armature: bpy.types.Object) -> bpy.types.Object | None:
    """The body mesh object built for ``armature`` (None if it was deleted)."""
    return next((c for c in armature.children if c.type == "MESH" and c.get(PROP_BODY)), None)


def corrective_key(body: bpy.types.Object | None) -> bpy.types.Key | None:
    """The shape-key datablock holding the corrective keys of ``body``, or None."""
    key = body.data.shape_keys if body is not None else None
    if key is None or corrective_key_names()[0] not in key.key_blocks:
        return None
    return key


def _skin(mesh_obj: bpy.types.Object, arm_obj: bpy.types.Object, weights: np.ndarray) -> None:
    """24 vertex groups from weights (V,24) (one ``add`` call per distinct weight), Armature modifier."""
    for j in range(NUM_SMPL_JOINTS):
        group = mesh_obj.vertex_groups.new(name=BONE_NAMES[j])
        col = weights[:, j]
        idx = np.nonzero(col > WEIGHT_EPS)[0]
        values, inverse = np.unique(col[idx], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        starts = np.searchsorted(inverse[order], np.arange(len(values) + 1))
        for k, value in enumerate(values.tolist()):
            group.add(idx[order[starts[k]:starts[k + 1]]].tolist(), value, "REPLACE")
    mesh_obj.parent = arm_obj
    mod = mesh_obj.modifiers.new("Armature", "ARMATURE")
    mod.object = arm_obj
    mod.use_vertex_groups = True
    mod.use_deform_preserve_volume = False


def _remove(ids: list) -> None:
    """Remove datablocks created by a failed build (objects first, then their data)."""
    collections = ((bpy.types.Object, bpy.data.objects), (bpy.types.Mesh, bpy.data.meshes),
                   (bpy.types.Armature, bpy.data.armatures))
    for block in reversed(ids):
        for kind, coll in collections:
            if isinstance(block, kind):
                coll.remove(block)
