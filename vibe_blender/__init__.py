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


#: Oldest Blender the add-on runs on (below it, e.g. Debian's 3.4, mesh and Action APIs differ).
MIN_BLENDER = (4, 2, 0)


def version_refusal(version: tuple[int, ...]) -> str | None:
    """The one-line refusal for Blender ``version`` (``bpy.app.version``), None when supported."""
    if tuple(version[:3]) >= MIN_BLENDER:
        return None
    have, need = ".".join(map(str, version[:3])), ".".join(map(str, MIN_BLENDER[:2]))
    return (f"VIBE Mocap needs Blender {need} or newer (this is Blender {have}): "
            f"install Blender {need} LTS or newer from blender.org")


def register() -> None:
    """Register the add-on's Blender classes (imports bpy lazily); refused below ``MIN_BLENDER``.

    The refusal raises before anything is imported or registered, so the add-on stays disabled and
    the scene untouched (Blender shows the message in its console and add-on list).
    """
    import bpy

    refusal = version_refusal(tuple(bpy.app.version))
    if refusal is not None:
        print(f"VIBE Mocap: {refusal}")
        raise RuntimeError(refusal)
    from . import bl

    bl.register()


def unregister() -> None:
    """Unregister everything ``register`` added."""
    from . import bl

    bl.unregister()
