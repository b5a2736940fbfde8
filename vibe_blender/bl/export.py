"""FBX / BVH / glTF export of a baked character with Blender's own exporters (fixed options).

Option tables live in :mod:`vibe_blender.core.export_presets`. Every export:
- writes only the character (armature + its meshes) by selecting them, and restores the user's
  selection, active object, mode, scene frame range and current frame afterwards;
- covers the frame range of the armature's action at the scene's fps;
- writes to a temporary name in the target folder and renames on success, so a failed export
  leaves no partial file behind.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Callable, Iterable, Iterator

import bpy
import numpy as np
from mathutils import Matrix

from ..core import atomic
from ..core import export_presets as presets
from ..core.errors import UserInputError, VibeError
from . import compat

log = logging.getLogger(__name__)

RIGID_SCALE_TOLERANCE = 1e-4  # an armature scaled by more than this cannot be written as BVH


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


def action_frame_range(armature: bpy.types.Object) -> tuple[int, int]:
    """First and last keyed frame (inclusive, integers) of the armature's active action.

    Raises UserInputError when the armature has no action (nothing was baked).
    """
    ad = armature.animation_data
    action = ad.action if ad else None
    if action is None:
        raise UserInputError(f"armature {armature.name!r} has no animation; import or bake a motion first")
    start, end = action.frame_range
    return int(round(start)), int(round(end))


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


@contextlib.contextmanager
def _isolated_selection(targets: list, active: bpy.types.Object) -> Iterator[None]:
    """Select exactly ``targets`` (active = ``active``) in OBJECT mode; restore everything after."""
    view_layer = bpy.context.view_layer
    scene = bpy.context.scene
    prev_active = view_layer.objects.active
    prev_mode = prev_active.mode if prev_active else "OBJECT"
    prev_selected = [o for o in view_layer.objects if o.select_get()]
    prev_frames = (scene.frame_start, scene.frame_end, scene.frame_current)
    if prev_mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    try:
        for o in prev_selected:
            o.select_set(False)
        for o in targets:
            o.select_set(True)
        view_layer.objects.active = active
        yield
    finally:
        _restore(view_layer, scene, targets, prev_selected, prev_active, prev_mode, prev_frames)


def _restore(view_layer, scene, targets, prev_selected, prev_active, prev_mode, prev_frames) -> None:
    """Put back selection, active object, mode and the scene frame range after an export."""
    for o in targets:
        o.select_set(False)
    for o in prev_selected:
        if o.name in view_layer.objects:
            o.select_set(True)
    view_layer.objects.active = prev_active
    scene.frame_start, scene.frame_end = prev_frames[0], prev_frames[1]
    scene.frame_set(prev_frames[2])
    if prev_active is not None and prev_mode != "OBJECT":
        bpy.ops.object.mode_set(mode=prev_mode)


def _check_selectable(objects: list) -> None:
    """Raise UserInputError when an object is not in the current view layer (cannot be selected)."""
    view_layer = bpy.context.view_layer
    view_layer.update()  # objects linked since the last update are not in view_layer.objects yet
    names = view_layer.objects
    missing = [o.name for o in objects if o.name not in names]
    if missing:
        raise UserInputError(f"objects {missing} are not in the current view layer; link them to the scene")


#: Texts of a full-disk failure inside Blender's exporters (their exception text is all we get).
DISK_FULL_MARKS = ("No space left on device", "[Errno 28]", "Disk quota exceeded", "[Errno 122]")


def _run_operator(op: Callable[..., set], label: str, path: str, **kwargs: Any) -> None:
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


def export_fbx_file(objects, path: str | os.PathLike, preset: str = "generic") -> str:
    """Export the character as FBX with an engine preset (generic / unity / unreal); return the path.

    The animation is the armature's active action over its keyed frame range at the scene fps.
    """
    options = presets.fbx_options(preset)
    armature, meshes = character_objects(objects)
    _check_selectable([armature, *meshes])
    start, end = action_frame_range(armature)
    in_cm = preset.lower() in presets.FBX_CENTIMETRE_PRESETS
    log.info("FBX %s: %s + %d meshes, frames %d-%d", preset, armature.name, len(meshes), start, end)

    def write(tmp: str) -> None:
        with contextlib.ExitStack() as stack:
            arm, mesh_list = stack.enter_context(_centimetre_copies(armature, meshes)) if in_cm \
                else (armature, meshes)
            stack.enter_context(_isolated_selection([arm, *mesh_list], arm))
            scene = bpy.context.scene
            scene.frame_start, scene.frame_end = start, end
            _run_operator(bpy.ops.export_scene.fbx, "FBX", tmp, **options)

    return atomic_export(path, presets.FILE_EXTENSIONS["fbx"], write)


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
def _centimetre_copies(armature: bpy.types.Object, meshes: list) -> Iterator[tuple]:
    """Temporary copies of the character scaled ×100, named like the originals, with the scene unit
    at 0.01 m, so the FBX holds centimetre numbers in a centimetre file and no node is scaled.

    The originals, their actions and the scene unit are restored and the copies removed afterwards.
    """
    factor = presets.CENTIMETRES_PER_METRE
    units = bpy.context.scene.unit_settings
    undo: list = []
    try:
        arm = _scaled_armature(armature, factor, undo)
        mesh_copies = [_scaled_mesh(m, armature, arm, factor, undo) for m in meshes]
        _swap_names([(armature, arm), *zip(meshes, mesh_copies)], undo)
        scale_length = units.scale_length
        undo.append(lambda: setattr(units, "scale_length", scale_length))
        units.scale_length = 1.0 / factor
        yield arm, mesh_copies
    finally:
        for step in reversed(undo):
            step()


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


def export_bvh_file(armature: bpy.types.Object, path: str | os.PathLike) -> str:
    """Export the armature's action as Y-up BVH (Frame Time = 1 / scene fps, root translation).

    Returns the path. The file reads back in Blender with the BVH importer's default axes.
    """
    armature, _ = character_objects(armature)
    _check_selectable([armature])
    _check_unscaled(armature)
    start, end = action_frame_range(armature)

    def write(tmp: str) -> None:
        with _y_up_copy(armature) as copy, _isolated_selection([copy], copy):
            _run_operator(bpy.ops.export_anim.bvh, "BVH", tmp, frame_start=start, frame_end=end,
                          **presets.BVH_OPTIONS)

    return atomic_export(path, presets.FILE_EXTENSIONS["bvh"], write)


def export_gltf_file(objects, path: str | os.PathLike) -> str:
    """Export the character as binary glTF (.glb): skinned mesh + the active action; return the path."""
    armature, meshes = character_objects(objects)
    targets = [armature, *meshes]
    _check_selectable(targets)
    start, end = action_frame_range(armature)

    def write(tmp: str) -> None:
        with _isolated_selection(targets, armature):
            scene = bpy.context.scene
            scene.frame_start, scene.frame_end = start, end
            _run_operator(bpy.ops.export_scene.gltf, "glTF", tmp, **presets.GLTF_OPTIONS)

    return atomic_export(path, presets.FILE_EXTENSIONS["glb"], write)
