"""The panel's fixes a real user tripped over (issue 12), checked without a window: every scenario
runs in ONE fresh interpreter with the add-on enabled and the stdlib fake engine (as in
test_operator_jobs.py); each test checks one scenario's record.

Redo/repeat: in a window, Blender calls ``execute`` for F9 / the redo panel / Shift+R. The bpy wheel
has no window, so the scenario sets ``operators.interactive`` to answer True (the one switch
``execute`` reads) and calls the operator's execute path the way a redo does.
"""
import pytest

pytest.importorskip("bpy")

from tests.fixtures.addon_child import PRELUDE, record, run_child  # noqa: E402

CHILD = PRELUDE + r'''
from vibe_blender.bl import operators, prefs, props, panels
from vibe_blender.core import ui_text

def fresh(scenario=None, **pref_values):
    fresh_scene(scenario, **pref_values)
    prefs.RUNTIME.setup_job, prefs.RUNTIME.setup_message = None, ""
    operators.ActiveRun.job, operators.ActiveRun.message, operators.ActiveRun.level = None, "", "INFO"
    operators.ActiveRun.last_take = None
    operators.interactive = lambda: False

def names():
    return {k: sorted(b.name for b in getattr(bpy.data, k)) for k in COUNTED}

def op(call, *args, **kwargs):
    before = names()
    try:
        ret, error = sorted(call(*args, **kwargs)), ""
    except RuntimeError as exc:  # bpy.ops raises when the operator reported an error
        ret, error = "RuntimeError", str(exc).strip()
    return {"ret": ret, "error": error, "before": before, "after": names(),
            "status": [operators.ActiveRun.message, operators.ActiveRun.level]}

def cancelled():
    fresh("cancel")  # runs until cancelled, then acknowledges like the real engine (exit 3)
    job_box = {}
    real = operators.api.start_job
    def start_and_cancel(*a, **k):
        job = real(*a, **k)
        job_box["job"] = job
        return job
    operators.api.start_job = start_and_cancel
    try:
        import threading
        def cancel_soon():
            while "job" not in job_box or job_box["job"].state.name == "PENDING":
                time.sleep(0.02)
            while not job_box["job"].stage:
                time.sleep(0.02)
            job_box["job"].request_cancel()
        threading.Thread(target=cancel_soon, daemon=True).start()
        rec = op(bpy.ops.vibe.import_video, "INVOKE_DEFAULT", motion_path=os.path.join(WORK, "c.motion.npz"))
    finally:
        operators.api.start_job = real
    rec["job_state"] = job_box["job"].state.name
    return rec

def empty_video():
    fresh("ok")
    bpy.context.scene.vibe.video_path = ""
    return op(bpy.ops.vibe.import_video, "INVOKE_DEFAULT")

def redo():
    fresh("ok")
    first = op(bpy.ops.vibe.import_video, "INVOKE_DEFAULT", motion_path=os.path.join(WORK, "take.motion.npz"))
    prefs.get_prefs().engine_command = launcher("crash")  # a redo that ran the engine would fail
    operators.interactive = lambda: True
    bpy.context.scene.vibe.root_motion = "in_place"  # what a user changes in the redo panel
    again = op(bpy.ops.vibe.import_video)
    root = bpy.data.objects["VIBE_1"].animation_data.action["vibe_root_motion"]
    bpy.context.scene.vibe.video_path = os.path.join(WORK, "other.mp4")
    other = op(bpy.ops.vibe.import_video)
    operators.interactive = lambda: False
    return {"first": first, "again": again, "root_after_redo": root, "other_video": other}

def reimport():
    fresh(None)
    first = op(bpy.ops.vibe.import_motion, filepath=motion_path)
    second = op(bpy.ops.vibe.import_motion, filepath=motion_path)
    return {"first": first, "second": second,
            "parents": {o.name: o.parent.name for o in bpy.data.objects if o.parent}}

def stale_engine_message():
    fresh(None)
    refused = op(bpy.ops.vibe.import_video, "INVOKE_DEFAULT")
    p = prefs.get_prefs()
    p.base_python, p.engine_packages, p.torch_index_url = sys.executable, "pip", ""
    setup = op(bpy.ops.vibe.setup_engine, "INVOKE_DEFAULT")
    return {"refused": refused, "setup": setup}

def visibility():
    fresh(None)
    op(bpy.ops.vibe.import_motion, filepath=motion_path)
    scene, seen = bpy.context.scene, {}
    for f in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(f)
        seen[f] = [[o.name, o.hide_viewport, o.hide_render] for o in bpy.data.objects if o.name.startswith("VIBE_")]
    return {"range": [scene.frame_start, scene.frame_end], "seen": seen}

def export_buttons():
    fresh(None)
    op(bpy.ops.vibe.import_motion, filepath=motion_path)
    bpy.context.view_layer.objects.active = bpy.data.objects["VIBE_2_body"]  # the body picks its armature
    out = {}
    for fmt, preset in (("bvh", "generic"), ("fbx", "unity")):
        path = os.path.join(WORK, f"exported.{fmt}")
        out[fmt] = op(bpy.ops.vibe.export_character, format=fmt, fbx_preset=preset, filepath=path)
        out[fmt]["size"] = os.path.getsize(path) if os.path.exists(path) else 0
    bpy.context.view_layer.objects.active = None
    out["none_poll"] = bpy.ops.vibe.export_character.poll()
    return out

def labels():
    """Every name the panel shows: property names, expanded enum items, button texts."""
    s = props.VibeSceneSettings.bl_rna.properties
    shown = [s[k].name for k in ("video_path", "people", "track_ids", "smoothing", "foot_lock", "motion_path",
                                 "fbx_preset", "root_motion", "fps_mode")]
    for k in ("people", "root_motion", "fps_mode", "fbx_preset"):
        shown += [item.name for item in s[k].enum_items]
    shown += [panels.CAPTURE_TEXT, "Re-import", "No engine yet", "Set Up", "No character"]
    shown += [c.bl_label for c in panels.PANELS[1:]]
    descriptions = {k: s[k].description for k in ("people", "root_motion", "fps_mode", "track_ids")}
    return {"shown": shown, "max": ui_text.MAX_LABEL_CHARS, "descriptions": descriptions,
            "idle": panels._idle()}

def locked():
    """While the engine runs: inputs locked (the panels draw them disabled), Capture and Export greyed."""
    fresh("cancel")
    op(bpy.ops.vibe.import_motion, filepath=motion_path)
    bpy.context.view_layer.objects.active = bpy.data.objects["VIBE_1"]
    before = [panels._idle(), bpy.ops.vibe.import_video.poll(), bpy.ops.vibe.export_character.poll()]
    options = props.import_options(bpy.context.scene.vibe)
    job = operators.api.start_job(video, os.path.join(WORK, "locked.motion.npz"), prefs.engine_options(), options)
    operators.ActiveRun.job = job
    job.start()
    during = [panels._idle(), bpy.ops.vibe.import_video.poll(), bpy.ops.vibe.export_character.poll()]
    operators.shutdown()
    return {"before": before, "during": during, "after": panels._idle()}

def setup_cancelled():
    """Cancel during "Set Up Engine" (a real venv being created): INFO, no engine Python set, log kept."""
    import threading
    fresh(None, base_python=sys.executable, engine_packages="pip", torch_index_url="")
    def cancel_soon():
        while prefs.RUNTIME.setup_job is None or prefs.RUNTIME.setup_job.state.name != "RUNNING":
            time.sleep(0.01)
        prefs.RUNTIME.setup_job.request_cancel()  # what vibe.cancel does (no bpy call off the main thread)
    threading.Thread(target=cancel_soon, daemon=True).start()
    rec = op(bpy.ops.vibe.setup_engine, "INVOKE_DEFAULT")
    job = prefs.RUNTIME.setup_job
    return {**rec, "message": prefs.RUNTIME.setup_message, "engine_python": prefs.get_prefs().engine_python,
            "state": job.state.name, "log_starts": open(job.log_path).read().startswith("== Creating")}

for name, fn in [("setup_cancelled", setup_cancelled), ("locked", locked), ("cancelled", cancelled), ("empty_video", empty_video), ("redo", redo), ("reimport", reimport),
                 ("stale_engine_message", stale_engine_message), ("visibility", visibility),
                 ("export_buttons", export_buttons), ("labels", labels)]:
    run(name, fn)
finish()
'''


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return run_child(CHILD, tmp_path_factory.mktemp("operator_ux"))


