"""The sidebar panel: View3D ▸ Sidebar ▸ VIBE."""
from __future__ import annotations

import bpy

from . import operators, prefs, ui_compat

LEVEL_ICONS = {"INFO": "INFO", "WARNING": "ERROR", "ERROR": "CANCEL"}


class VIBE_PT_main(bpy.types.Panel):
    """Video in, options, Start with live progress and Cancel, motion-file re-import."""

    bl_idname = "VIBE_PT_main"
    bl_label = "VIBE Mocap"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "VIBE"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.vibe
        _draw_engine_hint(layout, context)
        layout.prop(settings, "video_path")
        _draw_options(layout.column(), settings)
        job = operators.active_job()
        if job is None:
            layout.operator("vibe.import_video", text="Start", icon="PLAY")
            if operators.ActiveRun.message:  # the last run's outcome
                layout.label(text=operators.ActiveRun.message,
                             icon=LEVEL_ICONS.get(operators.ActiveRun.level, "INFO"))
        else:
            _draw_running(layout.box(), job)
        box = layout.box()
        box.prop(settings, "motion_path")
        box.operator("vibe.import_motion", icon="ARMATURE_DATA")


def _draw_options(col: bpy.types.UILayout, settings) -> None:
    row = col.row()
    row.prop(settings, "people", expand=True)
    if settings.people == "chosen":
        col.prop(settings, "track_ids")
    col.prop(settings, "root_motion")
    row = col.row()
    row.prop(settings, "smoothing")
    row.prop(settings, "foot_lock")
    col.prop(settings, "fps_mode")


def _draw_running(box: bpy.types.UILayout, job) -> None:
    eta = f" · about {job.eta_s:.0f} s left" if job.eta_s is not None else ""
    stage = job.stage or "starting"
    ui_compat.draw_progress(box, job.fraction, f"{stage} {job.fraction * 100.0:.0f}%{eta}")
    if job.last_warning:
        box.label(text=job.last_warning, icon="ERROR")
    box.operator("vibe.cancel", icon="CANCEL")


def _draw_engine_hint(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    p = prefs.get_prefs(context)
    if p is not None and not (p.engine_python or p.engine_command):
        row = layout.row()
        row.label(text="Engine not set up", icon="ERROR")
        op = row.operator("preferences.addon_show", text="Preferences")
        op.module = prefs.ADDON_ID
