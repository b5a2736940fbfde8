"""The real engine CLI in a subprocess: protocol transcripts, exit codes, bad input, cancel, OOM.

Every stdout line of every run must decode as the protocol and the transcript must follow its
ordering rules (``run_engine`` asserts both). Runs use small random-weight checkpoints in the
official layouts (tests/fixtures/synthetic.py) and short clips cut from the demo video.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import media, synthetic
from vibe_blender.core import motion_file as mf
from vibe_blender.core import protocol as P
from vibe_engine.world import camera, intrinsics

#: A hang guard, not a speed check: the demo's bf16 VIBE run (emulated bf16 on a CPU without it)
#: took over 300 s on a 2-core machine with other work running.
RUN_TIMEOUT_S = 900
#: Short clip cut from the demo: frames 0..SHORT_FRAMES-1 at half resolution.
SHORT_FRAMES = 12
SHORT_SCALE = 2
COMMON = ["--min-frames", "5", "--max-people", "1", "--batch-size", "8"]


class Engine:
    """One finished engine run: exit code, decoded messages, stderr text."""

    def __init__(self, rc: int, messages: list[P.Message], stderr: str) -> None:
        self.rc, self.messages, self.stderr = rc, messages, stderr

    def of(self, msg_type: str) -> list[P.Message]:
        return [m for m in self.messages if m.type == msg_type]

    @property
    def status(self) -> str:
        return self.messages[-1]["status"]

    @property
    def error(self) -> P.Message:
        (err,) = self.of("error")
        return err

    @property
    def stages(self) -> list[str]:
        return [m["name"] for m in self.of("stage")]


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(media.REPO))
    env.update(extra or {})
    return env


def _decode_all(lines: list[str], require_result: bool = True) -> list[P.Message]:
    messages = [P.decode_line(line) for line in lines]  # raises on any non-protocol line
    P.check_transcript(messages, require_result=require_result)
    progress_times = [m.t for m in messages if m.type == "progress"]
    assert all(b - a >= 0.099 for a, b in zip(progress_times, progress_times[1:])), "progress > 10 Hz"
    return messages


def run_engine(args: list[str], env: dict[str, str] | None = None, cancel_on_pause: str | None = None,
               require_result: bool = True) -> Engine:
    """Run ``python -m vibe_engine ARGS`` with stdin kept open; optionally cancel at the test pause.

    ``cancel_on_pause``: "line" writes the cancel line, "eof" closes stdin, when the TEST_PAUSE
    warning arrives.
    """
    proc = subprocess.Popen([sys.executable, "-m", "vibe_engine", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(env),
                            cwd=media.REPO)
    lines = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if cancel_on_pause and '"TEST_PAUSE"' in line:
            if cancel_on_pause == "line":
                proc.stdin.write(P.cancel_line() + "\n")
                proc.stdin.flush()
            else:
                proc.stdin.close()
        assert time.monotonic() < deadline
    stderr = proc.stderr.read()
    rc = proc.wait(timeout=60)
    if not proc.stdin.closed:
        proc.stdin.close()
    return Engine(rc, _decode_all(lines, require_result), stderr)


def leftovers(folder: Path) -> list[str]:
    """Any file left in the output folder (final, temporary or probe)."""
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def vibe_data(tmp_path_factory) -> Path:
    """A VIBE data folder with random-weight official-layout checkpoints (no SMPL .pkl: embedded)."""
    return synthetic.make_vibe_data(tmp_path_factory.mktemp("vibe_data"), 0)


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Small clips: the demo's first frames at half size, a blank clip, a non-video, etc."""
    root = tmp_path_factory.mktemp("clips")
    out = {"short": media.write_cv2_clip(root / "short.mp4", media.demo_frames(SHORT_FRAMES, SHORT_SCALE))}
    out["blank"] = media.write_cv2_clip(root / "blank.mp4", [np.full((240, 320, 3), 128, np.uint8)] * 12)
    out["text"] = root / "notes.mp4"
    out["text"].write_text("this is not a video\n" * 50)
    out["truncated"] = media.truncate_copy(out["short"], root / "truncated.mp4",
                                           out["short"].stat().st_size // 3)
    faststart = media.make_faststart_copy(out["short"], root / "faststart.mp4")
    cut = media.mp4_data_offset(faststart) + (faststart.stat().st_size - media.mp4_data_offset(faststart)) * 2 // 3
    out["cut_data"] = media.truncate_copy(faststart, root / "cut_data.mp4", cut)
    out["empty"] = root / "empty.mp4"
    out["empty"].write_bytes(b"")
    out["zero_frames"] = _zero_frame_clip(root / "zero.mp4")
    return out


def _zero_frame_clip(path: Path) -> Path:
    """An MP4 container holding a video stream with no frames (ffmpeg, -frames:v 0)."""
    subprocess.run([media.ffmpeg_binary(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=gray:s=64x48:r=30", "-frames:v", "0", "-c:v", "libx264", str(path)],
                   check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def ok_run(vibe_data, clips, tmp_path_factory) -> tuple[Engine, Path]:
    """One successful run on the short clip (shared by several tests)."""
    out = tmp_path_factory.mktemp("ok") / "short.motion.npz"
    engine = run_engine(["run", str(clips["short"]), "--out", str(out), "--vibe-data", str(vibe_data),
                         *COMMON])
    assert engine.rc == 0, engine.stderr[-3000:]
    return engine, out


def _run_args(video: Path, out: Path, vibe_data: Path, *extra: str) -> list[str]:
    return ["run", str(video), "--out", str(out), "--vibe-data", str(vibe_data), *COMMON, *extra]


# ------------------------------------------------------------------------------- success


def test_run_writes_a_valid_motion_file_and_a_complete_transcript(ok_run):
    engine, out = ok_run
    assert engine.status == "ok" and engine.stages == list(P.STAGES)
    assert [m["index"] for m in engine.of("stage")] == list(range(6))
    (result,) = engine.of("result")
    assert result["path"] == str(out) and result["schema"] == "vibe-mocap-motion/1"
    assert result["frames"] == SHORT_FRAMES and result["fps"] == pytest.approx(30.0, rel=1e-3)
    steps = {"load_model", "decode", "detect", "track", "crop", "compile", "generator_backbone",
             "generator_temporal", "camera_motion", "vanishing", "postprocess", "realism", "write"}
    assert set(result["timings_s"]) == steps and all(v >= 0 for v in result["timings_s"].values())
    motion = mf.read_motion(out)
    mf.validate(motion)
    assert [p["id"] for p in result["people"]] == [t.id for t in motion.tracks]
    assert len(motion.tracks) == 1
    assert not any(n.endswith(".tmp") or ".tmp-" in n for n in leftovers(out.parent))


def test_motion_file_fields_follow_the_camera_maths(ok_run):
    _, out = ok_run
    motion = mf.read_motion(out)
    cam = motion.meta["camera"]
    w, h = motion.meta["video"]["width"], motion.meta["video"]["height"]
    assert (w, h) == (884, 496)  # 994/2 rounded down to even by the mp4v encoder
    default = cam.get("focal_px_default", cam["focal_px"])  # the footage may refine the default focal
    assert default == pytest.approx(intrinsics.default_focal(w, h)) and cam["source"] in ("default", "self_calibrated")
    for t in motion.tracks:
        np.testing.assert_allclose(t.cam_orig, camera.orig_cam(t.cam_crop, t.bbox, w, h), rtol=1e-5)
        expected = camera.root_translation(t.cam_crop, t.bbox, cam["focal_px"], cam["cx"], cam["cy"])
        np.testing.assert_allclose(t.extra["transl_raw"], expected, rtol=1e-4)
        assert np.all(expected[:, 2] > 0) and t.extra["pose_raw"].shape == t.pose.shape
        np.testing.assert_allclose(t.times, t.frames / 30.0, atol=2e-3)
        good = t.detected & (t.confidence >= 0.5)
        np.testing.assert_allclose(t.betas_track, np.median(t.betas[good], axis=0), atol=1e-6)
        # joints2d are the 1.1-scaled crop projection: inside the (scaled) box around its centre.
        half = 1.1 * t.bbox[:, None, 2] / 2
        assert np.all(np.abs(t.joints2d - t.bbox[:, None, :2]) <= half[..., None] * 1.5)


def test_manifest_records_settings_versions_and_hashes(ok_run, vibe_data, clips):
    _, out = ok_run
    meta = mf.read_motion(out).meta
    man = meta["manifest"]
    assert man["backend"] == "vibe" and man["device"] == "cpu" and man["precision"] == "fp32"
    assert man["settings"]["min_frames"] == 5 and man["settings"]["batch_size"] == 8
    from vibe_blender.core.vibe_data import sha256_file

    assert man["checkpoints"]["vibe_model_wo_3dpw.pth.tar"] == sha256_file(
        vibe_data / "vibe_model_wo_3dpw.pth.tar")
    assert meta["video"]["sha256"] == sha256_file(clips["short"])
    assert {"python", "torch", "numpy", "engine_version"} <= set(man)
    assert meta["joints"]["set"] == "spin49" and len(meta["joints"]["names"]) == 49


def test_inspect_json_prints_exactly_one_object_and_the_table_reads(ok_run):
    _, out = ok_run
    proc = subprocess.run([sys.executable, "-m", "vibe_engine", "inspect", str(out), "--json"],
                          capture_output=True, text=True, env=_env(None), timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["video"]["frames"] == SHORT_FRAMES and info["video"]["width"] == 884
    (track,) = info["tracks"]
    assert {"id", "frames", "first", "last"} <= set(track)
    table = subprocess.run([sys.executable, "-m", "vibe_engine", "inspect", str(out)],
                           capture_output=True, text=True, env=_env(None), timeout=120)
    assert table.returncode == 0 and f"{track['id']:>5} {track['frames']:>7}" in table.stdout
    world = mf.read_motion(out).meta["world"]
    assert info["world"]["ground"] == (world["world_from_camera"] is not None)
    assert info["world"]["camera_height_m"] == world.get("camera_height_m")
    assert info["world"]["up_source"] == world.get("up_source")
    assert table.stdout.strip().splitlines()[-1].startswith(f"world: camera {info['world']['camera_motion']}, ")


def test_inspect_of_a_bad_file_exits_4_with_one_line(tmp_path):
    bad = tmp_path / "x.motion.npz"
    bad.write_bytes(b"junk")
    proc = subprocess.run([sys.executable, "-m", "vibe_engine", "inspect", str(bad), "--json"],
                          capture_output=True, text=True, env=_env(None), timeout=120)
    assert proc.returncode == 4 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and str(bad) in proc.stderr


def test_doctor_reports_model_files_with_sizes_and_hashes(vibe_data):
    engine = run_engine(["doctor", "--vibe-data", str(vibe_data)], require_result=False)
    assert engine.rc == 0 and engine.status == "ok"
    (report,) = engine.of("report")
    files = {f["role"]: f for f in report["data"]["files"]}
    vibe = vibe_data / "vibe_model_wo_3dpw.pth.tar"
    assert files["vibe_checkpoint"]["bytes"] == vibe.stat().st_size
    assert len(files["spin_checkpoint"]["sha256"]) == 64 and report["data"]["vibe_ready"]
    assert report["data"]["blazepose_ready"] and {"person_detector", "pose_landmarks", "standin_body"} <= set(files)
    assert {w["code"] for w in engine.of("warning")} == {"OPTIONAL_FILE_MISSING"}
    assert "VIBE backend: ready" in engine.stderr


def test_doctor_with_a_broken_data_folder_names_the_missing_file(tmp_path):
    engine = run_engine(["doctor", "--vibe-data", str(tmp_path)], require_result=False)
    assert engine.rc == 4 and engine.error["code"] == "MODEL_MISSING"
    assert "spin_model_checkpoint.pth.tar" in engine.error["message"]


# ------------------------------------------------------------------------------- usage & input


def test_usage_error_exits_2_with_one_line_and_a_protocol_error(tmp_path):
    engine = run_engine(["run", "--device", "tpu"])
    assert engine.rc == 2 and engine.error["code"] == "USAGE"
    assert "--device" in engine.error["message"]
    assert len(engine.stderr.strip().splitlines()) == 1
    proc = subprocess.run([sys.executable, "-m", "vibe_engine", "frobnicate"], capture_output=True,
                          text=True, env=_env(None), timeout=120)
    assert proc.returncode == 2 and proc.stdout == "" and "frobnicate" in proc.stderr


def test_without_vibe_files_the_default_blazepose_backend_runs_with_the_standin_body(clips, tmp_path):
    out = tmp_path / "o.motion.npz"
    engine = run_engine(["run", str(clips["short"]), "--out", str(out), *COMMON])
    assert engine.rc == 0, engine.stderr[-2000:]
    assert engine.stages == list(P.STAGES)
    motion = mf.read_motion(out)
    meta = motion.meta
    assert meta["manifest"]["backend"] == "blazepose" and meta["body"]["kind"] == "standin"
    assert meta["joints"]["set"] == "blazepose33" and len(meta["joints"]["names"]) == 33
    assert {"pose_detection.tflite", "pose_landmark_full.tflite", "standin_smpl.npz"} == set(
        meta["manifest"]["checkpoints"])
    cam = meta["camera"]
    (track,) = motion.tracks
    assert track.joints3d.shape == (SHORT_FRAMES, 33, 3) and track.detected.any()
    projected = camera.project_pinhole(track.joints3d + track.transl[:, None],  # the final pose's joints
                                       cam["focal_px"], cam["cx"], cam["cy"])
    np.testing.assert_allclose(track.joints2d, projected, atol=0.05)
    assert track.extra["joints3d_raw"].shape == (SHORT_FRAMES, 33, 3)  # the raw fit's, kept


def test_body_model_without_vibe_files_is_refused(clips, tmp_path):
    engine = run_engine(["run", str(clips["short"]), "--out", str(tmp_path / "o.npz"),
                         "--body-model", str(clips["short"])])
    assert engine.rc == 4 and engine.error["code"] == "MODEL_INVALID"
    assert "--vibe-data" in engine.error["message"] and leftovers(tmp_path) == []


def test_data_folder_missing_files_names_them(clips, tmp_path, vibe_data):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "vibe_model_wo_3dpw.pth.tar").symlink_to(vibe_data / "vibe_model_wo_3dpw.pth.tar")
    engine = run_engine(["run", str(clips["short"]), "--out", str(tmp_path / "o.npz"),
                         "--vibe-data", str(partial)])
    assert engine.rc == 4 and engine.error["code"] == "MODEL_MISSING"
    assert "spin_model_checkpoint.pth.tar" in engine.error["message"]
    assert "vibe_model_wo_3dpw" not in engine.error["message"].split("lacks")[1]


@pytest.mark.parametrize("clip,code,words", [
    ("missing", "VIDEO_UNREADABLE", "not found"),
    ("empty", "VIDEO_UNREADABLE", "empty"),
    ("text", "VIDEO_UNREADABLE", "notes.mp4"),
    ("truncated", "VIDEO_UNREADABLE", "truncated.mp4"),
    ("zero_frames", "VIDEO_UNREADABLE", "zero.mp4"),
    ("blank", "NO_PERSON", "no person"),
])
def test_bad_videos_exit_4_with_a_message_and_no_file(clip, code, words, clips, vibe_data, tmp_path):
    video = clips.get(clip, tmp_path / "nowhere.mp4")
    outdir = tmp_path / "out"
    outdir.mkdir()
    engine = run_engine(_run_args(video, outdir / "o.motion.npz", vibe_data))
    assert engine.rc == 4, engine.stderr[-2000:]
    assert engine.error["code"] == code and words in engine.error["message"]
    assert "\n" not in engine.error["message"] and leftovers(outdir) == []


def test_video_cut_in_its_data_runs_on_the_decodable_frames_with_a_warning(clips, vibe_data, tmp_path):
    out = tmp_path / "o.motion.npz"
    engine = run_engine(_run_args(clips["cut_data"], out, vibe_data, "--no-smooth", "--min-frames", "2"))
    assert engine.rc == 0, engine.stderr[-2000:]
    (warning,) = [w for w in engine.of("warning") if w["code"] == "VIDEO"]
    assert "truncated" in warning["message"]
    (result,) = engine.of("result")
    assert 0 < result["frames"] < SHORT_FRAMES
    assert mf.read_motion(out).meta["video"]["frames"] == result["frames"]


def test_person_in_too_few_frames_is_no_person_with_the_min_frames_hint(clips, vibe_data, tmp_path):
    engine = run_engine(["run", str(clips["short"]), "--out", str(tmp_path / "o.npz"), "--vibe-data",
                         str(vibe_data), "--min-frames", str(SHORT_FRAMES + 1)])
    assert engine.rc == 4 and engine.error["code"] == "NO_PERSON"
    assert "--min-frames" in engine.error["message"]
    assert "SHORT_TRACK_DROPPED" in {w["code"] for w in engine.of("warning")}
    assert leftovers(tmp_path) == []


def test_foreign_and_unreadable_checkpoints_exit_4(clips, tmp_path, vibe_data):
    import torch

    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "foreign.pth.tar")
    (tmp_path / "garbage.pth.tar").write_bytes(os.urandom(4096))
    spin = vibe_data / "spin_model_checkpoint.pth.tar"
    for name in ("foreign.pth.tar", "garbage.pth.tar"):
        outdir = tmp_path / f"out_{name}"
        outdir.mkdir()
        engine = run_engine(["run", str(clips["short"]), "--out", str(outdir / "o.npz"),
                             "--vibe-checkpoint", str(tmp_path / name), "--spin-checkpoint", str(spin)])
        assert engine.rc == 4 and engine.error["code"].startswith("MODEL"), engine.stderr[-2000:]
        assert name in engine.error["message"] and leftovers(outdir) == []
        assert engine.stages == ["decode"]


@pytest.mark.parametrize("where", ["missing_folder", "is_folder", "no_write_permission"])
def test_unwritable_output_fails_before_any_heavy_work(where, clips, vibe_data, tmp_path):
    # /proc refuses new files even to root, unlike a chmod-ed folder.
    target = {"missing_folder": tmp_path / "no" / "such" / "o.npz", "is_folder": tmp_path,
              "no_write_permission": Path("/proc/vibe-test.motion.npz")}[where]
    engine = run_engine(_run_args(clips["short"], target, vibe_data))
    assert engine.rc == 4 and engine.error["code"] == "OUTPUT_UNWRITABLE"
    assert engine.stages == ["decode"] and "--out" in engine.error["message"]
    assert not target.is_file()


def test_boxes_file_with_ids_replaces_the_detector(clips, vibe_data, tmp_path):
    man = [250.0, 10.0, 400.0, 262.0]  # x1, y1, x2, y2 (half-size demo frame): w 150, h 252
    entries = [{"frame": f, "box": man, "score": 0.9, "track_id": 7} for f in range(SHORT_FRAMES) if f != 5]
    entries += [{"frame": f, "box": [600, 200, 700, 400], "track_id": 9} for f in range(3)]
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps(entries))
    out = tmp_path / "o.motion.npz"
    engine = run_engine(["run", str(clips["short"]), "--out", str(out), "--vibe-data", str(vibe_data),
                         "--boxes", str(boxes), "--min-frames", "5", "--no-smooth"])
    assert engine.rc == 0, engine.stderr[-2000:]
    assert [w["code"] for w in engine.of("warning")].count("SHORT_TRACK_DROPPED") == 1
    (track,) = mf.read_motion(out).tracks
    np.testing.assert_array_equal(track.frames, np.arange(SHORT_FRAMES))
    np.testing.assert_allclose(track.bbox, np.tile([325.0, 136.0, 252.0, 252.0], (SHORT_FRAMES, 1)))
    assert track.detected.tolist() == [f != 5 for f in range(SHORT_FRAMES)]
    np.testing.assert_allclose(track.confidence, np.where(track.detected, 0.9, 0.0), atol=1e-6)


def test_bad_boxes_file_fails_before_any_heavy_work(clips, vibe_data, tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("frame,x1,y1,x2,y2,score\n0,1,2,30,40,0.5\n1,1,2,oops,40,0.5\n")
    engine = run_engine(_run_args(clips["short"], tmp_path / "o.npz", vibe_data, "--boxes", str(boxes)))
    assert engine.rc == 4 and engine.error["code"] == "BAD_INPUT" and engine.stages == ["decode"]
    assert "boxes.csv" in engine.error["message"] and leftovers(tmp_path) == ["boxes.csv"]


# ------------------------------------------------------------------------------- cancel & OOM


@pytest.mark.parametrize("stage", P.STAGES)
def test_cancel_in_each_stage_exits_3_and_leaves_nothing(stage, clips, vibe_data, tmp_path):
    engine = run_engine(_run_args(clips["short"], tmp_path / "o.motion.npz", vibe_data),
                        env={"VIBE_ENGINE_PAUSE_AT": stage}, cancel_on_pause="line")
    assert engine.rc == 3, engine.stderr[-2000:]
    assert engine.status == "cancelled" and engine.stages[-1] == stage
    assert engine.of("error") == [] and leftovers(tmp_path) == []


def test_closing_stdin_cancels(clips, vibe_data, tmp_path):
    engine = run_engine(_run_args(clips["short"], tmp_path / "o.motion.npz", vibe_data),
                        env={"VIBE_ENGINE_PAUSE_AT": "features"}, cancel_on_pause="eof")
    assert engine.rc == 3 and engine.status == "cancelled" and leftovers(tmp_path) == []
    assert "stdin closed" in engine.stderr


def test_out_of_memory_halves_the_batch_and_gives_the_same_result(ok_run, clips, vibe_data, tmp_path):
    out = tmp_path / "o.motion.npz"
    engine = run_engine(_run_args(clips["short"], out, vibe_data),
                        env={"VIBE_ENGINE_FAULT_OOM_ABOVE": "3"})
    assert engine.rc == 0, engine.stderr[-2000:]
    retries = [w["message"] for w in engine.of("warning") if w["code"] == "OOM_RETRY"]
    assert retries == ["out of memory with 8 crops per batch; retrying with 4",
                       "out of memory with 4 crops per batch; retrying with 2"]
    ref, got = mf.read_motion(ok_run[1]).tracks[0], mf.read_motion(out).tracks[0]
    np.testing.assert_array_equal(ref.frames, got.frames)
    # The network output (before post-processing, whose contact decisions can flip on 1e-6
    # differences) must not depend on how the crops were batched.
    np.testing.assert_allclose(got.extra["pose_raw"], ref.extra["pose_raw"], atol=1e-4)
    np.testing.assert_allclose(got.cam_crop, ref.cam_crop, atol=1e-4)
    np.testing.assert_allclose(got.extra["transl_raw"], ref.extra["transl_raw"], rtol=1e-3)


def test_out_of_memory_at_batch_one_is_a_clear_error(clips, vibe_data, tmp_path):
    engine = run_engine(_run_args(clips["short"], tmp_path / "o.motion.npz", vibe_data),
                        env={"VIBE_ENGINE_FAULT_OOM_ABOVE": "0"})
    assert engine.rc == 1 and engine.error["code"] == "OUT_OF_MEMORY"
    assert "even with one crop per batch" in engine.error["message"] and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------- the add-on's runner


def test_the_addon_runner_drives_the_real_engine_to_a_result(clips, tmp_path):
    from vibe_blender.runner.engine_cmd import EngineSpec, run_argv
    from vibe_blender.runner.job import Job, JobState

    out = tmp_path / "o.motion.npz"
    job = Job(run_argv(EngineSpec(python=sys.executable), clips["short"], out) + ["--min-frames", "5"],
              result_path=out, env=_env(None))
    assert job.run_blocking() is JobState.DONE, (job.error, job.error_detail)
    assert job.result["path"] == str(out) and job.stage == "write" and job.garbage_lines == []
    assert mf.read_motion(out).meta["manifest"]["backend"] == "blazepose"


def test_the_addon_runner_cancels_the_real_engine_and_no_file_is_left(clips, tmp_path):
    from vibe_blender.runner.engine_cmd import EngineSpec, run_argv
    from vibe_blender.runner.job import Job, JobState

    out = tmp_path / "o.motion.npz"
    job = Job(run_argv(EngineSpec(python=sys.executable), clips["short"], out) + ["--min-frames", "5"],
              result_path=out, env=_env({"VIBE_ENGINE_PAUSE_AT": "features"}))

    def cancel_at_pause(j) -> None:
        if any("paused" in w for w in j.warnings):
            j.request_cancel()

    assert job.run_blocking(cancel_at_pause) is JobState.CANCELLED
    assert job.exit_code == 3 and leftovers(tmp_path) == []


def test_cli_sets_thread_policies_before_torch_unless_given():
    code = ("import os, sys, vibe_engine.cli; "
            "print(os.environ['OMP_WAIT_POLICY'], os.environ['OPENBLAS_NUM_THREADS'], 'torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=dict(env, PYTHONPATH=str(media.REPO)),
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["PASSIVE", "1", "False"]
    given = dict(env, PYTHONPATH=str(media.REPO), OMP_WAIT_POLICY="ACTIVE", OPENBLAS_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", code], env=given, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["ACTIVE", "2", "False"]
