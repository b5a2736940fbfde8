"""Character + baking in real Blender (4.2, 5.0, 5.2): the evaluated mesh equals smplx's SMPL.

Comparison frame: the Blender world. smplx's vertices (OpenCV camera frame) are mapped with the
motion file's world_from_camera (or the default camera-at-origin-looking-along-+Y world) and
compared with the depsgraph-evaluated mesh of the baked character.
"""
import copy
import math

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.fixtures.motion import make_motion  # noqa: E402
from vibe_blender.bl import bake, character, compat  # noqa: E402
from vibe_blender.core import motion_file as mf  # noqa: E402
from vibe_blender.core.frames import default_world_from_camera, transform_points  # noqa: E402
from vibe_blender.core.skeleton import BONE_NAMES, SMPL_PARENTS  # noqa: E402

MAX_VERTEX_ERROR_M = 1e-4  # 0.1 mm
NUM_FRAMES = 10
CHANNELS = 24 * 4 + 3 + 3 + 2  # quaternions, pelvis + root location, 2 quality curves


def _world_matrix():
    """A camera 1.6 m above the ground, pitched 15° down, somewhere in the scene (rigid)."""
    a = math.radians(15.0)
    base = default_world_from_camera()[:3, :3]  # looks along +Y
    pitch = np.array([[1, 0, 0], [0, math.cos(a), math.sin(a)], [0, -math.sin(a), math.cos(a)]])
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = pitch @ base, [0.5, -2.0, 1.6]
    return m


def _motion_file(tmp_path_factory, posedirs):
    """Random poses (≤ ~57° per joint), root path and betas, written and read back as a motion file."""
    m = make_motion(num_tracks=1, num_frames=NUM_FRAMES, seed=11, posedirs=posedirs)
    m.meta["world"] = {"world_from_camera": _world_matrix().tolist()}
    m.meta["manifest"]["settings"] = {"seed": 11}
    path = tmp_path_factory.mktemp("motion") / "take.motion.npz"
    mf.write_motion(path, m)
    return mf.read_motion(path)


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    """A body without pose correctives (plain linear blend skinning)."""
    return _motion_file(tmp_path_factory, posedirs=False)


@pytest.fixture(scope="module")
def motion_pc(tmp_path_factory):
    """A body with random pose correctives (posedirs, offsets of ~1 cm)."""
    return _motion_file(tmp_path_factory, posedirs=True)


def _reference(m, smplx_reference, tmp_path_factory):
    """smplx vertices (T,V,3), camera frame."""
    t = m.track(1)
    return smplx_reference(tmp_path_factory.mktemp("smplx"), m.body, t.betas_track, t.pose, t.transl)


@pytest.fixture(scope="module")
def reference(motion, smplx_reference, tmp_path_factory):
    return _reference(motion, smplx_reference, tmp_path_factory)


@pytest.fixture(scope="module")
def reference_pc(motion_pc, smplx_reference, tmp_path_factory):
    return _reference(motion_pc, smplx_reference, tmp_path_factory)


@pytest.fixture(autouse=True)
def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield


def _evaluated_vertices(obj, frame):
    bpy.context.scene.frame_set(frame)
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = ev.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    ev.to_mesh_clear()
    return co.reshape(-1, 3).astype(np.float64)


def _counts():
    d = bpy.data
    return {name: len(getattr(d, name)) for name in ("objects", "meshes", "armatures", "actions", "shape_keys")} | {
        "markers": len(bpy.context.scene.timeline_markers)}


@pytest.mark.parametrize("world,correctives", [("given", True), ("default", True), ("given", False)])
def test_baked_mesh_matches_smplx(request, world, correctives):
    """THE acceptance test: every frame's evaluated mesh is within 0.1 mm of smplx."""
    suffix = "_pc" if correctives else ""
    motion = copy.copy(request.getfixturevalue("motion" + suffix))
    reference = request.getfixturevalue("reference" + suffix)
    motion.meta = {**motion.meta, "world": {"world_from_camera": None}} if world == "default" else motion.meta
    w = _world_matrix() if world == "given" else default_world_from_camera()
    arm = character.build_character(motion, 1)
    bake.bake_track(arm, motion, 1, fps=30, frame_start=1)
    body = bpy.data.objects["VIBE_1_body"]
    errors = [np.abs(_evaluated_vertices(body, 1 + i) - transform_points(w, reference[i])).max()
              for i in range(NUM_FRAMES)]
    assert max(errors) < MAX_VERTEX_ERROR_M, f"max vertex error {max(errors) * 1000:.4f} mm ({bpy.app.version_string})"


