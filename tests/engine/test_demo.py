"""tools/demo.py (`make demo`) on a tiny known-answer input, plus its pure compositing/metric pieces.

The end-to-end case skips the engine (``--motion``): a synthetic motion file whose engine 2D joints
and tracker boxes are the exact projections of its own SMPL joints and vertices, and a short
generated clip. Through the real bpy wheel (character, bake, matched camera, Workbench render),
the demo must then measure ~0 px joint error and IoU ~1, and its previews must be the video
exactly where the rendered layer is transparent.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.media import pattern_frame, write_cv2_clip
from tests.fixtures.motion import make_body, make_track
from vibe_blender.core import motion_file as mf
from vibe_blender.core.body import lbs_with_joints

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import demo  # noqa: E402
import demo_preview  # noqa: E402
import demo_scene  # noqa: E402

WIDTH, HEIGHT, FOCAL, FPS = 160, 120, 150.0, 30.0
CLIP_FRAMES = 12
TRACKS = {1: (0, 12, -0.6), 2: (5, 7, 0.7)}  # id: (first frame, frames, lateral offset m)
TIMEOUT_S = 300
MAX_JOINT_ERROR_PX = 0.05  # float32 bone heads at 4 m: ~1e-3 px expected
MAX_BOX_ERROR_PX = 1.5  # rendered silhouette (antialiased) vs projected vertices


def _tilted_world() -> np.ndarray:
    """A camera 1.6 m above the ground, pitched 10° down: OpenCV camera → z-up world."""
    pitch = np.radians(10.0)
    level = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # (x, z, -y)
    tilt = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    m = np.eye(4)
    m[:3, :3] = tilt.T @ level
    m[:3, 3] = (0.0, 0.0, 1.6)
    return m


def _project(points: np.ndarray) -> np.ndarray:
    return np.stack([FOCAL * points[..., 0] / points[..., 2] + WIDTH / 2,
                     FOCAL * points[..., 1] / points[..., 2] + HEIGHT / 2], axis=-1)


def _known_track(body: mf.BodyModel, track_id: int) -> tuple[mf.Track, np.ndarray]:
    """A track whose joints2d/bbox are exact projections; also its projected vertex boxes (T,4) xyxy."""
    first, count, offset = TRACKS[track_id]
    track = make_track(track_id, count, body.num_betas, first=first, seed=track_id, max_angle=0.3, fps=FPS)
    track.pose[:, 0] = (np.pi, 0.0, 0.0)  # upright in the OpenCV camera frame (SMPL y up → camera y down)
    track.transl = np.stack([offset + 0.1 * np.arange(count), np.full(count, 0.3), np.full(count, 4.0)], 1)
    verts, joints = lbs_with_joints(body, track.betas_track, track.pose, track.transl)
    j2d = np.zeros((count, 33, 2))
    for engine_j, smpl_j in demo_scene.JOINT_PAIRS["blazepose33"]:
        j2d[:, engine_j] = _project(joints[:, smpl_j])
    track.joints2d, track.joints3d = j2d.astype(np.float32), np.zeros((count, 33, 3), np.float32)
    uv = _project(verts)
    boxes = np.concatenate([uv.min(1), uv.max(1)], axis=1)
    track.bbox = demo_scene.square_boxes(boxes).astype(np.float32)
    track.times = track.frames / FPS
    return track, boxes


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One demo run on the synthetic motion and clip; returns (process, summary, out, tracks, boxes)."""
    root = tmp_path_factory.mktemp("demo")
    frames = (pattern_frame(i, WIDTH, HEIGHT) for i in range(CLIP_FRAMES))
    clip = write_cv2_clip(root / "clip.mp4", frames, FPS)
    body = make_body(seed=3)
    built = {tid: _known_track(body, tid) for tid in TRACKS}
    meta = mf.new_meta(
        video={"path": str(clip), "sha256": "0" * 64, "width": WIDTH, "height": HEIGHT, "rotation": 0,
               "fps": FPS, "frames": CLIP_FRAMES, "duration": CLIP_FRAMES / FPS, "vfr": False},
        camera={"model": "pinhole", "focal_px": FOCAL, "cx": WIDTH / 2, "cy": HEIGHT / 2,
                "width": WIDTH, "height": HEIGHT, "source": "default"},
        world={"world_from_camera": _tilted_world().tolist()},
        body={"kind": "standin", "name": "synthetic", "source": "file", "num_betas": body.num_betas,
              "licence": "test data"},
        joints={"set": "blazepose33", "names": [f"j{i}" for i in range(33)]},
        manifest={"engine_version": "test", "backend": "blazepose", "device": "cpu", "precision": "fp32",
                  "settings": {}, "checkpoints": {}, "timings_s": {"fit": 1.0}})
    motion_path = root / "known.motion.npz"
    mf.write_motion(motion_path, mf.Motion(meta=meta, body=body, tracks=[t for t, _ in built.values()]))
    out = root / "out"
    done = subprocess.run([sys.executable, str(REPO / "tools" / "demo.py"), "--motion", str(motion_path),
                           "--video", str(clip), "--out", str(out), "--previews", "2", "--render-scale", "1",
                           "--keep-layers", "--no-labels", "--formats", "fbx,bvh"],
                          capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / demo.SUMMARY_NAME).read_text())
    tracks = {tid: t for tid, (t, _) in built.items()}
    return done, summary, out, tracks, {tid: b for tid, (_, b) in built.items()}


