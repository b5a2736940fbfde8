"""Small UI/version shims for the add-on shell (the Action API shims live in ``compat.py``)."""
from __future__ import annotations

import logging
from pathlib import Path

import bpy

log = logging.getLogger(__name__)

USER_DIR_NAME = "vibe_mocap"


def draw_progress(layout: bpy.types.UILayout, factor: float, text: str) -> None:
    """A progress bar (``UILayout.progress``, Blender 4.0+), else a percentage label."""
    factor = min(1.0, max(0.0, float(factor)))
    if hasattr(layout, "progress"):
        layout.progress(factor=factor, type="BAR", text=text)
    else:
        layout.label(text=f"{text} ({factor * 100.0:.0f}%)")


def user_dir(package: str) -> Path:
    """A writable per-user folder for the add-on (engine venv, motion files), created if needed.

    Extensions (4.2+) get ``bpy.utils.extension_path_user``; a legacy add-on (``bl_info``) falls
    back to ``<user config>/datafiles/vibe_mocap``.
    """
    if package.startswith("bl_ext.") and hasattr(bpy.utils, "extension_path_user"):
        return Path(bpy.utils.extension_path_user(package, path="", create=True))
    return Path(bpy.utils.user_resource("DATAFILES", path=USER_DIR_NAME, create=True))


def redraw_areas(context: bpy.types.Context, kinds: tuple[str, ...] = ("VIEW_3D", "PREFERENCES")) -> None:
    """Tag the sidebar (UI region) of 3D views and the preferences for redraw (modal progress).

    Only those regions: redrawing whole 3D viewports ten times a second costs real time with
    software OpenGL.
    """
    wm = context.window_manager
    for window in wm.windows if wm is not None else ():
        for area in window.screen.areas:
            if area.type not in kinds:
                continue
            for region in area.regions:
                if region.type in ("UI", "WINDOW") and (area.type != "VIEW_3D" or region.type == "UI"):
                    region.tag_redraw()
