"""Thin bpy layer: the only package that imports bpy. ``register``/``unregister`` have no other
side effects than the classes in ``CLASSES`` and the ``Scene.vibe`` pointer property."""
from __future__ import annotations

import bpy

from . import operators, panels, prefs, props, ui_export, ui_retarget

CLASSES = (
    props.VibeSceneSettings,
    prefs.VibePreferences,
    operators.VIBE_OT_import_video,
    operators.VIBE_OT_import_motion,
    operators.VIBE_OT_cancel,
    operators.VIBE_OT_check_engine,
    operators.VIBE_OT_setup_engine,
    operators.VIBE_OT_hash_vibe_data,
    ui_export.VIBE_OT_export_character,
    *panels.PANELS,
    *ui_retarget.CLASSES,  # the Retarget to… sub-panel (after its parent panel)
)


def register() -> None:
    """Register every class, then the scene settings pointer."""
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    props.register_props()


def unregister() -> None:
    """Stop a running engine, then remove everything ``register`` added (reverse order)."""
    operators.shutdown()
    props.unregister_props()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