def test_characters_land_on_the_engine_joints_and_boxes(demo_run):
    _, summary, _, tracks, _ = demo_run
    people = {p["id"]: p for p in summary["people"]}
    assert sorted(people) == sorted(TRACKS)
    for tid, track in tracks.items():
        p = people[tid]
        assert (p["frames"], p["first"], p["last"]) == (track.num_frames, track.frames[0], track.frames[-1])
        assert p["joint_error_px"]["max"] < MAX_JOINT_ERROR_PX
        assert p["joint_error_px"]["frames"] == track.num_frames
        assert p["box_iou"]["mean"] > 0.99 and p["box_iou"]["fraction_at_least_threshold"] == 1.0
        assert p["box_centre_inside_fraction"] == 1.0 and p["follows_person"] is True


def test_summary_lists_every_file_with_its_size(demo_run):
    done, summary, out, _, _ = demo_run
    names = {Path(f["path"]).name for f in summary["files"]}
    expected = {f"person_{tid}.{fmt}" for tid in TRACKS for fmt in ("fbx", "bvh")}
    assert expected | {"demo.blend", "preview.png", "preview_3.png", "preview_9.png"} <= names
    for f in summary["files"]:
        assert Path(f["path"]).stat().st_size == f["bytes"] > 0
    assert summary["engine"]["ran"] is False and summary["engine"]["backend"] == "blazepose"
    assert summary["preview"]["frames"] == [3, 9] and summary["camera"]["focal_px"] == FOCAL
    assert "person 1: video frames 0-11 (12)" in done.stdout


def test_previews_are_the_video_where_the_layer_is_transparent(demo_run):
    import cv2

    _, summary, out, _, _ = demo_run
    frames = demo_preview.video_frames(Path(summary["inputs"]["video"]), summary["preview"]["frames"])
    for index, video in frames.items():
        layer = demo_preview.read_png(out / f"layer_{index}.png")
        preview = cv2.cvtColor(cv2.imread(str(out / f"preview_{index}.png")), cv2.COLOR_BGR2RGB)
        alpha = layer[..., 3]
        assert (alpha == 0).mean() > 0.5 and (alpha == 255).any()
        np.testing.assert_array_equal(preview[alpha == 0], video[alpha == 0])
        np.testing.assert_array_equal(preview[alpha == 255], layer[..., :3][alpha == 255])
    sheet = cv2.imread(str(out / demo_preview.SHEET_NAME))
    assert sheet.shape == (HEIGHT, 2 * WIDTH, 3)  # 2 previews → 2×1 grid


def test_render_goes_through_the_matched_camera_at_the_right_frame(demo_run):
    """The rendered silhouette's extent matches the known projected vertices of the people present
    at that frame (person 2 starts at frame 5, so frame 3 shows person 1 only)."""
    _, summary, out, tracks, boxes = demo_run
    for index in summary["preview"]["frames"]:
        alpha = demo_preview.read_png(out / f"layer_{index}.png")[..., 3] > 127
        ys, xs = np.nonzero(alpha)
        present = [boxes[tid][np.flatnonzero(t.frames == index)[0]]
                   for tid, t in tracks.items() if index in t.frames]
        expected = np.array([min(b[0] for b in present), min(b[1] for b in present),
                             max(b[2] for b in present), max(b[3] for b in present)])
        got = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
        assert np.abs(got - expected).max() < MAX_BOX_ERROR_PX, (index, got, expected)
    assert min(summary["preview"]["alpha_inside_boxes"]) > 0.97


BLEND_PROBE = """
import json, sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
scene = bpy.context.scene
cams = [o for o in scene.objects if o.type == "CAMERA"]
print(json.dumps({"armatures": sorted(o.name for o in scene.objects if o.type == "ARMATURE"),
                  "cameras": [c.name for c in cams], "active": scene.camera.name,
                  "clips": [bpy.path.abspath(b.clip.filepath) for b in scene.camera.data.background_images],
                  "fps": scene.render.fps / scene.render.fps_base,
                  "range": [scene.frame_start, scene.frame_end],
                  "size": [scene.render.resolution_x, scene.render.resolution_y]}))
"""


