"""BVH export of a baked character: Y-up, standard channel layout (root positions only) by default.

Blender's BVH exporter writes armature space and ignores the object transform; the export works on
a temporary Y-up copy of the armature (see :func:`_y_up_copy`). In the standard layout, a ground
root bone whose only child leaves its rest location (the character's ``root`` → ``pelvis``) is
merged into that child on the copy, so the BVH root carries the full motion.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import bpy
import numpy as np
from mathutils import Matrix

from ..core import export_presets as presets
from ..core.errors import UserInputError
from . import compat
from .export import (
    ExportError,
    atomic_export,
    character_objects,
    check_selectable,
    run_operator,
)
from .export_selection import isolated_selection
from .export_timing import clip_of, fill_report

RIGID_SCALE_TOLERANCE = 1e-4  # an armature scaled by more than this cannot be written as BVH


@contextlib.contextmanager
def _private_action(owner: bpy.types.ID) -> Iterator[bpy.types.Action | None]:
    """Give ``owner`` a temporary copy of its action (same slot); the original is put back after."""
    ad = owner.animation_data
    if ad is None or ad.action is None:
        yield None
        return
    original = ad.action
    slot = getattr(ad, "action_slot", None)
    copy = original.copy()
    try:
        ad.action = copy
        if slot is not None:
            ad.action_slot = copy.slots[slot.identifier]
        yield copy
    finally:
        ad.action = original
        if slot is not None:
            ad.action_slot = slot
        bpy.data.actions.remove(copy)


def _check_unscaled(armature: bpy.types.Object) -> None:
    """Raise UserInputError when the armature object is scaled (BVH offsets could not follow)."""
    scale = armature.matrix_world.to_scale()
    if max(abs(s - 1.0) for s in scale) > RIGID_SCALE_TOLERANCE:
        raise UserInputError(f"armature {armature.name!r} is scaled {tuple(round(s, 3) for s in scale)}; "
                             "apply its scale (Object > Apply > Scale) before exporting BVH")


@contextlib.contextmanager
def _y_up_copy(armature: bpy.types.Object) -> Iterator[bpy.types.Object]:
    """A temporary copy of the armature (same action) whose rest bones are in Y-up world space.

    Blender's BVH exporter writes armature space as is and ignores the object transform; moving
    the copy's rest skeleton by ``BVH_FROM_BLENDER @ matrix_world`` (a rigid transform) turns the
    whole animation rigidly into world space with BVH's Y-up convention, while the user's armature
    stays untouched. The copy and its data are removed afterwards.
    """
    data = armature.data.copy()
    copy = armature.copy()
    copy.data = data
    bpy.context.scene.collection.objects.link(copy)
    try:
        data.transform(Matrix(presets.BVH_FROM_BLENDER) @ armature.matrix_world)
        copy.matrix_world = Matrix.Identity(4)
        yield copy
    finally:
        bpy.data.objects.remove(copy)
        bpy.data.armatures.remove(data)


def export_bvh_file(armature: bpy.types.Object, path: str | os.PathLike, *, timing: str = "video",
                    layout: str = "standard", report: dict | None = None) -> str:
    """Export the armature's action as Y-up BVH (Frame Time = 1 / scene fps); return the path.

    ``layout`` "standard": 6 channels (position + rotation) on the root, 3 rotations elsewhere; a
    ground root bone whose only child moves (the character's root → pelvis) is merged into that
    child, which becomes the BVH root. "positions": position channels on every joint, all bones.
    ``timing`` "video": file frame k is video frame k (before a late person's first frame the first
    pose repeats; BVH has no start time); "clip": file frame 0 is the person's first frame;
    "hidden": as "video" (BVH has no scale or visibility channel to hide the lead-in: the first pose
    shows from 0 s; the report's ``note`` says so).
    """
    options = presets.bvh_options(layout)
    armature, _ = character_objects(armature)
    check_selectable([armature])
    _check_unscaled(armature)
    presets.check_choice("timing", timing, presets.TIMING_MODES)
    clip = clip_of(armature, "video" if timing == "hidden" else timing, None)  # BVH cannot hide
    first = min(clip.origin, clip.start)
    merge = _bvh_merge_plan(armature) if layout == "standard" else None
    root = merge[1] if merge else armature.data.bones[0].name if armature.data.bones else None
    facts = fill_report(report, clip, "bvh", layout=layout, frames_written=clip.end - first + 1, root=root)
    facts.update(timing=timing, lead_in_frames=clip.start - first)
    if timing == "hidden" and clip.start > first:
        facts["note"] = (f"BVH has no scale or visibility channel: the first pose is shown from 0 s "
                         f"until the person's first frame at {clip.shown_from_s:.3f} s")

    def write(tmp: str) -> None:
        with _y_up_copy(armature) as copy, isolated_selection([copy], copy), _private_action(copy):
            if merge:
                _merge_root(armature, copy, *merge, range(first, clip.end + 1), clip.start)
            run_operator(bpy.ops.export_anim.bvh, "BVH", tmp, frame_start=first, frame_end=clip.end,
                          **options)

    return atomic_export(path, presets.FILE_EXTENSIONS["bvh"], write)


def _moving_locations(armature: bpy.types.Object) -> set:
    """Names of the pose bones whose ``location`` keys are not all zero (moved off their rest)."""
    moving = set()
    for fc in compat.action_fcurves(armature.animation_data.action):
        if fc.data_path.startswith('pose.bones["') and fc.data_path.endswith('"].location'):
            values = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
            fc.keyframe_points.foreach_get("co", values)
            if len(values) and np.any(values[1::2] != 0):
                moving.add(fc.data_path[len('pose.bones["'):-len('"].location')])
    return moving


def _bvh_merge_plan(armature: bpy.types.Object) -> tuple[str, str] | None:
    """(ground root, child) to merge for the standard BVH layout, or None when no bone but the root
    leaves its rest location (then root-only position channels are exact).

    Raises UserInputError when another bone moves its location (only the root may, in BVH).
    """
    bones = armature.data.bones
    roots = [b for b in bones if b.parent is None]
    movers = {n for n in _moving_locations(armature) if n in bones and bones[n].parent is not None}
    if not movers:
        return None
    mover = bones[next(iter(movers))]
    if len(movers) == 1 and len(roots) == 1 and mover.parent == roots[0] and len(roots[0].children) == 1:
        return roots[0].name, mover.name
    raise UserInputError(f"bones {sorted(movers)} of {armature.name!r} move their location, which the "
                         "standard BVH layout keeps on the root only; export with layout='positions'")


def _merge_root(original: bpy.types.Object, copy: bpy.types.Object, root: str, child: str,
                frames: range, first_key: int) -> None:
    """Delete ``root`` from the (Y-up) copy and key ``child`` with its full armature-space motion.

    The copy's rest is ``A`` · the original's (A = BVH_FROM_BLENDER · matrix_world, rigid), so the
    child's posed matrix in the copy is A · its posed matrix in the original, sampled at ``frames``;
    frames before ``first_key`` (a late person's lead-in) get the first pose (the original is hidden
    there, so Blender does not evaluate it: its pose would be stale).
    """
    scene = bpy.context.scene
    a = Matrix(presets.BVH_FROM_BLENDER) @ original.matrix_world
    posed = []
    for f in frames:
        scene.frame_set(max(f, first_key))
        posed.append(a @ original.pose.bones[child].matrix)
    bpy.ops.object.mode_set(mode="EDIT")
    edit = copy.data.edit_bones
    edit[child].use_connect = False
    edit.remove(edit[root])
    bpy.ops.object.mode_set(mode="OBJECT")
    rest_inv = copy.data.bones[child].matrix_local.inverted()
    pb = copy.pose.bones[child]
    if pb.rotation_mode != "QUATERNION":
        raise UserInputError(f"bone {child!r} must use quaternion rotation for the standard BVH layout; "
                             "export with layout='positions'")
    loc, quats = np.zeros((len(posed), 3)), np.zeros((len(posed), 4))
    prev = None
    for i, m in enumerate(posed):
        t, q, _ = (rest_inv @ m).decompose()
        if prev is not None:
            q.make_compatible(prev)
        loc[i], quats[i], prev = t, q, q
    _rekey(copy, child, np.array(frames, dtype=np.float64), loc, quats)


def _rekey(obj: bpy.types.Object, bone: str, frames: np.ndarray, loc: np.ndarray, quats: np.ndarray) -> None:
    """Replace the keys of ``bone``'s location and quaternion curves in ``obj``'s action."""
    prefix = f'pose.bones["{bone}"].'
    curves = {(fc.data_path, fc.array_index): fc for fc in compat.action_fcurves(obj.animation_data.action)}
    for name, values in (("location", loc), ("rotation_quaternion", quats)):
        for k in range(values.shape[1]):
            fc = curves.get((prefix + name, k))
            if fc is None:
                raise ExportError(f"bone {bone!r} has no {name}[{k}] curve to carry the BVH root motion")
            fc.keyframe_points.clear()
            compat.write_keys(fc, frames, values[:, k])