def test_engine_setup_can_be_cancelled(records):
    rec = record(records, "setup_cancelled")
    assert rec["ret"] == ["CANCELLED"] and rec["error"] == ""  # INFO, not an error
    assert rec["state"] == "CANCELLED" and rec["message"] == "Engine set-up cancelled"
    assert rec["engine_python"] == "" and rec["log_starts"]


def test_inputs_are_locked_while_the_engine_runs(records):
    assert record(records, "locked") == {"before": [True, True, True], "during": [False, False, False],
                                         "after": True}


def test_a_cancel_is_reported_as_info_not_as_an_error(records):
    rec = record(records, "cancelled")
    assert rec["job_state"] == "CANCELLED"
    assert rec["ret"] == ["CANCELLED"] and rec["error"] == ""  # an INFO report: bpy.ops does not raise
    assert rec["status"] == ["Cancelled: nothing was imported", "INFO"]
    assert rec["after"] == rec["before"]


def test_an_empty_video_field_names_the_fix(records):
    rec = record(records, "empty_video")
    assert rec["ret"] == "RuntimeError" and rec["error"] == "Error: Choose a video first: the Video field is empty"
    assert rec["after"] == rec["before"]


def test_redo_rebakes_the_take_and_never_runs_the_engine(records):
    rec = record(records, "redo")
    assert rec["first"]["ret"] == ["FINISHED"]
    again = rec["again"]
    assert again["ret"] == ["FINISHED"], again["error"]  # the crashing engine was not started
    assert again["after"] == again["before"]  # same names: no VIBE_1.001, no second action
    assert rec["root_after_redo"] == "in_place"  # the redo's options were applied to the take
    other = rec["other_video"]  # no take of that video: refused, nothing started or changed
    assert other["ret"] == ["CANCELLED"] and other["error"] == ""
    assert other["status"] == ["Redo does not run the engine again: press Capture in the VIBE panel", "INFO"]
    assert other["after"] == other["before"]


