"""Demo steps 2 and 3 in Blender: the characters, their exports, and the measurement of each
character through the Blender camera against the engine's own 2D joints and tracker boxes
(the quality figures of summary.json, docs/demo.md)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from demo_base import FRAME_START, DemoError, echo
from vibe_blender.core.bake_plan import times_to_frames
from vibe_blender.core.motion_file import Motion

IOU_GOOD = 0.5  # box IoU counted as a good overlap
#: A character "follows its person" when its median 2D joint error is at most this fraction of the
#: median tracker box side and its box centre lies inside the tracker box in this fraction of frames.
FOLLOW_MAX_ERROR_OF_BOX = 0.10
FOLLOW_MIN_CENTRE_INSIDE = 0.90
#: Workbench object colours (linear RGB) per person, in track order; repeats after the last.
PERSON_COLOURS = ((0.95, 0.45, 0.08), (0.10, 0.45, 0.95), (0.20, 0.80, 0.25), (0.85, 0.20, 0.60))
#: (engine 2D joint index, SMPL joint index) for the joints where both name the same point:
#: shoulders, elbows, wrists, knees, ankles (left then right). BlazePose's markers sit on these
#: SMPL joints (vibe_engine/blazepose/topology.py); VIBE's spin49 OpenPose joints 2-14 are SMPL's.
JOINT_PAIRS = {
    "blazepose33": ((11, 16), (12, 17), (13, 18), (14, 19), (15, 20), (16, 21),
                    (25, 4), (26, 5), (27, 7), (28, 8)),
    "spin49": ((5, 16), (2, 17), (6, 18), (3, 19), (7, 20), (4, 21), (13, 4), (10, 5), (14, 7), (11, 8)),
}


# -- step 2: characters and exports -------------------------------------------------------------
def build_scene(motion_path: Path, video: Path) -> tuple[list, Any]:
    """Empty scene → one character per track (root motion world, video fps) and the matched camera
    with ``video`` as its background (made by the import, ``api.bake_motion``)."""
    import bpy
    import vibe_batch
    from vibe_blender.bl import api
    from vibe_blender.bl.camera import DEFAULT_CAMERA_NAME
    from vibe_blender.bl.character import body_of
    from vibe_blender.core.settings import ImportOptions
    vibe_batch.reset_scene()
    options = ImportOptions(root_motion="world", fps_mode="video", frame_start=FRAME_START)
    armatures = api.bake_motion(str(motion_path), options, video=str(video))
    camera = bpy.data.objects[DEFAULT_CAMERA_NAME]
    if not camera.data.background_images:
        echo(f"blender: warning: Blender cannot decode {video}: the camera has no background "
             "(previews are still composited with OpenCV)")
    for i, arm in enumerate(armatures):
        body_of(arm).color = (*PERSON_COLOURS[i % len(PERSON_COLOURS)], 1.0)
    return armatures, camera


def export_people(armatures: list, out: Path, formats: Sequence[str]) -> dict[int, dict[str, str]]:
    """``out/person_<id>.<fmt>`` for every armature and format; {track id: {fmt: path}}."""
    from vibe_blender.bl import api_export
    writers = {"fbx": api_export.export_fbx, "bvh": api_export.export_bvh, "glb": api_export.export_gltf}
    files: dict[int, dict[str, str]] = {}
    for arm in armatures:
        track_id = int(arm["vibe_track_id"])
        files[track_id] = {fmt: writers[fmt](arm, str(out / f"person_{track_id}.{fmt}")) for fmt in formats}
        echo(f"blender: person {track_id} → " + ", ".join(Path(p).name for p in files[track_id].values()))
    return files


# -- step 3: measure (Blender) ------------------------------------------------------------------
@dataclass
class PersonSamples:
    """One character seen through the Blender camera at each of its track's frames.

    joints_px (T,K,2) float64: the K paired SMPL joints (``JOINT_PAIRS``) in video pixels (x right,
    y down); box_px (T,4) float64: (x0, y0, x1, y1) of the projected body vertices in video pixels.
    """

    track_id: int
    joints_px: np.ndarray
    box_px: np.ndarray


def camera_projector(scene: Any, camera: Any, width: int, height: int) -> Callable[[np.ndarray], np.ndarray]:
    """World points (N,3) metres → video pixels (N,2) through Blender's own camera matrices."""
    import bpy
    depsgraph = bpy.context.evaluated_depsgraph_get()
    view = np.array(camera.matrix_world.inverted())
    proj = np.array(camera.calc_matrix_camera(depsgraph, x=width, y=height)) @ view

    def project(points: np.ndarray) -> np.ndarray:
        h = np.c_[np.asarray(points, np.float64), np.ones(len(points))] @ proj.T
        ndc = h[:, :2] / h[:, 3:4]
        return np.stack([(ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height], axis=-1)
    return project


def set_frame(scene: Any, frame: float) -> None:
    """Go to a (possibly fractional) scene frame."""
    whole = math.floor(frame)
    scene.frame_set(int(whole), subframe=float(frame - whole))


def _world_joints(arm: Any, bones: Sequence[str]) -> np.ndarray:
    mw = np.array(arm.matrix_world)
    heads = np.array([tuple(arm.pose.bones[b].head) for b in bones])
    return heads @ mw[:3, :3].T + mw[:3, 3]


def _world_vertices(obj: Any) -> np.ndarray:
    import bpy
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        evaluated.to_mesh_clear()
    mw = np.array(evaluated.matrix_world)
    return co.reshape(-1, 3).astype(np.float64) @ mw[:3, :3].T + mw[:3, 3]


def sample_people(scene: Any, armatures: list, motion: Motion, project: Callable,
                  fps: float) -> list[PersonSamples]:
    """Evaluate every tracked frame once and project each present character (see PersonSamples)."""
    from vibe_blender.bl.character import body_of
    from vibe_blender.core.smpl import SMPL_JOINT_NAMES
    bones = [SMPL_JOINT_NAMES[s] for _, s in joint_pairs(motion.header)]
    schedule: dict[float, list[tuple[int, int]]] = {}
    for p, arm in enumerate(armatures):
        track = motion.track(int(arm["vibe_track_id"]))
        for row, frame in enumerate(times_to_frames(track.times, fps, FRAME_START)):
            schedule.setdefault(float(frame), []).append((p, row))
    joints = [np.zeros((motion.track(int(a["vibe_track_id"])).num_frames, len(bones), 2)) for a in armatures]
    boxes = [np.zeros((len(j), 4)) for j in joints]
    for frame in sorted(schedule):
        set_frame(scene, frame)
        for p, row in schedule[frame]:
            joints[p][row] = project(_world_joints(armatures[p], bones))
            verts = project(_world_vertices(body_of(armatures[p])))
            boxes[p][row] = (*verts.min(0), *verts.max(0))
    return [PersonSamples(int(a["vibe_track_id"]), j, b) for a, j, b in zip(armatures, joints, boxes)]


# -- quality figures (pure numpy) ----------------------------------------------------------------
def joint_pairs(header: Any) -> tuple[tuple[int, int], ...]:
    """The (engine joint, SMPL joint) pairs for the file's joint set (``header``: the typed
    ``motion_header.Header``); DemoError for an unknown set."""
    name = header.joints_set
    if name not in JOINT_PAIRS:
        raise DemoError(f"unknown joint set {name!r} in the motion file; "
                        f"expected one of {sorted(JOINT_PAIRS)}")
    return JOINT_PAIRS[name]


def square_boxes(xyxy: np.ndarray) -> np.ndarray:
    """(T,4) corner boxes → (T,4) squares (cx, cy, side, side), side = the longer side (as the tracker)."""
    xyxy = np.asarray(xyxy, np.float64)
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    side = np.max(xyxy[:, 2:] - xyxy[:, :2], axis=1)
    return np.c_[centre, side, side]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row IoU (T,) of (T,4) boxes (cx, cy, w, h) (``vibe_engine.people.detect.box_iou``)."""
    from vibe_engine.people.detect import box_iou as iou_xyxy
    from vibe_engine.people.track import cxcywh_to_xyxy
    return iou_xyxy(cxcywh_to_xyxy(np.asarray(a, np.float64)), cxcywh_to_xyxy(np.asarray(b, np.float64)))


def _stats(values: np.ndarray, digits: int = 2) -> dict[str, float]:
    v = np.asarray(values, np.float64).ravel()
    return {"mean": round(float(v.mean()), digits), "median": round(float(np.median(v)), digits),
            "p95": round(float(np.percentile(v, 95)), digits), "max": round(float(v.max()), digits)}


def person_quality(samples: PersonSamples, track: Any, pairs: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Joint error (px) against the engine's fitted 2D joints and box IoU against the tracker boxes.

    The fitted joints are ``joints2d_raw`` where the file has them: ``joints2d`` is recomputed from
    the final (smoothed, foot-locked) pose, which the baked character reproduces by construction,
    so only the raw fit measures how far the character moved from what the video showed."""
    fitted = track.extra.get("joints2d_raw", track.joints2d)
    engine_px = np.asarray(fitted, np.float64)[:, [e for e, _ in pairs]]
    error = np.linalg.norm(samples.joints_px - engine_px, axis=-1)  # (T,K)
    square = square_boxes(samples.box_px)
    bbox = np.asarray(track.bbox, np.float64)
    iou = box_iou(square, bbox)
    inside = float(np.mean(np.all(np.abs(square[:, :2] - bbox[:, :2]) <= bbox[:, 2:] / 2, axis=1)))
    allowed = FOLLOW_MAX_ERROR_OF_BOX * float(np.median(bbox[:, 3]))
    follows = bool(np.median(error) <= allowed and inside >= FOLLOW_MIN_CENTRE_INSIDE)
    return {"joint_error_px": {**_stats(error), "joints": len(pairs), "frames": int(error.shape[0])},
            "box_iou": {**_stats(iou, 3), "threshold": IOU_GOOD,
                        "fraction_at_least_threshold": round(float(np.mean(iou >= IOU_GOOD)), 3)},
            "box_centre_inside_fraction": round(inside, 3),
            "follows_person": follows, "follow_max_median_error_px": round(allowed, 1)}


def measure(scene: Any, camera: Any, armatures: list, motion: Motion, fps: float) -> dict[int, dict]:
    """Step 3: {track id: quality figures} of every character seen through ``camera``."""
    cam = motion.header.camera
    project = camera_projector(scene, camera, cam.width, cam.height)
    samples = sample_people(scene, armatures, motion, project, fps)
    pairs = joint_pairs(motion.header)
    return {s.track_id: person_quality(s, motion.track(s.track_id), pairs) for s in samples}
