"""Retarget a baked VIBE character onto the user's own armature: bpy glue around ``core.retarget``.

Reads the target rig (``data.bones``: ``matrix_local``, parents; the object's ``matrix_world``
with uniform scale) and the source take (the curves of the character's baked action, its
``skeleton_of``, the engine's contacts stored on the action as ``["vibe_contacts"]`` or, for older
bakes, the planted feet found in the take itself), computes everything in numpy and writes one new
Action ``VIBE_<target>_retarget`` in one pass (``compat.ActionWriter``): ``rotation_quaternion``
of every driven bone and ``location`` of the hips (and root). Unmapped bones get no curves.
The target's own actions are never modified; re-running replaces our previous retarget action.
A target already playing another action is refused (push that action to the NLA or unassign it).
Any failure leaves the scene as it was.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import bpy
import numpy as np

from ..core import retarget as core
from ..core.bake_plan import BakePlan
from ..core.errors import VibeError
from ..core.retarget_map import BoneMap, detect_mapping, from_json, validate
from ..core.retarget_rig import RigError, RigSkeleton
from ..core.skeleton import BONE_NAMES, NUM_SMPL_JOINTS, ROOT_INDEX
from . import compat
from .bake import PROP_FRAME_START
from .character import PROP_REST_JOINTS, skeleton_of

log = logging.getLogger(__name__)

PROP_RETARGET = "vibe_retarget_source"  # on our retarget actions: the source armature's name
PROP_CONTACTS = "vibe_contacts"  # on baked actions: the engine's contacts, (T·4) 0/1
PROP_MAP = "vibe_bone_map"  # on our retarget actions: the bone map used (JSON)
SCALE_TOLERANCE = 1e-4  # relative spread of the object's scale axes accepted as uniform
#: Rigify switches set while retargeting onto FK controls: limbs in FK, and every FK chain, neck
#: and head following its parent fully (no hinge), so the controls move as plain child bones.
RIGIFY_SWITCHES = {"upper_arm_parent": {"IK_FK": 1.0, "FK_limb_follow": 0.0},
                   "thigh_parent": {"IK_FK": 1.0, "FK_limb_follow": 0.0}}
RIGIFY_TORSO = ("torso", {"neck_follow": 1.0, "head_follow": 1.0})


class RetargetError(VibeError):
    """Retargeting refused or failed; the scene was left unchanged."""


def action_name(target: bpy.types.Object) -> str:
    """Name of the retarget action we write on ``target``."""
    return f"VIBE_{target.name}_retarget"


def _split_world(obj: bpy.types.Object) -> tuple[np.ndarray, float]:
    """(rigid 4×4 world transform without scale, uniform scale) of an object; RetargetError if
    the scale is not uniform."""
    m = np.array(obj.matrix_world, np.float64)
    scales = np.linalg.norm(m[:3, :3], axis=0)
    if np.ptp(scales) > SCALE_TOLERANCE * scales.mean():
        raise RetargetError(f"{obj.name} has a non-uniform scale {tuple(np.round(scales, 4))}; "
                            "apply the scale (Ctrl+A ▸ Scale) and retarget again")
    rigid = m.copy()
    rigid[:3, :3] /= scales
    return rigid, float(scales.mean())


def rig_of(target: bpy.types.Object) -> RigSkeleton:
    """The target armature's rest skeleton in the world (metres), as ``core.retarget_rig`` wants."""
    if target is None or target.type != "ARMATURE":
        raise RetargetError(f"{getattr(target, 'name', target)!r} is not an armature; pick your character's armature")
    if target.mode == "EDIT":
        raise RetargetError(f"{target.name} is in Edit Mode; switch to Object or Pose Mode and retarget again")
    rigid, scale = _split_world(target)
    bones = target.data.bones
    order = _parents_first(bones)
    rest = np.empty((len(order), 4, 4))
    tails = np.empty((len(order), 3))
    for k, b in enumerate(order):
        local = np.array(b.matrix_local, np.float64)
        local[:3, 3] *= scale
        rest[k] = rigid @ local
        tails[k] = (rigid @ np.append(np.array(b.tail_local) * scale, 1.0))[:3]
    index = {b.name: k for k, b in enumerate(order)}
    parents = np.array([index[b.parent.name] if b.parent else -1 for b in order])
    return RigSkeleton(names=tuple(b.name for b in order), parents=parents, rest=rest, tails=tails,
                       scale=1.0 / scale)


def _parents_first(bones) -> list:
    out, seen = [], set()

    def visit(b):
        if b.name in seen:
            return
        if b.parent is not None:
            visit(b.parent)
        seen.add(b.name)
        out.append(b)
    for b in bones:
        visit(b)
    return out


