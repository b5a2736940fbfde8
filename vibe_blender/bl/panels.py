"""The sidebar panel: View3D ▸ Sidebar ▸ VIBE, and its sub-panels (Options, Motion File, Export).

Sized for the sidebar's default width: labels of at most ``ui_text.MAX_LABEL_CHARS`` characters,
enum choices drawn expanded under a short heading, longer words in tooltips; status messages are
wrapped onto several lines instead of being cut. While the engine runs, every input is locked.
"""
from __future__ import annotations

import textwrap

import bpy

from ..core import ui_text
from . import operators, prefs, ui_compat, ui_export

LEVEL_ICONS = {"INFO": "INFO", "WARNING": "ERROR", "ERROR": "CANCEL"}
WRAP_CHARS = 34  # characters per status line at the default sidebar width
CAPTURE_TEXT = "Capture"


def wrapped_labels(layout: bpy.types.UILayout, text: str, icon: str = "NONE") -> None:
    """``text`` as labels of at most ``WRAP_CHARS`` characters (the icon on the first)."""
    col = layout.column(align=True)
    for i, line in enumerate(textwrap.wrap(text, WRAP_CHARS) or [""]):
        col.label(text=line, icon=icon if i == 0 else "BLANK1")


def _idle() -> bool:
    return operators.active_job() is None


class SidebarPanel:
    """Where every VIBE panel lives: the 3D view's sidebar, tab "VIBE"."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "VIBE"


class SubPanel(SidebarPanel):
    """A sub-panel of the main VIBE panel."""

    bl_parent_id = "VIBE_PT_main"


class VIBE_PT_main(SidebarPanel, bpy.types.Panel):
    """Video in, people, Capture with live progress and Cancel."""

    bl_idname = "VIBE_PT_main"
    bl_label = "VIBE Mocap"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.vibe
        _draw_engine_hint(layout, context)
        col = layout.column()
        col.enabled = _idle()
        col.prop(settings, "video_path")
        row = col.row(align=True)
        row.label(text="People")
        row.prop(settings, "people", expand=True)
        if settings.people == "chosen":
            col.prop(settings, "track_ids")
        job = operators.active_job()
        if job is None:
            layout.operator("vibe.import_video", text=CAPTURE_TEXT, icon="PLAY")
            if operators.ActiveRun.message:  # the last run's outcome
                wrapped_labels(layout, operators.ActiveRun.message,
                               LEVEL_ICONS.get(operators.ActiveRun.level, "INFO"))
        else:
            _draw_running(layout.box(), job)


class VIBE_PT_options(SubPanel, bpy.types.Panel):
    """How the characters are made: root motion, clean-up, frame rate."""

    bl_idname = "VIBE_PT_options"
    bl_label = "Options"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.vibe
        col = self.layout.column()
        col.enabled = _idle()
        col.label(text="Root Motion")
        col.row().prop(settings, "root_motion", expand=True)
        col.prop(settings, "smoothing")
        col.prop(settings, "foot_lock")
        col.prop(settings, "focal_35mm")
        col.label(text="Frame Rate")
        col.row().prop(settings, "fps_mode", expand=True)


class VIBE_PT_motion(SubPanel, bpy.types.Panel):
    """Re-import a take (motion file) without running the engine."""

    bl_idname = "VIBE_PT_motion"
    bl_label = "Motion File"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        col = self.layout.column()
        col.enabled = _idle()
        col.prop(context.scene.vibe, "motion_path", text="")
        col.operator("vibe.import_motion", text="Re-import", icon="ARMATURE_DATA")


class VIBE_PT_export(SubPanel, bpy.types.Panel):
    """Export the active character: FBX (with a preset), BVH or glTF, with the timing, skin influences
    and BVH layout set here (copied onto each button's operator, ``ui_export.PANEL_OPTIONS``)."""

    bl_idname = "VIBE_PT_export"
    bl_label = "Export"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.vibe
        arm = ui_export.chosen_character(context)
        layout.label(text=arm.name if arm else "No character", icon="ARMATURE_DATA")
        col = layout.column()
        col.prop(settings, "fbx_preset")
        col.label(text="Timing")
        col.row(align=True).prop(settings, "export_timing", expand=True)
        col.label(text="Influences")
        row = col.row(align=True)
        row.prop(settings, "export_influences", text="")
        if settings.export_influences == "custom":
            row.prop(settings, "export_influence_count", text="")
        col.prop(settings, "bvh_layout", text="BVH")
        row = layout.row(align=True)
        for fmt, text in (("fbx", "FBX"), ("bvh", "BVH"), ("glb", "glTF")):
            op = row.operator("vibe.export_character", text=text)
            op.format = fmt
            for op_name, setting in ui_export.PANEL_OPTIONS.items():
                setattr(op, op_name, getattr(settings, setting))


def _draw_running(box: bpy.types.UILayout, job) -> None:
    ui_compat.draw_progress(box, job.fraction, ui_text.progress_text(job.stage, job.fraction, job.overall_eta_s))
    if job.last_warning:
        wrapped_labels(box, ui_text.without_flags(job.last_warning), "ERROR")
    box.operator("vibe.cancel", icon="CANCEL")


def _draw_engine_hint(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    p = prefs.get_prefs(context)
    setup = prefs.RUNTIME.setup_job
    if setup is not None and not setup.finished:  # "Set Up" pressed here: its progress shows here too
        box = layout.box()
        ui_compat.draw_progress(box, setup.fraction, f"Engine set-up {setup.step_index + 1}/{len(setup.steps)}")
        box.operator("vibe.cancel", icon="CANCEL")
    elif p is not None and not (p.engine_python or p.engine_command):
        row = layout.row(align=True)
        row.label(text="No engine yet", icon="ERROR")
        row.operator("vibe.setup_engine", text="Set Up")
        op = row.operator("preferences.addon_show", text="", icon="PREFERENCES")
        op.module = prefs.ADDON_ID


#: Registration order: the main panel first, then its sub-panels top to bottom.
PANELS = (VIBE_PT_main, VIBE_PT_options, VIBE_PT_motion, VIBE_PT_export)
