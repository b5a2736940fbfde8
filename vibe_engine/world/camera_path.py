"""Applying a solved camera path to a motion: the decision and the per-frame path recorded
(:func:`attach`), tracks turned into the frame-0 camera (:func:`compensate`), a translating
camera's floor as the world (:func:`background_floor`) and the path in the final world
(:func:`store_path`). The path itself comes from :mod:`vibe_engine.world.camera_motion`.

Frames: ``ref_from_camera`` (N,4,4) maps OpenCV camera coordinates of video frame n (metres) into
the frame-0 camera; ``motion.camera["world_from_camera"]`` (N,4,4) is the file's world from each
frame's camera.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from vibe_engine.world import camera_translation
from vibe_engine.world.camera_motion import CameraPath, CameraTracker


def to_reference_frame(body: Any, track: Any, ref_from_camera: np.ndarray) -> None:
    """Rewrite a track's pose (global orientation) and transl in place from each frame's camera
    into the reference camera (frame 0) with ``ref_from_camera`` indexed by video frame: (N,3,3)
    rotations or (N,4,4) rigid transforms (rotation and camera centre in metres).

    New pelvis = R (J0 + transl) + c, new orientation R·R0, so ``transl' = R (J0 + transl) + c − J0``
    with J0 the shaped rest pelvis (smplx convention).
    """
    from vibe_blender.core.body import shaped_rest
    from vibe_blender.core.rotations import aa_to_matrix, matrix_to_aa

    m = np.asarray(ref_from_camera, np.float64)[np.asarray(track.frames)]
    r, c = m[:, :3, :3], (m[:, :3, 3] if m.shape[-1] == 4 else np.zeros((len(m), 3)))
    _, rest = shaped_rest(body, track.betas_track)
    j0 = rest[0]
    pose = np.array(track.pose, np.float64)
    pose[:, 0] = matrix_to_aa(r @ aa_to_matrix(pose[:, 0]))
    transl = np.einsum("tij,tj->ti", r, j0 + np.asarray(track.transl, np.float64)) + c - j0
    track.pose, track.transl = pose.astype(np.float32), transl.astype(np.float32)


def floor_distance(motion: Any, path: CameraPath) -> float | None:
    """The frame-0 camera's distance (m) to the floor of a translating path, from every track's
    feet (:func:`camera_translation.metric_scale`); None without feet."""
    from vibe_engine.world.grounding import camera_joints

    feet = []
    for track in motion.tracks:
        if track.num_frames < 3:
            continue
        frames = np.asarray(track.frames)
        j = camera_joints(motion.body, track)[:, list(camera_translation.FOOT_JOINTS)]
        feet.append((frames, np.einsum("tij,tfj->tfi", path.ref_from_camera[frames], j)))
    return camera_translation.metric_scale(feet, path.centres, path.plane_normal)


def attach(motion: Any, tracker: CameraTracker, mode: str) -> str | None:
    """Solve the path of ``tracker`` for ``motion`` and record it: the decision in
    ``meta["world"]`` and, for a moving camera, the per-frame path (a translating camera's centres
    scaled to metres by :func:`floor_distance`) as
    ``motion.camera["world_from_camera"]`` (N,4,4) in the file's current world (the default world
    until the post-processing finds the ground). With the default focal, a focal found from the
    rotation replaces it (``meta["camera"]["source"] = "self_calibrated"``, root depths rescaled).
    Returns a warning message (static fallback) or None."""
    from vibe_blender.core.frames import world_from_camera

    from vibe_engine.world.grounding import rescale_focal

    calibrate = motion.meta.get("camera", {}).get("source") == "default"
    path = tracker.finish(int(motion.meta["video"]["frames"]), mode, calibrate=calibrate)
    world = motion.meta.setdefault("world", {})
    world["camera_motion"] = path.kind
    world["camera_motion_stats"] = path.stats
    if path.kind == "moving":
        if calibrate and path.focal_scale != 1.0:
            rescale_focal(motion, path.focal_scale)
        ref = np.repeat(np.eye(4)[None], len(path.ref_from_camera), 0)
        ref[:, :3, :3] = path.ref_from_camera
        if path.centres is not None:
            distance = floor_distance(motion, path)
            path.stats["floor_distance_m"] = None if distance is None else round(distance, 4)
            if distance is not None:  # no feet: the translation's scale is unknown, rotation only
                ref[:, :3, 3] = distance * path.centres
                path.stats["floor_normal"] = [round(float(v), 6) for v in path.plane_normal]
        motion.camera["world_from_camera"] = world_from_camera(motion.meta) @ ref
        if path.zoom is not None:
            apply_zoom(motion, path.zoom)
    if path.reason:
        world["camera_motion_reason"] = path.reason
        return path.reason
    return None


def apply_zoom(motion: Any, zoom: np.ndarray) -> None:
    """A zooming camera: ``camera/focal_px`` (N,) = header focal × zoom, and each track's root depth
    × its frame's zoom (the fit assumed the header focal for every frame)."""
    motion.camera["focal_px"] = float(motion.meta["camera"]["focal_px"]) * np.asarray(zoom, np.float64)
    for track in motion.tracks:
        transl = np.array(track.transl, np.float32)
        transl[:, 2] *= np.asarray(zoom, np.float32)[np.asarray(track.frames)]
        track.transl = transl


def reference_path(motion: Any) -> np.ndarray | None:
    """ref_from_camera (N,4,4) of a moving-camera motion (from its stored path and world), or None."""
    from vibe_blender.core.frames import invert_rigid, world_from_camera

    m = motion.camera.get("world_from_camera")
    if m is None or motion.meta.get("world", {}).get("camera_motion") != "moving":
        return None
    return invert_rigid(world_from_camera(motion.meta)) @ np.asarray(m, np.float64)


def compensate(motion: Any) -> np.ndarray | None:
    """Turn every track of a moving-camera motion into the reference camera frame (in place);
    returns ref_from_camera (N,4,4) (None for a static camera: nothing changes)."""
    ref = reference_path(motion)
    if ref is not None:
        for track in motion.tracks:
            to_reference_frame(motion.body, track, ref)
    return ref


def background_floor(motion: Any, found: Any) -> Any:
    """The world of a translating camera from the background floor: its normal from the background
    (the plane the camera moved over, frame-0 camera) and its distance from the people's feet
    (``camera_motion_stats`` ``floor_normal``, ``floor_distance_m``) replace the plane of the feet
    alone in ``found`` (a :class:`grounding.WorldResult`, changed in place and returned). Only when
    the feet found a ground too; a rotating or static camera keeps ``found`` as it is."""
    from vibe_engine.postprocess.ground import GroundPlane, world_from_camera

    stats = motion.meta.get("world", {}).get("camera_motion_stats", {})
    if found.matrix is None or stats.get("floor_normal") is None or stats.get("floor_distance_m") is None:
        return found
    found.plane = GroundPlane(normal=-np.asarray(stats["floor_normal"], np.float64),
                              offset=float(stats["floor_distance_m"]))
    found.matrix = world_from_camera(found.plane)
    found.up_source = "background_floor"
    return found


def store_path(motion: Any, ref: np.ndarray | None) -> None:
    """After the world is known: the per-frame path in it (``world_from_camera`` @ ref)."""
    from vibe_blender.core.frames import world_from_camera

    if ref is not None:
        motion.camera["world_from_camera"] = world_from_camera(motion.meta) @ ref
