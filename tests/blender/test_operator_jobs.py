"""The long operators' shared job skeleton (``_ModalJob``) in background mode, with the fake engine.

Background mode runs ``execute`` (also for INVOKE_DEFAULT): prepare → on failure report the one
line and cancel with nothing started, else run the job to the end and answer it. The modal event
loop does not run in a bpy wheel, but the pieces it drives do: the job polled with ``update()``
until it finishes, the ``vibe.cancel`` operator and the polls that keep a second run out, and
Ctrl-C during a blocking run. All scenarios run in ONE fresh interpreter with the add-on enabled
(as in test_operator_background.py); each test checks one scenario's record.
"""

import pytest

pytest.importorskip("bpy")

from tests.fixtures.addon_child import PRELUDE, record, run_child  # noqa: E402
from vibe_blender.runner import engine_cmd  # noqa: E402

CHILD = PRELUDE + r'''
WAIT_S = 60.0
from vibe_blender.bl import api, operators, prefs, props
from vibe_blender.runner import engine_cmd

def fresh(scenario=None, **pref_values):
    fresh_scene(scenario, **pref_values)
    prefs.RUNTIME.doctor_lines, prefs.RUNTIME.doctor_ok = [], None
    prefs.RUNTIME.setup_job, prefs.RUNTIME.setup_message = None, ""
    operators.ActiveRun.job, operators.ActiveRun.message = None, ""

def counts():
    return {k: len(getattr(bpy.data, k)) for k in COUNTED}

def op(call, *args, **kwargs):
    before = counts()
    try:
        ret, error = sorted(call(*args, **kwargs)), ""
    except RuntimeError as exc:  # bpy.ops raises when the operator reported an error
        ret, error = "RuntimeError", str(exc).strip()
    return {"ret": ret, "error": error, "before": before, "after": counts(),
            "status": [operators.ActiveRun.message, operators.ActiveRun.level]}

def wait_for(cond):
    end = time.monotonic() + WAIT_S
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the fake engine did not get there in time")
        time.sleep(0.02)

def check_no_engine():
    fresh(None)
    rec = op(bpy.ops.vibe.check_engine, "INVOKE_DEFAULT")
    return {**rec, "doctor": [prefs.RUNTIME.doctor_lines, prefs.RUNTIME.doctor_ok]}

def check_crash():
    fresh("crash")
    rec = op(bpy.ops.vibe.check_engine, "INVOKE_DEFAULT")
    return {**rec, "doctor": [prefs.RUNTIME.doctor_lines, prefs.RUNTIME.doctor_ok]}

def setup_nothing():
    fresh(None, base_python=sys.executable, engine_packages="")
    rec = op(bpy.ops.vibe.setup_engine, "INVOKE_DEFAULT")
    return {**rec, "venv_exists": os.path.exists(prefs.engine_venv_dir()),
            "setup_job": prefs.RUNTIME.setup_job is not None, "engine_python": prefs.get_prefs().engine_python}

def setup_ok():
    # A real venv from this interpreter; "pip" is already in it, so pip needs no network.
    fresh(None, base_python=sys.executable, engine_packages="pip", torch_index_url="")
    rec = op(bpy.ops.vibe.setup_engine, "INVOKE_DEFAULT")
    expected = engine_cmd.venv_python(prefs.engine_venv_dir())
    return {**rec, "engine_python_ok": prefs.get_prefs().engine_python == expected,
            "python_exists": os.path.isfile(expected), "message": prefs.RUNTIME.setup_message,
            "venv": prefs.engine_venv_dir(), "job_state": prefs.RUNTIME.setup_job.state.name,
            "steps": [name for name, _ in prefs.RUNTIME.setup_job.steps]}

def setup_prepare_warns():
    """A VIBE data folder is set: the optional last step runs the engine's `prepare`; in this venv (pip
    only, no torch) it fails, which is a warning: the set-up still finishes and sets the engine."""
    data = os.path.join(WORK, "vibe_data_for_setup")
    os.makedirs(data, exist_ok=True)
    fresh(None, base_python=sys.executable, engine_packages="pip", torch_index_url="", vibe_data=data)
    rec = op(bpy.ops.vibe.setup_engine, "INVOKE_DEFAULT")
    job = prefs.RUNTIME.setup_job
    return {**rec, "message": prefs.RUNTIME.setup_message, "venv": prefs.engine_venv_dir(),
            "job_state": job.state.name, "steps": [name for name, _ in job.steps], "warnings": job.warnings,
            "engine_python_ok": prefs.get_prefs().engine_python == engine_cmd.venv_python(prefs.engine_venv_dir()),
            "prepare_argv": job.steps[-1][1][1:5]}

def ctrl_c():
    """Ctrl-C (SIGINT) during a blocking import, once the engine has sent a stage."""
    fresh("cancel")
    out = os.path.join(WORK, "ctrl-c.motion.npz")
    # A shell starts background jobs with SIGINT ignored and Python then keeps it ignored (make
    # test under nohup/&, some CI runners): restore the default handler that a terminal gives.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    def interrupt():
        wait_for(lambda: operators.ActiveRun.job is not None and operators.ActiveRun.job.stage)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # the main thread runs Python signal handlers
    threading.Thread(target=interrupt, daemon=True).start()
    rec = op(bpy.ops.vibe.import_video, "INVOKE_DEFAULT", motion_path=out)
    job = operators.ActiveRun.job
    return {**rec, "out_exists": os.path.exists(out), "job_state": job.state.name, "exit_code": job.exit_code,
            "motion_path": bpy.context.scene.vibe.motion_path}

def cancel_operator():
    """A running job polled with update() (what the modal timer does), cancelled by vibe.cancel."""
    fresh("cancel")
    out = os.path.join(WORK, "cancelled.motion.npz")
    options = props.import_options(bpy.context.scene.vibe, frame_start=1)
    job = api.start_job(video, out, prefs.engine_options(bpy.context), options)
    polls = [[bpy.ops.vibe.import_video.poll(), bpy.ops.vibe.cancel.poll()]]
    operators.ActiveRun.job = job
    job.start()
    wait_for(lambda: job.update() or job.stage)
    polls.append([bpy.ops.vibe.import_video.poll(), bpy.ops.vibe.cancel.poll()])
    ret = sorted(bpy.ops.vibe.cancel())
    status = operators.ActiveRun.message
    wait_for(lambda: (job.update(), job.finished)[1])  # until it ended, not just the next line
    polls.append([bpy.ops.vibe.import_video.poll(), bpy.ops.vibe.cancel.poll()])
    return {"ret": ret, "status": status, "polls": polls, "job_state": job.state.name,
            "exit_code": job.exit_code, "out_exists": os.path.exists(out)}

def shutdown():
    """Unregister/quit while an engine runs: the process is killed and reaped at once."""
    fresh("cancel")
    out = os.path.join(WORK, "shutdown.motion.npz")
    options = props.import_options(bpy.context.scene.vibe, frame_start=1)
    job = api.start_job(video, out, prefs.engine_options(bpy.context), options)
    operators.ActiveRun.job = job
    job.start()
    wait_for(lambda: job.update() or job.stage)
    operators.shutdown()
    return {"job_state": job.state.name, "reaped": job.process.returncode is not None,
            "active": operators.ActiveRun.job is None, "out_exists": os.path.exists(out)}

for name, fn in [("check_no_engine", check_no_engine), ("check_crash", check_crash),
                 ("setup_nothing", setup_nothing), ("setup_ok", setup_ok),
                 ("setup_prepare_warns", setup_prepare_warns), ("ctrl_c", ctrl_c),
                 ("cancel_operator", cancel_operator), ("shutdown", shutdown)]:
    run(name, fn)
finish()
'''


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return run_child(CHILD, tmp_path_factory.mktemp("operator_jobs"))


