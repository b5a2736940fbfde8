"""FBX / BVH / glTF export of a baked character with Blender's own exporters (fixed options).

Option tables live in :mod:`vibe_blender.core.export_presets`. Every export:
- writes only the character (armature + its meshes) by selecting them, and restores the user's
  selection, active object, mode, scene frame range and current frame afterwards;
- covers the frame range of the armature's action at the scene's fps, at export times where video
  frame 0 is 0 s (``timing="video"``; ``"clip"``: the person's first frame is 0 s; ``"hidden"``: from
  0 s, invisible (root bones at scale HIDDEN_SCALE) until the person's first frame, see
  :mod:`.export_timing`);
- FBX: nodes' default transforms = rest pose, take ``<armature>_<take>``, GlobalSettings time span =
  the take's (patched in the file, :mod:`..core.fbx_binary`); glTF: times rewritten
  (:mod:`..core.glb_binary`); BVH: the standard channel layout (root positions only);
- prunes skin weights to ``max_influences`` on temporary mesh copies and measures the error;
- leaves the user's objects, actions (bit for bit) and scene as they were, and fills an optional
  ``report`` dict with the facts of the file;
- writes to a temporary name in the target folder and renames on success, so a failed export
  leaves no partial file behind.
"""
from __future__ import annotations

import contextlib
import logging
import os
import struct
from typing import Any, Callable, Iterable, Iterator

import bpy
import numpy as np
from mathutils import Matrix

from ..core import atomic, fbx_binary, glb_binary, skinning
from ..core import export_presets as presets
from ..core.errors import UserInputError, VibeError
from . import compat
from .export_selection import isolated_selection
from .export_skin import bone_weights, prune_mesh
from .export_timing import action_frame_range, clip_of, fill_report, keyed_actions, root_bones, timed_actions

log = logging.getLogger(__name__)

class ExportError(VibeError):
    """Blender's exporter failed on a valid request (the message says which file and why)."""


def character_objects(objects: bpy.types.Object | Iterable[bpy.types.Object]
                      ) -> tuple[bpy.types.Object, list]:
    """(armature, meshes) for an armature or any objects of a character.

    Meshes are the given mesh objects plus every mesh child of the armature. Raises UserInputError
    when no armature is among (or parent of) the given objects.
    """
    given = [objects] if isinstance(objects, bpy.types.Object) else list(objects)
    armatures = [o for o in given if o.type == "ARMATURE"]
    armatures += [o.parent for o in given if o.type == "MESH" and o.parent and o.parent.type == "ARMATURE"]
    if not armatures:
        raise UserInputError("nothing to export: pass the character's armature (or its mesh)")
    armature = armatures[0]
    meshes = [o for o in given if o.type == "MESH"]
    meshes += [c for c in armature.children if c.type == "MESH" and c not in meshes]
    return armature, meshes


