"""Operators of the "Retarget to…" panel: retarget the chosen VIBE character onto your armature,
and save the detected bone map as a JSON preset. Settings live in ``scene.vibe_retarget``
(registered by ``ui_retarget.VIBE_PT_retarget``)."""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, PointerProperty, StringProperty

from ..core.errors import VibeError
from ..core.retarget_rig import RigError
from . import retarget as blrt


def _is_character(_self, obj) -> bool:
    return obj.type == "ARMATURE" and blrt.PROP_REST_JOINTS in obj


def _is_armature(_self, obj) -> bool:
    return obj.type == "ARMATURE" and blrt.PROP_REST_JOINTS not in obj


class VibeRetargetSettings(bpy.types.PropertyGroup):
    """Inputs of the Retarget panel (no methods: bpy 4.2 crashes at exit otherwise, see props)."""

    source: PointerProperty(name="Character", type=bpy.types.Object, poll=_is_character,
                            description="The VIBE character whose take is retargeted")
    target: PointerProperty(name="Target", type=bpy.types.Object, poll=_is_armature,
                            description="Your armature (Mixamo, Unreal-style, Rigify or any humanoid)")
    mapping_path: StringProperty(name="Bone Map", subtype="FILE_PATH",
                                 description="Optional bone map preset (.json); empty: detect from the rig")
    lock_feet: BoolProperty(name="Re-lock Feet", default=True,
                            description="Pin the target's planted feet with leg IK on its own legs")


class VIBE_OT_retarget(bpy.types.Operator):
    """Retarget the character's take onto the target armature as a new action (undoable)"""

    bl_idname = "vibe.retarget"
    bl_label = "Retarget"
    bl_options = {"REGISTER", "UNDO"}

    source_name: StringProperty(name="Character", options={"SKIP_SAVE"},
                                description="Source character object name (default: the panel's)")
    target_name: StringProperty(name="Target", options={"SKIP_SAVE"},
                                description="Target armature object name (default: the panel's)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.vibe_retarget
        source = bpy.data.objects.get(self.source_name) if self.source_name else settings.source
        target = bpy.data.objects.get(self.target_name) if self.target_name else settings.target
        if source is None or target is None:
            self.report({"ERROR"}, "Pick a VIBE character and a target armature in the Retarget panel")
            return {"CANCELLED"}
        try:
            action, bmap, _plan = blrt.retarget(source, target, settings.mapping_path or None,
                                                lock_feet=settings.lock_feet)
        except VibeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        feet = "feet re-locked" if settings.lock_feet else "feet not re-locked"
        self.report({"INFO"}, f"Retargeted {source.name} onto {target.name} as {action.name} "
                              f"({blrt.mapping_report(bmap)}; {feet})")
        return {"FINISHED"}


class VIBE_OT_retarget_save_map(bpy.types.Operator):
    """Save the target's bone map (detected, or the loaded preset) as a JSON preset to edit and reuse"""

    bl_idname = "vibe.retarget_save_map"
    bl_label = "Save Bone Map"
    bl_options = {"REGISTER"}

    filepath: StringProperty(name="File", subtype="FILE_PATH", options={"SKIP_SAVE"})

    def invoke(self, context, event):
        target = context.scene.vibe_retarget.target
        self.filepath = bpy.path.clean_name(target.name if target else "rig") + ".bonemap.json"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.vibe_retarget
        if settings.target is None or not self.filepath:
            self.report({"ERROR"}, "Pick a target armature and a file name")
            return {"CANCELLED"}
        try:
            bmap = blrt.bone_map(settings.target, settings.mapping_path or None)
            path = blrt.save_bone_map(bmap, self.filepath)
        except (VibeError, RigError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved bone map {path}")
        return {"FINISHED"}
