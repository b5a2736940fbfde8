"""Time of an export: which scene frames are written, which one is 0 s, and the keys the exporters
need for it (FBX/glTF), all put back afterwards.

The time mapping itself is pure (:func:`..core.export_presets.clip_span`). Here the character's
actions are edited in place for the length of an export (exporters treat an action copy as a second
strip) and restored bit for bit:

- FBX (:func:`timed_actions`): keys shifted so that 0 s is scene frame 0, a CONSTANT rest key
  ``REST_FRAME_LEAD`` frames before the first written frame (the FBX exporter writes the current
  frame's pose as the nodes' default transforms);
- timing "hidden" (FBX and glTF): before the person's first frame the pose curves hold the first
  pose, the root bones sit at their rest location and their scale is ``HIDDEN_SCALE`` (CONSTANT
  keys; scale curves are created when the action has none and removed afterwards), so the
  exporters sample the hidden lead-in from the first written frame on. The root rests at the
  armature's origin because the exporters derive each bone's local transform from armature-space
  matrices in float32: with the collapsed skeleton metres from the origin, the children's local
  offsets came out up to 87 mm off the first pose (measured, glTF); at the origin they hold it to
  1 µm.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import bpy
import numpy as np

from ..core import export_presets as presets
from ..core.errors import UserInputError
from . import compat
from .bake import PROP_FRAME_START


@dataclass(frozen=True)
class Clip:
    """What an export writes in time: scene frames ``first``..``end``; the person's keys are
    ``start``..``end`` (``first`` < ``start`` only for the hidden lead-in of timing "hidden");
    ``origin`` the scene frame that becomes 0 s, at ``fps``; ``name`` the take/clip name."""

    start: int
    end: int
    origin: int
    fps: float
    name: str
    first: int
    timing: str = "video"

    @property
    def first_s(self) -> float:
        return (self.first - self.origin) / self.fps

    @property
    def last_s(self) -> float:
        return (self.end - self.origin) / self.fps

    @property
    def frames(self) -> int:
        """Frames written (keys per channel)."""
        return self.end - self.first + 1

    @property
    def hidden_frames(self) -> int:
        """Frames of the hidden lead-in (root scale HIDDEN_SCALE) before the person's first frame."""
        return self.start - self.first

    @property
    def shown_from_s(self) -> float:
        """Time (s) of the person's first frame, from which the character is visible."""
        return (self.start - self.origin) / self.fps


def action_frame_range(armature: bpy.types.Object) -> tuple[int, int]:
    """First and last keyed frame (inclusive, integers) of the armature's active action.

    Raises UserInputError when the armature has no action (nothing was baked).
    """
    ad = armature.animation_data
    action = ad.action if ad else None
    if action is None:
        raise UserInputError(f"armature {armature.name!r} has no animation; import or bake a motion first")
    start, end = action.frame_range
    return int(round(start)), int(round(end))


def clip_of(armature: bpy.types.Object, timing: str, take: str | None) -> Clip:
    """The Clip of an armature's action for a timing mode (see :mod:`..core.export_presets`).

    Video time 0 is the frame the motion was baked to start at (the action's ``vibe_frame_start``;
    for actions not baked by the add-on, the scene's start frame).
    """
    presets.check_choice("timing", timing, presets.TIMING_MODES)
    start, end = action_frame_range(armature)
    scene = bpy.context.scene
    video_zero = int(round(float(armature.animation_data.action.get(PROP_FRAME_START, scene.frame_start))))
    origin, first = presets.clip_span(timing, start, end, video_zero)
    take = str(take) if take else presets.DEFAULT_TAKE
    return Clip(start, end, origin, scene.render.fps / scene.render.fps_base, f"{armature.name}_{take}",
                first, timing)


def fill_report(report: dict | None, clip: Clip, fmt: str, **extra: Any) -> dict:
    """Fill ``report`` (or a new dict) with the export facts: format, timing, take name, first/last key
    time (s), frames written, fps, the hidden lead-in (frames, the root scale in it, and
    ``hidden_until_s``: the time from which the character is visible) and ``extra``; skinning adds
    influences and the pruning error (m)."""
    facts = report if report is not None else {}
    facts.update(format=fmt, timing=clip.timing, take=clip.name, first_key_s=clip.first_s,
                 last_key_s=clip.last_s, frames=clip.frames, fps=clip.fps, hidden_frames=clip.hidden_frames,
                 hidden_until_s=clip.shown_from_s if clip.timing == "hidden" else None,
                 hidden_scale=presets.HIDDEN_SCALE if clip.hidden_frames > 0 else None, **extra)
    return facts