def test_character_structure(motion):
    arm = character.build_character(motion, 1)
    assert arm.name == "VIBE_1" and arm.type == "ARMATURE"
    bones = arm.data.bones
    assert sorted(b.name for b in bones) == sorted(BONE_NAMES)
    assert bones["pelvis"].parent.name == "root" and bones["root"].parent is None
    for j, p in enumerate(SMPL_PARENTS[1:], start=1):
        assert bones[BONE_NAMES[j]].parent.name == BONE_NAMES[p]
    body = bpy.data.objects["VIBE_1_body"]
    assert body.parent == arm and body.modifiers[0].object == arm
    assert len(body.data.vertices) == len(motion.body.v_template)
    assert len(body.data.polygons) == len(motion.body.faces)
    # skin weights round-trip through the vertex groups
    w = np.zeros((len(body.data.vertices), 24))
    names = {g.index: g.name for g in body.vertex_groups}
    for v in body.data.vertices:
        for g in v.groups:
            w[v.index, BONE_NAMES.index(names[g.group])] = g.weight
    np.testing.assert_allclose(w, motion.body.weights, atol=1e-7)
    assert min(v.co.z for v in body.data.vertices) == pytest.approx(0.0, abs=1e-6)  # stands on the ground


def test_reimport_replaces_action(motion):
    arm = character.build_character(motion, 1)
    first = bake.bake_track(arm, motion, 1, fps=30)
    first_name = first.name
    second = bake.bake_track(arm, motion, 1, fps=30, root_motion="in_place")
    assert [a.name for a in bpy.data.actions] == ["VIBE_1_action"] == [second.name] == [first_name]
    assert all(a.users > 0 for a in bpy.data.actions)  # no orphans
    assert bpy.data.objects["VIBE_1_body"].data.shape_keys is None  # no posedirs → no corrective keys
    assert arm.animation_data.action == second
    curves = list(compat.action_fcurves(second))
    assert len(curves) == CHANNELS
    assert {len(fc.keyframe_points) for fc in curves} == {NUM_FRAMES}
    assert second["vibe_root_motion"] == "in_place"
    assert '"seed": 11' in second["vibe_manifest"]
    assert len([m for m in bpy.context.scene.timeline_markers if m.name.startswith("VIBE_1 ")]) == 0


def test_reimport_with_correctives(motion_pc):
    arm = character.build_character(motion_pc, 1)
    bake.bake_track(arm, motion_pc, 1, fps=30)
    bake.bake_track(arm, motion_pc, 1, fps=30)
    assert sorted(a.name for a in bpy.data.actions) == ["VIBE_1_action", "VIBE_1_correctives"]
    assert all(a.users > 0 for a in bpy.data.actions)
    key = bpy.data.objects["VIBE_1_body"].data.shape_keys
    assert len(key.key_blocks) == 1 + 207
    curves = list(compat.action_fcurves(key.animation_data.action))
    assert len(curves) == 207 and {len(fc.keyframe_points) for fc in curves} == {NUM_FRAMES}


def test_correctives_can_be_left_out(motion_pc):
    arm = character.build_character(motion_pc, 1, correctives=False)
    bake.bake_track(arm, motion_pc, 1, fps=30)
    assert bpy.data.objects["VIBE_1_body"].data.shape_keys is None
    assert [a.name for a in bpy.data.actions] == ["VIBE_1_action"]


def test_two_people_get_their_own_rig_and_action():
    m = make_motion(num_tracks=2, num_frames=6, seed=5, posedirs=False)  # track 2 starts 3 frames later
    for tid in (1, 2):
        bake.bake_track(character.build_character(m, tid), m, tid, fps=30)
    assert {a.name for a in bpy.data.actions} == {"VIBE_1_action", "VIBE_2_action"}
    assert bpy.data.objects["VIBE_2"].animation_data.action.name == "VIBE_2_action"
    assert bpy.data.objects["VIBE_2_body"].parent.name == "VIBE_2"
    first_key = next(iter(compat.action_fcurves(bpy.data.actions["VIBE_2_action"]))).keyframe_points[0]
    assert first_key.co.x == pytest.approx(1 + 3)  # video frame 3 at 30 fps → scene frame 4
    assert bpy.context.scene.frame_end == 1 + 11  # last video frame (6 + 3 · 2 frames) of the clip


def test_in_place_keeps_pelvis_over_origin(motion):
    arm = character.build_character(motion, 1)
    bake.bake_track(arm, motion, 1, fps=30, root_motion="in_place")
    for frame in (1, 5):
        bpy.context.scene.frame_set(frame)
        head = arm.matrix_world @ arm.pose.bones["pelvis"].head
        assert abs(head.x) < 1e-5 and abs(head.y) < 1e-5
        assert tuple(arm.pose.bones["root"].location) == (0.0, 0.0, 0.0)


def _vfr_motion(motion):
    m = copy.deepcopy(motion)
    t = m.track(1)
    t.times = np.array([0.0, 0.034, 0.066, 0.1, 0.2, 0.233, 0.3, 0.4, 0.433, 0.5])
    t.detected = np.array([1, 1, 0, 0, 1, 1, 1, 0, 1, 1], bool)
    m.meta["video"] = {**m.meta["video"], "fps": 20.0, "vfr": True}
    return m


