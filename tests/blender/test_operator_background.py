"""The operators and the headless API in background mode, with the stdlib fake engine.

All scenarios run in ONE fresh interpreter (this one's python, so the same bpy) with its own
BLENDER_USER_RESOURCES: the add-on is enabled the way Blender does it (``addon_utils.enable``)
so its preferences exist, and the engine command override preference points at
``tests/fakes/fake_engine.py``. Its exit status 0 also proves no timer was left registered
(bpy 4.2 segfaults at exit otherwise). Each test below checks one scenario's record.
"""

import re

import pytest

pytest.importorskip("bpy")

from tests.fixtures.addon_child import PRELUDE, record, run_child  # noqa: E402

CHILD = PRELUDE + r'''
from vibe_blender.bl import api, prefs, character
from vibe_blender.runner import errors as rerrors

fresh = fresh_scene

def counts():
    s = bpy.context.scene
    return {**{k: len(getattr(bpy.data, k)) for k in COUNTED},
            "fps": [s.render.fps, s.render.fps_base], "range": [s.frame_start, s.frame_end],
            "markers": len(s.timeline_markers)}

def scene_record(ret, before, error=""):
    objs = sorted(o.name for o in bpy.data.objects)
    acts = {o.name: o.animation_data.action.name for o in bpy.data.objects
            if o.type == "ARMATURE" and o.animation_data and o.animation_data.action}
    return {"ret": sorted(ret) if isinstance(ret, set) else ret, "error": error, "before": before,
            "after": counts(), "objects": objs, "actions": acts,
            "motion_path": bpy.context.scene.vibe.motion_path}

def op(call, *args, **kwargs):
    before = counts()
    try:
        ret, error = call(*args, **kwargs), ""
    except RuntimeError as exc:  # bpy.ops raises when the operator reported an error
        ret, error = "RuntimeError", str(exc).strip()
    return scene_record(ret, before, error)

def api_call(call, *args, **kwargs):
    before = counts()
    try:
        arms = call(*args, **kwargs)
        rec = scene_record([a.name for a in arms], before)
    except Exception as exc:
        rec = scene_record("raised", before, str(exc))
        rec.update(exc_type=type(exc).__name__, exc_mro=[c.__name__ for c in type(exc).__mro__],
                   code=getattr(exc, "code", None))
    return rec

def op_video(scenario, **kw):
    fresh(scenario)
    out = os.path.join(WORK, f"out-{scenario}.motion.npz")
    rec = op(bpy.ops.vibe.import_video, "INVOKE_DEFAULT", motion_path=out, **kw)
    rec["out_exists"] = os.path.exists(out)
    return rec

def chosen():
    fresh("ok")
    s = bpy.context.scene.vibe
    s.people, s.track_ids, s.fps_mode = "chosen", "2", "video"
    bpy.context.scene.render.fps = 24
    rec = op(bpy.ops.vibe.import_video, "INVOKE_DEFAULT", motion_path=os.path.join(WORK, "chosen.motion.npz"))
    return rec

def no_engine():
    fresh(None)
    return op(bpy.ops.vibe.import_video, "INVOKE_DEFAULT")

def missing_video():
    fresh("ok")
    return op(bpy.ops.vibe.import_video, "INVOKE_DEFAULT", filepath=os.path.join(WORK, "nope.mp4"))

def motion_ok():
    fresh(None)
    return op(bpy.ops.vibe.import_motion, filepath=motion_path)

def motion_bad():
    fresh(None)
    bad = os.path.join(WORK, "bad.motion.npz")
    open(bad, "wb").write(b"not a zip")
    return op(bpy.ops.vibe.import_motion, filepath=bad)

def api_ok():
    fresh(None)
    seen = []
    rec = api_call(api.import_video, video, tracks=[1], engine_command=[sys.executable, FAKE, "--scenario", "ok",
                   "--result-from", motion_path], progress=lambda job: seen.append(job.stage))
    rec["stages"] = list(dict.fromkeys(seen))
    return rec

def api_fail(scenario):
    fresh(None)
    return api_call(api.import_video, video, engine_command=[sys.executable, FAKE, "--scenario", scenario])

def api_bad_track():
    fresh(None)
    return api_call(api.import_motion, motion_path, tracks=[9])

def rollback():
    fresh(None)
    motion = mf.read_motion(motion_path)
    def build_then_fail():
        with api.scene_guard(bpy.context.scene):
            character.build_character(motion, 1)
            bpy.context.scene.render.fps = 12
            raise ValueError("boom")
    return api_call(build_then_fail)

def check_engine():
    fresh("ok")
    rec = op(bpy.ops.vibe.check_engine, "INVOKE_DEFAULT")
    rec["doctor_lines"] = prefs.RUNTIME.doctor_lines
    return rec

def setup_bad_base():
    fresh(None, base_python=os.path.join(WORK, "no", "python3"))
    rec = op(bpy.ops.vibe.setup_engine, "INVOKE_DEFAULT")
    rec["engine_python"] = prefs.get_prefs().engine_python
    return rec

for scenario in ("ok", "bad_input", "crash", "garbage"):
    run("op_" + scenario, lambda: op_video(scenario))
for name, fn in [("chosen", chosen), ("no_engine", no_engine), ("missing_video", missing_video),
                 ("motion_ok", motion_ok), ("motion_bad", motion_bad), ("api_ok", api_ok),
                 ("api_crash", lambda: api_fail("crash")), ("api_bad_input", lambda: api_fail("bad_input")),
                 ("api_bad_track", api_bad_track), ("rollback", rollback), ("check_engine", check_engine),
                 ("setup_bad_base", setup_bad_base)]:
    run(name, fn)
finish(lambda: results.update(disabled_clean={"scene_prop": "vibe" in bpy.types.Scene.bl_rna.properties.keys()}))
'''


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return run_child(CHILD, tmp_path_factory.mktemp("operator"))


