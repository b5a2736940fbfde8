"""vibe_blender: the Blender add-on (Blender 4.2 LTS – 5.2 LTS).

This file must import without bpy: the pure core (``vibe_blender.core``) and the process runner
(``vibe_blender.runner``) are shared with the engine and tested with plain pytest. bpy code lives
in ``vibe_blender.bl`` and is imported only inside ``register()``.
"""

__version__ = "0.1.0"

bl_info = {
    "name": "VIBE Mocap",
    "author": "vibe-mocap developers",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "View3D > Sidebar > VIBE",
    "description": "Turn a video of people into rigged, animated SMPL characters",
    "category": "Animation",
}


def register() -> None:
    """Register the add-on's Blender classes (imports bpy lazily)."""
    from . import bl

    bl.register()


def unregister() -> None:
    """Unregister everything ``register`` added."""
    from . import bl

    bl.unregister()
