"""Engine set-up from the extension (issue 12): the bundled wheel, the base-Python finder, the steps
(online CPU/CUDA, package index only, offline wheelhouse), the set-up log; the overall ETA and the
panel's words."""
import sys
import time

import pytest

from vibe_blender.core import ui_text
from vibe_blender.core.errors import UserInputError
from vibe_blender.runner import engine_cmd as ec
from vibe_blender.runner.job import CommandJob, Job, JobState


@pytest.fixture
def bundled(tmp_path):
    folder = tmp_path / "addon" / ec.BUNDLED_ENGINE_DIR
    folder.mkdir(parents=True)
    (folder / "vibe_mocap-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
    (folder / ec.BUNDLED_REQUIREMENTS).write_text("torch==2.13.0\n")
    return ec.bundled_engine(tmp_path / "addon")


def test_bundled_engine_is_found_only_when_complete(bundled, tmp_path):
    assert bundled.wheel.name == "vibe_mocap-0.1.0-py3-none-any.whl" and bundled.requirements.is_file()
    assert ec.bundled_engine(tmp_path / "nowhere") is None


def test_base_python_order_pick_then_blender_then_path():
    versions = {"/picked": (3, 12), "/blender/python3.11": (3, 11), "/usr/bin/python3.13": (3, 13),
                "/usr/bin/python3": (3, 10)}
    which = {"python3.13": "/usr/bin/python3.13", "python3": "/usr/bin/python3"}.get
    find = lambda picked="", blender="": ec.find_base_python(picked, blender, which=which,  # noqa: E731
                                                             version=versions.get)
    assert find("/picked", "/blender/python3.11") == "/picked"
    assert find("", "/blender/python3.11") == "/blender/python3.11"
    assert find("", "") == "/usr/bin/python3.13"
    with pytest.raises(UserInputError, match="is not a Python 3.11\\+ with venv: pick another one"):
        find("/usr/bin/python3")
    with pytest.raises(UserInputError, match="No Python 3.11 or newer found"):
        ec.find_base_python("", "", which=lambda n: None, version=versions.get)


def test_python_version_probes_a_real_interpreter(tmp_path):
    assert ec.python_version(sys.executable) == tuple(sys.version_info[:2])
    assert ec.python_version(str(tmp_path / "missing")) is None


def test_setup_steps_online_cpu_cuda_index_only_and_offline(bundled, tmp_path):
    steps = ec.engine_setup_steps("/base/python", tmp_path / "venv", bundled)
    assert [n for n, _ in steps] == ["Creating the engine environment",
                                     "Installing torch and the other libraries (one download)",
                                     "Installing the engine", "Checking the engine"]
    py = ec.venv_python(tmp_path / "venv")
    assert steps[0][1] == ["/base/python", "-m", "venv", str(tmp_path / "venv")]
    libs, engine, doctor = steps[1][1], steps[2][1], steps[3][1]
    assert libs[:4] == [py, "-m", "pip", "install"] and libs[-2:] == ["-r", str(bundled.requirements)]
    assert libs[libs.index("--extra-index-url") + 1] == ec.TORCH_CPU_INDEX
    assert engine[-3:] == ["--no-deps", "--force-reinstall", str(bundled.wheel)]
    assert doctor == [py, "-m", "vibe_engine", "doctor"]
    cuda = ec.engine_setup_steps("/b", tmp_path / "v", bundled, device="cuda")[1][1]
    assert cuda[cuda.index("--extra-index-url") + 1] == ec.TORCH_CUDA_INDEX
    index_only = ec.engine_setup_steps("/b", tmp_path / "v", bundled, torch_index="")[1][1]
    assert "--extra-index-url" not in index_only and "--no-index" not in index_only
    house = tmp_path / "wheels"
    house.mkdir()
    offline = ec.engine_setup_steps("/b", tmp_path / "v", bundled, wheelhouse=str(house))
    for _, argv in offline[1:3]:
        assert argv[argv.index("--no-index") + 1:argv.index("--no-index") + 3] == ["--find-links", str(house)]
    with pytest.raises(UserInputError, match="Wheelhouse folder not found"):
        ec.engine_setup_steps("/b", tmp_path / "v", bundled, wheelhouse=str(tmp_path / "none"))


def test_setup_log_keeps_every_line_and_the_failure(tmp_path):
    log = tmp_path / "setup.log"
    ok = [sys.executable, "-c", "print('Collecting torch'); print('Installed')"]
    bad = [sys.executable, "-c", "import sys; print('No matching distribution', file=sys.stderr); sys.exit(1)"]
    job = CommandJob([("one", ok), ("two", bad)], log_path=log)
    assert job.run_blocking() is JobState.FAILED
    text = log.read_text()
    assert "== one: " in text and "Collecting torch\nInstalled\n" in text
    assert "== two: " in text and text.rstrip().endswith("No matching distribution")
    assert job.error == "two failed (exit code 1): No matching distribution"


def test_overall_eta_counts_every_stage_not_only_the_current_one():
    now = [150.0]
    job = Job(["x"], clock=lambda: now[0])
    job.state, job._started_at, job._stage_started_at = JobState.RUNNING, 50.0, 140.0
    job.stage_index, job.stage_count, job.done, job.total = 1, 4, 1, 2  # 1.5 of 4 stages in 100 s
    assert job.fraction == pytest.approx(0.375)
    assert job.overall_eta_s == pytest.approx(100.0 * 0.625 / 0.375)
    assert job.eta_s == pytest.approx(10.0)  # the stage's own: 10 s for half the stage


def test_panel_words():
    assert [ui_text.stage_words(s) for s in ("decode", "features", "regress", "")] == [
        "Reading the video", "Looking at poses", "Fitting bodies", "Starting"]
    assert ui_text.progress_text("regress", 0.634, 41.2) == "Fitting bodies 63% · about 41 s left"
    assert ui_text.progress_text("detect", 0.1, 300) == "Finding people 10% · about 5 min left"
    assert ui_text.without_flags("Track 7 dropped: shorter than --min-frames 8; use --foo-bar") == \
        "Track 7 dropped: shorter than the minimum track length 8; use foo bar"
    assert ui_text.without_flags("a well-known x--y") == "a well-known x--y"


# -- the optional last step: the engine's real `prepare` (compiled VIBE artefacts) -------------------

def test_prepare_step_only_with_vibe_data(tmp_path):
    steps = [("Checking the engine", ["/venv/bin/python", "-m", "vibe_engine", "doctor"])]
    assert ec.with_prepare_step(steps, "/venv/bin/python", "") == steps  # the free default: nothing to compile
    (name, argv), = ec.with_prepare_step(steps, "/venv/bin/python", tmp_path, device="cpu", precision="bf16")[1:]
    assert name == ec.PREPARE_STEP
    assert argv == ["/venv/bin/python", "-m", "vibe_engine", "prepare", "--vibe-data", str(tmp_path),
                    "--device", "cpu", "--precision", "bf16", "--progress"]
    with pytest.raises(UserInputError, match="Unknown precision 'fp8'"):
        ec.prepare_argv("/p", tmp_path, precision="fp8")


def _prepare_job(tmp_path, vibe_data, cache, log=None):
    import os

    env = {**os.environ, "VIBE_ENGINE_COMPILE_CACHE": str(cache)}
    ok = [sys.executable, "-c", "print('engine checked')"]
    steps = ec.with_prepare_step([("Checking the engine", ok)], sys.executable, vibe_data, precision="fp32")
    return CommandJob(steps, env=env, log_path=log, optional=(ec.PREPARE_STEP,))


def test_a_failing_prepare_is_a_warning_not_a_failed_set_up(tmp_path):
    """The real `prepare` on a folder without the VIBE files exits 4: the set-up still ends DONE,
    with the reason as a warning and in the log."""
    empty = tmp_path / "vibe_data"
    empty.mkdir()
    log = tmp_path / "setup.log"
    job = _prepare_job(tmp_path, empty, tmp_path / "cache", log)
    assert job.run_blocking() is JobState.DONE and job.error == ""
    (warning,) = job.warnings
    assert warning.startswith(f"{ec.PREPARE_STEP} failed (exit code 4): ")
    assert job.outputs[0] == ["engine checked"]
    assert "(optional step: the set-up goes on)" in log.read_text()
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


@pytest.fixture(scope="module")
def vibe_data(tmp_path_factory):
    from tests.fixtures import synthetic

    return synthetic.make_vibe_data(tmp_path_factory.mktemp("setup_vibe_data"), 7)


@pytest.mark.slow  # waits for the model to load and the build to start (≈10-30 s)
def test_cancel_during_prepare_leaves_no_artefact(tmp_path, vibe_data):
    cache = tmp_path / "cache"
    job = _prepare_job(tmp_path, vibe_data, cache)
    job.start()
    deadline = time.monotonic() + 600
    while not any(line.startswith("Building the compiled backbone") for line in job.step_lines):
        assert job.state is JobState.RUNNING and time.monotonic() < deadline, job.error
        job.update(0.2)
    assert job.step_name == ec.PREPARE_STEP and job.last_line.startswith("Building the compiled backbone (1/2")
    into_build = time.monotonic() + 5  # into the export / compilation
    while time.monotonic() < into_build:
        job.update(0.2)
    assert job.state is JobState.RUNNING, job.error
    job.request_cancel()
    assert job.run_blocking() is JobState.CANCELLED
    assert job.process.returncode == 3  # prepare unwound on SIGTERM (not killed)
    assert not cache.exists() or [p.name for p in cache.iterdir()] == []  # no package, record or temporary file


@pytest.mark.slow  # two real AOTInductor builds (ResNet-50 backbone, regressor + SMPL): minutes
def test_prepare_builds_both_artefacts_with_progress_lines(tmp_path, vibe_data):
    import json

    cache = tmp_path / "cache"
    job = _prepare_job(tmp_path, vibe_data, cache)
    assert job.run_blocking() is JobState.DONE and job.warnings == []
    lines = job.outputs[1]
    assert lines[0] == "Loading the VIBE model"
    assert "Building the compiled backbone (1/2; missing): this takes minutes" in lines
    assert "Building the compiled head (2/2; missing): this takes minutes" in lines
    result = json.loads(lines[-1])
    assert result["state"] == "built" and set(result["artefacts"]) == {"backbone", "head"}
    names = sorted(p.name for p in cache.iterdir())
    assert names == ["hmr-backbone-cpu-float32-cl-b32.json", "hmr-backbone-cpu-float32-cl-b32.pt2",
                     "vibe-head-cpu-float32-nchw-b32.json", "vibe-head-cpu-float32-nchw-b32.pt2"]
    again = _prepare_job(tmp_path, vibe_data, cache)  # a second set-up only loads them
    assert again.run_blocking() is JobState.DONE
    assert json.loads(again.outputs[1][-1])["state"] == "loaded"