def bone_map(target: bpy.types.Object, mapping: str | Path | BoneMap | None = None,
             rig: RigSkeleton | None = None) -> BoneMap:
    """The bone map for ``target``: detected (None), read from a JSON preset path, or given."""
    rig = rig or rig_of(target)
    try:
        if mapping is None:
            return detect_mapping(rig)
        if isinstance(mapping, BoneMap):
            return validate(mapping, rig)
        path = Path(bpy.path.abspath(str(mapping)))
        if not path.is_file():
            raise RetargetError(f"bone map {path} not found; choose an existing .json preset")
        return from_json(path.read_text(encoding="utf-8"), rig)
    except RigError as exc:
        raise RetargetError(f"{target.name}: {exc}") from None


def save_bone_map(bmap: BoneMap, path: str | Path) -> Path:
    """Write a bone map preset (JSON, docs/retarget.md); refuses to overwrite a non-preset file."""
    path = Path(bpy.path.abspath(str(path)))
    if path.exists():
        try:
            from_json(path.read_text(encoding="utf-8"))
        except (RigError, UnicodeDecodeError, OSError):
            raise RetargetError(f"{path} exists and is not a bone map preset; choose another file name") from None
    path.write_text(bmap.to_json(), encoding="utf-8")
    return path


# -- the source take ------------------------------------------------------------------------------
def _curves(action: bpy.types.Action) -> dict[tuple[str, int], np.ndarray]:
    out = {}
    for fc in compat.action_fcurves(action):
        co = np.empty(len(fc.keyframe_points) * 2, np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[(fc.data_path, fc.array_index)] = co.reshape(-1, 2).astype(np.float64)
    return out


def source_plan(source: bpy.types.Object) -> tuple[BakePlan, np.ndarray | None]:
    """(BakePlan read back from the character's baked action, engine contacts (T,4) or None)."""
    if source is None or source.type != "ARMATURE" or PROP_REST_JOINTS not in source:
        raise RetargetError(f"{getattr(source, 'name', source)!r} is not a VIBE character; pick an armature "
                            "made by Import video / Import motion file")
    action = compat.active_action(source)
    if action is None:
        raise RetargetError(f"{source.name} has no animation; import or bake a take first")
    curves = _curves(action)
    rot = 'pose.bones["{}"].rotation_quaternion'
    loc = 'pose.bones["{}"].location'
    try:
        frames = curves[(rot.format(BONE_NAMES[0]), 0)][:, 0]
        quats = np.stack([np.stack([curves[(rot.format(BONE_NAMES[j]), k)][:, 1] for k in range(4)], -1)
                          for j in range(NUM_SMPL_JOINTS)], 1)
        pelvis = np.stack([curves[(loc.format(BONE_NAMES[0]), k)][:, 1] for k in range(3)], -1)
        root = np.stack([curves[(loc.format(BONE_NAMES[ROOT_INDEX]), k)][:, 1] for k in range(3)], -1)
    except (KeyError, ValueError):
        raise RetargetError(f"{source.name}'s action {action.name} is not a VIBE bake (missing or uneven "
                            "curves); re-import the take") from None
    n = len(frames)
    plan = BakePlan(frames=frames, quats=quats, pelvis_loc=pelvis, root_loc=root,
                    pose_features=np.zeros((n, 0)), flagged=np.zeros(n, bool), confidence=np.ones(n))
    contacts = None
    if PROP_CONTACTS in action.keys():
        flat = np.asarray(action[PROP_CONTACTS], np.int64)
        if flat.size == 4 * n:
            contacts = flat.reshape(n, 4).astype(bool)
    return plan, contacts


def source_motion(source: bpy.types.Object) -> tuple[core.SourceMotion, np.ndarray]:
    """(SourceMotion in the world, frame numbers (T,)) of a baked VIBE character."""
    plan, contacts = source_plan(source)
    rigid, scale = _split_world(source)
    if abs(scale - 1.0) > SCALE_TOLERANCE:
        raise RetargetError(f"{source.name} is scaled ({scale:.4g}); reset its scale to 1 and retarget again")
    motion = core.source_from_plan(skeleton_of(source), plan, contacts, object_matrix=rigid)
    if contacts is None:
        motion = core.SourceMotion(motion.world, motion.rest, motion.tails, core.planted_feet(motion))
    return motion, plan.frames


# -- writing ------------------------------------------------------------------------------------
def _check_target(target: bpy.types.Object) -> bpy.types.Action | None:
    """Our previous retarget action on ``target`` (to replace), or None; RetargetError when the
    target plays an action of its own."""
    current = compat.active_action(target)
    if current is None:
        return None
    if PROP_RETARGET in current.keys():
        return current
    raise RetargetError(f"{target.name} already plays its own action {current.name!r} (left untouched); "
                        "push it to the NLA or unassign it, then retarget again")


def _write(writer: compat.ActionWriter, rig: RigSkeleton, plan: core.RetargetPlan, frames: np.ndarray,
           driven: list[int]) -> None:
    for j in driven:
        path = f'pose.bones["{bpy.utils.escape_identifier(rig.names[j])}"].rotation_quaternion'
        for k in range(4):
            writer.add_curve(path, k, rig.names[j], frames, plan.quats[:, j, k])
    for j in plan.moved:
        path = f'pose.bones["{bpy.utils.escape_identifier(rig.names[j])}"].location'
        for k in range(3):
            writer.add_curve(path, k, rig.names[j], frames, plan.locs[:, j, k])


def retarget(source: bpy.types.Object, target: bpy.types.Object, mapping=None, lock_feet: bool = True):
    """Retarget ``source`` (a baked VIBE character) onto ``target``; returns (Action, BoneMap, plan).

    ``mapping``: None (detect), a JSON preset path, or a BoneMap. Raises RetargetError with the
    scene unchanged.
    """
    if source is not None and source == target:
        raise RetargetError("source and target are the same armature; pick your own character as the target")
    motion, frames = source_motion(source)
    rig = rig_of(target)
    bmap = bone_map(target, mapping, rig)
    old = _check_target(target)
    try:
        plan = core.retarget(motion, rig, bmap, lock_feet=lock_feet, copies=_copies(target, rig, bmap))
    except RigError as exc:
        raise RetargetError(f"{target.name}: {exc}") from None
    driven = sorted({rig.index(b) for s, chain in bmap.slots.items() if s != "root"
                     for b in (chain if s in ("spine", "neck") else chain[:1])})
    undo: list = []
    writer = compat.ActionWriter(action_name(target) + ".new", target)
    try:
        _write(writer, rig, plan, frames, driven)
        writer.action[PROP_RETARGET] = source.name
        writer.action[PROP_MAP] = bmap.to_json()
        video_zero = source.animation_data.action.get(PROP_FRAME_START)
        if video_zero is not None:  # exports put this frame at 0 s, as for the source
            writer.action[PROP_FRAME_START] = float(video_zero)
        _rotation_modes(target, [rig.names[j] for j in driven], undo)
        if bmap.convention == "rigify_fk":
            _rigify_fk(target, undo)
        prev_slot = getattr(target.animation_data, "action_slot", None) if target.animation_data else None
        writer.assign(target)
        undo.append(lambda: _restore_action(target, old, prev_slot))
    except BaseException:
        for step in reversed(undo):
            step()
        writer.discard()
        raise
    if old is not None and old.users == 0:
        bpy.data.actions.remove(old)
    writer.action.name = action_name(target)
    log.info("retargeted %s onto %s (%s map, %d driven bones, %d unmapped)", source.name, target.name,
             bmap.convention, len(driven), len(bmap.unmapped))
    return writer.action, bmap, plan


def _copies(target: bpy.types.Object, rig: RigSkeleton, bmap: BoneMap) -> dict[int, int]:
    """{bone: mapped bone it copies}: pose bones whose last enabled, full-influence, world-space
    Copy Transforms constraint targets a mapped bone of the same armature (Rigify's ORG- bones)."""
    mapped = bmap.bones()
    out = {}
    for pb in target.pose.bones:
        for c in pb.constraints:
            if (c.type == "COPY_TRANSFORMS" and c.enabled and c.influence == 1.0 and c.target == target
                    and c.subtarget in mapped and c.owner_space == c.target_space == "WORLD"):
                out[rig.index(pb.name)] = rig.index(c.subtarget)
    return out


def _restore_action(target, action, slot) -> None:
    ad = target.animation_data
    ad.action = action
    if slot is not None and action is not None:
        ad.action_slot = slot


def _rotation_modes(target, names, undo) -> None:
    for name in names:
        pb = target.pose.bones[name]
        before = pb.rotation_mode
        pb.rotation_mode = "QUATERNION"
        undo.append(lambda pb=pb, m=before: setattr(pb, "rotation_mode", m))


def _rigify_fk(target, undo) -> None:
    """Set a generated Rigify rig's switches for FK retargeting (RIGIFY_SWITCHES, RIGIFY_TORSO)."""
    owners = [(f"{base}.{side}", props) for base, props in RIGIFY_SWITCHES.items() for side in ("L", "R")]
    for name, props in owners + [RIGIFY_TORSO]:
        pb = target.pose.bones.get(name)
        for prop, value in props.items():
            if pb is not None and prop in pb.keys():
                before = pb[prop]
                pb[prop] = value
                undo.append(lambda pb=pb, p=prop, v=before: pb.__setitem__(p, v))


def mapping_report(bmap: BoneMap) -> str:
    """One line: convention, mapped slots, unmapped bone count."""
    return (f"{bmap.convention} map: {len(bmap.slots)} body parts on {len(bmap.bones())} bones, "
            f"{len(bmap.unmapped)} bones unmapped (kept at rest)")


def bone_map_json(action: bpy.types.Action) -> dict:
    """The bone map stored on one of our retarget actions (parsed JSON)."""
    return json.loads(action[PROP_MAP])
