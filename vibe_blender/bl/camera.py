"""Camera match in Blender: a camera that reproduces the engine's pinhole, with the video behind it.

The maths lives in :mod:`vibe_blender.core.camera_match`; this module only writes it to bpy.
Frame mapping: video frame 0 shows at scene frame ``frame_start`` and the clip advances one video
frame per scene frame (Blender plays clips frame by frame), which matches the baked animation when
the scene runs at the video's frame rate.
"""
from __future__ import annotations

import logging
import os
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from ..core import camera_match as cm
from ..core.errors import UserInputError
from ..core.frames import world_from_camera

log = logging.getLogger(__name__)

DEFAULT_CAMERA_NAME = "VIBE Camera"
BACKGROUND_ALPHA = 1.0  # opaque footage behind the character


def create_camera(meta: dict[str, Any], *, video_path: str | None = None, frame_start: int = 1,
                  name: str = DEFAULT_CAMERA_NAME, scene: bpy.types.Scene | None = None,
                  make_active: bool = True, motion: Any = None) -> bpy.types.Object:
    """Create a camera object matching ``meta["camera"]`` and ``meta["world"]`` of a motion file.

    Sets the scene's render resolution to the video size (100 %, pixel aspect 1). With
    ``video_path`` the video becomes the camera's background, first frame at scene frame
    ``frame_start``. With ``motion`` holding a moving camera (``camera/world_from_camera``), the
    camera is animated along it, a key per video frame at ``frame_start + time·fps`` (the scene's
    fps, as the bake), so the footage stays locked to it. Raises MotionFileError for an unusable
    camera header and UserInputError for a video that cannot be opened; in both cases nothing is
    added to the scene.
    """
    scene = scene or bpy.context.scene
    pinhole = cm.PinholeCamera.from_meta(meta)
    matrix = cm.camera_object_matrix(world_from_camera(meta))
    footage = load_footage(video_path) if video_path else None
    data = bpy.data.cameras.new(name)
    apply_settings(data, cm.blender_camera_settings(pinhole))
    obj = bpy.data.objects.new(name, data)
    obj.matrix_world = Matrix(matrix.tolist())
    scene.collection.objects.link(obj)
    set_render_size(scene, pinhole)
    if footage is not None:
        attach_footage(data, footage, frame_start)
    if motion is not None and "world_from_camera" in getattr(motion, "camera", {}):
        animate_camera(obj, motion, pinhole, frame_start, scene)
    if make_active:
        scene.camera = obj
    return obj


def animate_camera(obj: bpy.types.Object, motion: Any, pinhole: cm.PinholeCamera, frame_start: int,
                   scene: bpy.types.Scene) -> None:
    """Key the camera object (location, quaternion) and, for a zoom, its lens along the motion's
    per-frame camera path, in one pass per F-curve (foreach_set through compat.ActionWriter)."""
    from . import compat

    rate = scene.render.fps / scene.render.fps_base
    times = cm.video_frame_times(motion.header.video, motion.tracks)
    keys = cm.camera_keys(motion.camera["world_from_camera"], times, rate, frame_start, pinhole,
                          motion.camera.get("focal_px"))
    obj.rotation_mode = "QUATERNION"
    writer = compat.ActionWriter(f"{obj.name} path", obj)
    for i in range(3):
        writer.add_curve("location", i, "Camera", keys.frames, keys.location[:, i])
    for i in range(4):
        writer.add_curve("rotation_quaternion", i, "Camera", keys.frames, keys.rotation[:, i])
    writer.assign(obj)
    if keys.lens is not None:
        lens = compat.ActionWriter(f"{obj.name} lens", obj.data, id_type="CAMERA")
        lens.add_curve("lens", 0, "Lens", keys.frames, keys.lens)
        lens.assign(obj.data)


def apply_settings(data: bpy.types.Camera, s: cm.BlenderCameraSettings) -> None:
    """Write sensor fit/size, lens (mm) and shift to camera data (perspective)."""
    data.type = "PERSP"
    data.lens_unit = "MILLIMETERS"
    data.sensor_fit = s.sensor_fit
    if s.sensor_fit == "HORIZONTAL":
        data.sensor_width = s.sensor_size
    else:
        data.sensor_height = s.sensor_size
    data.lens = s.lens
    data.shift_x = s.shift_x
    data.shift_y = s.shift_y


def set_render_size(scene: bpy.types.Scene, pinhole: cm.PinholeCamera) -> None:
    """Render resolution = video size at 100 %, square pixels."""
    render = scene.render
    render.resolution_x = pinhole.width
    render.resolution_y = pinhole.height
    render.resolution_percentage = 100
    render.pixel_aspect_x = 1.0
    render.pixel_aspect_y = 1.0


def load_footage(path: str) -> bpy.types.MovieClip | bpy.types.Image:
    """Load a video as a MovieClip, or as an Image of source MOVIE when the clip cannot decode it.

    Raises UserInputError (one line) when the file is missing or neither loader can decode it;
    no datablock is left behind then.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise UserInputError(f"video not found: {path}; pass an existing video file")
    clip = bpy.data.movieclips.load(path, check_existing=True)
    if clip.frame_duration > 0:
        return clip
    bpy.data.movieclips.remove(clip)
    log.warning("movie clip cannot decode %s; trying it as an image movie", path)
    image = bpy.data.images.load(path, check_existing=True)
    if image.source == "MOVIE" and image.size[0] > 0:
        return image
    bpy.data.images.remove(image)
    raise UserInputError(f"Blender cannot decode the video {path}; convert it to H.264 MP4 and retry")


def attach_footage(data: bpy.types.Camera, footage: bpy.types.MovieClip | bpy.types.Image,
                   frame_start: int) -> bpy.types.CameraBackgroundImage:
    """Show ``footage`` as the camera's background, its first frame at scene frame ``frame_start``."""
    data.show_background_images = True
    bg = data.background_images.new()
    bg.alpha = BACKGROUND_ALPHA
    bg.display_depth = "BACK"
    bg.frame_method = "FIT"
    if isinstance(footage, bpy.types.MovieClip):
        bg.source = "MOVIE_CLIP"
        bg.use_camera_clip = False
        bg.clip = footage
        footage.frame_start = frame_start
        footage.frame_offset = 0
    else:
        bg.source = "IMAGE"
        bg.image = footage
        bg.image_user.frame_start = frame_start
        bg.image_user.frame_offset = 0
        bg.image_user.frame_duration = footage.frame_duration
    return bg


def project_world_points(scene: bpy.types.Scene, cam: bpy.types.Object, points: np.ndarray) -> np.ndarray:
    """Project world points (N, 3) metres through Blender's camera maths → pixels (N, 2) (u right, v down)."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    ndc = np.array([tuple(world_to_camera_view(scene, cam, Vector(p))) for p in np.asarray(points)])
    return cm.normalized_to_pixels(ndc, scene.render.resolution_x, scene.render.resolution_y)