#: Pose value of a channel at rest, by the data path's last part (per index).
_REST_VALUES = {"rotation_quaternion": (1.0, 0.0, 0.0, 0.0), "location": (0.0, 0.0, 0.0),
                "scale": (1.0, 1.0, 1.0), "rotation_euler": (0.0, 0.0, 0.0),
                "rotation_axis_angle": (0.0, 0.0, 1.0, 0.0), "value": (0.0,)}
_KEY_ARRAYS = ("co", "handle_left", "handle_right")
_SCALE_CHANNELS = 3

#: (frame, value) CONSTANT keys to add before an F-curve's first key, given the curve.
LeadKeys = Callable[[bpy.types.FCurve], list]


def _key_arrays(fc: bpy.types.FCurve) -> dict:
    """{property: float32 array (2·N)} of the keys of ``fc`` (frames at even, values at odd indices)."""
    out = {}
    for prop in _KEY_ARRAYS:
        out[prop] = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get(prop, out[prop])
    return out


def _rest_value(fc: bpy.types.FCurve) -> float | None:
    """The channel's rest value (pose-bone transforms, shape-key values), None for other channels."""
    rest = _REST_VALUES.get(fc.data_path.rsplit(".", 1)[-1])
    if rest is None or fc.array_index >= len(rest):
        return None
    if not fc.data_path.startswith(("pose.bones", "key_blocks")):
        return None
    return rest[fc.array_index]


def _scale_path(bone: str) -> str:
    return f'pose.bones["{bone}"].scale'


def _add_constant_keys(fc: bpy.types.FCurve, keys: list) -> None:
    for frame, value in keys:
        fc.keyframe_points.insert(frame, value, options={"FAST"}).interpolation = "CONSTANT"


@contextlib.contextmanager
def _shifted_curves(action: bpy.types.Action, offset: float, lead_keys: LeadKeys) -> Iterator[None]:
    """Move every key of ``action`` by ``offset`` frames and add ``lead_keys(fc)`` (CONSTANT, before
    the first key); afterwards the added keys go and the saved keys are put back bit for bit."""
    saved = []
    try:
        for fc in list(compat.action_fcurves(action)):
            arrays = _key_arrays(fc)
            saved.append([fc, arrays, 0])
            for prop in _KEY_ARRAYS:
                moved = arrays[prop].copy()
                moved[0::2] += offset
                fc.keyframe_points.foreach_set(prop, moved)
            fc.update()
            keys = lead_keys(fc)
            _add_constant_keys(fc, keys)
            saved[-1][2] = len(keys)
            fc.update()
        yield
    finally:
        for fc, arrays, added in saved:
            for _ in range(added):
                fc.keyframe_points.remove(fc.keyframe_points[0], fast=True)
            for prop in _KEY_ARRAYS:
                fc.keyframe_points.foreach_set(prop, arrays[prop])
            fc.update()


def root_bones(armature: bpy.types.Object) -> list:
    """Names of the armature's bones without a parent (the ones timing "hidden" scales down)."""
    return [b.name for b in armature.data.bones if b.parent is None]


def _curve_collection(owner: bpy.types.ID, action: bpy.types.Action):
    """Where new F-curves of ``owner``'s animation go: the action (4.2–4.3) or the channelbag of its
    slot (4.4+)."""
    if not compat.has_slotted_actions():
        return action.fcurves
    slot = owner.animation_data.action_slot
    strip = action.layers[0].strips[0]
    return strip.channelbag(slot, ensure=True).fcurves


@contextlib.contextmanager
def _new_scale_curves(owner: bpy.types.Object, action: bpy.types.Action, bones: list,
                      keys: list) -> Iterator[None]:
    """Scale F-curves with CONSTANT ``keys`` for the ``bones`` whose scale is not animated; removed
    afterwards, and those bones' pose scales put back (a removed curve leaves its last value)."""
    existing = {(fc.data_path, fc.array_index) for fc in compat.action_fcurves(action)}
    collection = _curve_collection(owner, action)
    created = []
    scales = {b: tuple(owner.pose.bones[b].scale) for b in bones}
    try:
        for bone in bones:
            for k in range(_SCALE_CHANNELS):
                if (_scale_path(bone), k) in existing:
                    continue
                fc = collection.new(_scale_path(bone), index=k)
                created.append(fc)
                _add_constant_keys(fc, keys)
                fc.update()
        yield
    finally:
        for fc in reversed(created):
            collection.remove(fc)
        for bone, scale in scales.items():
            owner.pose.bones[bone].scale = scale