def test_reimport_replaces_the_characters_instead_of_duplicating(records):
    rec = record(records, "reimport")
    assert rec["first"]["ret"] == rec["second"]["ret"] == ["FINISHED"]
    after = rec["second"]["after"]
    assert after == rec["first"]["after"]
    assert after["objects"] == ["VIBE Camera", "VIBE_1", "VIBE_1_body", "VIBE_2", "VIBE_2_body"]
    assert after["actions"] == ["VIBE_1_action", "VIBE_2_action"]
    assert rec["parents"] == {"VIBE_1_body": "VIBE_1", "VIBE_2_body": "VIBE_2"}


def test_the_no_engine_line_goes_once_the_engine_is_set_up(records):
    rec = record(records, "stale_engine_message")
    assert rec["refused"]["status"][0].startswith("No engine Python is set")
    assert rec["setup"]["ret"] == ["FINISHED"], rec["setup"]["error"]
    assert rec["setup"]["status"] == ["", "INFO"]


def test_characters_are_hidden_outside_their_track(records):
    rec = record(records, "visibility")
    # two tracks of 12 frames; track 2 starts 3 video frames later; the clip has 18 frames
    assert rec["range"] == [1, 18]
    for frame, objs in rec["seen"].items():
        f = int(frame)
        shown = {name: not hv for name, hv, hr in objs if hv == hr}
        assert len(shown) == 4  # viewport and render agree for every character object
        assert shown["VIBE_1"] == shown["VIBE_1_body"] == (1 <= f <= 12)
        assert shown["VIBE_2"] == shown["VIBE_2_body"] == (4 <= f <= 15)


def test_export_buttons_write_bvh_and_fbx_of_the_active_character(records):
    rec = record(records, "export_buttons")
    for fmt in ("bvh", "fbx"):
        assert rec[fmt]["ret"] == ["FINISHED"], rec[fmt]["error"]
        assert rec[fmt]["size"] > 1000
    assert rec["none_poll"] is False  # no character active: the buttons are greyed out


def test_panel_words_fit_the_default_sidebar_width(records):
    rec = record(records, "labels")
    too_long = [t for t in rec["shown"] if len(t) > rec["max"]]
    assert too_long == []
    assert all(len(d) > 20 for d in rec["descriptions"].values())  # the long words live in tooltips
    assert rec["idle"] is True