def check_target(path: str | os.PathLike, extension: str) -> str:
    """Absolute target path; raise UserInputError for a missing/unwritable folder or a wrong extension."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    if not path.lower().endswith(extension):
        raise UserInputError(f"export path {path} must end with {extension}; rename the target file")
    if not os.path.isdir(folder):
        raise UserInputError(f"export folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UserInputError(f"cannot write {path}: permission denied; choose a writable folder")
    if os.path.isdir(path):
        raise UserInputError(f"export path {path} is a folder; give a file name ending with {extension}")
    return path


def atomic_export(path: str, extension: str, write: Callable[[str], Any]) -> str:
    """Call ``write(temp_path)`` then rename the temp file onto ``path`` (core.atomic: a failure
    leaves ``path`` as it was, stale temp files of killed exports are removed); a full disk is an
    ExportError naming the free space."""
    path = check_target(path, extension)
    try:
        with atomic.atomic_path(path) as tmp:
            try:
                open(tmp, "wb").close()  # probe: the folder really takes new files
            except OSError as exc:
                raise UserInputError(f"cannot write {path}: {exc.strerror}; choose a writable folder") from None
            write(str(tmp))
            if not tmp.is_file() or tmp.stat().st_size == 0:
                raise ExportError(f"Blender's exporter wrote nothing for {path}; see the console log")
    except atomic.DiskFullError as exc:
        raise ExportError(str(exc)) from None
    return path


def check_selectable(objects: list) -> None:
    """Raise UserInputError when an object is not in the current view layer (cannot be selected)."""
    view_layer = bpy.context.view_layer
    view_layer.update()  # objects linked since the last update are not in view_layer.objects yet
    names = view_layer.objects
    missing = [o.name for o in objects if o.name not in names]
    if missing:
        raise UserInputError(f"objects {missing} are not in the current view layer; link them to the scene")


#: Texts of a full-disk failure inside Blender's exporters (their exception text is all we get).
DISK_FULL_MARKS = ("No space left on device", "[Errno 28]", "Disk quota exceeded", "[Errno 122]")


def run_operator(op: Callable[..., set], label: str, path: str, **kwargs: Any) -> None:
    """Call an exporter operator; turn its failures into ExportError with a one-line message."""
    try:
        result = op(filepath=path, **kwargs)
    except RuntimeError as exc:
        text = str(exc)
        if any(mark in text for mark in DISK_FULL_MARKS):
            raise ExportError(f"{label} export failed: {atomic.disk_full_message(path)}") from None
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        # Blender wraps a Python exporter's exception as "Error: Python: Traceback ...": the
        # exception's own last line says what went wrong.
        first = (lines[-1] if lines and "Traceback" in lines[0] else lines[0]) if lines else type(exc).__name__
        raise ExportError(f"{label} export failed: {first}") from exc
    if "FINISHED" not in result:
        raise ExportError(f"{label} export did not finish ({sorted(result)}); see the console log")


def export_fbx_file(objects, path: str | os.PathLike, preset: str = "generic", *, timing: str = "video",
                    max_influences: Any = presets.PRESET_DEFAULT, take: str | None = None,
                    report: dict | None = None) -> str:
    """Export the character as FBX with an engine preset (generic / unity / unreal); return the path.

    The animation is the armature's active action over its keyed frame range at the scene fps, keyed
    at export times from ``timing`` (see :mod:`..core.export_presets`); the nodes' default transforms
    are the rest pose; the take is named ``<armature>_<take>``; the GlobalSettings time span is the
    take's. ``max_influences``: skin influences kept per vertex (the preset's by default, None: all).
    ``report`` (a dict) receives the facts of the export (see :func:`fill_report`).
    """
    options = presets.fbx_options(preset)
    key = preset.lower()
    limit = presets.resolve_max_influences(max_influences, presets.FBX_MAX_INFLUENCES[key])
    armature, meshes = character_objects(objects)
    check_selectable([armature, *meshes])
    clip = clip_of(armature, timing, take)
    factor = presets.CENTIMETRES_PER_METRE if key in presets.FBX_CENTIMETRE_PRESETS else 1.0
    facts = fill_report(report, clip, "fbx", max_influences=limit)
    log.info("FBX %s: %s + %d meshes, frames %d-%d", preset, armature.name, len(meshes), clip.start, clip.end)

    def write(tmp: str) -> None:
        with contextlib.ExitStack() as stack:
            arm, mesh_list = stack.enter_context(_export_copies(armature, meshes, factor, limit, facts))
            stack.enter_context(isolated_selection([arm, *mesh_list], arm))
            stack.enter_context(timed_actions(arm, mesh_list, clip))
            stack.enter_context(_scene_named(bpy.context.scene, clip.name))
            run_operator(bpy.ops.export_scene.fbx, "FBX", tmp, **options)
        with _file_fixes("FBX", path):
            fbx_binary.set_time_span(tmp, clip.first_s, clip.last_s)
            if clip.hidden_frames > 0:  # the root scale steps to 1 (a root's own scale keys step too)
                fbx_binary.set_constant_keys(tmp, root_bones(armature), fbx_binary.SCALING)

    return atomic_export(path, presets.FILE_EXTENSIONS["fbx"], write)


@contextlib.contextmanager
def _file_fixes(label: str, path: str) -> Iterator[None]:
    """Turn a failure of the in-file fixes (time span, key times, stepped keys) into ExportError."""
    try:
        yield
    except (fbx_binary.FbxFormatError, glb_binary.GlbFormatError, struct.error) as exc:
        raise ExportError(f"{label} export of {path} could not be finished: {exc}; "
                          "see the console log") from exc


@contextlib.contextmanager
def _scene_named(scene: bpy.types.Scene, name: str) -> Iterator[None]:
    """Rename the scene (Blender's FBX exporter names the take and document after it) for a while."""
    old = scene.name
    scene.name = name
    try:
        yield
    finally:
        scene.name = old


def _conjugate(m: Matrix, factor: float) -> Matrix:
    """S·m·S⁻¹ for S = uniform scale ``factor``: a rigid transform with its translation scaled."""
    out = m.copy()
    out.translation = m.translation * factor
    return out


def _scale_locations(action: bpy.types.Action, factor: float) -> None:
    """Multiply every ``location`` F-curve of ``action`` (keys and handles) by ``factor``."""
    for fc in compat.action_fcurves(action):
        if not fc.data_path.endswith("location"):
            continue
        for prop in ("co", "handle_left", "handle_right"):
            values = np.zeros(2 * len(fc.keyframe_points))
            fc.keyframe_points.foreach_get(prop, values)
            values[1::2] *= factor
            fc.keyframe_points.foreach_set(prop, values)
        fc.update()


def _linked_copy(obj: bpy.types.Object, datablocks, undo: list) -> tuple:
    """Copy of ``obj`` with its own copy of its data, linked to the scene; removal queued in ``undo``.

    ``datablocks`` is the bpy.data collection of the object's data (armatures, meshes).
    """
    data = obj.data.copy()
    undo.append(lambda: datablocks.remove(data))
    copy = obj.copy()
    copy.data = data
    undo.append(lambda: bpy.data.objects.remove(copy))
    bpy.context.scene.collection.objects.link(copy)
    return copy, data


def _scaled_armature(armature: bpy.types.Object, factor: float, undo: list) -> bpy.types.Object:
    """Copy of the armature with rest bones, object transform and location keys scaled by ``factor``."""
    copy, data = _linked_copy(armature, bpy.data.armatures, undo)
    data.transform(Matrix.Scale(factor, 4))
    copy.matrix_basis = _conjugate(armature.matrix_basis, factor)
    action = armature.animation_data.action.copy()
    undo.append(lambda: bpy.data.actions.remove(action))
    _scale_locations(action, factor)
    copy.animation_data.action = action
    return copy


def _scaled_mesh(mesh: bpy.types.Object, armature: bpy.types.Object, arm_copy: bpy.types.Object,
                 factor: float, undo: list) -> bpy.types.Object:
    """Copy of a skinned mesh (shape keys included) scaled by ``factor``, deformed by ``arm_copy``."""
    copy, data = _linked_copy(mesh, bpy.data.meshes, undo)
    if factor != 1.0:
        data.transform(Matrix.Scale(factor, 4), shape_keys=True)
    if mesh.parent == armature:
        copy.parent = arm_copy
    copy.matrix_parent_inverse = _conjugate(mesh.matrix_parent_inverse, factor)
    copy.matrix_basis = _conjugate(mesh.matrix_basis, factor)
    for mod in copy.modifiers:
        if mod.type == "ARMATURE" and mod.object == armature:
            mod.object = arm_copy
    return copy


def _swap_names(pairs: list, undo: list) -> None:
    """Give each copy its original's object and data names (the FBX node names); undone after."""
    for original, copy in pairs:
        for a, b in ((original, copy), (original.data, copy.data)):
            name = a.name
            a.name = f"{name}.vibe-export-{os.getpid()}"
            b.name = name
            undo.append(lambda a=a, b=b, name=name: _rename_back(a, b, name))


def _rename_back(original: bpy.types.ID, copy: bpy.types.ID, name: str) -> None:
    """Free ``name`` from the copy, then give it back to the original."""
    copy.name = f"{name}.vibe-copy-{os.getpid()}"
    original.name = name


@contextlib.contextmanager
def _export_copies(armature: bpy.types.Object, meshes: list, factor: float, limit: int | None,
                   facts: dict) -> Iterator[tuple]:
    """(armature, meshes) to export: the originals, or temporary copies named like them where the
    export changes them: scaled by ``factor`` (≠ 1: armature too, with the scene unit at 1/factor m,
    so the FBX holds centimetre numbers in a centimetre file and no node is scaled) and/or with the
    skin pruned to ``limit`` influences per vertex (facts gets the measured error).

    The originals, their actions and the scene unit are restored and the copies removed afterwards.
    """
    if factor == 1.0 and not limit:
        names = [b.name for b in armature.data.bones]
        counts = [skinning.influence_counts(bone_weights(m, names)[0]).max(initial=0) for m in meshes]
        facts.update(vertices_pruned=0, pruning_error_m=0.0, max_influences_before=int(max(counts, default=0)))
        yield armature, meshes
        return
    units = bpy.context.scene.unit_settings
    undo: list = []
    try:
        arm = _scaled_armature(armature, factor, undo) if factor != 1.0 else armature
        mesh_copies = [_scaled_mesh(m, armature, arm, factor, undo) for m in meshes]
        facts.update(vertices_pruned=0, pruning_error_m=0.0)
        if limit:
            start, end = action_frame_range(armature)
            frames = range(start, end + 1)
            for m, c in zip(meshes, mesh_copies):
                one = prune_mesh(m, c, armature, limit, frames)
                facts["vertices_pruned"] += one["vertices_pruned"]
                facts["pruning_error_m"] = max(facts["pruning_error_m"], one["pruning_error_m"])
                facts["max_influences_before"] = max(facts.get("max_influences_before", 0),
                                                     one["max_influences_before"])
            log.info("skin pruned to %d influences: %d vertices changed, max vertex error %.3f mm",
                     limit, facts["vertices_pruned"], 1e3 * facts["pruning_error_m"])
        pairs = ([(armature, arm)] if arm is not armature else []) + list(zip(meshes, mesh_copies))
        _swap_names(pairs, undo)
        if factor != 1.0:
            scale_length = units.scale_length
            undo.append(lambda: setattr(units, "scale_length", scale_length))
            units.scale_length = 1.0 / factor
        yield arm, mesh_copies
    finally:
        for step in reversed(undo):
            step()


def export_gltf_file(objects, path: str | os.PathLike, *, timing: str = "video",
                     max_influences: Any = presets.PRESET_DEFAULT, take: str | None = None,
                     report: dict | None = None) -> str:
    """Export the character as binary glTF (.glb): skinned mesh + the active action; return the path.

    Times follow ``timing``; the animation is named ``<armature>_<take>``; ``max_influences`` (4 by
    default, None: all) skin influences per vertex are kept (pruned, renormalised, error in report).
    """
    limit = presets.resolve_max_influences(max_influences, presets.GLTF_MAX_INFLUENCES)
    armature, meshes = character_objects(objects)
    check_selectable([armature, *meshes])
    clip = clip_of(armature, timing, take)
    facts = fill_report(report, clip, "glb", max_influences=limit)
    # the exporter slides the clip to 0 s; retime_animations then puts it at clip.first_s
    options = presets.merged(presets.GLTF_OPTIONS, export_nla_strips_merged_animation_name=clip.name,
                             export_anim_slide_to_zero=True,
                             export_all_influences=not limit or limit > presets.DEFAULT_MAX_INFLUENCES)

    def write(tmp: str) -> None:
        with contextlib.ExitStack() as stack:
            arm, mesh_list = stack.enter_context(_export_copies(armature, meshes, 1.0, limit, facts))
            stack.enter_context(isolated_selection([arm, *mesh_list], arm))
            stack.enter_context(keyed_actions(arm, mesh_list, clip, 0, None))
            scene = bpy.context.scene
            scene.frame_start, scene.frame_end = clip.first, clip.end
            run_operator(bpy.ops.export_scene.gltf, "glTF", tmp, **options)
            with _file_fixes("glTF", path):
                glb_binary.retime_animations(tmp, clip.first_s, clip.frames, scene.render.fps,
                                             scene.render.fps_base)
                if clip.hidden_frames > 0:  # the root scale steps to 1 (a root's own scale keys step too)
                    glb_binary.set_step_interpolation(tmp, root_bones(armature), "scale")

    return atomic_export(path, presets.FILE_EXTENSIONS["glb"], write)