def _lead_keys(clip: Clip, offset: int, rest_frame: int | None, bones: list) -> LeadKeys:
    """The keys :func:`_shifted_curves` adds: the rest pose at ``rest_frame`` (FBX), and for a hidden
    lead-in from the first written frame the first pose held, the root bones at their rest location
    with their scale at HIDDEN_SCALE (see the module docstring)."""
    hold_frame = clip.first + offset if rest_frame is None else rest_frame + 1
    hidden_scales = {_scale_path(b) for b in bones} if clip.hidden_frames > 0 else set()
    root_locations = {f'pose.bones["{b}"].location' for b in bones}

    def keys(fc: bpy.types.FCurve) -> list:
        rest = _rest_value(fc)
        out = [(rest_frame, rest)] if rest is not None and rest_frame is not None else []
        if fc.data_path in hidden_scales:
            out.append((hold_frame, presets.HIDDEN_SCALE))
        elif fc.data_path in root_locations:
            out.append((hold_frame, rest))
        elif clip.hidden_frames > 0 and (rest is not None or rest_frame is None):
            out.append((hold_frame, fc.evaluate(clip.start + offset)))
        return out

    return keys


def _hidden_scale_keys(clip: Clip, offset: int, rest_frame: int | None) -> list:
    """Keys of a created root scale curve: (rest 1,) HIDDEN_SCALE from the first written frame, 1 from
    the person's first frame."""
    hold_frame = clip.first + offset if rest_frame is None else rest_frame + 1
    keys = [] if rest_frame is None else [(rest_frame, presets.SHOWN_SCALE)]
    return keys + [(hold_frame, presets.HIDDEN_SCALE), (clip.start + offset, presets.SHOWN_SCALE)]


@contextlib.contextmanager
def keyed_actions(armature: bpy.types.Object, meshes: list, clip: Clip, offset: int,
                  rest_frame: int | None) -> Iterator[None]:
    """The character's actions (armature, shape keys) shifted by ``offset`` frames, with the rest key
    at ``rest_frame`` (None: no rest key) and the hidden lead-in of ``clip`` keyed (see the module
    docstring); everything is put back afterwards."""
    owners = [armature, *(m.data.shape_keys for m in meshes if m.data.shape_keys)]
    bones = root_bones(armature) if clip.hidden_frames > 0 else []
    lead = _lead_keys(clip, offset, rest_frame, bones)
    actions = {id(a): (o, a) for o, a in ((o, compat.active_action(o)) for o in owners) if a is not None}
    try:
        with contextlib.ExitStack() as stack:
            for _, action in actions.values():
                stack.enter_context(_shifted_curves(action, offset, lead))
            if bones:
                action = compat.active_action(armature)
                stack.enter_context(_new_scale_curves(armature, action, bones,
                                                      _hidden_scale_keys(clip, offset, rest_frame)))
            yield
    finally:
        # re-evaluate while the character is still shown for the export: a hidden object keeps the
        # pose of its last evaluation (here: the exporter's, with the temporary keys)
        bpy.context.view_layer.update()


@contextlib.contextmanager
def timed_actions(armature: bpy.types.Object, meshes: list, clip: Clip) -> Iterator[None]:
    """FBX: the character's actions shifted so that ``clip.origin`` is scene frame 0, the rest pose
    keyed ``REST_FRAME_LEAD`` frames before the first written frame, the hidden lead-in keyed; the
    scene frame range set to the written frames and the current frame to the rest frame (everything
    is put back afterwards). (Not used for glTF: Blender 4.2's glTF exporter samples the bones of a
    character's shifted action from the wrong first frame; glTF exports unshifted
    (:func:`keyed_actions` with offset 0), slid to 0 s, and ``glb_binary.retime_animations`` sets
    the times.)

    Blender's exporters write scene frame f at f / fps seconds, and the FBX exporter writes the pose of
    the current frame as the nodes' default transforms.
    """
    scene = bpy.context.scene
    first, last = clip.first - clip.origin, clip.end - clip.origin
    rest_frame = first - presets.REST_FRAME_LEAD
    with keyed_actions(armature, meshes, clip, -clip.origin, rest_frame):
        scene.frame_start, scene.frame_end = first, last
        scene.frame_set(rest_frame)
        yield
