"""Test rigs for the export tests: an SMPL-like 24-bone armature with a skinned mesh and a random
animation keyed in one pass (keyframe_points.add + foreach_set), on Blender 4.2 through 5.2.

Test-only helper; the add-on's own character/bake code is tested elsewhere.
"""
from __future__ import annotations

import numpy as np

import bpy
from mathutils import Matrix

from vibe_blender.core.motion_file import SMPL_JOINT_NAMES, SMPL_PARENTS

#: Rough SMPL rest joint positions (Blender axes: z up, the body faces −Y), metres.
REST_HEADS = np.array([
    [0, 0, 0.95], [0.07, 0, 0.86], [-0.07, 0, 0.86], [0, 0, 1.06], [0.1, 0, 0.5], [-0.1, 0, 0.5],
    [0, 0, 1.2], [0.1, 0.03, 0.1], [-0.1, 0.03, 0.1], [0, 0, 1.26], [0.11, -0.1, 0.03], [-0.11, -0.1, 0.03],
    [0, 0, 1.45], [0.08, 0, 1.38], [-0.08, 0, 1.38], [0, -0.02, 1.55], [0.18, 0, 1.4], [-0.18, 0, 1.4],
    [0.43, 0, 1.4], [-0.43, 0, 1.4], [0.68, 0, 1.4], [-0.68, 0, 1.4], [0.76, 0, 1.4], [-0.76, 0, 1.4],
])
BONE_LENGTH = 0.06  # m, tails point +Z (bone rolls do not matter for these tests)
MAX_ANGLE = 0.8  # rad, random joint rotations stay moderate


def fcurve_collection(obj: bpy.types.Object, action: bpy.types.Action):
    """Assign ``action`` to ``obj`` and return the F-curve collection to create curves in."""
    ad = obj.animation_data_create()
    if bpy.app.version < (4, 4, 0):
        ad.action = action
        return action.fcurves
    from bpy_extras.anim_utils import action_ensure_channelbag_for_slot
    slot = action.slots.new(id_type="OBJECT", name=obj.name)
    ad.action = action
    ad.action_slot = slot
    return action_ensure_channelbag_for_slot(action, slot).fcurves


def build_armature(name: str = "Rig") -> bpy.types.Object:
    """Create and link a 24-bone armature (SMPL names/parents, heads at REST_HEADS)."""
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    bones = []
    for j, joint in enumerate(SMPL_JOINT_NAMES):
        b = arm.edit_bones.new(joint)
        b.head = REST_HEADS[j]
        b.tail = REST_HEADS[j] + [0, 0, BONE_LENGTH]
        if SMPL_PARENTS[j] >= 0:
            b.parent = bones[SMPL_PARENTS[j]]
        bones.append(b)
    bpy.ops.object.mode_set(mode="OBJECT")
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


def add_skinned_mesh(armature: bpy.types.Object, seed: int = 0) -> bpy.types.Object:
    """A small mesh: one triangle near each joint, each vertex skinned to its joint and parent."""
    rng = np.random.default_rng(seed)
    verts, faces = [], []
    for j in range(len(SMPL_JOINT_NAMES)):
        base = len(verts)
        verts += list(REST_HEADS[j] + rng.uniform(-0.04, 0.04, (3, 3)))
        faces.append((base, base + 1, base + 2))
    mesh = bpy.data.meshes.new("Body")
    mesh.from_pydata([tuple(v) for v in verts], [], faces)
    obj = bpy.data.objects.new("Body", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.parent = armature
    obj.modifiers.new("Armature", "ARMATURE").object = armature
    for j, joint in enumerate(SMPL_JOINT_NAMES):
        group = obj.vertex_groups.new(name=joint)
        parent = SMPL_PARENTS[j]
        weight = 1.0 if parent < 0 else 0.7
        group.add([3 * j, 3 * j + 1, 3 * j + 2], weight, "REPLACE")
        if parent >= 0:
            obj.vertex_groups[SMPL_JOINT_NAMES[parent]].add([3 * j + 1], 0.3, "ADD")
    return obj


def random_quaternions(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Unit quaternions (w, x, y, z) of random axes and angles up to MAX_ANGLE, shape (*shape, 4)."""
    axis = rng.normal(size=(*shape, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(0, MAX_ANGLE, shape)[..., None]
    return np.concatenate([np.cos(angle / 2), axis * np.sin(angle / 2)], -1)


def _key(fcurves, path: str, index: int, group: str, frames: np.ndarray, values: np.ndarray) -> None:
    if bpy.app.version < (4, 4, 0):
        fc = fcurves.new(path, index=index, action_group=group)
    else:
        fc = fcurves.new(path, index=index, group_name=group)
    fc.keyframe_points.add(len(frames))
    fc.keyframe_points.foreach_set("co", np.column_stack([frames, values]).astype(np.float32).ravel())
    fc.keyframe_points.foreach_set("interpolation", [1] * len(frames))  # LINEAR
    fc.update()


def animate(armature: bpy.types.Object, num_frames: int, frame_start: int = 1,
            seed: int = 0) -> bpy.types.Action:
    """Key random joint rotations and a walking root (pelvis location) on frames frame_start…+N−1."""
    rng = np.random.default_rng(seed)
    frames = np.arange(frame_start, frame_start + num_frames, dtype=np.float64)
    quats = random_quaternions(rng, (num_frames, len(SMPL_JOINT_NAMES)))
    root = np.column_stack([np.linspace(0, 1.2, num_frames), np.linspace(0, -0.8, num_frames),
                            0.05 * np.sin(np.linspace(0, 6, num_frames))])
    action = bpy.data.actions.new(f"{armature.name}Action")
    fcurves = fcurve_collection(armature, action)
    for j, joint in enumerate(SMPL_JOINT_NAMES):
        for k in range(4):
            _key(fcurves, f'pose.bones["{joint}"].rotation_quaternion', k, joint, frames, quats[:, j, k])
    for k in range(3):
        pelvis = SMPL_JOINT_NAMES[0]
        _key(fcurves, f'pose.bones["{pelvis}"].location', k, pelvis, frames, root[:, k])
    return action


def head_positions(armature: bpy.types.Object, frames, names=SMPL_JOINT_NAMES) -> np.ndarray:
    """World positions (len(frames), len(names), 3) of the bone heads at the given scene frames."""
    scene = bpy.context.scene
    out = np.zeros((len(frames), len(names), 3))
    for i, f in enumerate(frames):
        scene.frame_set(int(f))
        mw = armature.matrix_world
        out[i] = [tuple(mw @ armature.pose.bones[n].head) for n in names]
    return out


def evaluated_vertices(obj: bpy.types.Object, frame: int) -> np.ndarray:
    """World positions (V, 3) of the evaluated (deformed) mesh at a scene frame."""
    bpy.context.scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(depsgraph)
    mesh = ev.to_mesh()
    co = np.zeros(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", co)
    mw = np.array(Matrix(ev.matrix_world))
    ev.to_mesh_clear()
    co = co.reshape(-1, 3)
    return co @ mw[:3, :3].T + mw[:3, 3]
