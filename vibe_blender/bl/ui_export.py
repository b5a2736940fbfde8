"""Export from the panel: the active VIBE character as FBX (with a preset), BVH or glTF.

The work is ``bl.api``'s exporters; this operator only finds the character (its armature, or the
body whose parent it is), asks for the file and reports the outcome in one line.
"""
from __future__ import annotations

import bpy
from bpy.props import StringProperty

from ..core.errors import VibeError
from ..core.export_presets import FILE_EXTENSIONS
from . import api, operators, props

EXPORT_FORMAT_ITEMS = (("fbx", "FBX", "Armature + body + action (game engines, DCC tools)"),
                       ("bvh", "BVH", "Skeleton motion only (Y up)"),
                       ("glb", "glTF", "Binary glTF: skinned body + action (web, Godot)"))


def chosen_character(context: bpy.types.Context) -> bpy.types.Object | None:
    """The VIBE armature of the active object (the armature itself or its body), else None."""
    from .character import PROP_REST_JOINTS

    obj = context.active_object
    if obj is not None and obj.type == "MESH" and obj.parent is not None:
        obj = obj.parent
    return obj if obj is not None and obj.type == "ARMATURE" and PROP_REST_JOINTS in obj else None


class VIBE_OT_export_character(bpy.types.Operator):
    """Export the active VIBE character (FBX with a preset, BVH or glTF)"""

    bl_idname = "vibe.export_character"
    bl_label = "Export Character"

    format: bpy.props.EnumProperty(name="Format", items=EXPORT_FORMAT_ITEMS, default="fbx")
    fbx_preset: bpy.props.EnumProperty(name="FBX Preset", items=props.FBX_PRESET_ITEMS, default="generic")
    filepath: StringProperty(name="File", subtype="FILE_PATH", options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return operators.active_job() is None and chosen_character(context) is not None

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if not self.filepath:
            arm = chosen_character(context)
            self.filepath = f"{arm.name if arm else 'character'}{FILE_EXTENSIONS[self.format]}"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        arm = chosen_character(context)
        if arm is None:
            self.report({"ERROR"}, "Select a VIBE character first (its armature or body)")
            return {"CANCELLED"}
        if not self.filepath:
            self.report({"ERROR"}, "Choose where to save the export: the file name is empty")
            return {"CANCELLED"}
        path = bpy.path.abspath(self.filepath)
        try:
            if self.format == "fbx":
                written = api.export_fbx(arm, path, preset=self.fbx_preset)
            elif self.format == "bvh":
                written = api.export_bvh(arm, path)
            else:
                written = api.export_gltf(arm, path)
        except VibeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {arm.name} to {written}")
        return {"FINISHED"}
