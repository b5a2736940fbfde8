"""The panel's Export operator with its export options (timing, skin influences, BVH layout), called
through ``bpy.ops`` with EXEC_DEFAULT and a file path, in one child interpreter with the add-on
enabled; the files it writes are read back here (FBX binary reader, GLB parser + Khronos validator,
BVH parser). A failed export leaves the scene as it was.

Scene: the prelude's two-track motion file (12 frames at 30 fps; person 2 enters at video frame 3).
"""
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")

from tests.blender.fbx_reader import read_fbx  # noqa: E402
from tests.blender.readers import bvh, gltf, tools  # noqa: E402
from tests.fixtures.addon_child import PRELUDE, record, run_child  # noqa: E402
from vibe_blender.core.export_presets import HIDDEN_SCALE, export_summary  # noqa: E402

FPS = 30
PERSON2_FIRST = 3  # video frame where track 2 starts (tests.fixtures.motion)
NUM_FRAMES = 12
KTIME = 46186158000
FBX_KEY_CONSTANT = 0x2

CHILD = PRELUDE + r'''
from vibe_blender.bl import api, compat, props, ui_export
from vibe_blender.core import ui_text

def state():
    """Everything an export must leave as it was."""
    scene = bpy.context.scene
    actions = {a.name: [[fc.data_path, fc.array_index, [list(k.co) for k in fc.keyframe_points]]
                        for fc in compat.action_fcurves(a)] for a in bpy.data.actions}
    poses = {o.name: [[*pb.scale, *pb.location, *pb.rotation_quaternion] for pb in o.pose.bones]
             for o in bpy.data.objects if o.type == "ARMATURE"}
    return {"names": {k: sorted(b.name for b in getattr(bpy.data, k)) for k in COUNTED}, "actions": actions,
            "poses": poses, "selected": sorted(o.name for o in bpy.context.selected_objects),
            "active": bpy.context.view_layer.objects.active.name, "frame": scene.frame_current,
            "range": [scene.frame_start, scene.frame_end], "scene": scene.name}

def export(**kwargs):
    before = state()
    try:
        ret, error = sorted(bpy.ops.vibe.export_character("EXEC_DEFAULT", **kwargs)), ""
    except RuntimeError as exc:
        ret, error = "RuntimeError", str(exc).strip()
    path = kwargs["filepath"]
    return {"ret": ret, "error": error, "unchanged": state() == before, "path": path,
            "written": os.path.exists(path), "folder": sorted(os.listdir(os.path.dirname(path)))
            if os.path.isdir(os.path.dirname(path)) else None}

def exports():
    fresh_scene(None)
    bpy.ops.vibe.import_motion(filepath=motion_path)
    bpy.context.view_layer.objects.active = bpy.data.objects["VIBE_2_body"]  # the body picks its armature
    bpy.context.scene.frame_set(2)  # inside person 2's hidden lead-in
    out = {}
    folder = os.path.join(WORK, "exports")
    os.makedirs(folder)
    out["fbx"] = export(format="fbx", fbx_preset="unity", timing="hidden", max_influences="custom",
                        influence_count=2, filepath=os.path.join(folder, "p2.fbx"))
    out["glb"] = export(format="glb", timing="hidden", max_influences="8",
                        filepath=os.path.join(folder, "p2.glb"))
    out["bvh"] = export(format="bvh", timing="hidden", bvh_layout="positions",
                        filepath=os.path.join(folder, "p2.bvh"))
    out["fbx_all"] = export(format="fbx", fbx_preset="unity", timing="clip", max_influences="all",
                            filepath=os.path.join(folder, "p2_all.fbx"))
    out["missing_folder"] = export(format="fbx", timing="hidden",
                                   filepath=os.path.join(WORK, "nowhere", "p2.fbx"))
    out["bad_extension"] = export(format="glb", timing="hidden", filepath=os.path.join(folder, "p2.gltf"))
    reports = {}
    arm = bpy.data.objects["VIBE_2"]
    calls = {"fbx": lambda p, r: api.export_fbx(arm, p, preset="unity", timing="hidden", max_influences=2,
                                                report=r),
             "bvh": lambda p, r: api.export_bvh(arm, p, timing="hidden", layout="positions", report=r)}
    for name, call in calls.items():
        reports[name] = {}
        call(os.path.join(WORK, f"api.{name}"), reports[name])
    out["reports"] = reports
    return out

def panel_options():
    """Each panel setting copied onto the operator: same choices (or range) and default."""
    s = props.VibeSceneSettings.bl_rna.properties
    o = bpy.ops.vibe.export_character.get_rna_type().properties
    pairs = {}
    for op_name, setting in ui_export.PANEL_OPTIONS.items():
        a, b = o[op_name], s[setting]
        if a.type == "ENUM":
            pairs[op_name] = [[i.identifier for i in a.enum_items], [i.identifier for i in b.enum_items],
                              a.default, b.default]
        else:
            pairs[op_name] = [[a.hard_min, a.hard_max], [b.hard_min, b.hard_max], a.default, b.default]
    shown = [s[k].name for k in ("export_timing", "export_influences", "bvh_layout")]
    shown += [i.name for k in ("export_timing", "export_influences", "bvh_layout") for i in s[k].enum_items]
    return {"pairs": pairs, "shown": shown, "max": ui_text.MAX_LABEL_CHARS}

run("exports", exports)
run("panel_options", panel_options)
finish()
# the bpy 4.2 wheel crashes at interpreter shutdown once the glTF exporter ran (tests/blender/gltf_worker.py):
# flush Python's and C's stdout (Blender prints the operator reports there), then skip the shutdown
import ctypes
sys.stdout.flush()
ctypes.CDLL(None).fflush(None)
os._exit(0)
'''


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return run_child(CHILD, tmp_path_factory.mktemp("export_operator"))


