"""Blender-version differences, in one place (Blender 4.2 LTS – 5.2 LTS).

The Action API is the hotspot (environment.md §1):
- 4.2–4.3: legacy actions, ``action.fcurves.new(data_path, index=, action_group=)``.
- 4.4+: slotted (layered) actions: F-curves live in a channelbag of a keyframe strip of a layer,
  per slot; the object must be given the slot (``animation_data.action_slot``) or the animation
  does not play. 5.0 removed ``Action.fcurves``.
Everything else in the add-on goes through :class:`ActionWriter` and :func:`action_fcurves`.
"""
from __future__ import annotations

import logging
from typing import Iterator

import bpy
import numpy as np

log = logging.getLogger(__name__)

INTERPOLATION = {"CONSTANT": 0, "LINEAR": 1, "BEZIER": 2}  # FCurve keyframe enum as int


def has_slotted_actions() -> bool:
    """True on Blender 4.4+ (actions with slots, layers, strips and channelbags)."""
    return "slots" in bpy.types.Action.bl_rna.properties


class ActionWriter:
    """Creates one Action for one ID and adds F-curves filled in one pass (foreach_set).

    Nothing is assigned to the ID until :meth:`assign`; :meth:`discard` removes the action.
    """

    def __init__(self, name: str, owner: bpy.types.ID, id_type: str = "OBJECT") -> None:
        self.action = bpy.data.actions.new(name)
        self.slot = None
        self._groups: dict[str, object] = {}
        if has_slotted_actions():
            self.slot = self.action.slots.new(id_type=id_type, name=owner.name)
            strip = self.action.layers.new("Layer").strips.new(type="KEYFRAME")
            self._bag = strip.channelbag(self.slot, ensure=True)
        else:
            self.action.id_root = id_type
            self._bag = None

    def _group(self, name: str):
        if name not in self._groups:
            self._groups[name] = self._bag.groups.new(name)
        return self._groups[name]

    def add_curve(self, data_path: str, index: int, group: str, frames: np.ndarray,
                  values: np.ndarray, interpolation: str = "LINEAR") -> bpy.types.FCurve:
        """New F-curve with keys at ``frames`` (N,) holding ``values`` (N,), written in one pass."""
        if self._bag is None:
            fc = self.action.fcurves.new(data_path, index=index, action_group=group)
        else:
            fc = self._bag.fcurves.new(data_path, index=index)
            fc.group = self._group(group)
        write_keys(fc, frames, values, interpolation)
        return fc

    def assign(self, obj: bpy.types.ID) -> None:
        """Make this action (and slot) the active animation of ``obj``."""
        ad = obj.animation_data or obj.animation_data_create()
        ad.action = self.action
        if self.slot is not None:
            ad.action_slot = self.slot

    def discard(self) -> None:
        """Remove the action (used on failure, before or after assignment)."""
        if self.action is not None:
            bpy.data.actions.remove(self.action)
            self.action = None


def write_keys(fc: bpy.types.FCurve, frames: np.ndarray, values: np.ndarray,
               interpolation: str = "LINEAR") -> None:
    """Fill an empty F-curve with N keys: ``keyframe_points.add`` + ``foreach_set`` (no per-key calls)."""
    n = len(frames)
    co = np.empty((n, 2), dtype=np.float32)
    co[:, 0], co[:, 1] = frames, values
    kp = fc.keyframe_points
    kp.add(n)
    kp.foreach_set("co", co.ravel())
    kp.foreach_set("interpolation", np.full(n, INTERPOLATION[interpolation], dtype=np.int32))
    fc.update()


def action_fcurves(action: bpy.types.Action) -> Iterator[bpy.types.FCurve]:
    """Every F-curve of ``action``, on any supported version (all slots, layers and strips)."""
    if not has_slotted_actions():
        yield from action.fcurves
        return
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                yield from bag.fcurves


def active_action(obj: bpy.types.ID) -> bpy.types.Action | None:
    """The action animating ``obj`` (None without animation data)."""
    ad = obj.animation_data
    return ad.action if ad is not None else None