_rec = record


def _unchanged(rec):
    assert rec["after"] == rec["before"]
    assert rec["objects"] == [] and rec["actions"] == {}


def test_import_video_ok_builds_one_animated_character_per_track(records):
    rec = _rec(records, "op_ok")
    assert rec["ret"] == ["FINISHED"] and rec["error"] == ""
    assert rec["objects"] == ["VIBE Camera", "VIBE_1", "VIBE_1_body", "VIBE_2", "VIBE_2_body"]  # + matched camera
    assert rec["actions"] == {"VIBE_1": "VIBE_1_action", "VIBE_2": "VIBE_2_action"}
    assert rec["after"]["armatures"] == 2 and rec["after"]["meshes"] == 2
    assert rec["out_exists"] and rec["motion_path"].endswith("out-ok.motion.npz")


def test_background_progress_lines_are_printed(records):
    lines = [ln for ln in records["_stdout"].splitlines() if ln.startswith("VIBE: ")]
    stages = {re.match(r"VIBE: (\D+?)\s+[\d.]+%", ln).group(1) for ln in lines}
    # the user's words for decode, detect, track, features, regress, write (core.ui_text)
    assert {"Reading the video", "Finding people", "Following people", "Looking at poses", "Fitting bodies",
            "Saving the take"} <= stages
    assert any(ln.endswith("100.0%") for ln in lines)


def test_chosen_track_and_video_frame_rate(records):
    rec = _rec(records, "chosen")
    assert rec["ret"] == ["FINISHED"]
    assert rec["objects"] == ["VIBE Camera", "VIBE_2", "VIBE_2_body"]
    assert rec["after"]["fps"] == [30, 1.0]  # set to the video's 30 fps (was 24)


@pytest.mark.parametrize("name, message", [
    ("op_bad_input", "Cannot read the video"),
    ("op_crash", "The engine stopped unexpectedly (exit code 1): RuntimeError: fake engine crashed on purpose"),
])
def test_failed_engine_cancels_and_leaves_the_scene_unchanged(records, name, message):
    rec = _rec(records, name)
    assert rec["ret"] == "RuntimeError"
    assert message in rec["error"]
    _unchanged(rec)
    assert not rec["out_exists"] and rec["motion_path"] == ""


def test_garbage_line_is_reported_not_fatal(records):
    rec = _rec(records, "op_garbage")
    assert rec["ret"] == ["FINISHED"] and len(rec["actions"]) == 2
    assert ("Warning: Engine printed a line that is not protocol JSON: "
            "'Loading weights... this is not JSON'") in records["_stdout"]


@pytest.mark.parametrize("name, message", [
    ("no_engine", "No engine Python is set: run 'Set up engine'"),
    ("missing_video", "Video not found:"),
    ("motion_bad", "bad.motion.npz"),
])
def test_bad_input_is_one_line_and_changes_nothing(records, name, message):
    rec = _rec(records, name)
    assert rec["ret"] == "RuntimeError" and message in rec["error"]
    assert len(rec["error"].splitlines()) == 1
    _unchanged(rec)


def test_import_motion_without_engine(records):
    rec = _rec(records, "motion_ok")
    assert rec["ret"] == ["FINISHED"]
    assert rec["actions"] == {"VIBE_1": "VIBE_1_action", "VIBE_2": "VIBE_2_action"}


def test_api_import_video_returns_armatures(records):
    rec = _rec(records, "api_ok")
    assert rec["ret"] == ["VIBE_1"] and rec["objects"] == ["VIBE Camera", "VIBE_1", "VIBE_1_body"]
    assert rec["stages"][-6:] == ["decode", "detect", "track", "features", "regress", "write"]


@pytest.mark.parametrize("name, exc_type, code, message", [
    ("api_crash", "EngineCrashedError", "CRASHED", "fake engine crashed on purpose"),
    ("api_bad_input", "EngineRunError", "VIDEO_UNREADABLE", "Cannot read the video"),
    ("api_bad_track", "UserInputError", None, "No track 9 in the motion file (it has 1, 2)"),
    ("rollback", "VibeImportError", None, "Import failed (ValueError: boom)"),
])
def test_api_raises_vibe_errors_and_leaves_the_scene_unchanged(records, name, exc_type, code, message):
    rec = _rec(records, name)
    assert rec["ret"] == "raised" and rec["exc_type"] == exc_type
    assert "VibeError" in rec["exc_mro"] and rec["code"] == code
    assert message in rec["error"]
    _unchanged(rec)


def test_check_engine_shows_the_doctor_answer(records):
    rec = _rec(records, "check_engine")
    assert rec["ret"] == ["FINISHED"]
    assert rec["doctor_lines"][0].startswith("Engine 0.0.0-fake, Python ")
    assert rec["doctor_lines"][1] == "VIBE backend: no VIBE data folder (default backend only)"


def test_setup_engine_with_a_missing_base_python_fails_clearly(records):
    rec = _rec(records, "setup_bad_base")
    assert rec["ret"] == "RuntimeError"
    assert "is not a Python 3.11+ with venv: pick another one" in rec["error"]
    assert rec["engine_python"] == ""


def test_disable_removes_the_scene_property(records):
    assert records["disabled_clean"] == {"scene_prop": False}
