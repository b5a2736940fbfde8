"""Camera match in real Blender: Blender's own projection equals the motion file's OpenCV pinhole."""
import math

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.fixtures.media import make_testsrc_clip  # noqa: E402
from vibe_blender.bl import camera as blcam  # noqa: E402
from vibe_blender.core import camera_match as cm  # noqa: E402
from vibe_blender.core.errors import MotionFileError, UserInputError  # noqa: E402

MAX_PIXEL_ERROR = 0.01  # px
MAX_OVERLAY_ERROR_PX = 0.01  # px, bone heads vs numpy SMPL joints (measured ≤ 0.0013 px)
VIDEO_FRAMES = 12


@pytest.fixture(autouse=True)
def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 12-frame 160×90 H.264 clip made with the ffmpeg CLI (installed by `make apt`)."""
    path = make_testsrc_clip(tmp_path_factory.mktemp("video") / "clip.mp4", VIDEO_FRAMES)
    return str(path)


def _rotation(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def _meta(width, height, world=None):
    return {"camera": {"model": "pinhole", "focal_px": 1100.0, "cx": 0.43 * width, "cy": 0.58 * height,
                       "width": width, "height": height, "source": "user"},
            "world": {"world_from_camera": world}}


def _tilted_world():
    """A camera 1.6 m above the ground, pitched down 15° and yawed 20° (OpenCV → z-up world)."""
    m = np.eye(4)
    base = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
    m[:3, :3] = _rotation([0, 0, 1], math.radians(20)) @ base @ _rotation([1, 0, 0], math.radians(-15))
    m[:3, 3] = [0.3, -4.0, 1.6]
    return m


@pytest.mark.parametrize("size", [(1280, 720), (720, 1280)], ids=["landscape", "portrait"])
@pytest.mark.parametrize("world", [None, "tilted"])
def test_blender_projection_matches_pinhole(size, world):
    wfc = _tilted_world() if world else None
    meta = _meta(*size, None if wfc is None else wfc.tolist())
    cam = blcam.create_camera(meta)
    scene = bpy.context.scene
    assert scene.camera == cam
    assert (scene.render.resolution_x, scene.render.resolution_y) == size
    rng = np.random.default_rng(7)
    pts_cv = np.column_stack([rng.uniform(-1.5, 1.5, (40, 2)), rng.uniform(2.0, 9.0, 40)])
    wfc = np.eye(4) if wfc is None else wfc
    if world is None:
        wfc[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
    pts_world = pts_cv @ wfc[:3, :3].T + wfc[:3, 3]
    expected = cm.PinholeCamera.from_meta(meta).project(pts_cv)
    got = blcam.project_world_points(scene, cam, pts_world)
    assert np.abs(got - expected).max() < MAX_PIXEL_ERROR
    assert (np.abs(expected - [0.43 * size[0], 0.58 * size[1]]) > 50).any()  # points spread over the image


def test_video_is_camera_background(video):
    cam = blcam.create_camera(_meta(160, 90), video_path=video, frame_start=5)
    data = cam.data
    assert data.show_background_images and len(data.background_images) == 1
    bg = data.background_images[0]
    assert bg.source == "MOVIE_CLIP" and bg.clip is not None
    assert bg.clip.frame_start == 5 and bg.clip.frame_duration == VIDEO_FRAMES
    assert tuple(bg.clip.size) == (160, 90)


def test_image_movie_fallback_background(video):
    image = bpy.data.images.load(video)
    data = bpy.data.cameras.new("c")
    bg = blcam.attach_footage(data, image, frame_start=3)
    assert bg.source == "IMAGE" and bg.image == image and image.source == "MOVIE"
    assert bg.image_user.frame_start == 3 and bg.image_user.frame_duration == VIDEO_FRAMES


def test_bad_video_leaves_scene_untouched(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    for path, message in [(bad, "cannot decode"), (tmp_path / "missing.mp4", "not found")]:
        with pytest.raises(UserInputError, match=message):
            blcam.create_camera(_meta(160, 90), video_path=str(path))
    assert len(bpy.data.objects) == 0 and len(bpy.data.cameras) == 0
    assert len(bpy.data.movieclips) == 0 and len(bpy.data.images) == 0


def test_bad_camera_header_raises_before_creating():
    with pytest.raises(MotionFileError, match="meta.camera"):
        blcam.create_camera({"camera": {"focal_px": 0, "cx": 1, "cy": 1, "width": 2, "height": 2}})
    assert len(bpy.data.objects) == 0


@pytest.mark.parametrize("world", [None, "tilted"])
def test_character_overlays_the_person_in_camera_view(world):
    """Baked joints seen through the matched camera land on the engine's 2D projection of SMPL joints."""
    from tests.fixtures.motion import make_motion
    from vibe_blender.bl.bake import bake_track
    from vibe_blender.bl.character import build_character
    from vibe_blender.core.body import lbs_with_joints
    from vibe_blender.core.motion_file import SMPL_JOINT_NAMES

    motion = make_motion(num_tracks=1, num_frames=6, seed=11)
    motion.meta["camera"].update(cx=600.0, cy=390.0)
    motion.meta["world"]["world_from_camera"] = None if world is None else _tilted_world().tolist()
    track = motion.tracks[0]
    arm = build_character(motion, track.id)
    bake_track(arm, motion, track.id, root_motion="world", fps=30)
    cam = blcam.create_camera(motion.meta)
    _, joints_cam = lbs_with_joints(motion.body, track.betas_track, track.pose, track.transl)
    expected = cm.PinholeCamera.from_meta(motion.meta).project(joints_cam)  # (T, 24, 2)
    scene = bpy.context.scene
    worst = 0.0
    for i in range(len(track.frames)):
        scene.frame_set(1 + i)
        heads = [arm.matrix_world @ arm.pose.bones[n].head for n in SMPL_JOINT_NAMES]
        got = blcam.project_world_points(scene, cam, np.array([tuple(h) for h in heads]))
        worst = max(worst, np.abs(got - expected[i]).max())
    assert worst < MAX_OVERLAY_ERROR_PX


