"""The "Retarget to…" sub-panel of the VIBE sidebar: character, target armature, bone map (shown,
unmapped body parts flagged), one button. Registers ``scene.vibe_retarget`` with itself."""
from __future__ import annotations

import bpy

from ..core.errors import VibeError
from ..core.retarget_map import REQUIRED, SLOTS
from . import retarget as blrt
from . import retarget_ops
from .panels import SubPanel

_MAP_CACHE: dict[tuple, tuple] = {}  # (target name, bone count, map path) -> (BoneMap | None, error)


def _detected(target, mapping_path: str):
    key = (target.name, len(target.data.bones), mapping_path)
    if key not in _MAP_CACHE:
        _MAP_CACHE.clear()
        try:
            _MAP_CACHE[key] = (blrt.bone_map(target, mapping_path or None), "")
        except VibeError as exc:
            _MAP_CACHE[key] = (None, str(exc))
    return _MAP_CACHE[key]


class VIBE_PT_retarget(SubPanel, bpy.types.Panel):
    """Retarget a VIBE character onto your own rig (Mixamo, Unreal-style, Rigify, any humanoid)."""

    bl_idname = "VIBE_PT_retarget"
    bl_label = "Retarget to…"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def register(cls) -> None:
        bpy.types.Scene.vibe_retarget = bpy.props.PointerProperty(type=retarget_ops.VibeRetargetSettings)

    @classmethod
    def unregister(cls) -> None:
        del bpy.types.Scene.vibe_retarget
        _MAP_CACHE.clear()

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.vibe_retarget
        layout.prop(settings, "source")
        layout.prop(settings, "target")
        layout.prop(settings, "mapping_path")
        layout.prop(settings, "lock_feet")
        if settings.target is not None:
            _draw_map(layout.box(), settings.target, settings.mapping_path)
        row = layout.row()
        row.enabled = settings.source is not None and settings.target is not None
        row.operator("vibe.retarget", icon="ARMATURE_DATA")
        layout.operator("vibe.retarget_save_map", icon="FILE_TICK")


def _draw_map(box: bpy.types.UILayout, target, mapping_path: str) -> None:
    bmap, error = _detected(target, mapping_path)
    if bmap is None:
        box.label(text=error, icon="ERROR")
        return
    box.label(text=blrt.mapping_report(bmap), icon="INFO")
    col = box.column(align=True)
    for slot in SLOTS:
        chain = bmap.slots.get(slot)
        if chain:
            col.label(text=f"{slot}: {', '.join(chain)}")
        elif slot in REQUIRED:
            col.label(text=f"{slot}: unmapped", icon="ERROR")
        else:
            col.label(text=f"{slot}: unmapped (optional)")


CLASSES = (retarget_ops.VibeRetargetSettings, retarget_ops.VIBE_OT_retarget, retarget_ops.VIBE_OT_retarget_save_map,
           VIBE_PT_retarget)