_rec = record


def _refused(rec, message):
    """Reported as one line, CANCELLED (bpy.ops raises), scene untouched."""
    assert rec["ret"] == "RuntimeError" and message in rec["error"]
    assert len(rec["error"].splitlines()) == 1
    assert rec["after"] == rec["before"]


def test_check_engine_without_an_engine_answers_the_one_line_message(records):
    rec = _rec(records, "check_no_engine")
    _refused(rec, "No engine Python is set: run 'Set up engine'")
    assert rec["doctor"] == [[rec["error"].removeprefix("Error: ")], False]  # the panel shows the same line


def test_check_engine_with_a_crashing_engine_shows_the_failure(records):
    rec = _rec(records, "check_crash")
    _refused(rec, "The engine stopped unexpectedly (exit code 1)")
    crashed = "The engine stopped unexpectedly (exit code 1): RuntimeError: fake engine crashed on purpose"
    assert rec["doctor"] == [[crashed], False]


def test_setup_with_nothing_to_install_starts_nothing(records):
    rec = _rec(records, "setup_nothing")
    _refused(rec, "Nothing to install: give the engine package")
    assert not rec["venv_exists"] and not rec["setup_job"] and rec["engine_python"] == ""


def test_setup_runs_both_steps_and_sets_the_engine_python(records):
    rec = _rec(records, "setup_ok")
    assert rec["ret"] == ["FINISHED"] and rec["error"] == "", rec["error"]
    assert rec["job_state"] == "DONE" and rec["python_exists"] and rec["engine_python_ok"]
    assert rec["message"] == f"Engine installed in {rec['venv']}"
    lines = [ln for ln in records["_stdout"].splitlines() if ln.startswith("VIBE engine setup: ")]
    assert lines and lines[-1].endswith("100.0%")
    assert engine_cmd.PREPARE_STEP not in rec["steps"]  # no VIBE data folder: nothing to compile


