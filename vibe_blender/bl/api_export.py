"""Public export API (re-exported by ``vibe_blender.bl.api``): FBX, BVH and glTF of a baked character.

Every function takes the character's armature (or, for FBX/glTF, any of its objects), writes one
file atomically (temporary name in the target folder, then rename) and returns its absolute path.
Failures raise :class:`vibe_blender.core.errors.VibeError` subclasses with a one-line message:
``UserInputError`` for a bad path, preset or object, ``ExportError`` when Blender's exporter fails.
No partial file is left behind and the user's selection, active object and frame range are restored.

Example (``blender -b file.blend --python-expr`` or the bpy wheel)::

    from vibe_blender.bl.api import export_fbx, export_bvh, export_gltf
    arm = bpy.data.objects["VIBE_1"]
    export_fbx(arm, "/tmp/person1.fbx", preset="unity")
    export_bvh(arm, "/tmp/person1.bvh")
    export_gltf(arm, "/tmp/person1.glb")
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Union

import bpy

from ..core.export_presets import FBX_PRESET_NAMES, PRESET_DEFAULT
from . import export as _export
from . import export_bvh as _export_bvh
from .export import ExportError

ObjectsArg = Union[bpy.types.Object, Iterable[bpy.types.Object]]

__all__ = ["export_fbx", "export_bvh", "export_gltf", "ExportError", "FBX_PRESET_NAMES"]


def export_fbx(objects_or_armature: ObjectsArg, path: str | os.PathLike, *, preset: str = "generic",
               timing: str = "video", max_influences: Any = PRESET_DEFAULT, take: str | None = None,
               report: dict | None = None) -> str:
    """Write the character (armature + its meshes) and its action to an FBX file.

    ``preset``: "generic" (Blender's FBX defaults), "unity" (−Z forward, Y up, scale 1, metres)
    or "unreal" (Z up, centimetres); see :mod:`vibe_blender.core.export_presets`. The animation
    covers the action's keyed frames at the scene fps, without leaf bones or key reduction.
    ``timing``: "video" (video time t → file time t; video frame 0 at 0 s), "clip" (the person's
    first frame at 0 s) or "hidden" (video time from 0 s, the character invisible, its root bones at
    scale 1e-5, until the person's first frame). ``max_influences``: skin influences kept per vertex (Unity/Unreal 4,
    generic all; None: all). The take is named ``<armature>_<take>`` (take "take" by default); the
    node default transforms are the rest pose. ``report`` (a dict) receives the export facts: take,
    first_key_s, last_key_s, frames, fps, timing, hidden_frames, hidden_until_s, hidden_scale,
    max_influences, vertices_pruned, pruning_error_m.
    Returns the absolute path written.
    """
    return _export.export_fbx_file(objects_or_armature, path, preset=preset, timing=timing,
                                   max_influences=max_influences, take=take, report=report)


def export_bvh(armature: bpy.types.Object, path: str | os.PathLike, *, timing: str = "video",
               layout: str = "standard", report: dict | None = None) -> str:
    """Write the armature's action to a Y-up BVH file (metres).

    ``layout`` "standard": position channels on the root only (the ground root bone is merged
    into the pelvis, which becomes the BVH root); "positions": position channels on every joint
    (earlier versions). ``Frame Time`` is 1 / scene fps; with ``timing`` "video" file frame k is
    video frame k, with "clip" frame 0 is the person's first frame; "hidden" writes what "video"
    does (BVH cannot hide: the first pose shows from 0 s) and the report's ``note`` says so.
    Returns the path.
    """
    return _export_bvh.export_bvh_file(armature, path, timing=timing, layout=layout, report=report)


def export_gltf(objects: ObjectsArg, path: str | os.PathLike, *, timing: str = "video",
                max_influences: Any = PRESET_DEFAULT, take: str | None = None,
                report: dict | None = None) -> str:
    """Write the character as binary glTF (``.glb``, Y up, metres): skinned mesh + the action.

    ``timing``, ``take`` and ``report`` as for :func:`export_fbx`; ``max_influences`` 4 by default
    (None: all). Returns the absolute path written.
    """
    return _export.export_gltf_file(objects, path, timing=timing, max_influences=max_influences,
                                    take=take, report=report)
