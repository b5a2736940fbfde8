"""Scene settings of the VIBE panel (``scene.vibe``): the video, import options and motion file."""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..core.export_presets import (BVH_LAYOUT_CHOICES, FBX_PRESET_NAMES, INFLUENCE_CHOICES, PRESET_DEFAULT,
                                   TIMING_CHOICES)
from ..core.settings import (DEFAULT_FPS_MODE, FOCAL_35MM_RANGE, FPS_CHOICES, ROOT_MOTION_CHOICES,
                             ImportOptions, enum_items, parse_track_ids)

ROOT_MOTION_ITEMS = enum_items(ROOT_MOTION_CHOICES)
FPS_ITEMS = enum_items(FPS_CHOICES)
FBX_PRESET_ITEMS = tuple((n, n.capitalize(), f"FBX axes and units for {n.capitalize()}")
                         for n in FBX_PRESET_NAMES)
TIMING_ITEMS = enum_items(TIMING_CHOICES)
INFLUENCE_ITEMS = enum_items(INFLUENCE_CHOICES)
BVH_LAYOUT_ITEMS = enum_items(BVH_LAYOUT_CHOICES)
#: Largest Custom influence count the panel offers (any positive int works through the API).
MAX_CUSTOM_INFLUENCES = 64
PEOPLE_ITEMS = (
    ("all", "All", "Import every tracked person"),
    ("chosen", "Chosen", "Import only the people with the listed track ids"),
)


class VibeSceneSettings(bpy.types.PropertyGroup):
    """Inputs of the VIBE sidebar panel, saved with the .blend file."""

    video_path: StringProperty(name="Video", subtype="FILE_PATH", description="Video to capture")
    people: EnumProperty(name="People", items=PEOPLE_ITEMS, default="all",
                         description="Which tracked people become characters")
    track_ids: StringProperty(name="Track IDs", description="Track ids to import, e.g. '1, 3' "
                                                            "(the numbers of the characters VIBE_1, VIBE_3)")
    root_motion: EnumProperty(name="Root Motion", items=ROOT_MOTION_ITEMS, default="world",
                              description="Where the body goes: through the scene as in the video, "
                                          "in place, or no root keys")
    smoothing: BoolProperty(name="Smoothing", default=True,
                            description="Zero-phase smoothing of rotations and root path (engine)")
    foot_lock: BoolProperty(name="Foot Lock", default=True,
                            description="Pin feet while in ground contact (engine)")
    focal_35mm: FloatProperty(name="Focal (35 mm)", default=0.0, min=0.0, max=FOCAL_35MM_RANGE[1],
                              soft_max=200.0, precision=1, step=100,
                              description="The camera's focal length as a 35 mm equivalent in mm (a phone's "
                                          "main camera: about 26). 0 = automatic: the video's metadata, else "
                                          "a typical phone lens, refined from the footage")
    fps_mode: EnumProperty(name="Frame Rate", items=FPS_ITEMS, default=DEFAULT_FPS_MODE,
                           description="Scene frame rate after the import")
    fbx_preset: EnumProperty(name="FBX", items=FBX_PRESET_ITEMS, default="generic",
                             description="Axes and units of the FBX export")
    export_timing: EnumProperty(name="Timing", items=TIMING_ITEMS, default="video",
                                description="Where the exported animation starts in time")
    export_influences: EnumProperty(name="Influences", items=INFLUENCE_ITEMS, default=PRESET_DEFAULT,
                                    description="Skin influences per vertex in FBX and glTF")
    export_influence_count: IntProperty(name="Count", default=4, min=1, max=MAX_CUSTOM_INFLUENCES,
                                        description="Influences per vertex for the Custom choice")
    bvh_layout: EnumProperty(name="BVH Layout", items=BVH_LAYOUT_ITEMS, default="standard",
                             description="Channels of the BVH export")
    motion_path: StringProperty(name="Motion File", subtype="FILE_PATH",
                                description="Motion file (*.motion.npz) written by the engine; "
                                            "re-import it without running the engine again")


def import_options(settings: VibeSceneSettings, frame_start: int = 1) -> ImportOptions:
    """Frozen options from the panel settings; raises UserInputError for bad track ids.

    A module function, not a method: bpy 4.2 crashes at interpreter exit after a PropertyGroup
    class with methods was registered and unregistered (measured: rc 139; 5.0/5.2 are fine).
    """
    tracks = parse_track_ids(settings.track_ids) if settings.people == "chosen" else None
    if settings.people == "chosen" and tracks is None:
        tracks = ()  # ImportOptions names the fix
    return ImportOptions(tracks=tracks, root_motion=settings.root_motion, smoothing=settings.smoothing,
                         foot_lock=settings.foot_lock, fps_mode=settings.fps_mode, frame_start=frame_start,
                         focal_35mm=settings.focal_35mm)


def register_props() -> None:
    bpy.types.Scene.vibe = bpy.props.PointerProperty(type=VibeSceneSettings)


def unregister_props() -> None:
    del bpy.types.Scene.vibe