def test_animated_camera_reprojects_the_baked_character_on_a_moving_camera():
    """Moving camera: poses in the frame-0 camera, a per-frame camera path; through the animated
    Blender camera the baked character lands on each frame's pinhole projection within 1 px."""
    from tests.fixtures.motion import make_motion
    from vibe_blender.bl.bake import bake_track
    from vibe_blender.bl.character import build_character
    from vibe_blender.core.body import lbs_with_joints
    from vibe_blender.core.frames import world_from_camera
    from vibe_blender.core.motion_file import SMPL_JOINT_NAMES

    motion = make_motion(num_tracks=1, num_frames=8, seed=12)
    motion.meta["world"] = {"world_from_camera": _tilted_world().tolist(), "camera_motion": "moving"}
    n = motion.meta["video"]["frames"]
    t = np.linspace(0, 1, n)
    ref = np.repeat(np.eye(4)[None], n, 0)  # ref_from_camera: a pan of 10° and a tilt of 4°
    ref[:, :3, :3] = [_rotation([0, 1, 0], math.radians(10) * s) @ _rotation([1, 0, 0], math.radians(4) * s)
                      for s in np.sin(np.pi * t)]
    motion.camera = {"world_from_camera": world_from_camera(motion.meta) @ ref}
    track = motion.tracks[0]
    arm = build_character(motion, track.id)
    bake_track(arm, motion, track.id, root_motion="world", fps=30)
    cam = blcam.create_camera(motion.meta, motion=motion)
    _, joints_ref = lbs_with_joints(motion.body, track.betas_track, track.pose, track.transl)
    r = ref[track.frames, :3, :3]
    joints_cam = np.einsum("tji,tnj->tni", r, joints_ref)  # each frame's own camera
    expected = cm.PinholeCamera.from_meta(motion.meta).project(joints_cam)
    scene = bpy.context.scene
    worst, moved = 0.0, 0.0
    for i, frame in enumerate(track.frames):
        scene.frame_set(1 + int(frame))
        heads = [arm.matrix_world @ arm.pose.bones[name].head for name in SMPL_JOINT_NAMES]
        got = blcam.project_world_points(scene, cam, np.array([tuple(h) for h in heads]))
        worst = max(worst, np.abs(got - expected[i]).max())
        static = cm.PinholeCamera.from_meta(motion.meta).project(joints_ref[i])
        moved = max(moved, np.abs(static - expected[i]).max())
    assert moved > 50  # the camera motion matters (pixels)
    assert worst < 1.0  # px
