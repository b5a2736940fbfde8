"""Camera match: the engine's pinhole camera as Blender camera settings (pure numpy).

Conventions
-----------
- The motion file's camera (``meta["camera"]``) is a pinhole in the **OpenCV** camera frame
  (x right, y down, z forward, metres) with focal length ``focal_px`` and principal point
  ``(cx, cy)`` in pixels of the displayed ``width`` × ``height`` image. Pixel coordinates are
  continuous with the image spanning ``[0, width] × [0, height]`` (u right, v down), so the
  image centre is ``(width / 2, height / 2)``.
- A **Blender camera** looks along its local −Z with +Y up and +X right. Its view plane is
  fitted to the larger image side (``sensor_fit``); the lens shift is measured in units of that
  side, +shift_x moving the view right and +shift_y moving it up.
- The camera object's world matrix is ``world_from_camera @ CV_TO_BLENDER_CAMERA``, with
  ``world_from_camera`` the same OpenCV-camera → Blender-world transform the character uses
  (``vibe_blender.core.frames.world_from_camera``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import MotionFileError

#: Sensor size (mm) given to the fitted (larger) image side. Any value works; 36 mm is Blender's default.
SENSOR_SIZE_MM = 36.0
#: 4×4 change of axes OpenCV camera (x right, y down, z fwd) ↔ Blender camera (x right, y up, −z fwd).
CV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of the engine's camera: focal and principal point in pixels, image size in pixels."""

    focal_px: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "PinholeCamera":
        """Read ``meta["camera"]`` of a motion file; raise MotionFileError when it is unusable."""
        cam = meta.get("camera") or {}
        try:
            result = cls(float(cam["focal_px"]), float(cam["cx"]), float(cam["cy"]),
                         int(cam["width"]), int(cam["height"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise MotionFileError(f"meta.camera lacks a usable {exc}; re-run the engine "
                                  "to write focal_px, cx, cy, width, height") from None
        values = (result.focal_px, result.cx, result.cy)
        if not all(math.isfinite(v) for v in values) or result.focal_px <= 0 \
                or result.width <= 0 or result.height <= 0:
            raise MotionFileError("meta.camera has a non-positive focal or image size; "
                                  "re-run the engine with a valid camera")
        return result

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Project OpenCV camera-frame points (..., 3) metres → pixels (..., 2) float64 (u right, v down)."""
        p = np.asarray(points_cam, dtype=np.float64)
        uv = self.focal_px * p[..., :2] / p[..., 2:3]
        return uv + np.array([self.cx, self.cy])


@dataclass(frozen=True)
class BlenderCameraSettings:
    """Blender camera data + render settings that reproduce a PinholeCamera.

    ``sensor_fit`` is "HORIZONTAL" or "VERTICAL"; ``lens`` and ``sensor_size`` in mm (the sensor
    size goes to ``sensor_width`` or ``sensor_height`` per the fit); shifts are unitless fractions
    of the fitted side; resolution in pixels at 100 %, pixel aspect 1.
    """

    sensor_fit: str
    sensor_size: float
    lens: float
    shift_x: float
    shift_y: float
    resolution_x: int
    resolution_y: int


def blender_camera_settings(cam: PinholeCamera, sensor_mm: float = SENSOR_SIZE_MM) -> BlenderCameraSettings:
    """Blender settings whose projection equals ``cam``'s pinhole projection.

    The fitted side ``S`` (pixels) is the larger of width/height; ``lens = focal_px · sensor / S``;
    the principal point offset from the image centre gives ``shift_x = (width/2 − cx) / S`` and
    ``shift_y = (cy − height/2) / S`` (v grows downwards, Blender's shift_y upwards).
    """
    landscape = cam.width >= cam.height
    side = float(cam.width if landscape else cam.height)
    return BlenderCameraSettings(
        sensor_fit="HORIZONTAL" if landscape else "VERTICAL",
        sensor_size=float(sensor_mm),
        lens=cam.focal_px * sensor_mm / side,
        shift_x=(cam.width / 2.0 - cam.cx) / side,
        shift_y=(cam.cy - cam.height / 2.0) / side,
        resolution_x=int(cam.width),
        resolution_y=int(cam.height),
    )


def camera_object_matrix(world_from_camera: np.ndarray) -> np.ndarray:
    """Blender camera object's 4×4 world matrix (float64) for an OpenCV-camera → world transform."""
    return np.asarray(world_from_camera, dtype=np.float64) @ CV_TO_BLENDER_CAMERA


def normalized_to_pixels(ndc: np.ndarray, width: int, height: int) -> np.ndarray:
    """Blender's normalised view coordinates (..., ≥2; 0..1, origin bottom-left) → pixels (..., 2).

    Pixels: u right, v down, the image spanning [0, width] × [0, height].
    """
    p = np.asarray(ndc, dtype=np.float64)
    return np.stack([p[..., 0] * width, (1.0 - p[..., 1]) * height], axis=-1)


@dataclass(frozen=True)
class CameraKeys:
    """Keyframes of an animated camera object: scene ``frames`` (N,), ``location`` (N,3) metres,
    ``rotation`` (N,4) quaternions (w, x, y, z), hemisphere-continuous, and ``lens`` (N,) mm or None."""

    frames: np.ndarray
    location: np.ndarray
    rotation: np.ndarray
    lens: np.ndarray | None


def video_frame_times(video: Any, tracks: list[Any]) -> np.ndarray:
    """Presentation time (s) of every video frame (N = ``video.frames``; ``video`` is the typed
    ``motion_header.VideoInfo``): the tracks' own timestamps where a track covers the frame,
    ``index / fps`` elsewhere (interpolated between)."""
    n = int(video.frames)
    known: dict[int, float] = {}
    for t in tracks:
        known.update(zip(np.asarray(t.frames).tolist(), np.asarray(t.times, np.float64).tolist()))
    if not known:
        return np.arange(n) / float(video.fps)
    idx = np.array(sorted(known))
    times = np.array([known[i] for i in idx])
    fps = float(video.fps)
    out = np.interp(np.arange(n), idx, times)
    out[: idx[0]] = times[0] - (idx[0] - np.arange(idx[0])) / fps
    out[idx[-1] + 1 :] = times[-1] + (np.arange(idx[-1] + 1, n) - idx[-1]) / fps
    return out


def camera_keys(path: np.ndarray, times: np.ndarray, fps: float, frame_start: int,
                cam: PinholeCamera, focal_px: np.ndarray | None = None,
                sensor_mm: float = SENSOR_SIZE_MM) -> CameraKeys:
    """Keys of the Blender camera for a per-video-frame path (N,4,4) (OpenCV camera → world) at
    video ``times`` (N,) s: key n at scene frame ``frame_start + times[n]·fps`` (the bake's mapping)."""
    from .rotations import matrix_to_quat, quat_continuity

    m = np.asarray(path, np.float64) @ CV_TO_BLENDER_CAMERA
    frames = frame_start + np.asarray(times, np.float64) * fps
    lens = None
    if focal_px is not None:
        lens = np.asarray(focal_px, np.float64) * sensor_mm / float(max(cam.width, cam.height))
    return CameraKeys(frames, m[:, :3, 3].copy(), quat_continuity(matrix_to_quat(m[:, :3, :3])), lens)
