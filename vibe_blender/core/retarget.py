"""Retarget a baked SMPL take onto another humanoid rig, then re-lock its feet (pure numpy, no bpy).

Frames: everything is in one z-up world (Blender axes, metres, ground at z = 0). The source is the
character of ``core.skeleton`` (25 bones) posed by a ``BakePlan`` (``source_from_plan``); the
target is a ``retarget_rig.RigSkeleton`` with a ``retarget_map.BoneMap``.

Per driven target bone j (the first bone of each slot chain, every bone of ``spine``/``neck``):
- source bone s = the SMPL bone of the slot (``SOURCE_OF_SLOT``); for spine/neck chains the one
  at the same arc-length fraction along the chain;
- rest alignment ``C_j`` = the smallest rotation taking the target segment's rest direction
  (bone head → the next slot's head, or its own tail at an end) onto the source's (A-pose vs
  T-pose, different rolls and bone axes all end up here);
- world rotation ``G_j(t) = A_j(t) · D_s(t) · C_j · Rest_j`` with ``D_s = G_s · Rest_sᵀ`` the
  source bone's rotation away from its rest, and ``A_j`` the smallest rotation putting the
  segment exactly on the source's chord over the same fraction (identity for single bones);
  so each segment points exactly where the source's does, whatever the proportions.
Undriven bones (twist, fingers, extras, chain followers) keep their rest pose relative to their
parent. Root motion: the hips head follows ``rest + k · (p_s(t) − p_s(rest))`` with ``k`` the
leg-length ratio (thigh + shin, target / source); with a ``root`` slot the root bone takes the
horizontal part and the hips the vertical. Then the feet are re-locked on the target's own legs
with the contacts (``leg_ik``: anchors, hip drop for reach, two-bone IK with blending).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bake_plan import BakePlan, posed_bone_matrices
from .leg_ik import ankle_targets, leg_turns, reach_drop, rotations_between
from .retarget_map import MULTI_BONE_SLOTS, SIDES, BoneMap
from .retarget_rig import RigError, RigSkeleton
from .rotations import matrix_to_quat, quat_continuity
from .skeleton import Skeleton

#: SMPL bone index (core.skeleton order) per slot; spine/neck are chains.
SOURCE_OF_SLOT: dict[str, tuple[int, ...]] = {
    "hips": (0,), "spine": (3, 6, 9), "neck": (12,), "head": (15,),
    "shoulder.L": (13,), "upper_arm.L": (16,), "forearm.L": (18,), "hand.L": (20,),
    "thigh.L": (1,), "shin.L": (4,), "foot.L": (7,), "toe.L": (10,),
    "shoulder.R": (14,), "upper_arm.R": (17,), "forearm.R": (19,), "hand.R": (21,),
    "thigh.R": (2,), "shin.R": (5,), "foot.R": (8,), "toe.R": (11,),
}
_NEXT = {"hips": ("spine",), "spine": ("neck", "head"), "neck": ("head",)}
for _s in SIDES:
    _NEXT.update({f"thigh.{_s}": (f"shin.{_s}",), f"shin.{_s}": (f"foot.{_s}",), f"foot.{_s}": (f"toe.{_s}",),
                  f"shoulder.{_s}": (f"upper_arm.{_s}",), f"upper_arm.{_s}": (f"forearm.{_s}",),
                  f"forearm.{_s}": (f"hand.{_s}",)})
#: Slots whose segment directions the accuracy metric compares (limb_direction_errors).
METRIC_SLOTS = ("spine", "head") + tuple(f"{p}.{s}" for s in SIDES for p in ("upper_arm", "forearm", "thigh", "shin"))


@dataclass(frozen=True)
class SourceMotion:
    """The source take: world (T,25,4,4) posed bone matrices (rotation orthonormal, metres),
    rest (25,4,4) rest matrices, tails (25,3) rest tails, all world; contacts (T,4) bool for
    (left heel, left toe, right heel, right toe) or None."""

    world: np.ndarray
    rest: np.ndarray
    tails: np.ndarray
    contacts: np.ndarray | None = None


@dataclass(frozen=True)
class RetargetPlan:
    """The target's animation: quats (T,N,4) pose-bone quaternions (w,x,y,z), hemisphere-continuous;
    locs (T,N,3) pose-bone locations (armature units; non-zero only for ``moved``); moved: bone
    indices that carry location keys; world (T,N,4,4) the posed bones (metres, world)."""

    quats: np.ndarray
    locs: np.ndarray
    moved: tuple[int, ...]
    world: np.ndarray
    scale: float


@dataclass(frozen=True)
class _Drive:
    bone: int  # target bone index
    source: int  # source bone for the twist (D_s)
    chord: tuple[tuple[int, ...], float, float]  # source polyline (bones), fractions a, b
    end: np.ndarray  # target segment end point at rest (3,)


def source_from_plan(skeleton: Skeleton, plan: BakePlan, contacts: np.ndarray | None = None,
                     object_matrix: np.ndarray | None = None) -> SourceMotion:
    """SourceMotion of a baked character (``object_matrix`` (4,4): its armature's rigid world transform)."""
    m = np.eye(4) if object_matrix is None else np.asarray(object_matrix, np.float64)
    world = m @ posed_bone_matrices(skeleton, plan)
    rest = m @ skeleton.rest_matrices()
    tails = skeleton.tails @ m[:3, :3].T + m[:3, 3]
    return SourceMotion(world=world, rest=rest, tails=tails,
                        contacts=None if contacts is None else np.asarray(contacts, bool))


def _source_points(src_heads: np.ndarray, src_tails: np.ndarray, chain: tuple[int, ...]) -> np.ndarray:
    """Polyline (..., P, 3) of a source chain: every bone head, then the last bone's tail."""
    return np.concatenate([src_heads[..., list(chain), :], src_tails[..., [chain[-1]], :]], axis=-2)


def _at_fraction(points: np.ndarray, f: float, rest_points: np.ndarray) -> np.ndarray:
    """Point (...,3) at arc-length fraction f of a polyline (..., P, 3), fractions from ``rest_points`` (P,3)."""
    seg = np.linalg.norm(np.diff(rest_points, axis=0), axis=-1)
    cum = np.concatenate([[0.0], np.cumsum(seg)]) / seg.sum()
    k = int(np.clip(np.searchsorted(cum, f, side="right") - 1, 0, len(seg) - 1))
    w = (f - cum[k]) / max(cum[k + 1] - cum[k], 1e-12)
    return points[..., k, :] * (1 - w) + points[..., k + 1, :] * w


def _slot_end(rig: RigSkeleton, bmap: BoneMap, slot: str) -> np.ndarray:
    """Rest end point (3,) of a slot's segment: the next slot's first head, else the chain's last tail."""
    for nxt in _NEXT.get(slot, ()):
        if bmap.slots.get(nxt):
            return rig.heads[rig.index(bmap.slots[nxt][0])]
    return rig.tails[rig.index(bmap.slots[slot][-1])]


def _drives(rig: RigSkeleton, bmap: BoneMap) -> list[_Drive]:
    """The driven target bones with their source bone and chord."""
    out = []
    for slot, chain in bmap.slots.items():
        if slot == "root" or slot not in SOURCE_OF_SLOT:
            continue
        source = SOURCE_OF_SLOT[slot]
        end = _slot_end(rig, bmap, slot)
        if slot not in MULTI_BONE_SLOTS:
            out.append(_Drive(rig.index(chain[0]), source[0], (source, 0.0, 1.0), end))
            continue
        idx = [rig.index(b) for b in chain]
        pts = np.vstack([rig.heads[idx], end])
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=-1)
        cum = np.concatenate([[0.0], np.cumsum(seg)]) / max(seg.sum(), 1e-12)
        for k, j in enumerate(idx):
            mid = 0.5 * (cum[k] + cum[k + 1])
            twist = source[min(int(mid * len(source)), len(source) - 1)]
            out.append(_Drive(j, twist, (source, float(cum[k]), float(cum[k + 1])), pts[k + 1]))
    return out


