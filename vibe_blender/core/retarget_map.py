"""Which target bone plays which body part: the bone map, detected from names or from structure.

A bone map assigns **slots** (body parts, ``SLOTS``) to chains of target bones. The first bone of a
chain is driven; the others (twist or split segments such as Rigify's ``DEF-thigh.L.001``) keep
their rest pose relative to it. ``spine`` and ``neck`` chains are driven bone by bone (each gets
the source spine bone at the same height along the chain). Target bones in no slot (fingers,
twist bones, face, helpers) keep their rest pose relative to their parent and are reported as
unmapped.

JSON preset (docs/retarget.md)::

    {"format": "vibe-mocap-bonemap", "version": 1, "convention": "mixamo",
     "slots": {"hips": ["mixamorig:Hips"], "spine": ["mixamorig:Spine", "mixamorig:Spine1"], ...}}

Detection (:func:`detect_mapping`) tries the naming conventions in ``CONVENTIONS`` (Mixamo / CMU /
BVH, Unreal-style game rigs, Rigify FK controls, Rigify DEF bones, Rigify metarigs, MakeHuman) and
falls back to the chain structure (:func:`map_by_structure`): feet = the lowest bone ends left and
right, hands = the farthest sideways, head = the highest; hips = the feet's common ancestor.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .retarget_rig import RigError, RigSkeleton

FORMAT = "vibe-mocap-bonemap"
VERSION = 1
SIDES = ("L", "R")  # L = the character's left = +X in the rest pose (it faces −Y)
LIMB_PARTS = ("shoulder", "upper_arm", "forearm", "hand", "thigh", "shin", "foot", "toe")
SLOTS = ("root", "hips", "spine", "neck", "head") + tuple(f"{p}.{s}" for s in SIDES for p in LIMB_PARTS)
REQUIRED = ("hips", "spine", "head") + tuple(
    f"{p}.{s}" for s in SIDES for p in ("upper_arm", "forearm", "hand", "thigh", "shin", "foot"))
MULTI_BONE_SLOTS = ("spine", "neck")  # each bone of these chains is driven
STRAIGHT_COS = 0.995  # a bone this parallel to the previous one continues it
FLOOR_BAND = 0.03  # of the height: bone ends this close to the lowest count as on the floor
ROOT_BAND = 0.1  # of the height: a hips ancestor with its head this low is the rig's root
MIN_PART = 0.01  # of the height: shorter bones are helpers, not limb parts
NAMESPACE = re.compile(r"^.*:")  # "mixamorig:Hips", "mixamorig1:Hips" → "Hips"

# Per convention: slot → candidate names ({side}: Left/Right, {s}: l/r, {S}: L/R). The first
# existing candidate wins; for spine/neck every existing candidate joins the chain, in order.
_MIXAMO = {
    "hips": ["Hips"], "spine": ["LowerBack", "Spine", "Spine1", "Spine2", "Spine3"],
    "neck": ["Neck", "Neck1"], "head": ["Head"], "shoulder": ["{side}Shoulder"],
    "upper_arm": ["{side}Arm"], "forearm": ["{side}ForeArm"], "hand": ["{side}Hand"],
    "thigh": ["{side}UpLeg"], "shin": ["{side}Leg"], "foot": ["{side}Foot"], "toe": ["{side}ToeBase"],
}
_UNREAL = {
    "root": ["root", "Root"], "hips": ["pelvis"], "spine": [f"spine_0{i}" for i in range(1, 6)],
    "neck": ["neck_01", "neck_02"], "head": ["head"], "shoulder": ["clavicle_{s}"],
    "upper_arm": ["upperarm_{s}"], "forearm": ["lowerarm_{s}"], "hand": ["hand_{s}"],
    "thigh": ["thigh_{s}"], "shin": ["calf_{s}"], "foot": ["foot_{s}"], "toe": ["ball_{s}"],
}
# Rigify FK: spine_fk.001 and .002 share a head (the pivot); keying .002 and .003 tracks the
# deforming spine best (measured on the generated human rig, tests/blender/test_retarget_blender.py)
_RIGIFY_FK = {
    "hips": ["torso"], "spine": ["spine_fk.002", "spine_fk.003"],
    "neck": ["neck"], "head": ["head"], "shoulder": ["shoulder.{S}"], "upper_arm": ["upper_arm_fk.{S}"],
    "forearm": ["forearm_fk.{S}"], "hand": ["hand_fk.{S}"], "thigh": ["thigh_fk.{S}"],
    "shin": ["shin_fk.{S}"], "foot": ["foot_fk.{S}"], "toe": ["toe_fk.{S}", "toe.{S}"],
}


def _rigify_chain(prefix: str) -> dict[str, list[str]]:
    """Rigify DEF bones (prefix "DEF-") or metarig bones (prefix ""): spine = pelvis, .001–.003 spine,
    .004–.005 neck, .006 head."""
    p = prefix
    return {
        "hips": [f"{p}spine"], "spine": [f"{p}spine.00{i}" for i in (1, 2, 3)],
        "neck": [f"{p}spine.004", f"{p}spine.005"], "head": [f"{p}spine.006"],
        "shoulder": [f"{p}shoulder.{{S}}"], "upper_arm": [f"{p}upper_arm.{{S}}"],
        "forearm": [f"{p}forearm.{{S}}"], "hand": [f"{p}hand.{{S}}"], "thigh": [f"{p}thigh.{{S}}"],
        "shin": [f"{p}shin.{{S}}"], "foot": [f"{p}foot.{{S}}"], "toe": [f"{p}toe.{{S}}"],
    }


_MAKEHUMAN = {
    "hips": ["root"], "spine": ["spine05", "spine04", "spine03", "spine02", "spine01"],
    "neck": ["neck01", "neck02", "neck03"], "head": ["head"], "shoulder": ["clavicle.{S}"],
    "upper_arm": ["upperarm01.{S}"], "forearm": ["lowerarm01.{S}"], "hand": ["wrist.{S}"],
    "thigh": ["upperleg01.{S}"], "shin": ["lowerleg01.{S}"], "foot": ["foot.{S}"], "toe": ["toe1-1.{S}"],
}
#: Chain followers: the bone after the driven one in split limbs (kept rigid with it).
_FOLLOWERS = {"makehuman": {"upper_arm": "upperarm02.{S}", "forearm": "lowerarm02.{S}",
                            "thigh": "upperleg02.{S}", "shin": "lowerleg02.{S}"},
              "rigify_def": {"upper_arm": "DEF-upper_arm.{S}.001", "forearm": "DEF-forearm.{S}.001",
                             "thigh": "DEF-thigh.{S}.001", "shin": "DEF-shin.{S}.001"}}
CONVENTIONS: dict[str, dict[str, list[str]]] = {
    "mixamo": _MIXAMO, "unreal": _UNREAL, "rigify_fk": _RIGIFY_FK, "rigify_def": _rigify_chain("DEF-"),
    "rigify_metarig": _rigify_chain(""), "makehuman": _MAKEHUMAN,
}
_SIDE_WORDS = {"L": {"side": "Left", "s": "l", "S": "L"}, "R": {"side": "Right", "s": "r", "S": "R"}}


@dataclass(frozen=True)
class BoneMap:
    """slots: slot → chain of target bone names (tuple); convention: how it was found."""

    slots: Mapping[str, tuple[str, ...]]
    convention: str = "custom"
    unmapped: tuple[str, ...] = field(default=())

    def to_json(self) -> str:
        """The JSON preset text (see the module docstring)."""
        doc = {"format": FORMAT, "version": VERSION, "convention": self.convention,
               "slots": {k: list(v) for k, v in self.slots.items()}}
        return json.dumps(doc, indent=2) + "\n"

    def bones(self) -> set[str]:
        """Every target bone the map uses."""
        return {b for chain in self.slots.values() for b in chain}


def from_json(text: str, rig: RigSkeleton | None = None) -> BoneMap:
    """Parse a JSON preset; with ``rig``, check it against the rig (RigError naming bad entries)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RigError(f"bone map is not valid JSON ({exc}); fix the file") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise RigError(f"not a bone map (need \"format\": \"{FORMAT}\", \"version\": {VERSION})")
    slots = doc.get("slots")
    if not isinstance(slots, dict):
        raise RigError("bone map has no \"slots\" object; see docs/retarget.md")
    bad = sorted(set(slots) - set(SLOTS))
    if bad:
        raise RigError(f"bone map has unknown slots {bad}; use {list(SLOTS)}")
    chains = {k: tuple([v] if isinstance(v, str) else v) for k, v in slots.items() if v}
    bmap = BoneMap(slots=chains, convention=str(doc.get("convention", "custom")))
    return validate(bmap, rig) if rig is not None else bmap


