"""Thin bpy layer: the only package that imports bpy."""


def register() -> None:
    """Register Blender classes (filled in by the add-on issue)."""


def unregister() -> None:
    """Unregister Blender classes."""
