"""Retargeting in numpy (core.retarget*): bone maps, accuracy on real rigs, foot re-lock, bad input.

Targets: the CC0 MakeHuman/MPFB2 rigs (Mixamo names, Unreal-style game-engine names, a Rigify
metarig, MakeHuman, CMU) in their A-pose rest, a T-posed and a 5 %-longer-legged variant, and the
Mixamo rig renamed to meaningless names (mapped by structure). Takes: a synthetic walk planted by
the engine's foot lock, the synthetic benchmark clip's ground truth (CMU mocap, true contacts) and
the engine's motion of both people of the demo clip (its contacts; cached in out/cache).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.fixtures import retarget as fx
from vibe_blender.core import retarget as rt
from vibe_blender.core import retarget_map as rm
from vibe_blender.core import retarget_rig as rr

MAX_LIMB_ERROR_DEG = 3.0
MAX_SKATE_M = 0.003
MAX_ROOT_PATH = 0.02
FK_TOL = 1e-9  # float64 FK of the same matrices


@pytest.fixture(scope="module")
def synthetic():
    return fx.synthetic_source()


@pytest.fixture(scope="module")
def cmu():
    return fx.cmu_source()


@pytest.fixture(scope="module")
def demo():
    return [fx.demo_source(i) for i in range(2)]


def _rig(name, variant=None):
    return rr.from_bones(fx.rig_bones(name, variant))


@pytest.mark.parametrize("name, convention, unmapped", [
    ("mixamo", "mixamo", 30), ("game_engine", "unreal", 30), ("rigify_human", "rigify_metarig", 159),
    ("makehuman_default", "makehuman", 129), ("cmu_mb", "mixamo", 8)])
def test_naming_conventions_are_detected(name, convention, unmapped):
    rig = _rig(name)
    bmap = rm.detect_mapping(rig)
    assert bmap.convention == convention
    assert all(bmap.slots.get(s) for s in rm.REQUIRED)
    assert len(bmap.unmapped) == unmapped and not set(bmap.unmapped) & bmap.bones()


def test_rigify_and_unreal_names():
    names = {"game_engine": ("pelvis", "thigh_l", "calf_l", "foot_l", "ball_l", "Root"),
             "rigify_human": ("spine", "thigh.L", "shin.L", "foot.L", "toe.L", None)}
    for rig_name, (hips, thigh, shin, foot, toe, root) in names.items():
        slots = rm.detect_mapping(_rig(rig_name)).slots
        assert (slots["hips"][0], slots["thigh.L"][0], slots["shin.L"][0], slots["foot.L"][0],
                slots["toe.L"][0]) == (hips, thigh, shin, foot, toe)
        assert (slots.get("root") or (None,))[0] == root


@pytest.mark.parametrize("name", ["mixamo", "game_engine", "cmu_mb"])
def test_structure_mapping_matches_the_names(name):
    bones = fx.rig_bones(name)
    rename = {b["name"]: f"bone_{i:03d}" for i, b in enumerate(bones)}
    by_names = rm.detect_mapping(rr.from_bones(bones)).slots
    by_structure = rm.detect_mapping(_rig(name, "anonymous"))
    assert by_structure.convention == "structure"
    for slot in rm.REQUIRED + ("toe.L", "toe.R", "shoulder.L", "neck"):
        if slot in ("hand.L", "hand.R") and name == "cmu_mb":
            continue  # CMU's hand has a long finger-base child that continues it: not a hand by shape
        assert by_structure.slots[slot][0] == rename[by_names[slot][0]], slot


def test_bone_map_json_round_trip_and_errors():
    rig = _rig("mixamo")
    bmap = rm.detect_mapping(rig)
    again = rm.from_json(bmap.to_json(), rig)
    assert dict(again.slots) == dict(bmap.slots) and again.unmapped == bmap.unmapped
    doc = json.loads(bmap.to_json())
    doc["slots"]["thigh.L"] = ["mixamorig:NoSuchBone"]
    with pytest.raises(rr.RigError, match="NoSuchBone"):
        rm.from_json(json.dumps(doc), rig)
    doc["slots"]["tail"] = ["x"]
    with pytest.raises(rr.RigError, match="unknown slots.*tail"):
        rm.from_json(json.dumps(doc), rig)
    with pytest.raises(rr.RigError, match="not valid JSON"):
        rm.from_json("{", rig)
    with pytest.raises(rr.RigError, match="not a bone map"):
        rm.from_json(json.dumps({"slots": {}}), rig)


def test_non_humanoid_and_legless_rigs_are_refused():
    chain = [{"name": f"seg{i}", "parent": f"seg{i - 1}" if i else None, "head": [0, 0, 0.2 * i],
              "tail": [0, 0, 0.2 * i + 0.2], "roll": 0.0} for i in range(12)]
    with pytest.raises(rr.RigError, match="humanoid"):
        rm.detect_mapping(rr.from_bones(chain))
    bones = fx.rig_bones("mixamo")
    legs = fx._subtree(bones, "mixamorig:LeftUpLeg") | fx._subtree(bones, "mixamorig:RightUpLeg")
    with pytest.raises(rr.RigError, match="humanoid"):
        rm.detect_mapping(rr.from_bones([b for b in bones if b["name"] not in legs]))
    with pytest.raises(rr.RigError, match="thigh"):
        rm.validate(rm.BoneMap(slots={k: v for k, v in rm.detect_mapping(_rig("mixamo")).slots.items()
                                      if not k.startswith("thigh")}), _rig("mixamo"))


def test_roll_matrix_follows_blender():
    """+Y onto the bone by the smallest rotation, then the roll about it (Blender's rule)."""
    m = rr.roll_matrix(np.zeros(3), np.array([0.0, 0.0, 1.0]), 0.0)
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    m = rr.roll_matrix(np.zeros(3), np.array([0.0, 0.0, 1.0]), np.pi / 2)
    np.testing.assert_allclose(m[:, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(rr.roll_matrix(np.zeros(3), np.array([0, -1.0, 0]), 0.0)[:, 1], [0, -1, 0])


def _check(source, rig, bmap, label):
    before = rt.retarget(source, rig, bmap, lock_feet=False)
    plan = rt.retarget(source, rig, bmap)
    errors = rt.limb_direction_errors(source, rig, bmap, plan.world)
    assert np.mean(list(errors.values())) <= MAX_LIMB_ERROR_DEG, (label, errors)
    assert max(errors.values()) <= MAX_LIMB_ERROR_DEG, (label, errors)
    skate = rt.foot_skate(rig, bmap, plan.world, source.contacts)
    assert skate <= MAX_SKATE_M, (label, skate, rt.foot_skate(rig, bmap, before.world, source.contacts))
    assert rt.root_path_error(source, rig, bmap, plan.world, plan.scale) <= MAX_ROOT_PATH, label
    np.testing.assert_allclose(rr.pose_world(rig, plan.quats, plan.locs), plan.world, atol=FK_TOL)
    return plan


TARGETS = [("mixamo", None), ("game_engine", None), ("rigify_human", None), ("mixamo", "anonymous"),
           ("makehuman_default", None), ("mixamo", "tpose"), ("mixamo", "long_legs"),
           ("game_engine", "long_legs")]


@pytest.mark.parametrize("name, variant", TARGETS)
def test_synthetic_take_meets_the_numbers(synthetic, name, variant):
    rig = _rig(name, variant)
    _check(synthetic, rig, rm.detect_mapping(rig), (name, variant))


@pytest.mark.parametrize("name, variant", TARGETS)
def test_cmu_mocap_take_meets_the_numbers(cmu, name, variant):
    rig = _rig(name, variant)
    _check(cmu, rig, rm.detect_mapping(rig), (name, variant))


@pytest.mark.parametrize("name, variant", TARGETS)
def test_demo_take_meets_the_numbers(demo, name, variant):
    rig = _rig(name, variant)
    for source in demo:
        _check(source, rig, rm.detect_mapping(rig), (name, variant))


def test_relock_removes_the_skate_the_proportions_bring(synthetic):
    rig = _rig("mixamo", "long_legs")
    bmap = rm.detect_mapping(rig)
    before = rt.foot_skate(rig, bmap, rt.retarget(synthetic, rig, bmap, lock_feet=False).world, synthetic.contacts)
    after = rt.foot_skate(rig, bmap, rt.retarget(synthetic, rig, bmap).world, synthetic.contacts)
    assert before > 0.5e-3 and after < before / 10 and after < MAX_SKATE_M / 10, (before, after)


def test_root_motion_is_scaled_by_the_leg_ratio(synthetic):
    base, long = _rig("mixamo"), _rig("mixamo", "long_legs")
    k0 = rt.leg_ratio(base, rm.detect_mapping(base), synthetic)
    k1 = rt.leg_ratio(long, rm.detect_mapping(long), synthetic)
    assert k1 / k0 == pytest.approx(fx.LEG_SCALE, rel=1e-9)
    bmap = rm.detect_mapping(base)
    plan = rt.retarget(synthetic, base, bmap, lock_feet=False)
    hips = base.index(bmap.slots["hips"][0])
    travel = plan.world[-1, hips, :3, 3] - plan.world[0, hips, :3, 3]
    src = synthetic.world[-1, 0, :3, 3] - synthetic.world[0, 0, :3, 3]
    np.testing.assert_allclose(travel, k0 * src, atol=1e-9)


def test_root_bone_takes_the_horizontal_motion(synthetic):
    rig = _rig("game_engine")
    bmap = rm.detect_mapping(rig)
    plan = rt.retarget(synthetic, rig, bmap)
    root, hips = rig.index("Root"), rig.index("pelvis")
    assert plan.moved == tuple(sorted((root, hips)))
    assert np.ptp(plan.world[:, root, 2, 3]) < 1e-12 and np.ptp(plan.world[:, root, 1, 3]) > 1.0
    assert np.ptp(plan.locs[:, hips, :], axis=0).max() < 0.2  # hips: height and IK drop only


def test_unmapped_bones_keep_their_rest_pose(synthetic):
    rig = _rig("mixamo")
    bmap = rm.detect_mapping(rig)
    plan = rt.retarget(synthetic, rig, bmap)
    for name in bmap.unmapped:
        j = rig.index(name)
        np.testing.assert_allclose(np.abs(plan.quats[:, j, 0]), 1.0, atol=1e-12)


def test_planted_feet_recover_the_contacts(synthetic, demo, cmu):
    """Fallback for bakes without the engine's contacts: feet the foot lock left still."""
    np.testing.assert_array_equal(rt.planted_feet(synthetic), synthetic.contacts)
    np.testing.assert_array_equal(rt.planted_feet(demo[0]), demo[0].contacts)
    assert (rt.planted_feet(cmu) == cmu.contacts).mean() > 0.95