def validate(bmap: BoneMap, rig: RigSkeleton) -> BoneMap:
    """The map with its unmapped bones filled in; RigError for bones the rig lacks or missing
    required slots (naming them)."""
    unknown = sorted(b for b in bmap.bones() if b not in rig.names)
    if unknown:
        raise RigError(f"bone map names bones the rig does not have: {', '.join(unknown[:6])}"
                       f"{' …' if len(unknown) > 6 else ''}; fix the map or pick the matching rig")
    missing = [s for s in REQUIRED if not bmap.slots.get(s)]
    if missing:
        raise RigError(f"the rig has no {', '.join(missing)} (not a humanoid with legs, spine and arms); "
                       "map those slots in a bone map or pick a humanoid rig")
    used = bmap.bones()
    return BoneMap(slots=dict(bmap.slots), convention=bmap.convention,
                   unmapped=tuple(n for n in rig.names if n not in used))


def _by_names(rig: RigSkeleton, table: dict[str, list[str]], followers: dict[str, str]) -> dict:
    names = {NAMESPACE.sub("", n): n for n in rig.names}
    slots: dict[str, tuple[str, ...]] = {}
    for part, candidates in table.items():
        for side in (SIDES if part in LIMB_PARTS else (None,)):
            words = _SIDE_WORDS[side] if side else {}
            found = [names[c.format(**words)] for c in candidates if c.format(**words) in names]
            if not found:
                continue
            chain = found if part in MULTI_BONE_SLOTS else found[:1]
            follow = followers.get(part)
            if follow and follow.format(**words) in names:
                chain = chain + [names[follow.format(**words)]]
            slots[f"{part}.{side}" if side else part] = tuple(chain)
    return slots