def test_vfr_times_land_on_frames_and_fps_options(motion):
    m = _vfr_motion(motion)
    arm = character.build_character(m, 1)
    scene = bpy.context.scene
    assert (scene.render.fps, scene.render.fps_base) == (24, 1.0)  # factory settings
    act = bake.bake_track(arm, m, 1, frame_start=10)  # fps=None: keep the scene's 24 fps
    fc = next(iter(compat.action_fcurves(act)))
    xs = np.empty(2 * NUM_FRAMES, np.float32)
    fc.keyframe_points.foreach_get("co", xs)
    np.testing.assert_allclose(xs[0::2], 10 + m.track(1).times * 24, atol=1e-4)
    assert (scene.render.fps, scene.frame_start, scene.frame_end) == (24, 10, 25)  # the clip's last frame: 12 / 20 s
    act = bake.bake_track(arm, m, 1, frame_start=1, fps="video")
    fc = next(iter(compat.action_fcurves(act)))
    fc.keyframe_points.foreach_get("co", xs)
    np.testing.assert_allclose(xs[0::2], 1 + m.track(1).times * 20, atol=1e-4)
    assert (scene.render.fps, scene.render.fps_base, scene.frame_end) == (20, 1.0, 13)
    bake.bake_track(arm, m, 1, fps=29.97)
    assert scene.render.fps == 30 and scene.render.fps_base == pytest.approx(30 / 29.97, rel=1e-6)


def test_bad_fps_is_refused_before_anything_changes(motion):
    arm = character.build_character(motion, 1)
    before = _counts()
    with pytest.raises(ValueError, match="fps must be a positive number"):
        bake.bake_track(arm, motion, 1, fps=0)
    no_fps = copy.copy(motion)
    no_fps.meta = {**motion.meta, "video": {}}
    with pytest.raises(mf.MotionFileError, match=r"meta video.fps is None .*it must be a number in \(0, 1000\]"):
        bake.bake_track(arm, no_fps, 1, fps="video")
    assert _counts() == before and arm.animation_data is None


def test_low_quality_frames_are_marked(motion):
    m = _vfr_motion(motion)
    arm = character.build_character(m, 1)
    act = bake.bake_track(arm, m, 1, fps="video")
    markers = sorted(mk.frame for mk in bpy.context.scene.timeline_markers if mk.name == "VIBE_1 low")
    assert markers == [2, 9]  # runs start at t=0.066 (frame 2.32) and t=0.4 (frame 9)
    flagged = next(fc for fc in compat.action_fcurves(act) if fc.data_path == '["vibe_flagged"]')
    values = [flagged.evaluate(1 + t * 20) for t in m.track(1).times]
    assert values == [0, 0, 1, 1, 0, 0, 0, 1, 0, 0]
    bake.bake_track(arm, motion, 1, fps=30)  # a clean re-bake removes the old markers
    assert not [mk for mk in bpy.context.scene.timeline_markers if mk.name.startswith("VIBE_1 ")]


def test_failed_bake_leaves_scene_unchanged(motion_pc, monkeypatch):
    motion = motion_pc  # two actions (armature + corrective shape keys) to roll back
    arm = character.build_character(motion, 1)
    m = _vfr_motion(motion)
    old = bake.bake_track(arm, m, 1, fps=30)
    key = bpy.data.objects["VIBE_1_body"].data.shape_keys
    old_key_action = key.animation_data.action
    scene = bpy.context.scene
    before = (_counts(), scene.render.fps, scene.frame_start, scene.frame_end, arm.get("vibe_flagged"))

    def boom(*args, **kwargs):
        raise RuntimeError("forced failure")

    monkeypatch.setattr(bake, "_set_timing", boom)  # after markers and properties were changed
    with pytest.raises(RuntimeError, match="forced failure"):
        bake.bake_track(arm, motion, 1, fps=25, frame_start=5)
    after = (_counts(), scene.render.fps, scene.frame_start, scene.frame_end, arm.get("vibe_flagged"))
    assert after == before
    assert arm.animation_data.action == old and old.name == "VIBE_1_action"
    assert key.animation_data.action == old_key_action and old_key_action.name == "VIBE_1_correctives"
    assert sorted(mk.frame for mk in scene.timeline_markers) == [3, 13]  # the first bake's markers


def test_failed_build_leaves_scene_unchanged(motion_pc, monkeypatch):
    before = _counts()

    def boom(*args, **kwargs):
        raise RuntimeError("forced failure")

    monkeypatch.setattr(character, "_corrective_keys", boom)  # after armature, mesh and skinning
    with pytest.raises(RuntimeError, match="forced failure"):
        character.build_character(motion_pc, 1)
    assert _counts() == before


def test_compat_action_writer_on_running_version():
    ob = bpy.data.objects.new("probe", None)
    bpy.context.scene.collection.objects.link(ob)
    writer = compat.ActionWriter("probe_action", ob)
    writer.add_curve("location", 2, "Object", np.array([1.0, 11.0]), np.array([0.0, 5.0]))
    writer.assign(ob)
    bpy.context.scene.frame_set(5)
    assert ob.location.z == pytest.approx(2.0, abs=1e-6)  # linear between the two keys
    assert compat.has_slotted_actions() == (bpy.app.version >= (4, 4, 0))
    curves = list(compat.action_fcurves(writer.action))
    assert [(fc.data_path, fc.array_index, fc.group.name) for fc in curves] == [("location", 2, "Object")]
    writer.discard()
    assert "probe_action" not in bpy.data.actions
