"""Export from the panel: the active VIBE character as FBX (with a preset), BVH or glTF.

The work is ``bl.api``'s exporters; this operator only finds the character (its armature, or the
body whose parent it is), asks for the file, passes the panel's export options (timing, skin
influences, BVH layout) and reports the outcome in one line: the file, and the skin-pruning error,
the hidden lead-in or a format's limitation when the export report has them. A failed export leaves
the scene as it was (the exporters put everything back) and reports one error line.
"""
from __future__ import annotations

import bpy
from bpy.props import StringProperty

from ..core.errors import VibeError
from ..core.export_presets import FILE_EXTENSIONS, PRESET_DEFAULT, export_summary, influences_choice
from . import api, operators, props

EXPORT_FORMAT_ITEMS = (("fbx", "FBX", "Armature + body + action (game engines, DCC tools)"),
                       ("bvh", "BVH", "Skeleton motion only (Y up)"),
                       ("glb", "glTF", "Binary glTF: skinned body + action (web, Godot)"))
#: Scene settings (``scene.vibe``) the panel copies onto the operator, by operator property.
PANEL_OPTIONS = {"fbx_preset": "fbx_preset", "timing": "export_timing", "max_influences": "export_influences",
                 "influence_count": "export_influence_count", "bvh_layout": "bvh_layout"}


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
    timing: bpy.props.EnumProperty(name="Timing", items=props.TIMING_ITEMS, default="video")
    max_influences: bpy.props.EnumProperty(name="Influences", items=props.INFLUENCE_ITEMS,
                                           default=PRESET_DEFAULT)
    influence_count: bpy.props.IntProperty(name="Count", default=4, min=1, max=props.MAX_CUSTOM_INFLUENCES)
    bvh_layout: bpy.props.EnumProperty(name="BVH Layout", items=props.BVH_LAYOUT_ITEMS, default="standard")
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
        report: dict = {}
        try:
            written = self._export(arm, path, report)
        except VibeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, export_summary(arm.name, written, report))
        return {"FINISHED"}

    def _export(self, arm: bpy.types.Object, path: str, report: dict) -> str:
        """Call the API exporter of ``self.format`` with the operator's options; returns the path."""
        if self.format == "bvh":
            return api.export_bvh(arm, path, timing=self.timing, layout=self.bvh_layout, report=report)
        influences = influences_choice(self.max_influences, self.influence_count)
        if self.format == "fbx":
            return api.export_fbx(arm, path, preset=self.fbx_preset, timing=self.timing,
                                  max_influences=influences, report=report)
        return api.export_gltf(arm, path, timing=self.timing, max_influences=influences, report=report)