def detect_mapping(rig: RigSkeleton) -> BoneMap:
    """The best bone map for ``rig``: the naming convention that fills every required slot (most
    slots first), else the structure (:func:`map_by_structure`). RigError for a non-humanoid."""
    best = None
    for name, table in CONVENTIONS.items():
        slots = _by_names(rig, table, _FOLLOWERS.get(name, {}))
        if all(slots.get(s) for s in REQUIRED) and (best is None or len(slots) > len(best[1])):
            best = (name, slots)
    if best is not None:
        return validate(BoneMap(slots=best[1], convention=best[0]), rig)
    return validate(map_by_structure(rig), rig)


# -- structure -------------------------------------------------------------------------------------
def _path(rig: RigSkeleton, top: int, bottom: int) -> list[int]:
    """Bones from ``top`` (excluded) down to ``bottom`` (included), top to bottom."""
    up = rig.chain_to_root(bottom)
    if top not in up:
        raise RigError("the rig's limbs do not hang from one body; pick a humanoid rig")
    return list(reversed(up[:up.index(top)]))


def _lca(rig: RigSkeleton, a: int, b: int) -> int:
    up = rig.chain_to_root(a)
    for j in rig.chain_to_root(b):
        if j in up:
            return j
    raise RigError("the rig has several root bones with limbs on each; pick a humanoid rig")


def _segments(path: list[int], rig: RigSkeleton, min_len: float) -> list[list[int]]:
    """``path`` cut into limb parts: bones shorter than ``min_len`` are dropped, and a bone that
    continues the previous one straight on (a split or twist segment) joins its part."""
    parts: list[list[int]] = []
    for j in path:
        vec = rig.tails[j] - rig.heads[j]
        if np.linalg.norm(vec) < min_len:
            continue
        if parts:
            last = parts[-1][-1]
            prev = rig.tails[last] - rig.heads[last]
            straight = vec @ prev / (np.linalg.norm(vec) * np.linalg.norm(prev)) > STRAIGHT_COS
            if straight and np.linalg.norm(rig.heads[j] - rig.tails[last]) < min_len:
                parts[-1].append(j)
                continue
        parts.append([j])
    return parts