def _done(rec):
    assert rec["ret"] == ["FINISHED"] and rec["error"] == "" and rec["written"], rec
    assert rec["unchanged"]  # actions, poses, selection, active object, frame, scene name
    return rec["path"]


def _root_scale_flags(path):
    root = read_fbx(path)
    objects = root.find("Objects")
    model = next(m.props[0] for m in objects.find_all("Model") if m.props[1].split("\x00")[0] == "root")
    links = [c.props for c in root.find("Connections").children if c.props[0] == "OP"]
    nodes = {c[1] for c in links if c[2] == model and c[3] == "Lcl Scaling"}
    ids = {c[1] for c in links if c[2] in nodes}
    curves = [a for a in objects.find_all("AnimationCurve") if a.props[0] in ids]
    return [(list(a.find("KeyAttrFlags").props[0]), a.find("KeyValueFloat").props[0]) for a in curves]


def _max_clusters(path):
    counts = {}
    for d in read_fbx(path).find("Objects").find_all("Deformer"):
        if d.props[2] == "Cluster" and d.find("Indexes") is not None:
            for i in d.find("Indexes").props[0][d.find("Weights").props[0] > 0]:
                counts[int(i)] = counts.get(int(i), 0) + 1
    return max(counts.values())


def test_fbx_hidden_with_custom_influences(records):
    rec = record(records, "exports")
    path = _done(rec["fbx"])
    fbx = read_fbx(path)
    settings = {k: v[0] for k, v in fbx.find("GlobalSettings").properties70().items()}
    last_s = (PERSON2_FIRST + NUM_FRAMES - 1) / FPS
    assert (settings["TimeSpanStart"], settings["TimeSpanStop"]) == (0, round(last_s * KTIME))
    flags = _root_scale_flags(path)
    assert len(flags) == 3
    for f, values in flags:  # constant keys: HIDDEN_SCALE for the lead-in, then 1
        assert f == [FBX_KEY_CONSTANT]
        np.testing.assert_allclose(values, [HIDDEN_SCALE] * PERSON2_FIRST + [1.0] * NUM_FRAMES, rtol=1e-6)
    assert _max_clusters(path) <= 2