def leg_length(heads: np.ndarray, thigh: int, shin: int, foot: int) -> float:
    """Thigh + shin length (m) from bone heads (…,3) of the hip, knee and ankle."""
    return float(np.linalg.norm(heads[shin] - heads[thigh]) + np.linalg.norm(heads[foot] - heads[shin]))


def leg_ratio(rig: RigSkeleton, bmap: BoneMap, source: SourceMotion) -> float:
    """Target / source leg length (mean of both legs)."""
    sh = source.rest[:, :3, 3]
    t = [leg_length(rig.heads, *(rig.index(bmap.slots[f"{p}.{s}"][0]) for p in ("thigh", "shin", "foot")))
         for s in SIDES]
    s = [leg_length(sh, *(SOURCE_OF_SLOT[f"{p}.{side}"][0] for p in ("thigh", "shin", "foot"))) for side in SIDES]
    return float(np.mean(t) / np.mean(s))


def _world_rotations(rig: RigSkeleton, source: SourceMotion, drives: list[_Drive]) -> np.ndarray:
    """World rotations (T,N,3,3) for the driven bones (other entries identity)."""
    t = source.world.shape[0]
    rot = np.tile(np.eye(3), (t, len(rig.names), 1, 1))
    heads, rest_heads = source.world[:, :, :3, 3], source.rest[:, :3, 3]
    lengths = np.linalg.norm(source.tails - rest_heads, axis=-1)
    tails = heads + source.world[:, :, :3, 1] * lengths[None, :, None]
    chords, chords_rest = np.empty((t, len(drives), 3)), np.empty((len(drives), 3))
    for k, d in enumerate(drives):
        chain, a, b = d.chord
        rest_pts = _source_points(rest_heads, source.tails, chain)
        pts = _source_points(heads, tails, chain)
        chords_rest[k] = _at_fraction(rest_pts, b, rest_pts) - _at_fraction(rest_pts, a, rest_pts)
        chords[:, k] = _at_fraction(pts, b, rest_pts) - _at_fraction(pts, a, rest_pts)
    bones = np.array([d.bone for d in drives])
    srcs = np.array([d.source for d in drives])
    seg_rest = np.stack([d.end for d in drives]) - rig.heads[bones]  # (D,3)
    c = rotations_between(seg_rest, chords_rest)  # (D,3,3) rest alignment
    delta = source.world[:, srcs, :3, :3] @ np.swapaxes(source.rest[srcs, :3, :3], -1, -2)  # (T,D,3,3)
    aimed = np.einsum("tdab,db->tda", delta, np.einsum("dab,db->da", c, seg_rest))
    aim = rotations_between(aimed.reshape(-1, 3), chords.reshape(-1, 3)).reshape(t, len(drives), 3, 3)
    rot[:, bones] = aim @ delta @ (c @ rig.rest[bones, :3, :3])
    return rot