def test_blend_has_the_characters_and_one_matched_camera_with_the_video(demo_run):
    _, summary, out, _, _ = demo_run
    probe = subprocess.run([sys.executable, "-c", BLEND_PROBE, str(out / demo.BLEND_NAME)],
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    assert probe.returncode == 0, probe.stderr[-2000:]
    info = json.loads(probe.stdout.strip().splitlines()[-1])
    assert info["armatures"] == ["VIBE_1", "VIBE_2"] and info["cameras"] == [info["active"]]
    assert [Path(c).resolve() for c in info["clips"]] == [Path(summary["inputs"]["video"]).resolve()]
    assert info["fps"] == FPS and info["range"] == [1, CLIP_FRAMES] and info["size"] == [WIDTH, HEIGHT]


def test_composite_keeps_video_where_alpha_is_zero():
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    layer = rng.integers(0, 256, (40, 60, 4), dtype=np.uint8)
    layer[:, :20, 3], layer[:, 20:40, 3], layer[:, 40:, 3] = 0, 255, 128
    out = demo_preview.composite(video, layer)
    np.testing.assert_array_equal(out[:, :20], video[:, :20])
    np.testing.assert_array_equal(out[:, 20:40], layer[:, 20:40, :3])
    half = (128 / 255) * layer[:, 40:, :3] + (127 / 255) * video[:, 40:]
    assert np.abs(out[:, 40:] - half).max() <= 0.5 + 1e-9


def test_composite_resizes_the_video_to_the_layer():
    video = np.zeros((40, 60, 3), np.uint8)
    video[:, 30:] = 200
    out = demo_preview.composite(video, np.zeros((20, 30, 4), np.uint8))
    assert out.shape == (20, 30, 3)
    assert (out[:, :15] == 0).all() and (out[:, 15:] == 200).all()


def test_box_metrics_known_values():
    squares = demo_scene.square_boxes(np.array([[0.0, 0.0, 2.0, 4.0]]))
    np.testing.assert_allclose(squares, [[1.0, 2.0, 4.0, 4.0]])
    a = np.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]])
    b = np.array([[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 2.0, 2.0], [5.0, 5.0, 2.0, 2.0]])
    np.testing.assert_allclose(demo_scene.box_iou(a, b), [1.0, 2.0 / 6.0, 0.0])
    assert demo_preview.preview_frames(0, 11, 2) == [3, 9] and demo_preview.preview_frames(38, 41, 4) == [38, 39, 40, 41]


def test_readme_image_is_the_sheet_small_with_few_colours(tmp_path):
    import cv2

    sheet = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    demo_preview.write_png(tmp_path / "sheet.png", sheet)
    small = demo_preview.write_readme_image(tmp_path / "sheet.png", tmp_path / "readme.png", 40, colours=16)
    rgb = cv2.cvtColor(cv2.imread(str(small)), cv2.COLOR_BGR2RGB)
    assert rgb.shape == (30, 40, 3) and len(np.unique(rgb.reshape(-1, 3), axis=0)) <= 16


def test_engine_progress_reads_a_real_transcript():
    from vibe_blender.runner.engine_process import decode_line
    from vibe_blender.runner.job import Job

    lines = []
    progress = demo.EngineProgress(lines.append, every_s=0.0)
    job = Job(["unused"])
    for line in (REPO / "assets" / "protocol" / "ok.jsonl").read_text().splitlines():
        job.apply(decode_line(line))
        progress(job)
    assert job.result["schema"] == "vibe-mocap-motion/1" and len(job.engine_warnings) == 1
    assert lines[0] == "engine [1/6] decode" and "engine [6/6] write" in lines
    assert "engine   detect: 230/230" in lines and sum(s.startswith("engine warning: ") for s in lines) == 1


def test_missing_video_is_a_one_line_usage_error(tmp_path):
    argv = [sys.executable, str(REPO / "tools" / "demo.py"), "--video", str(tmp_path / "nope.mp4"),
            "--out", str(tmp_path / "out")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == demo.EXIT_USAGE
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("demo: error: --video ")
    assert not (tmp_path / "out").exists()


def test_engine_failure_is_exit_3_with_one_line_and_no_motion_file(tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, str(REPO / "tools" / "demo.py"), "--out", str(out), "--engine-python", "/bin/false"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == demo.EXIT_ENGINE
    assert done.stderr.strip().count("\n") == 0 and "the engine failed: it exited with code 1" in done.stderr
    assert not (out / demo.MOTION_NAME).exists() and not (out / demo.SUMMARY_NAME).exists()