def test_info_line_reports_the_pruning_error_and_the_hidden_lead_in(records):
    rec = record(records, "exports")
    report = rec["reports"]["fbx"]
    assert report["vertices_pruned"] > 0 and report["pruning_error_m"] > 0
    line = export_summary("VIBE_2", rec["fbx"]["path"], report)
    assert f"Info: {line}" in records["_stdout"]
    assert re.search(r"skin pruned to 2 influences: \d+ vertices moved up to \d+\.\d mm; "
                     r"hidden until 0\.100 s$", line)
    bvh_line = export_summary("VIBE_2", rec["bvh"]["path"], rec["reports"]["bvh"])
    assert f"Info: {bvh_line}" in records["_stdout"] and "first pose is shown from 0 s" in bvh_line
    # every influence kept: no pruning clause
    assert f"Info: Exported VIBE_2 to {rec['fbx_all']['path']}\n" in records["_stdout"]


def test_gltf_hidden_with_8_influences(records):
    path = Path(_done(record(records, "exports")["glb"]))
    assert tools.validate_gltf(path)["issues"]["numErrors"] == 0
    doc = gltf.load(path)
    times = gltf.animation_times(doc)
    np.testing.assert_allclose(times, np.arange(PERSON2_FIRST + NUM_FRAMES) / FPS, atol=1e-6)
    anim = doc.doc["animations"][0]
    root = doc.node_index()["root"]
    (ch,) = [c for c in anim["channels"] if c["target"] == {"node": root, "path": "scale"}]
    sampler = anim["samplers"][ch["sampler"]]
    assert sampler["interpolation"] == "STEP"
    expected = np.repeat([HIDDEN_SCALE, 1.0], [PERSON2_FIRST, NUM_FRAMES])[:, None] * np.ones(3)
    np.testing.assert_allclose(doc.accessor(sampler["output"]), expected, rtol=1e-6)
    assert 4 < gltf.max_influences(doc) <= 8  # the synthetic body has 24 influences per vertex


def test_bvh_hidden_with_positions_layout(records):
    path = _done(record(records, "exports")["bvh"])
    parsed = bvh.read(path)
    assert len(parsed.motion) == PERSON2_FIRST + NUM_FRAMES  # the first pose from 0 s (BVH cannot hide)
    assert all(len(c) == 6 for c in parsed.channels)  # positions on every joint
    np.testing.assert_allclose(parsed.motion[:PERSON2_FIRST], parsed.motion[[PERSON2_FIRST] * PERSON2_FIRST],
                               atol=1e-6)


@pytest.mark.parametrize("name, message", [("missing_folder", "does not exist"),
                                           ("bad_extension", "must end with .glb")])
def test_failed_export_leaves_the_scene_and_folder_unchanged(records, name, message):
    rec = record(records, "exports")[name]
    assert rec["ret"] == "RuntimeError" and message in rec["error"] and rec["error"].count("\n") == 0
    assert rec["unchanged"] and not rec["written"]
    if rec["folder"] is not None:
        assert "p2.gltf" not in rec["folder"] and not any(f.startswith(".") for f in rec["folder"])


def test_panel_options_match_the_operator(records):
    rec = record(records, "panel_options")
    for op_name, (op_choices, setting_choices, op_default, setting_default) in rec["pairs"].items():
        assert op_choices == setting_choices and op_default == setting_default, op_name
    assert rec["pairs"]["timing"][0] == ["video", "clip", "hidden"]
    assert rec["pairs"]["max_influences"][0] == ["preset", "4", "8", "all", "custom"]
    assert rec["pairs"]["bvh_layout"][0] == ["standard", "positions"]
    assert max(len(t) for t in rec["shown"]) <= rec["max"]
