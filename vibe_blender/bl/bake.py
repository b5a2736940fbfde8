"""Bake one track onto its character: one Action (``VIBE_<id>_action``) written in one pass.

The animation is planned in numpy (``core.bake_plan``) and written with ``keyframe_points.add`` +
``foreach_set`` per F-curve (through ``compat``). Channels of the Action (all on the armature):
- ``pose.bones["<smpl joint>"].rotation_quaternion`` [0..3], LINEAR;
- ``pose.bones["pelvis"].location`` [0..2] and ``pose.bones["root"].location`` [0..2], LINEAR
  (see ``core.bake_plan`` for the root motion modes);
- ``["vibe_confidence"]`` (detector score) and ``["vibe_flagged"]`` (1 where the frame was not
  detected or its confidence is below ``bake_plan.LOW_CONFIDENCE``), CONSTANT, group "VIBE quality":
  per-frame quality curves visible in the Graph Editor / Dope Sheet.
When the body has the pose-corrective shape keys (``character``), a second action
``VIBE_<id>_correctives`` on its shape-key datablock keys their 207 values (LINEAR), so the evaluated
mesh reproduces SMPL's pose correctives. Drivers on ``hide_viewport`` / ``hide_render`` of the armature
and the body hide the character outside its track (before its first and after its last key). Each run of flagged frames also gets one scene timeline marker ``VIBE_<id> low`` at its first frame.
The Action carries ``["vibe_manifest"]`` (the file's manifest as JSON), ``["vibe_track_id"]``,
``["vibe_root_motion"]``, ``["vibe_fps"]`` and ``["vibe_frame_start"]``. Re-baking replaces the armature's action (the old one
is removed when nothing else uses it) and its markers. Any exception leaves the scene as it was.
"""
from __future__ import annotations

import json
import logging
import math
from typing import Any, Callable

import bpy
import numpy as np

from ..core.bake_plan import BakePlan, flagged_runs, plan_track, scene_fps, scene_range, visibility_expression
from ..core.skeleton import BONE_NAMES, NUM_SMPL_JOINTS, ROOT_INDEX
from . import compat
from .character import body_of, corrective_key, corrective_key_names, skeleton_of

log = logging.getLogger(__name__)

PROP_CONFIDENCE = "vibe_confidence"
PROP_FLAGGED = "vibe_flagged"
PROP_FRAME_START = "vibe_frame_start"  # the scene frame of video time 0 (exports start there)
QUALITY_GROUP = "VIBE quality"
VISIBILITY_PATHS = ("hide_viewport", "hide_render")


def action_name(track_id: int) -> str:
    """Name of a track's action: ``VIBE_<id>_action``."""
    return f"VIBE_{int(track_id)}_action"


def correctives_action_name(track_id: int) -> str:
    """Name of a track's corrective shape-key action: ``VIBE_<id>_correctives``."""
    return f"VIBE_{int(track_id)}_correctives"


def _drive_visibility(objects: list, plan: BakePlan, frame_start: int) -> None:
    """``hide_viewport`` / ``hide_render`` of ``objects`` driven by the frame: shown only from the first
    to the last key (one expression driver each, replaced on re-bake; no key changes the action's range)."""
    expression = visibility_expression(plan.frames, frame_start)
    for obj in objects:
        for path in VISIBILITY_PATHS:
            obj.driver_remove(path)
            drv = obj.driver_add(path).driver
            drv.type = "SCRIPTED"
            drv.expression = expression  # a simple expression: evaluated without Python auto-run


def marker_prefix(track_id: int) -> str:
    """Prefix of the timeline markers of a track (``VIBE_<id> low``)."""
    return f"VIBE_{int(track_id)} "


def resolve_fps(motion: Any, scene: bpy.types.Scene, fps: float | str | None) -> float:
    """Frame rate to bake at: the scene's (None), the video's ("video"), or the number given."""
    if fps is None:
        rate = scene.render.fps / scene.render.fps_base
    elif fps == "video":
        rate = motion.header.video.fps  # validated: a finite number in (0, 1000]
    else:
        rate = fps
    rate = float(rate)
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"fps must be a positive number or 'video', got {fps!r}")
    return rate


def bake_track(armature: bpy.types.Object, motion: Any, track_id: int, *, root_motion: str = "world",
               frame_start: int = 1, fps: float | str | None = None) -> bpy.types.Action:
    """Bake track ``track_id`` of ``motion`` onto ``armature`` (from ``build_character``).

    ``fps``: None keeps the scene frame rate; a number or ``"video"`` (the file's average fps) sets
    the scene's fps/fps_base to it. Keys land at ``frame_start + time · fps``. The scene frame range
    becomes ``frame_start`` .. the last frame of the longest track. Returns the new action.
    """
    scene = bpy.context.scene
    rate = resolve_fps(motion, scene, fps)
    track = motion.track(track_id)
    plan = plan_track(skeleton_of(armature), track.pose, track.transl, track.times,
                      motion.header.world.world_from_camera, fps=rate, frame_start=frame_start,
                      root_motion=root_motion, confidence=track.confidence, detected=track.detected)
    key = corrective_key(body_of(armature))
    writers: list[compat.ActionWriter] = []
    undo: list[Callable[[], None]] = []
    try:
        _build_actions(writers, armature, key, plan, track_id)
        _tag_action(writers[0].action, motion, track_id, root_motion, rate)
        writers[0].action[PROP_FRAME_START] = float(frame_start)
        last = max(float(t.times[-1]) for t in motion.tracks)
        _set_props(armature, undo)
        _replace_markers(scene, plan, track_id, undo)
        _set_timing(scene, fps is not None, rate, scene_range(frame_start, rate, last, motion.header.video),
                    undo)
        olds = [_assign(owner, w, undo) for owner, w in zip((armature, key), writers)]
    except BaseException:
        for step in reversed(undo):
            step()
        for w in writers:
            w.discard()
        raise
    _drop_unused(olds)  # irreversible, so last; nothing below can fail
    _drive_visibility([o for o in (armature, body_of(armature)) if o is not None], plan, frame_start)
    for w, name in zip(writers, (action_name(track_id), correctives_action_name(track_id))):
        w.action.name = name
    log.info("baked track %s: %d keys at %.3f fps", track_id, plan.num_keys, rate)
    return writers[0].action


