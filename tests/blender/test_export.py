"""Exports round-trip through Blender's own importers: every bone head within 1 mm, frames and fps kept."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import export_rigs as rigs  # noqa: E402
from vibe_blender.bl import export as ex  # noqa: E402
from vibe_blender.bl import export_bvh as exb  # noqa: E402
from vibe_blender.core.errors import UserInputError  # noqa: E402
from vibe_blender.core.export_presets import HIDDEN_SCALE  # noqa: E402

NUM_FRAMES = 30
FPS = 25
CHECK_FRAMES = (1, 9, 17, 30)
MAX_ERROR_M = 1e-3
REPO = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT_S = 300


@pytest.fixture(autouse=True)
def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield


def _character(seed=0):
    """Animated armature + skinned mesh, placed off the origin and turned, scene at 25 fps."""
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    scene.frame_start, scene.frame_end = 1, 250
    arm = rigs.build_armature()
    mesh = rigs.add_skinned_mesh(arm, seed)
    rigs.animate(arm, NUM_FRAMES, seed=seed)
    arm.location = (0.4, 2.0, 0.1)
    arm.rotation_euler = (0.0, 0.0, math.radians(35))
    bpy.context.view_layer.update()
    return arm, mesh


def _reference(arm, mesh):
    return rigs.head_positions(arm, CHECK_FRAMES), rigs.evaluated_vertices(mesh, CHECK_FRAMES[2])


def _only(kind):
    found = [o for o in bpy.data.objects if o.type == kind]
    assert len(found) == 1, [o.name for o in bpy.data.objects]
    return found[0]


def _frame_range(obj):
    return tuple(round(f) for f in obj.animation_data.action.frame_range)


@pytest.mark.parametrize("preset", ["generic", "unity", "unreal"])
def test_fbx_round_trip(tmp_path, preset):
    arm, mesh = _character()
    heads, verts = _reference(arm, mesh)
    path = ex.export_fbx_file(arm, tmp_path / f"char_{preset}.fbx", preset=preset)
    assert os.listdir(tmp_path) == [f"char_{preset}.fbx"]  # no temp file left behind
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=path)  # anim_offset 1 (default): 0 s → frame 1
    arm2, mesh2 = _only("ARMATURE"), _only("MESH")
    assert sorted(b.name for b in arm2.data.bones) == sorted(rigs.SMPL_JOINT_NAMES)  # no leaf bones
    assert bpy.context.scene.render.fps / bpy.context.scene.render.fps_base == pytest.approx(FPS)
    assert _frame_range(arm2) == (1, NUM_FRAMES)
    assert np.abs(rigs.head_positions(arm2, CHECK_FRAMES) - heads).max() < MAX_ERROR_M
    assert np.abs(rigs.evaluated_vertices(mesh2, CHECK_FRAMES[2]) - verts).max() < MAX_ERROR_M


def test_bvh_round_trip(tmp_path):
    arm, _ = _character(seed=1)
    heads = rigs.head_positions(arm, CHECK_FRAMES)
    path = exb.export_bvh_file(arm, tmp_path / "char.bvh")
    lines = open(path).read().splitlines()
    assert f"Frames: {NUM_FRAMES}" in lines and f"Frame Time: {1 / FPS:.6f}" in lines
    assert lines[1] == "ROOT pelvis" and "CHANNELS 6 Xposition Yposition Zposition" in lines[4]
    assert len(bpy.data.objects) == 2 and len(bpy.data.armatures) == 1  # temporary copy removed
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_anim.bvh(filepath=path, update_scene_fps=True, update_scene_duration=True)
    arm2 = _only("ARMATURE")
    assert bpy.context.scene.render.fps / bpy.context.scene.render.fps_base == pytest.approx(FPS)
    assert _frame_range(arm2) == (1, NUM_FRAMES)
    assert np.abs(rigs.head_positions(arm2, CHECK_FRAMES) - heads).max() < MAX_ERROR_M


def _gltf_worker(mode, tmp_path):
    """Run tests/blender/gltf_worker.py in a child process (see its docstring for why)."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}
    worker = REPO / "tests" / "blender" / "gltf_worker.py"
    done = subprocess.run([sys.executable, str(worker), mode, str(tmp_path)], capture_output=True, text=True,
                          timeout=WORKER_TIMEOUT_S, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((tmp_path / "result.json").read_text())


@pytest.mark.parametrize("mode", ["rig", "character"])
def test_gltf_round_trip(tmp_path, mode):
    r = _gltf_worker(mode, tmp_path)
    assert r["files"] == ["char.glb"] and r["state_kept"]
    assert r["bones_equal"] and r["frame_range"] == r["expected_range"]
    assert r["head_error_m"] < MAX_ERROR_M
    assert r["vertex_error_m"] < MAX_ERROR_M


def test_export_restores_user_state(tmp_path):
    arm, mesh = _character()
    other = bpy.data.objects.new("Other", None)
    bpy.context.scene.collection.objects.link(other)
    for o in (arm, mesh):
        o.select_set(False)
    other.select_set(True)
    bpy.context.view_layer.objects.active = mesh
    scene = bpy.context.scene
    scene.frame_set(7)
    datablocks = (bpy.data.objects, bpy.data.meshes, bpy.data.armatures, bpy.data.actions)
    counts = [len(c) for c in datablocks]
    ex.export_fbx_file(arm, tmp_path / "a.fbx", preset="unreal")  # works on temporary scaled copies
    exb.export_bvh_file(arm, tmp_path / "a.bvh")
    assert [len(c) for c in datablocks] == counts
    assert (arm.name, arm.data.name, mesh.name, mesh.data.name) == ("Rig", "Rig", "Body", "Body")
    assert scene.unit_settings.scale_length == 1.0 and tuple(arm.scale) == (1, 1, 1)
    assert [o.name for o in bpy.context.view_layer.objects if o.select_get()] == ["Other"]
    assert bpy.context.view_layer.objects.active == mesh
    assert (scene.frame_start, scene.frame_end, scene.frame_current) == (1, 250, 7)
    assert sorted(os.listdir(tmp_path)) == ["a.bvh", "a.fbx"]


@pytest.mark.parametrize("target, message", [
    ("missing/char.fbx", "does not exist"), ("char.txt", "must end with .fbx"),
    ("folder.fbx", "is a folder")])
def test_bad_target_path(tmp_path, target, message):
    arm, _ = _character()
    (tmp_path / "folder.fbx").mkdir()
    with pytest.raises(UserInputError, match=message):
        ex.export_fbx_file(arm, tmp_path / target)
    assert sorted(os.listdir(tmp_path)) == ["folder.fbx"]


def test_unwritable_folder():
    arm, _ = _character()
    with pytest.raises(UserInputError, match="cannot write"):  # /proc takes no new files, even for root
        exb.export_bvh_file(arm, "/proc/vibe_char.bvh")


def test_nothing_to_export(tmp_path):
    arm = rigs.build_armature()
    with pytest.raises(UserInputError, match="no animation"):
        ex.export_fbx_file(arm, tmp_path / "a.fbx")
    with pytest.raises(UserInputError, match="armature"):
        ex.export_fbx_file([], tmp_path / "a.fbx")
    with pytest.raises(UserInputError, match="unknown FBX preset"):
        ex.export_fbx_file(arm, tmp_path / "a.fbx", preset="godot")
    assert os.listdir(tmp_path) == []


def _reimport(fmt, path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30
    if fmt == "fbx":
        bpy.ops.import_scene.fbx(filepath=path)  # anim_offset 1 (default): 0 s → frame 1
    else:
        bpy.ops.import_anim.bvh(filepath=path, update_scene_fps=True, update_scene_duration=True)
    return _only("ARMATURE")


def test_baked_character_round_trips_through_public_api(tmp_path):
    """The add-on's own character (24 influences per vertex, pose-corrective shape keys) via FBX and BVH."""
    from tests.fixtures.motion import make_motion
    from vibe_blender.bl import api_export
    from vibe_blender.bl.bake import bake_track
    from vibe_blender.bl.character import build_character

    motion = make_motion(num_tracks=1, num_frames=20, seed=3)
    arm = build_character(motion, 1)
    bake_track(arm, motion, 1, fps=30)
    names = [b.name for b in arm.data.bones]
    frames = list(range(1, 21))
    heads = rigs.head_positions(arm, frames, names)
    verts = rigs.evaluated_vertices(next(c for c in arm.children if c.type == "MESH"), 11)
    paths = {"fbx": api_export.export_fbx(arm, tmp_path / "p.fbx", preset="unreal", max_influences=None),
             "bvh": api_export.export_bvh(arm, tmp_path / "p.bvh")}
    for fmt, path in paths.items():
        arm2 = _reimport(fmt, path)
        assert _frame_range(arm2) == (1, 20), fmt
        kept = [j for j, n in enumerate(names) if n in arm2.data.bones]  # BVH merges the ground root
        assert len(kept) == len(names) - (fmt == "bvh")
        err = np.abs(rigs.head_positions(arm2, frames, [names[j] for j in kept]) - heads[:, kept]).max()
        assert err < MAX_ERROR_M, (fmt, err)
    mesh2 = _reimport("fbx", paths["fbx"]).children[0]
    for kb in mesh2.data.shape_keys.key_blocks:  # the importer clamps weights to [0, 1]
        kb.slider_min, kb.slider_max = -10.0, 10.0
    assert np.abs(rigs.evaluated_vertices(mesh2, 11) - verts).max() < MAX_ERROR_M


def _fbx_nodes(tmp_path, preset):
    """Export the test character with a preset and read back what the file holds (no importer)."""
    from tests.blender.fbx_reader import models, read_fbx
    bpy.ops.wm.read_factory_settings(use_empty=True)
    arm, _ = _character()
    root = read_fbx(ex.export_fbx_file(arm, tmp_path / f"{preset}.fbx", preset=preset))
    settings = {k: v[0] for k, v in root.find("GlobalSettings").properties70().items()}
    nodes = models(root)
    return settings, {n: nodes[n][1] for n in ("Rig", "pelvis", "Body")}


def test_fbx_presets_write_engine_axes_and_units(tmp_path):
    """What each engine reads: up axis, unit, and no 100-scaled node for Unity and Unreal."""
    files = {p: _fbx_nodes(tmp_path, p) for p in ("generic", "unity", "unreal")}
    (gen, gen_nodes), (uni, uni_nodes), (unr, unr_nodes) = files["generic"], files["unity"], files["unreal"]
    assert (gen["UpAxis"], gen["FrontAxis"], gen["UnitScaleFactor"]) == (1, 2, 1.0)  # Blender's defaults
    assert (uni["UpAxis"], uni["FrontAxis"], uni["UnitScaleFactor"]) == (1, 2, 100.0)  # Y up, metres
    assert (unr["UpAxis"], unr["UnitScaleFactor"]) == (2, 1.0)  # Z up, centimetres
    assert all(f["CustomFrameRate"] == FPS for f, _ in files.values())
    np.testing.assert_allclose(gen_nodes["Rig"]["Lcl Scaling"], [100] * 3)  # Blender puts the ×100 here
    for nodes in (uni_nodes, unr_nodes):
        np.testing.assert_allclose(nodes["Rig"]["Lcl Scaling"], [1] * 3)
        np.testing.assert_allclose(nodes["Body"].get("Lcl Scaling", [1, 1, 1]), [1] * 3)
    np.testing.assert_allclose(unr_nodes["Rig"]["Lcl Translation"], [40.0, 200.0, 10.0], atol=1e-3)  # cm
    np.testing.assert_allclose(unr_nodes["pelvis"]["Lcl Translation"],
                               np.array(uni_nodes["pelvis"]["Lcl Translation"]) * 100, atol=1e-3)


@pytest.mark.parametrize("preset", ["unity", "unreal"])
def test_export_from_pose_mode_returns_to_pose_mode(tmp_path, preset):
    arm, _ = _character()
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="POSE")
    ex.export_fbx_file(arm, tmp_path / "a.fbx", preset=preset)
    exb.export_bvh_file(arm, tmp_path / "a.bvh")
    assert arm.mode == "POSE" and bpy.context.view_layer.objects.active == arm
    bpy.ops.object.mode_set(mode="OBJECT")


def _key_arrays(action):
    from vibe_blender.bl import compat
    out = []
    for fc in compat.action_fcurves(action):
        co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out.append((fc.data_path, fc.array_index, co.tobytes()))
    return out


def test_exports_leave_the_action_bit_identical(tmp_path):
    """FBX shifts keys (video time) and adds a rest key on the action for a moment: all put back."""
    arm, _ = _character()
    action = arm.animation_data.action
    before = _key_arrays(action)
    for preset in ("generic", "unity", "unreal"):
        ex.export_fbx_file(arm, tmp_path / f"{preset}.fbx", preset=preset, timing="video")
    ex.export_fbx_file(arm, tmp_path / "clip.fbx", timing="clip")
    exb.export_bvh_file(arm, tmp_path / "a.bvh")  # (glTF in-process would crash bpy 4.2 at exit; it edits no action)
    assert arm.animation_data.action == action and _key_arrays(action) == before
    assert [a.name for a in bpy.data.actions] == [action.name] and bpy.context.scene.name == "Scene"


@pytest.mark.parametrize("call, message", [
    (lambda arm, d: ex.export_fbx_file(arm, d / "a.fbx", timing="absolute"), "unknown timing 'absolute'"),
    (lambda arm, d: ex.export_fbx_file(arm, d / "a.fbx", max_influences=-2), "max_influences must be"),
    (lambda arm, d: ex.export_gltf_file(arm, d / "a.glb", max_influences=1.5), "max_influences must be"),
    (lambda arm, d: exb.export_bvh_file(arm, d / "a.bvh", layout="cmu"), "unknown BVH layout 'cmu'")])
def test_bad_export_options(tmp_path, call, message):
    arm, _ = _character()
    before = _key_arrays(arm.animation_data.action)
    with pytest.raises(UserInputError, match=message):
        call(arm, tmp_path)
    assert os.listdir(tmp_path) == [] and _key_arrays(arm.animation_data.action) == before


def test_standard_bvh_refuses_a_moving_inner_bone(tmp_path):
    """Only the root may carry position channels in standard BVH: a moving knee asks for 'positions'."""
    arm, _ = _character()
    arm.pose.bones["left_knee"].location = (0.0, 0.05, 0.0)
    arm.pose.bones["left_knee"].keyframe_insert("location", frame=5)
    with pytest.raises(UserInputError, match="layout='positions'"):
        exb.export_bvh_file(arm, tmp_path / "a.bvh")
    assert os.listdir(tmp_path) == []
    exb.export_bvh_file(arm, tmp_path / "a.bvh", layout="positions")
    assert open(tmp_path / "a.bvh").read().count("CHANNELS 6") == len(rigs.SMPL_JOINT_NAMES)


def test_skin_pruning_report(tmp_path):
    """The test rig has 2 influences on some vertices: max_influences=1 prunes them, with the error."""
    arm, mesh = _character()
    report = {}
    ex.export_fbx_file(arm, tmp_path / "a.fbx", preset="unity", max_influences=1, report=report)
    assert report["max_influences"] == 1 and report["max_influences_before"] == 2
    assert report["vertices_pruned"] == len(rigs.SMPL_JOINT_NAMES) - 1  # one shared vertex per child joint
    assert 0 < report["pruning_error_m"] < 0.5
    assert [len(v.groups) for v in mesh.data.vertices].count(2) == len(rigs.SMPL_JOINT_NAMES) - 1  # user mesh kept
    assert (report["first_key_s"], report["frames"], report["take"]) == (0.0, NUM_FRAMES, "Rig_take")


LEAD_IN = 5  # frames between video frame 0 and the rig's first key in the hidden-timing test


def test_hidden_timing_round_trip_and_state(tmp_path):
    """Timing "hidden" on a rig whose motion starts LEAD_IN frames after video frame 0 (its root bone is
    the pelvis, no scale keys): the FBX starts at 0 s with the whole rig collapsed onto its root for the
    lead-in, then the motion, read back by Blender's importer; the action, pose and data are kept."""
    arm, _ = _character()
    action = arm.animation_data.action
    action["vibe_frame_start"] = 1 - LEAD_IN  # video frame 0 at scene frame 1 − LEAD_IN
    before, poses = _key_arrays(action), [tuple(pb.scale) for pb in arm.pose.bones]
    heads = rigs.head_positions(arm, CHECK_FRAMES)
    report, bvh_report = {}, {}
    path = ex.export_fbx_file(arm, tmp_path / "h.fbx", preset="unity", timing="hidden", report=report)
    exb.export_bvh_file(arm, tmp_path / "h.bvh", timing="hidden", report=bvh_report)
    assert _key_arrays(action) == before and [tuple(pb.scale) for pb in arm.pose.bones] == poses
    assert [a.name for a in bpy.data.actions] == [action.name] and len(bpy.data.objects) == 2
    facts = (report["first_key_s"], report["frames"], report["hidden_frames"])
    assert facts == (0.0, NUM_FRAMES + LEAD_IN, LEAD_IN)
    assert report["hidden_until_s"] == pytest.approx(LEAD_IN / FPS) and report["timing"] == "hidden"
    assert bvh_report["lead_in_frames"] == LEAD_IN and "first pose is shown" in bvh_report["note"]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=path)  # anim_offset 1: 0 s → frame 1
    arm2 = _only("ARMATURE")
    assert _frame_range(arm2) == (1, NUM_FRAMES + LEAD_IN)
    hidden = rigs.head_positions(arm2, range(1, LEAD_IN + 1))
    extent = np.abs(heads - heads[:, :1]).max()  # the rig's size around its root
    assert np.abs(hidden - hidden[:, :1]).max() <= 2 * HIDDEN_SCALE * extent + 1e-6
    shown = rigs.head_positions(arm2, [f + LEAD_IN for f in CHECK_FRAMES])
    assert np.abs(shown - heads).max() < MAX_ERROR_M


def test_a_failing_file_fix_is_an_export_error_with_nothing_written(tmp_path, monkeypatch):
    """The in-file fixes after Blender's exporter (here the FBX time span) fail with one line, no file
    and the scene as it was."""
    from vibe_blender.core import fbx_binary

    def broken(path, *_):
        raise fbx_binary.FbxFormatError(f"{path} has no GlobalSettings time span")

    arm, _ = _character()
    before = _key_arrays(arm.animation_data.action)
    monkeypatch.setattr(fbx_binary, "set_time_span", broken)
    with pytest.raises(ex.ExportError, match=r"FBX export of .*a\.fbx could not be finished: .*time span"):
        ex.export_fbx_file(arm, tmp_path / "a.fbx", preset="unity", timing="hidden")
    assert os.listdir(tmp_path) == [] and _key_arrays(arm.animation_data.action) == before
    assert [a.name for a in bpy.data.actions] == [arm.animation_data.action.name] and len(bpy.data.objects) == 2
