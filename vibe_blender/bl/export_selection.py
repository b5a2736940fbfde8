"""The exporters' scene state: exactly the exported objects selected and visible, everything put back.

Blender's FBX/glTF/BVH exporters work on the selection and skip hidden objects; a baked character
is hidden outside its track (``bake.VISIBILITY_PATHS`` drivers), so a person who enters late would
export empty. ``isolated_selection`` selects and shows the targets for the export only.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import bpy

from .bake import VISIBILITY_PATHS


@contextlib.contextmanager
def isolated_selection(targets: list, active: bpy.types.Object) -> Iterator[None]:
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
        with _shown(targets):
            for o in prev_selected:
                o.select_set(False)
            for o in targets:
                o.select_set(True)
            view_layer.objects.active = active
            yield
    finally:
        _restore(view_layer, scene, targets, prev_selected, prev_active, prev_mode, prev_frames)


@contextlib.contextmanager
def _shown(targets: list) -> Iterator[None]:
    """Targets visible for the exporters (which skip hidden objects): the bake's visibility drivers
    (hidden outside the person's track, ``bake.VISIBILITY_PATHS``) muted and the objects shown; the
    drivers, mute flags and values are put back afterwards."""
    saved = []
    for obj in targets:
        drivers = obj.animation_data.drivers if obj.animation_data else []
        curves = [fc for fc in drivers if fc.data_path in VISIBILITY_PATHS]
        saved.append((obj, [(fc, fc.mute) for fc in curves], [getattr(obj, p) for p in VISIBILITY_PATHS]))
        for fc in curves:
            fc.mute = True
        for path in VISIBILITY_PATHS:
            setattr(obj, path, False)
    try:
        yield
    finally:
        for obj, mutes, values in saved:
            for fc, mute in mutes:
                fc.mute = mute
            for path, value in zip(VISIBILITY_PATHS, values):
                setattr(obj, path, value)


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