def _build_actions(writers: list, armature, key, plan: BakePlan, track_id: int) -> None:
    """The armature's action and, with corrective keys, the shape keys' action (appended to writers)."""
    writers.append(compat.ActionWriter(action_name(track_id), armature))
    _write_channels(writers[0], plan)
    if key is not None:
        writers.append(compat.ActionWriter(correctives_action_name(track_id), key, id_type="KEY"))
        _write_correctives(writers[1], plan)


def _write_channels(writer: compat.ActionWriter, plan: BakePlan) -> None:
    """All F-curves of the plan."""
    frames = plan.frames
    for j in range(NUM_SMPL_JOINTS):
        path = f'pose.bones["{BONE_NAMES[j]}"].rotation_quaternion'
        for k in range(4):
            writer.add_curve(path, k, BONE_NAMES[j], frames, plan.quats[:, j, k])
    for j, loc in ((0, plan.pelvis_loc), (ROOT_INDEX, plan.root_loc)):
        for k in range(3):
            writer.add_curve(f'pose.bones["{BONE_NAMES[j]}"].location', k, BONE_NAMES[j], frames, loc[:, k])
    writer.add_curve(f'["{PROP_CONFIDENCE}"]', 0, QUALITY_GROUP, frames, plan.confidence, "CONSTANT")
    writer.add_curve(f'["{PROP_FLAGGED}"]', 0, QUALITY_GROUP, frames,
                     plan.flagged.astype(np.float64), "CONSTANT")


def _tag_action(action: bpy.types.Action, motion: Any, track_id: int, root_motion: str, rate: float) -> None:
    action["vibe_manifest"] = json.dumps(motion.header.manifest.raw, sort_keys=True)
    action["vibe_track_id"] = int(track_id)
    action["vibe_root_motion"] = root_motion
    action["vibe_fps"] = float(rate)
    contacts = motion.track(track_id).extra.get("contacts")  # the engine's, for retargeting (bl.retarget)
    if contacts is not None:
        action["vibe_contacts"] = np.asarray(contacts, np.int32).ravel().tolist()


def _write_correctives(writer: compat.ActionWriter, plan: BakePlan) -> None:
    """One LINEAR curve per corrective shape key: its value is the pose feature (R − I entry)."""
    for k, name in enumerate(corrective_key_names()):
        writer.add_curve(f'key_blocks["{name}"].value', 0, "correctives", plan.frames, plan.pose_features[:, k])


def _assign(owner, writer: compat.ActionWriter, undo) -> bpy.types.Action | None:
    """Give ``owner`` the new action (undoable); return the action it had."""
    old = compat.active_action(owner)
    old_slot = getattr(owner.animation_data, "action_slot", None) if owner.animation_data else None
    writer.assign(owner)
    undo.append(lambda: _reassign(owner, old, old_slot))
    return old


def _drop_unused(actions: list) -> None:
    """Remove replaced actions that nothing uses any more."""
    for old in actions:
        if old is not None and old.users == 0:
            bpy.data.actions.remove(old)


def _reassign(armature, action, slot) -> None:
    ad = armature.animation_data
    ad.action = action
    if slot is not None and action is not None:
        ad.action_slot = slot


def _set_props(armature, undo) -> None:
    """The custom properties the quality curves animate (they must exist to be evaluated)."""
    for prop, default in ((PROP_CONFIDENCE, 1.0), (PROP_FLAGGED, 0.0)):
        had, before = prop in armature, armature.get(prop)
        armature[prop] = default
        undo.append(lambda p=prop, h=had, b=before: armature.__setitem__(p, b) if h else armature.pop(p))


def _replace_markers(scene, plan, track_id, undo) -> None:
    markers = scene.timeline_markers
    prefix = marker_prefix(track_id)
    old = [(m.name, m.frame) for m in markers if m.name.startswith(prefix)]
    for m in [m for m in markers if m.name.startswith(prefix)]:
        markers.remove(m)
    undo.append(lambda: [markers.new(n, frame=f) for n, f in old])
    for first, _last in flagged_runs(plan):
        marker = markers.new(prefix + "low", frame=int(round(first)))  # nearest scene frame
        undo.append(lambda m=marker: markers.remove(m))


def _set_timing(scene, set_fps, rate, frame_range, undo) -> None:
    r = scene.render
    before = (r.fps, r.fps_base, scene.frame_start, scene.frame_end)
    undo.append(lambda: _restore_timing(scene, before))
    if set_fps:
        r.fps, r.fps_base = scene_fps(rate)
    start, end = frame_range
    scene.frame_end = max(end, scene.frame_end)  # never below frame_start while moving it
    scene.frame_start = start
    scene.frame_end = end


def _restore_timing(scene, before) -> None:
    scene.render.fps, scene.render.fps_base, scene.frame_start, scene.frame_end = before
