"""EngineProcess and Job against the stdlib fake engine: every scenario ends in the right state."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from vibe_blender.runner import engine_cmd
from vibe_blender.runner.engine_process import CancelLadder, EngineProcess, decode_line
from vibe_blender.runner.errors import EngineCancelledError, EngineCrashedError, EngineRunError
from vibe_blender.runner.job import Job, JobState

FAKE = str(Path(__file__).resolve().parents[1] / "fakes" / "fake_engine.py")
LADDER = CancelLadder(grace_s=0.4, term_s=0.4)


def spec(scenario: str, *extra: str) -> engine_cmd.EngineSpec:
    return engine_cmd.EngineSpec(launcher=(sys.executable, FAKE, "--scenario", scenario, *extra))


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not really a video")
    return path


def make_job(scenario: str, video: Path, tmp_path: Path, *extra: str) -> Job:
    out = tmp_path / "take.motion.npz"
    argv = engine_cmd.run_argv(spec(scenario, *extra), video, out)
    return Job(argv, result_path=out, ladder=LADDER)


def assert_reaped(job: Job) -> None:
    """The child was waited for: no zombie remains (waitpid on it fails)."""
    assert job.process.returncode is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(job.process.pid, os.WNOHANG)


def test_ok_run_reports_stages_progress_warning_and_result(video, tmp_path):
    job = make_job("ok", video, tmp_path)
    seen = []
    state = job.run_blocking(lambda j: seen.append((j.stage, round(j.fraction, 4))))
    assert state is JobState.DONE
    assert job.exit_code == 0 and job.result_path.read_bytes() == b"fake motion file\n"
    assert job.result["path"] == str(job.result_path)
    assert job.hello["engine_version"] == "0.0.0-fake"
    stages = [s for s, _ in seen]
    assert list(dict.fromkeys(stages)) == ["", "decode", "detect", "track", "features", "regress", "write"]
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and job.fraction == 1.0
    assert job.last_warning == "Track 7 dropped: shorter than 8 frames"
    assert job.garbage_lines == [] and job.error == ""
    job.raise_for_state()
    assert_reaped(job)


def test_non_blocking_update_reaches_done(video, tmp_path):
    job = make_job("ok", video, tmp_path)
    job.start()
    deadline = time.monotonic() + 20
    while not job.finished and time.monotonic() < deadline:
        job.update()
        time.sleep(0.01)
    assert job.state is JobState.DONE
    assert_reaped(job)


def test_bad_input_fails_with_engine_message_and_exit_4(tmp_path):
    job = make_job("ok", tmp_path / "missing.mp4", tmp_path)
    assert job.run_blocking() is JobState.FAILED
    assert job.exit_code == 4 and job.error_code == "VIDEO_UNREADABLE"
    assert job.error.startswith("Cannot read the video") and "\n" not in job.error
    assert "VideoError" in job.error_detail
    assert not job.result_path.exists()
    with pytest.raises(EngineRunError, match="Cannot read the video") as info:
        job.raise_for_state()
    assert info.value.code == "VIDEO_UNREADABLE" and info.value.exit_code == 4


def test_crash_reports_stderr_tail(video, tmp_path):
    job = make_job("crash", video, tmp_path)
    assert job.run_blocking() is JobState.FAILED
    assert job.exit_code == 1 and job.error_code == "CRASHED"
    assert job.error == ("The engine stopped unexpectedly (exit code 1): "
                         "RuntimeError: fake engine crashed on purpose")
    assert job.error_detail.startswith("Traceback (most recent call last):")
    with pytest.raises(EngineCrashedError):
        job.raise_for_state()
    assert_reaped(job)


def test_garbage_line_is_a_warning_not_fatal(video, tmp_path):
    job = make_job("garbage", video, tmp_path)
    assert job.run_blocking() is JobState.DONE
    assert job.garbage_lines == ["Loading weights... this is not JSON"]
    assert any("not protocol JSON" in w for w in job.warnings)


def test_cancel_is_cooperative_and_leaves_no_result(video, tmp_path):
    job = make_job("cancel", video, tmp_path)
    job.start()
    _wait_for(lambda: job.update() or job.stage == "decode")
    t0 = time.monotonic()
    job.request_cancel()
    assert job.run_blocking() is JobState.CANCELLED
    assert time.monotonic() - t0 < LADDER.grace_s  # no terminate was needed
    assert job.exit_code == 3 and not job.process.killed
    assert not job.result_path.exists()
    assert list(tmp_path.glob("take.motion.npz*")) == []
    with pytest.raises(EngineCancelledError):
        job.raise_for_state()
    assert_reaped(job)


def test_cancel_mid_run_of_slow_scenario_removes_partial_output(video, tmp_path):
    job = make_job("slow", video, tmp_path, "--step-s", "0.01")
    job.start()
    _wait_for(lambda: job.update() or job.stage == "detect")
    job.request_cancel()
    assert job.run_blocking() is JobState.CANCELLED
    assert job.fraction < 1.0 and list(tmp_path.glob("take.motion.npz*")) == []


def test_stdin_eof_means_cancel(video, tmp_path):
    out = tmp_path / "x.npz"
    proc = EngineProcess(engine_cmd.run_argv(spec("cancel"), video, out), ladder=LADDER)
    proc.start()
    proc.close_stdin()
    assert proc.wait_blocking() == 3


def test_stalled_engine_is_killed_within_the_ladder(video, tmp_path):
    job = make_job("stall", video, tmp_path)
    job.start()
    _wait_for(lambda: job.update() or job.stage == "decode")
    t0 = time.monotonic()
    job.request_cancel()
    assert job.run_blocking() is JobState.CANCELLED
    elapsed = time.monotonic() - t0
    assert LADDER.grace_s + LADDER.term_s <= elapsed < LADDER.grace_s + LADDER.term_s + 2.0
    assert job.process.killed and job.exit_code == -signal.SIGKILL
    assert_reaped(job)


def test_protocol_version_mismatch_fails_clearly(video, tmp_path):
    job = make_job("version", video, tmp_path)
    assert job.run_blocking() is JobState.FAILED
    assert job.error_code == "PROTOCOL"
    assert job.error.startswith("engine speaks protocol v2, this add-on speaks v1")


def test_success_without_result_file_is_a_failure(video, tmp_path):
    job = make_job("no_result", video, tmp_path)
    assert job.run_blocking() is JobState.FAILED
    assert job.error_code == "NO_RESULT" and str(job.result_path) in job.error


def test_missing_interpreter_fails_without_exception(video, tmp_path):
    argv = engine_cmd.run_argv(engine_cmd.EngineSpec(python=str(tmp_path / "nope" / "python")),
                               video, tmp_path / "o.npz")
    job = Job(argv, result_path=tmp_path / "o.npz")
    job.start()
    assert job.state is JobState.FAILED and job.error_code == "NOT_STARTED"
    assert job.error.startswith("Cannot start the engine")


def test_doctor_through_the_runner():
    job = Job(engine_cmd.doctor_argv(spec("ok"), vibe_data="/data/vibe"))
    assert job.run_blocking() is JobState.DONE
    assert job.hello["device"] == "cpu" and job.hello["v"] == 1
    assert job.reports["doctor"]["vibe_ready"] is True


def test_stderr_ring_buffer_keeps_last_200_lines(tmp_path):
    code = "import sys\nfor i in range(500): print(f'line {i}', file=sys.stderr)\n"
    proc = EngineProcess([sys.executable, "-c", code])
    proc.start()
    assert proc.wait_blocking() == 0
    assert proc.stderr_tail(1000) == [f"line {i}" for i in range(300, 500)]


def test_eta_from_stage_progress_with_a_fake_clock():
    now = [100.0]
    job = Job([sys.executable, "-c", "pass"], clock=lambda: now[0])
    job.state = JobState.RUNNING
    job.apply(decode_line('{"v":1,"type":"stage","name":"detect","index":1,"count":4}'))
    assert job.eta_s is None
    now[0] += 10.0
    job.apply(decode_line('{"v":1,"type":"progress","stage":"detect","done":25,"total":100,'
                          '"fps":null,"eta_s":null}'))
    assert job.eta_s == pytest.approx(30.0)
    assert job.fraction == pytest.approx((1 + 0.25) / 4)
    job.apply(decode_line('{"v":1,"type":"progress","stage":"detect","done":50,"total":100,'
                          '"fps":5.0,"eta_s":12.0}'))
    now[0] += 2.0
    assert job.eta_s == pytest.approx(10.0)  # the engine's own estimate, aged by 2 s


def test_decode_line_classifies_garbage_and_messages():
    assert decode_line('{"v":1,"type":"done","status":"ok","extra":5}').message["extra"] == 5
    for text in ("hello", "[1, 2]", '{"v": 1}', '{"type": 3}', '{"v":1,"type":"progress"}'):
        line = decode_line(text)
        assert (line.kind, line.text, line.message) == ("garbage", text, None) and line.error
    assert decode_line('{"v":2,"type":"done","status":"ok"}').kind == "version"


TRANSCRIPTS = Path(__file__).resolve().parents[2] / "assets" / "protocol"


@pytest.mark.parametrize("name, state, code", [
    ("ok", JobState.DONE, ""),
    ("cancelled", JobState.CANCELLED, "CANCELLED"),
    ("error", JobState.FAILED, "NO_PERSON"),
    ("garbage", JobState.FAILED, "INTERNAL"),
])
def test_golden_transcripts_replayed_by_the_fake(name, state, code, video, tmp_path):
    job = make_job("ok", video, tmp_path, "--step-s", "0", "--transcript", str(TRANSCRIPTS / f"{name}.jsonl"))
    assert job.run_blocking() is state
    assert job.error_code == code
    assert job.result_path.exists() == (state is JobState.DONE)
    if name == "ok":
        assert job.stage == "write" and job.result["people"][1]["id"] == 2
        assert job.last_warning.startswith("track 3 (12 frames)")
    if name == "garbage":
        assert job.garbage_lines[0].startswith("Traceback") and len(job.garbage_lines) == 3
        assert job.error.startswith("internal error: ZeroDivisionError")


def _wait_for(cond, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_ctrl_c_in_blocking_mode_becomes_a_cancel(video, tmp_path):
    job = make_job("slow", video, tmp_path, "--step-s", "0.01")
    interrupted = []

    def on_update(j):
        if j.stage == "detect" and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt

    assert job.run_blocking(on_update) is JobState.CANCELLED
    assert interrupted and job.exit_code == 3 and not job.result_path.exists()


def test_close_kills_a_running_engine_at_once(video, tmp_path):
    job = make_job("stall", video, tmp_path)
    job.start()
    _wait_for(lambda: job.update() or job.stage == "decode")
    t0 = time.monotonic()
    job.close()
    assert time.monotonic() - t0 < 2.0
    assert job.state is JobState.CANCELLED and job.process.returncode == -signal.SIGKILL
    assert_reaped(job)


@pytest.mark.parametrize("scenario,state", [("bad_input", JobState.FAILED), ("crash", JobState.FAILED),
                                            ("cancel", JobState.CANCELLED), ("no_result", JobState.FAILED)])
def test_a_file_the_user_had_at_the_target_is_never_deleted(scenario, state, video, tmp_path):
    job = make_job(scenario, video, tmp_path)
    job.result_path.write_bytes(b"the user's good take")
    if scenario == "cancel":
        job.start()
        time.sleep(0.3)
        job.request_cancel()
    assert job.run_blocking() is state
    assert job.result_path.read_bytes() == b"the user's good take"


def test_a_file_this_run_wrote_is_removed_when_the_run_is_cancelled_after_writing(video, tmp_path):
    job = make_job("ok", video, tmp_path, "--step-s", "0.05")
    job.result_path.write_bytes(b"old take")
    job.start()
    while job.state is JobState.RUNNING and job.result_path.read_bytes() == b"old take":
        job.update()
        time.sleep(0.01)
    job.request_cancel()  # the new file is in place; the run is then cancelled before it reports
    job.run_blocking()
    if job.state is JobState.CANCELLED:
        assert not job.result_path.exists()
    else:
        assert job.state is JobState.DONE and job.result_path.read_bytes() == b"fake motion file\n"


def test_a_killed_engine_is_named_with_its_signal_not_a_log_line(video, tmp_path):
    job = make_job("stall", video, tmp_path)
    job.start()
    time.sleep(0.5)
    os.kill(job.process.pid, signal.SIGKILL)
    assert job.run_blocking() is JobState.FAILED
    assert job.error.startswith("The engine was killed (SIGKILL)") and "INFO" not in job.error
