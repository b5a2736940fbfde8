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
from typing import Iterable, Union

import bpy

from ..core.export_presets import FBX_PRESET_NAMES
from . import export as _export
from .export import ExportError

ObjectsArg = Union[bpy.types.Object, Iterable[bpy.types.Object]]

__all__ = ["export_fbx", "export_bvh", "export_gltf", "ExportError", "FBX_PRESET_NAMES"]


def export_fbx(objects_or_armature: ObjectsArg, path: str | os.PathLike, *, preset: str = "generic") -> str:
    """Write the character (armature + its meshes) and its action to an FBX file.

    ``preset``: "generic" (Blender's FBX defaults), "unity" (−Z forward, Y up, scale 1, metres)
    or "unreal" (Z up, centimetres); see :mod:`vibe_blender.core.export_presets`. The animation
    covers the action's keyed frames at the scene fps, without leaf bones or key reduction.
    Returns the absolute path written.
    """
    return _export.export_fbx_file(objects_or_armature, path, preset=preset)


def export_bvh(armature: bpy.types.Object, path: str | os.PathLike) -> str:
    """Write the armature's action to a Y-up BVH file (root with position channels, metres).

    ``Frame Time`` is 1 / scene fps; the frames are the action's keyed range. Returns the path.
    """
    return _export.export_bvh_file(armature, path)


def export_gltf(objects: ObjectsArg, path: str | os.PathLike) -> str:
    """Write the character as binary glTF (``.glb``, Y up, metres): skinned mesh + the action.

    Returns the absolute path written.
    """
    return _export.export_gltf_file(objects, path)