def test_setup_with_vibe_data_runs_prepare_last_and_a_failure_only_warns(records):
    rec = _rec(records, "setup_prepare_warns")
    assert rec["ret"] == ["FINISHED"] and rec["error"] == "", rec["error"]
    assert rec["job_state"] == "DONE" and rec["engine_python_ok"]
    assert rec["steps"][-1] == engine_cmd.PREPARE_STEP and rec["prepare_argv"] == ["-m", "vibe_engine", "prepare",
                                                                                  "--vibe-data"]
    (warning,) = rec["warnings"]
    assert warning.startswith(f"{engine_cmd.PREPARE_STEP} failed (exit code 1): ")
    assert rec["message"].startswith(f"Engine installed in {rec['venv']}; the compiled VIBE model was not prepared (")


def test_ctrl_c_during_a_blocking_import_cancels_the_engine_and_changes_nothing(records):
    rec = _rec(records, "ctrl_c")
    assert rec["ret"] == ["CANCELLED"] and rec["error"] == ""  # the user's cancel is INFO: bpy.ops does not raise
    assert rec["after"] == rec["before"]
    assert rec["job_state"] == "CANCELLED" and rec["exit_code"] == 3  # the engine's own cancel exit
    assert rec["status"] == ["Cancelled: nothing was imported", "INFO"]  # the panel's status line
    assert not rec["out_exists"] and rec["motion_path"] == ""


def test_cancel_operator_stops_a_polled_job_and_frees_the_import(records):
    rec = _rec(records, "cancel_operator")
    assert rec["ret"] == ["FINISHED"] and rec["status"] == "Cancelling…"
    # [import_video.poll, cancel.poll]: before, while the engine runs, after it stopped.
    assert rec["polls"] == [[True, False], [False, True], [True, False]]
    assert rec["job_state"] == "CANCELLED" and rec["exit_code"] == 3 and not rec["out_exists"]


def test_shutdown_kills_a_running_engine(records):
    rec = _rec(records, "shutdown")
    assert rec == {"job_state": "CANCELLED", "reaped": True, "active": True, "out_exists": False}
