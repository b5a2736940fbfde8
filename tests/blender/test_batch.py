"""tools/vibe_batch.py run as plain Python with the bpy wheel (subprocess): outputs, report, exit codes."""
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

from tests.fixtures.media import make_testsrc_clip  # noqa: E402
from tests.fixtures.motion import make_motion  # noqa: E402
from vibe_blender.core.motion_file import write_motion  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "vibe_batch.py"
TIMEOUT_S = 300
NUM_FRAMES = 12
VIDEO_FPS = 30.0


def run_batch(*args, cwd=None):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    """One batch over a folder: a 2-person motion file, a 1-person one and a corrupt one."""
    root = tmp_path_factory.mktemp("batch")
    inputs = root / "in"
    inputs.mkdir()
    write_motion(inputs / "duo.motion.npz", make_motion(num_tracks=2, num_frames=NUM_FRAMES, seed=4))
    write_motion(inputs / "solo.motion.npz", make_motion(num_tracks=1, num_frames=NUM_FRAMES, seed=5))
    (inputs / "broken.motion.npz").write_bytes(b"not an npz archive")
    out = root / "out"
    done = run_batch(inputs, "--motion", "--out", out, "--formats", "fbx,bvh,glb", "--preset", "unity")
    report = json.loads((out / "vibe_batch_report.json").read_text())
    return done, report, out


def _entries(report):
    return {Path(e["input"]).name: e for e in report["inputs"]}


def test_exit_code_one_when_an_input_fails(batch_run):
    done, report, _ = batch_run
    assert done.returncode == 1, done.stderr[-3000:]
    assert (report["ok"], report["failed"]) == (2, 1)
    broken = next(e for e in report["inputs"] if e["input"].endswith("broken.motion.npz"))
    assert broken["status"] == "error" and broken["error"]["type"] == "MotionFileError"
    assert "not a motion file" in broken["error"]["message"] and broken["people"] == []


def test_outputs_per_person(batch_run):
    _, report, out = batch_run
    entries = _entries(report)
    assert [p["id"] for p in entries["duo.motion.npz"]["people"]] == [1, 2]
    assert [p["id"] for p in entries["solo.motion.npz"]["people"]] == [1]
    for name, stem in (("duo.motion.npz", "duo"), ("solo.motion.npz", "solo")):
        entry = entries[name]
        assert entry["status"] == "ok" and entry["error"] is None
        assert entry["warnings"] == [f"video {Path(entry['input']).parent / 'clip.mp4'} not found: "
                                     "camera without background"]
        assert entry["blend"] == str(out / stem / f"{stem}.blend")
        for person in entry["people"]:
            assert person["frames"] == NUM_FRAMES
            assert set(person["files"]) == {"fbx", "bvh", "glb"}
            for fmt, path in person["files"].items():
                assert path == str(out / stem / f"{stem}_person{person['id']}.{fmt}")
        for path in entry["files"]:
            assert os.path.getsize(path) > 0
    assert sorted(os.listdir(out)) == ["duo", "solo", "vibe_batch_report.json"]  # nothing for the broken one
    assert not [n for d in ("duo", "solo") for n in os.listdir(out / d) if ".tmp" in n]


def test_bvh_timing_follows_the_video(batch_run):
    _, report, _ = batch_run
    person = _entries(report)["duo.motion.npz"]["people"][0]
    lines = Path(person["files"]["bvh"]).read_text().splitlines()
    assert f"Frames: {NUM_FRAMES}" in lines and f"Frame Time: {1 / VIDEO_FPS:.6f}" in lines


def test_blend_holds_characters_camera_and_fps(batch_run):
    _, report, out = batch_run
    bpy.ops.wm.open_mainfile(filepath=str(out / "duo" / "duo.blend"))
    try:
        scene = bpy.context.scene
        armatures = sorted(o.name for o in bpy.data.objects if o.type == "ARMATURE")
        assert armatures == ["VIBE_1", "VIBE_2"]
        assert scene.camera is not None and scene.camera.name == _entries(report)["duo.motion.npz"]["camera"]
        assert scene.render.fps / scene.render.fps_base == pytest.approx(VIDEO_FPS)
        assert (scene.render.resolution_x, scene.render.resolution_y) == (1280, 720)
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)