def _part_length(rig: RigSkeleton, part: list[int]) -> float:
    return float(np.linalg.norm(rig.tails[part[-1]] - rig.heads[part[0]]))


def _limb(rig: RigSkeleton, path: list[int], names: tuple[str, str, str, str], side: str,
          min_len: float, upper_first: bool) -> dict[str, tuple[str, ...]]:
    """Slots of one limb: the two longest parts are upper/lower (thigh/shin, upper arm/forearm);
    the part after them is the end (foot/hand); the next (toe) or the one before (shoulder) too."""
    parts = _segments(path, rig, min_len)
    longest = sorted(sorted(range(len(parts)), key=lambda i: -_part_length(rig, parts[i]))[:2])
    if len(longest) < 2 or longest[1] != longest[0] + 1 or longest[1] + 1 >= len(parts):
        raise RigError("a limb of the rig lacks an upper, lower and end bone; pick a humanoid rig "
                       "or map it in a bone map")
    a = longest[0]
    picks = {names[1]: parts[a], names[2]: parts[a + 1], names[3]: parts[a + 2]}
    extra = a + 3 if upper_first else a - 1
    if 0 <= extra < len(parts):
        picks[names[0]] = parts[extra]
    return {f"{k}.{side}": tuple(rig.names[j] for j in v) for k, v in picks.items()}


def map_by_structure(rig: RigSkeleton) -> BoneMap:
    """Bone map from the rest pose geometry and hierarchy alone (bone names ignored)."""
    if len(rig.names) < 10:
        raise RigError(f"the armature has {len(rig.names)} bones, too few for a humanoid; pick a humanoid rig")
    ends = np.vstack([rig.heads, rig.tails])
    height = ends[:, 2].max() - ends[:, 2].min()
    min_len = MIN_PART * height
    tip = np.maximum(rig.tails[:, 2], rig.heads[:, 2])
    low = np.minimum(rig.tails[:, 2], rig.heads[:, 2])
    x = rig.heads[:, 0]
    slots: dict[str, tuple[str, ...]] = {}
    head = int(np.argmax(tip))
    feet, hands = {}, {}
    for side, sign in (("L", 1.0), ("R", -1.0)):
        on_side = sign * x > 0.02 * height
        if not on_side.any():
            raise RigError("the rig has no bones on both sides (no legs/arms); pick a humanoid rig")
        lowest = np.where(on_side, low, np.inf)
        near_floor = lowest < lowest.min() + FLOOR_BAND * height
        front = np.minimum(rig.heads[:, 1], rig.tails[:, 1])
        feet[side] = int(np.argmin(np.where(near_floor, front, np.inf)))  # the toe: lowest, most forward
        far = np.where(on_side & (rig.heads[:, 2] > 0.5 * height), sign * x, -np.inf)
        hands[side] = int(np.argmax(far))
    if min(low[feet["L"]], low[feet["R"]]) > 0.3 * height:
        raise RigError("the rig has no legs reaching the ground; pick a humanoid rig with legs")
    hips = _lca(rig, feet["L"], feet["R"])
    chest = _lca(rig, hands["L"], hands["R"])
    spine_path = _path(rig, hips, chest) if chest != hips else []
    neck_head = _path(rig, chest, head)
    slots["hips"] = (rig.names[hips],)
    grounded = [j for j in rig.chain_to_root(hips)[1:] if rig.heads[j, 2] < ROOT_BAND * height]
    if grounded:
        slots["root"] = (rig.names[grounded[-1]],)  # a bone on the floor above the hips moves the rig
    slots["spine"] = tuple(rig.names[j] for j in spine_path) or (rig.names[hips],)
    if not neck_head:
        raise RigError("the rig has no head above the arms; pick a humanoid rig")
    slots["head"] = (rig.names[neck_head[-1]],)
    if len(neck_head) > 1:
        slots["neck"] = tuple(rig.names[j] for j in neck_head[:-1])
    for side in SIDES:
        slots.update(_limb(rig, _path(rig, hips, feet[side]), ("toe", "thigh", "shin", "foot"), side,
                           min_len, upper_first=True))
        slots.update(_limb(rig, _path(rig, chest, hands[side]), ("shoulder", "upper_arm", "forearm", "hand"),
                           side, min_len, upper_first=False))
    return BoneMap(slots=slots, convention="structure")