def solve_basis(rig: RigSkeleton, rot: np.ndarray, driven: np.ndarray, positions: dict[int, np.ndarray],
                bones: np.ndarray | None = None, with_basis: bool = True,
                follows: dict[int, int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pose-bone (quats (T,N,4), locs (T,N,3) armature units, world (T,N,4,4)) that give the
    driven bones (mask (N,)) the world rotations ``rot`` (T,N,3,3) and the bones in ``positions``
    ({index: (T,3)}) those world heads; other bones keep their rest pose relative to the parent.
    ``bones`` (N,) bool: evaluate only these (they must include their ancestors); the others'
    world entries are left undefined. ``with_basis=False`` skips the quaternions (world only).
    ``follows`` {bone: driven bone}: undriven bones whose world pose copies a driven bone's (they
    are evaluated after it). A driven bone's parent is taken to follow its nearest driven, moved
    or copying ancestor rigidly (the bones in between keep their rest relation)."""
    t, n = rot.shape[:2]
    wb = np.empty((n, t, 4, 4))  # bone-major while building (contiguous per bone)
    locs = np.zeros((t, n, 3))
    drive_idx = np.flatnonzero(driven)
    base_r = np.empty((len(drive_idx), t, 3, 3))
    slot_of = {int(j): k for k, j in enumerate(drive_idx)}
    follows = follows or {}
    anchor, rel, order = _prepare(rig, driven, tuple(positions), tuple(sorted(follows.items())))
    for j in order:
        if bones is not None and not bones[j]:
            continue
        if j in follows:
            wb[j] = wb[follows[j]]
            continue
        p = int(anchor[j])
        if p < 0:
            wb[j] = rig.rest[j]
        else:
            np.matmul(wb[p], rel[j], out=wb[j])
        if driven[j]:
            base_r[slot_of[j]] = wb[j, :, :3, :3]
            wb[j, :, :3, :3] = rot[:, j]
        if j in positions:
            head = wb[j, :, :3, 3]
            r = base_r[slot_of[j]] if driven[j] else wb[j, :, :3, :3]
            locs[:, j] = np.einsum("tba,tb->ta", r, positions[j] - head) * rig.scale
            wb[j, :, :3, 3] = positions[j]
    world = np.moveaxis(wb, 0, 1)
    quats = np.zeros((t, n, 4))
    quats[..., 0] = 1.0
    if with_basis and drive_idx.size:
        basis = np.swapaxes(base_r, -1, -2) @ np.moveaxis(rot[:, drive_idx], 1, 0)
        quats[:, drive_idx] = np.moveaxis(quat_continuity(matrix_to_quat(basis), axis=1), 0, 1)
    return quats, locs, world


_PREPARED: dict = {}


def _prepare(rig: RigSkeleton, driven: np.ndarray, moved: tuple, follows: tuple) -> tuple:
    """(anchor (N,), rel (N,4,4) = Rest_anchor⁻¹ · Rest_j, evaluation order) for solve_basis,
    cached for the last rig/driven set (the re-lock solves the same rig several times)."""
    key = (rig.rest.tobytes(), rig.parents.tobytes(), driven.tobytes(), moved, follows)
    if _PREPARED.get("key") != key:
        keyed = driven.copy()
        keyed[list(moved) + [j for j, _ in follows]] = True
        n = len(rig.names)
        anchor = np.array([_keyed_ancestor(rig, j, keyed) if driven[j] else int(rig.parents[j]) for j in range(n)])
        a = rig.rest[np.maximum(anchor, 0)]
        inv = np.zeros_like(a)  # rest matrices are rigid: inverse = [Rᵀ | −Rᵀ·t]
        inv[:, :3, :3] = np.swapaxes(a[:, :3, :3], -1, -2)
        inv[:, :3, 3] = -np.einsum("nba,nb->na", a[:, :3, :3], a[:, :3, 3])
        inv[:, 3, 3] = 1.0
        _PREPARED.update(key=key, value=(anchor, inv @ rig.rest, _evaluation_order(rig, anchor, dict(follows))))
    return _PREPARED["value"]


def _evaluation_order(rig: RigSkeleton, anchor: np.ndarray, follows: dict[int, int]) -> list[int]:
    """Bones ordered so each comes after its anchor and the bone it copies."""
    if not follows:
        return list(range(len(rig.names)))
    order, state = [], np.zeros(len(rig.names), np.int8)

    def visit(j: int) -> None:
        if state[j] == 2:
            return
        if state[j] == 1:
            raise RigError(f"bone {rig.names[j]!r} copies a bone that depends on it; remove the cycle")
        state[j] = 1
        for dep in (int(anchor[j]), follows.get(j, -1)):
            if dep >= 0:
                visit(dep)
        state[j] = 2
        order.append(j)
    for j in range(len(rig.names)):
        visit(j)
    return order


def _keyed_ancestor(rig: RigSkeleton, j: int, keyed: np.ndarray) -> int:
    """The nearest ancestor of bone ``j`` that is keyed (driven or moved); its direct parent if none."""
    p = int(rig.parents[j])
    while p >= 0 and not keyed[p]:
        p = int(rig.parents[p])
    return p if p >= 0 else int(rig.parents[j])


def _with_ancestors(rig: RigSkeleton, bones: list[int], follows: dict[int, int] | None = None) -> np.ndarray:
    """Mask (N,) of ``bones``, all their ancestors and, for copying bones, what they copy (and up)."""
    mask = np.zeros(len(rig.names), bool)
    todo = list(bones)
    while todo:
        j = todo.pop()
        for k in rig.chain_to_root(j):
            if not mask[k]:
                mask[k] = True
                if follows and k in follows:
                    todo.append(follows[k])
    return mask


def _root_positions(rig: RigSkeleton, bmap: BoneMap, source: SourceMotion, k: float) -> dict[int, np.ndarray]:
    """World heads (T,3) of the moved bones: the hips (and the root, horizontally, if mapped)."""
    hips = rig.index(bmap.slots["hips"][0])
    delta = k * (source.world[:, 0, :3, 3] - source.rest[0, :3, 3])
    out = {hips: rig.heads[hips] + delta}
    if bmap.slots.get("root"):
        root = rig.index(bmap.slots["root"][0])
        if root not in rig.chain_to_root(hips):
            raise RigError(f"root bone {rig.names[root]!r} is not above the hips; fix the bone map")
        out[root] = rig.heads[root] + delta * np.array([1.0, 1.0, 0.0])
    return out


def _leg_bones(rig: RigSkeleton, bmap: BoneMap, side: str) -> tuple[int, int, int, int | None]:
    get = lambda p: rig.index(bmap.slots[f"{p}.{side}"][0]) if bmap.slots.get(f"{p}.{side}") else None  # noqa: E731
    return get("thigh"), get("shin"), get("foot"), get("toe")


def foot_points(rig: RigSkeleton, bmap: BoneMap, world: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """(ankle (T,3), toe (T,3)) world points of one leg: the foot's head and the toe's head (the
    foot's tail when there is no toe bone)."""
    _, _, foot, toe = _leg_bones(rig, bmap, side)
    ankle = world[:, foot, :3, 3]
    if toe is not None:
        return ankle, world[:, toe, :3, 3]
    length = np.linalg.norm(rig.tails[foot] - rig.heads[foot])
    return ankle, ankle + world[:, foot, :3, 1] * length


def _relock(rig: RigSkeleton, bmap: BoneMap, rot: np.ndarray, driven: np.ndarray,
            positions: dict[int, np.ndarray], contacts: np.ndarray,
            follows: dict[int, int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pin the target's planted feet (contacts (T,4)); returns solve_basis' result."""
    leg_bones = [j for side in SIDES for j in _leg_bones(rig, bmap, side) if j is not None]
    legs_only = _with_ancestors(rig, leg_bones, follows)
    _, _, world = solve_basis(rig, rot, driven, positions, legs_only, False, follows)
    hips = rig.index(bmap.slots["hips"][0])
    legs = []
    drop = np.zeros(rot.shape[0])
    for k, side in enumerate(SIDES):
        thigh, shin, foot, _ = _leg_bones(rig, bmap, side)
        ankle, toe = foot_points(rig, bmap, world, side)
        target, weight, toe_dir = ankle_targets(ankle, toe, contacts[:, 2 * k], contacts[:, 2 * k + 1])
        hip, knee = world[:, thigh, :3, 3], world[:, shin, :3, 3]
        drop = np.minimum(drop, reach_drop(hip, knee, ankle, target, weight))
        legs.append((side, thigh, shin, foot, target, weight, toe_dir))
    positions = {j: p + (drop[:, None] * [0.0, 0.0, 1.0] if j == hips else 0.0) for j, p in positions.items()}
    rot = rot.copy()
    for side, thigh, shin, foot, target, weight, toe_dir in legs:
        _, _, world = solve_basis(rig, rot, driven, positions, legs_only, False, follows)
        idx = np.flatnonzero(weight > 0)
        if not idx.size:
            continue
        ankle, toe = (p[idx] for p in foot_points(rig, bmap, world, side))
        hip, knee = world[idx, thigh, :3, 3], world[idx, shin, :3, 3]
        goal = ankle + weight[idx, None] * (target[idx] - ankle)
        d1, d2 = leg_turns(hip, knee, ankle, goal)
        rot[idx, thigh] = d1 @ rot[idx, thigh]
        rot[idx, shin] = d2 @ d1 @ rot[idx, shin]
        turn = ~np.isnan(toe_dir[idx, 0])
        if turn.any():
            sub = idx[turn]
            rot[sub, foot] = rotations_between(toe[turn] - ankle[turn], toe_dir[sub]) @ rot[sub, foot]
    return solve_basis(rig, rot, driven, positions, follows=follows)


def retarget(source: SourceMotion, rig: RigSkeleton, bmap: BoneMap, *, lock_feet: bool = True,
             copies: dict[int, int] | None = None) -> RetargetPlan:
    """The target's animation for the whole take (see the module docstring).

    ``copies`` {bone: source bone}: bones whose world pose is a copy of another's (Blender's Copy
    Transforms constraint, e.g. Rigify's ORG- bones copying the FK controls); copies of driven
    bones are followed exactly (solve_basis' ``follows``)."""
    drives = _drives(rig, bmap)
    driven = np.zeros(len(rig.names), bool)
    driven[[d.bone for d in drives]] = True
    rot = _world_rotations(rig, source, drives)
    follows = {j: c for j, c in copies.items() if driven[c]} if copies else None
    k = leg_ratio(rig, bmap, source)
    positions = _root_positions(rig, bmap, source, k)
    if lock_feet and source.contacts is not None and source.contacts.any():
        quats, locs, world = _relock(rig, bmap, rot, driven, positions, source.contacts, follows)
    else:
        quats, locs, world = solve_basis(rig, rot, driven, positions, follows=follows)
    return RetargetPlan(quats=quats, locs=locs, moved=tuple(sorted(positions)), world=world, scale=k)


# -- measures (tests and benchmarks) ----------------------------------------------------------------
def limb_direction_errors(source: SourceMotion, rig: RigSkeleton, bmap: BoneMap, world: np.ndarray) -> dict[str, float]:
    """Mean angle (degrees) per METRIC_SLOTS slot between the source's segment (first head → the
    chain end) and the target's (first head → the next slot's head / its tail) over the take."""
    heads, rest_heads = source.world[:, :, :3, 3], source.rest[:, :3, 3]
    lengths = np.linalg.norm(source.tails - rest_heads, axis=-1)
    tails = heads + source.world[:, :, :3, 1] * lengths[None, :, None]
    out = {}
    for slot in METRIC_SLOTS:
        chain = SOURCE_OF_SLOT[slot]
        src = tails[:, chain[-1]] - heads[:, chain[0]]
        first = rig.index(bmap.slots[slot][0])
        end_rest = _slot_end(rig, bmap, slot)
        end = _posed_point(rig, world, end_rest, bmap, slot)
        tgt = end - world[:, first, :3, 3]
        cos = np.sum(src * tgt, -1) / (np.linalg.norm(src, axis=-1) * np.linalg.norm(tgt, axis=-1))
        out[slot] = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean())
    return out


def _posed_point(rig: RigSkeleton, world: np.ndarray, rest_point: np.ndarray, bmap: BoneMap, slot: str) -> np.ndarray:
    """Posed position (T,3) of a rest point carried by the slot chain's last bone (or the next slot's head)."""
    for nxt in _NEXT.get(slot, ()):
        if bmap.slots.get(nxt):
            return world[:, rig.index(bmap.slots[nxt][0]), :3, 3]
    last = rig.index(bmap.slots[slot][-1])
    local = np.linalg.inv(rig.rest[last]) @ np.append(rest_point, 1.0)
    return (world[:, last] @ local)[:, :3]


def foot_skate(rig: RigSkeleton, bmap: BoneMap, world: np.ndarray, contacts: np.ndarray) -> float:
    """Mean horizontal motion (m per frame) of planted points (ankle for heel contacts, toe for toe
    contacts) between consecutive frames of the same contact."""
    moves = []
    for k, side in enumerate(SIDES):
        for point, flags in zip(foot_points(rig, bmap, world, side), (contacts[:, 2 * k], contacts[:, 2 * k + 1])):
            both = flags[1:] & flags[:-1]
            step = np.linalg.norm(np.diff(point[:, :2], axis=0), axis=-1)
            moves.append(step[both])
    allm = np.concatenate(moves)
    return float(allm.mean()) if allm.size else 0.0


def root_path_error(source: SourceMotion, rig: RigSkeleton, bmap: BoneMap, world: np.ndarray, k: float) -> float:
    """Largest horizontal distance between the target hips' displacement and k × the source
    pelvis' displacement, relative to the scaled source path length (0.01 = 1 %)."""
    hips = rig.index(bmap.slots["hips"][0])
    src = k * (source.world[:, 0, :3, 3] - source.world[0, 0, :3, 3])[:, :2]
    tgt = (world[:, hips, :3, 3] - world[0, hips, :3, 3])[:, :2]
    length = np.linalg.norm(np.diff(src, axis=0), axis=-1).sum()
    return float(np.linalg.norm(tgt - src, axis=-1).max() / max(length, 1e-9))


PLANTED_HEIGHT_M = 0.05  # a foot point this close to its lowest height (5th percentile) ...
PLANTED_STEP_M = 0.005  # ... moving less than this per frame counts as planted (planted_feet)
PLANTED_MIN_FRAMES = 3


def planted_feet(source: SourceMotion) -> np.ndarray:
    """Contacts (T,4) (left heel, left toe, right heel, right toe) found in the take itself: the
    source's ankle and toe joints low and still. For bakes that carry no engine contacts; the
    engine's foot lock leaves planted feet exactly still, so this recovers its contacts."""
    pts = source.world[:, [7, 10, 8, 11]][..., :3, 3]  # (T,4,3)
    low = pts[..., 2] <= np.percentile(pts[..., 2], 5, axis=0) + PLANTED_HEIGHT_M
    step = np.linalg.norm(np.diff(pts[..., :2], axis=0), axis=-1)
    still = np.concatenate([step[:1], np.minimum(step[1:], step[:-1]), step[-1:]]) <= PLANTED_STEP_M
    flags = low & still
    for k in range(4):  # drop flickers shorter than PLANTED_MIN_FRAMES
        padded = np.concatenate([[False], flags[:, k], [False]])
        edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
        for a, b in zip(edges[::2], edges[1::2]):
            if b - a < PLANTED_MIN_FRAMES:
                flags[a:b, k] = False
    return flags