def test_report_settings(batch_run):
    _, report, _ = batch_run
    assert report["settings"]["formats"] == ["fbx", "bvh", "glb"] and report["settings"]["preset"] == "unity"
    assert report["blender"] == bpy.app.version_string


def test_single_file_all_ok(tmp_path):
    src = tmp_path / "one.motion.npz"
    write_motion(src, make_motion(num_tracks=1, num_frames=NUM_FRAMES, seed=6))
    done = run_batch(src, "--motion", "--formats", "bvh", "--no-blend", "--root-motion", "in_place",
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "vibe_out" / "vibe_batch_report.json").read_text())
    assert report["ok"] == 1 and report["failed"] == 0
    assert sorted(os.listdir(tmp_path / "vibe_out" / "one")) == ["one_person1.bvh"]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 12-frame 160×90 H.264 clip made with the ffmpeg CLI (installed by `make apt`)."""
    path = make_testsrc_clip(tmp_path_factory.mktemp("video") / "clip.mp4", NUM_FRAMES)
    return path


def test_video_through_the_engine_protocol(tmp_path, video):
    """The video path end to end with the stdlib fake engine (real protocol, real motion file)."""
    result = tmp_path / "result.motion.npz"
    write_motion(result, make_motion(num_tracks=1, num_frames=NUM_FRAMES, seed=7))
    command = shlex.join([sys.executable, str(REPO / "tests" / "fakes" / "fake_engine.py"),
                          "--result-from", str(result)])
    out = tmp_path / "out"
    done = run_batch(video, "--out", out, "--engine-command", command, "--formats", "fbx")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    entry = json.loads((out / "vibe_batch_report.json").read_text())["inputs"][0]
    # the api's report callback hands the engine's warnings to the batch report
    assert entry["kind"] == "video" and entry["warnings"] == ["engine: Track 7 dropped: shorter than 8 frames"]
    assert entry["motion_file"] == str(out / "clip" / "clip.motion.npz")
    assert os.path.isfile(entry["motion_file"])
    assert [p["id"] for p in entry["people"]] == [1] and entry["people"][0]["frames"] == NUM_FRAMES
    assert "engine: detect" in done.stdout  # stage progress printed
    bpy.ops.wm.open_mainfile(filepath=entry["blend"])
    try:
        bg = bpy.context.scene.camera.data.background_images[0]
        assert bg.source == "MOVIE_CLIP" and bg.clip.frame_duration == NUM_FRAMES
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)


def test_video_without_engine_fails_with_reason(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 64)
    done = run_batch(video, "--out", tmp_path / "out", "--engine-python", tmp_path / "no-python")
    assert done.returncode == 1, done.stderr[-3000:]
    entry = json.loads((tmp_path / "out" / "vibe_batch_report.json").read_text())["inputs"][0]
    assert entry["status"] == "error" and "no-python" in entry["error"]["message"]


@pytest.mark.parametrize("args, message", [
    ((), "the following arguments are required: input"),
    (("{in}", "--motion", "--formats", "fbx,obj"), "unknown export format 'obj'"),
    (("{in}", "--motion", "--preset", "godot"), "unknown FBX preset 'godot'"),
    (("{missing}", "--motion"), "input not found"),
    (("{empty}", "--motion"), "no motion files"),
    (("{in}", "--motion", "--tracks", "one"), "--tracks must be"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    src = tmp_path / "a.motion.npz"
    src.write_bytes(b"")
    (tmp_path / "empty").mkdir()
    names = {"in": src, "missing": tmp_path / "nope.npz", "empty": tmp_path / "empty"}
    done = run_batch(*[a.format(**names) for a in args], "--out", tmp_path / "out")
    assert done.returncode == 2
    assert message in done.stderr and "usage: vibe_batch.py" in done.stderr
    assert not (tmp_path / "out").exists()


def test_arguments_after_double_dash(tmp_path):
    """As inside Blender (`blender -b -P vibe_batch.py -- ARGS`): only arguments after `--` count."""
    done = run_batch("--ignored-blender-flag", "--", tmp_path / "nope.npz", "--motion")
    assert done.returncode == 2 and "input not found" in done.stderr
