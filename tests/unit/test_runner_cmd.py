"""engine_cmd argv building (pure) and CommandJob, the sequential runner of "Set up engine"."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vibe_blender.core.errors import UserInputError
from vibe_blender.runner import engine_cmd
from vibe_blender.runner.engine_cmd import EngineSpec
from vibe_blender.runner.job import CommandJob, JobState


def test_run_argv_default_engine_module():
    argv = engine_cmd.run_argv(EngineSpec(python="/opt/eng/bin/python"), "/v/a b.mp4", "/o/x.npz",
                               vibe_data="/data/vibe", device="cuda", precision="bf16", tracks=(3, 1))
    assert argv == ["/opt/eng/bin/python", "-m", "vibe_engine", "run", "/v/a b.mp4", "--out", "/o/x.npz",
                    "--vibe-data", "/data/vibe", "--device", "cuda", "--precision", "bf16",
                    "--tracks", "3,1"]


def test_run_argv_minimal_and_launcher_override():
    spec = EngineSpec(python="/ignored", launcher=("/usr/bin/python3", "fake.py", "--scenario", "ok"))
    assert engine_cmd.run_argv(spec, "v.mp4", "o.npz") == [
        "/usr/bin/python3", "fake.py", "--scenario", "ok", "run", "v.mp4", "--out", "o.npz",
        "--device", "cpu", "--precision", "fp32"]
    assert engine_cmd.doctor_argv(spec)[-1] == "doctor"
    tail = engine_cmd.run_argv(spec, "v", "o", smoothing=False, foot_lock=False)[-2:]
    assert tail == ["--no-smooth", "--no-foot-lock"]


@pytest.mark.parametrize("kwargs, words", [
    ({"device": "tpu"}, "Unknown device 'tpu'"),
    ({"precision": "fp16"}, "Unknown precision 'fp16'"),
])
def test_run_argv_rejects_unknown_options(kwargs, words):
    with pytest.raises(UserInputError, match=words):
        engine_cmd.run_argv(EngineSpec(python="p"), "v", "o", **kwargs)


def test_unset_engine_python_names_the_fix():
    with pytest.raises(UserInputError, match="Set up engine"):
        engine_cmd.doctor_argv(EngineSpec())


def test_check_engine_python(tmp_path):
    engine_cmd.check_engine_python(EngineSpec(python=sys.executable))
    with pytest.raises(UserInputError, match="Engine Python not found"):
        engine_cmd.check_engine_python(EngineSpec(python=str(tmp_path / "python")))
    plain = tmp_path / "python"
    plain.write_text("")
    plain.chmod(0o644)
    with pytest.raises(UserInputError, match="not executable"):
        engine_cmd.check_engine_python(EngineSpec(python=str(plain)))


def test_parse_launcher_uses_shell_quoting_without_a_shell():
    assert engine_cmd.parse_launcher("'/a b/python' -m vibe_engine") == ("/a b/python", "-m", "vibe_engine")
    with pytest.raises(UserInputError, match="quoting"):
        engine_cmd.parse_launcher("'/a b/python")


def test_setup_steps_create_venv_then_pip_install(tmp_path):
    steps = engine_cmd.setup_steps("/usr/bin/python3.11", tmp_path / "vibe_engine_venv")
    (n1, a1), (n2, a2) = steps
    assert a1 == ["/usr/bin/python3.11", "-m", "venv", str(tmp_path / "vibe_engine_venv")]
    assert a2[:3] == [str(tmp_path / "vibe_engine_venv" / "bin" / "python"), "-m", "pip"]
    assert a2[3] == "install" and "--prefer-binary" in a2
    assert a2[-2:] == ["vibe-mocap[engine]", "torch==2.13.0"]
    assert a2[a2.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    no_index = engine_cmd.setup_steps("py", tmp_path / "v", ("pkg",), extra_index_url=None)[1][1]
    assert "--extra-index-url" not in no_index and no_index[-1] == "pkg"
    assert engine_cmd.venv_python("C:/x", windows=True).endswith(str(Path("Scripts", "python.exe")))


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_command_job_runs_steps_in_order_and_shows_last_line(tmp_path):
    marker = tmp_path / "order.txt"
    steps = [("one", _py(f"open({str(marker)!r},'a').write('1'); print('Collecting a')")),
             ("two", _py(f"open({str(marker)!r},'a').write('2'); print('Installing collected packages')"))]
    job = CommandJob(steps)
    seen = []
    assert job.run_blocking(lambda j: seen.append((j.step_index, j.last_line))) is JobState.DONE
    assert marker.read_text() == "12" and job.fraction == 1.0
    assert job.last_line == "Installing collected packages"


def test_command_job_failure_names_step_and_stderr():
    code = "import sys; sys.stderr.write('ERROR: No matching distribution found for vibe-mocap\\n'); sys.exit(1)"
    job = CommandJob([("ok", _py("pass")), ("Installing the engine", _py(code)), ("never", _py("pass"))])
    assert job.run_blocking() is JobState.FAILED
    assert job.error == ("Installing the engine failed (exit code 1): "
                         "ERROR: No matching distribution found for vibe-mocap")
    assert job.step_index == 1


def test_command_job_cancel():
    job = CommandJob([("sleep", _py("import time; time.sleep(60)"))])
    job.start()
    job.request_cancel()
    assert job.run_blocking() is JobState.CANCELLED


def test_command_job_real_venv_step(tmp_path):
    venv = tmp_path / "vibe_engine_venv"
    argv = engine_cmd.create_venv_argv(sys.executable, venv) + ["--without-pip"]
    job = CommandJob([("Creating the engine environment", argv)])
    assert job.run_blocking() is JobState.DONE
    assert Path(engine_cmd.venv_python(venv)).exists()


def test_a_cancel_that_arrives_while_a_step_is_being_started_is_not_lost():
    """Another thread (the panel's Cancel) may see RUNNING before the first process exists."""
    job = CommandJob([("sleep", [sys.executable, "-c", "import time; time.sleep(30)"]),
                      ("never", [sys.executable, "-c", "pass"])])
    job.state = JobState.RUNNING  # what start() sets first, before the step's process is created
    job.request_cancel()
    job._start_step()
    assert job.run_blocking() is JobState.CANCELLED and job.step_index == 0


def test_run_argv_carries_the_users_focal():
    spec = EngineSpec(python="p")
    assert engine_cmd.run_argv(spec, "v", "o", focal_35mm=26.0)[-2:] == ["--focal-35mm", "26"]
    assert "--focal-35mm" not in engine_cmd.run_argv(spec, "v", "o", focal_35mm=0.0)  # 0 = automatic


@pytest.mark.parametrize("focal", [3.0, 500.0, float("nan")])
def test_import_options_refuse_a_focal_that_is_no_lens(focal):
    from vibe_blender.core.settings import ImportOptions

    with pytest.raises(UserInputError, match="35 mm-equivalent focal from 8 to 400 mm, or 0"):
        ImportOptions(focal_35mm=focal)
