"""The static-camera world with known answers: focal from container metadata, focal precedence,
focal self-calibration from level body axes, ground of several people, refusal of a bad ground."""
import json
import math
import subprocess

import numpy as np
import pytest

from tests.fixtures.media import ffmpeg_binary, make_testsrc_clip
from vibe_blender.core.rotations import aa_to_matrix
from vibe_engine.world import intrinsics as I
from vibe_engine.world import selfcal
from vibe_engine.postprocess.ground import estimate_ground_tracks

FPS = 30.0
APPLE_FOCAL_KEY = "com.apple.quicktime.camera.focal_length.35mm_equivalent"


def _tagged_copy(src, dst, tags):
    """Copy ``src`` with QuickTime mdta keys (ffmpeg -movflags use_metadata_tags), as phones write."""
    args = [ffmpeg_binary(), "-y", "-loglevel", "error", "-i", str(src), "-c", "copy",
            "-movflags", "use_metadata_tags"]
    for k, v in tags.items():
        args += ["-metadata", f"{k}={v}"]
    subprocess.run([*args, str(dst)], check=True)
    return dst


def _ffprobe_tags(path):
    out = subprocess.run([ffmpeg_binary().replace("ffmpeg", "ffprobe"), "-v", "quiet", "-show_entries",
                          "format_tags", "-of", "json", str(path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["format"]["tags"]


def test_focal_from_quicktime_metadata(tmp_path):
    plain = make_testsrc_clip(tmp_path / "plain.mp4", 5)
    tagged = _tagged_copy(plain, tmp_path / "phone.mov", {APPLE_FOCAL_KEY: "26", "com.apple.quicktime.make": "Apple"})
    assert _ffprobe_tags(tagged)[APPLE_FOCAL_KEY] == "26"  # what ffprobe shows, read here without it
    assert I.metadata_focal_35mm(tagged) == 26.0
    assert I.metadata_focal_35mm(plain) is None
    cam = I.camera_meta(None, tagged, 1920, 1080)
    assert cam["source"] == "metadata"
    assert cam["focal_px"] == pytest.approx(26.0 / math.hypot(36, 24) * math.hypot(1920, 1080), rel=1e-12)


def test_implausible_or_missing_metadata_is_ignored(tmp_path):
    plain = make_testsrc_clip(tmp_path / "plain.mp4", 5)
    bad = _tagged_copy(plain, tmp_path / "bad.mov", {APPLE_FOCAL_KEY: "0.001"})
    assert I.metadata_focal_35mm(bad) is None
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x08moov" + b"\xff" * 40)
    assert I.container_tags(junk) == {} and I.metadata_focal_35mm(tmp_path / "missing.mp4") is None


def test_focal_precedence_user_metadata_default():
    assert I.choose_focal(1234.0, 26.0, 1920, 1080).source == "user"
    assert I.choose_focal(1234.0, 26.0, 1920, 1080).focal_px == 1234.0
    assert I.choose_focal(None, 26.0, 1920, 1080).source == "metadata"
    d = I.choose_focal(None, None, 1080, 1920)
    assert d.source == "default" and d.focal_35mm == I.DEFAULT_FOCAL_35MM
    assert I.focal_35mm_from_px(d.focal_px, 1080, 1920) == pytest.approx(I.DEFAULT_FOCAL_35MM, rel=1e-12)


def _camera(pitch_deg, height):
    """(R camera_from_world, camera centre) of a camera at ``height`` m pitched down, z-up world."""
    level = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float)  # world (x right, y fwd, z up) → OpenCV
    rot = aa_to_matrix(np.array([np.radians(pitch_deg), 0, 0])) @ level  # + pitches down
    return rot, np.array([0.0, -6.0, height])


def _people_scene(num_frames=200, seed=0):
    """World points: per frame, the feet (4) and the hip axis ends (2) of a person stepping round a
    circle (planted between steps), turning so that the hip axis sweeps every direction (level
    within ±3°)."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / FPS
    ang = 2 * np.pi * np.floor(t / t[-1] * 16) / 16
    centre = np.stack([1.5 * np.cos(ang), 1.5 * np.sin(ang), np.zeros_like(ang)], -1)
    heading = ang + np.pi / 2
    side = np.stack([np.cos(heading + np.pi / 2), np.sin(heading + np.pi / 2), np.zeros_like(ang)], -1)
    fwd = np.stack([np.cos(heading), np.sin(heading), np.zeros_like(ang)], -1)
    feet = np.stack([centre + 0.1 * side, centre + 0.1 * side + 0.15 * fwd,
                     centre - 0.1 * side, centre - 0.1 * side + 0.15 * fwd], 1) + [0, 0, 0.05]
    tilt = np.radians(rng.normal(0, 3, num_frames))
    axis = side * np.cos(tilt)[:, None] + np.array([0, 0, 1.0]) * np.sin(tilt)[:, None]
    hips = np.stack([centre + [0, 0, 0.9] - 0.1 * axis, centre + [0, 0, 0.9] + 0.1 * axis], 1)
    return t, feet, hips


def _to_camera(points, rot, centre, k=1.0):
    """World → camera frame, depth scaled by 1/k (what a focal k× too small reconstructs)."""
    pc = (points - centre) @ rot.T
    return pc * np.array([1.0, 1.0, 1.0 / k])


@pytest.mark.parametrize("k_true", [0.8, 1.25])
def test_self_calibration_recovers_a_known_focal_error(k_true):
    t, feet, hips = _people_scene()
    rot, centre = _camera(pitch_deg=40.0, height=4.0)
    feet_c = _to_camera(feet, rot, centre, k_true)
    hips_c = _to_camera(hips, rot, centre)  # a body keeps its own metric shape: not depth-scaled
    plane = estimate_ground_tracks([(feet_c, t)])
    axes = hips_c[:, 1] - hips_c[:, 0]
    est = selfcal.estimate_focal_scale(plane.normal, axes / np.linalg.norm(axes, axis=1, keepdims=True))
    assert est.used
    prior_pull = est.sigma**2 / (est.sigma**2 + selfcal.PRIOR_SIGMA**2)  # shrinkage towards k = 1
    assert abs(np.log(est.k) - (1 - prior_pull) * np.log(k_true)) < 0.05


def test_level_camera_keeps_the_prior():
    t, feet, hips = _people_scene()
    rot, centre = _camera(pitch_deg=0.0, height=1.5)
    plane = estimate_ground_tracks([(_to_camera(feet, rot, centre, 0.8), t)])
    axes = _to_camera(hips, rot, centre)
    axes = axes[:, 1] - axes[:, 0]
    est = selfcal.estimate_focal_scale(plane.normal, axes / np.linalg.norm(axes, axis=1, keepdims=True))
    assert not est.used and est.k == 1.0 and "not observable" in est.reason


def test_ground_from_two_people_each_too_narrow_alone():
    """Two people standing still at different places: each alone spans no plane; together they do."""
    rot, centre = _camera(pitch_deg=25.0, height=2.5)
    t = np.arange(60) / FPS
    tracks = []
    for x0, y0 in ((-1.5, 0.0), (1.5, 2.0)):
        feet = np.array([[x0 - 0.1, y0, 0.05], [x0 - 0.1, y0 + 0.15, 0.05],
                         [x0 + 0.1, y0, 0.05], [x0 + 0.1, y0 + 0.15, 0.05]])
        tracks.append((_to_camera(np.broadcast_to(feet, (len(t), 4, 3)), rot, centre), t))
    plane = estimate_ground_tracks(tracks)
    true_up = rot @ np.array([0, 0, 1.0])
    assert np.degrees(np.arccos(np.clip(plane.normal @ true_up, -1, 1))) < 0.5
    assert plane.offset == pytest.approx(2.5 - 0.05, abs=0.01)


def test_tilted_feet_plane_refused_but_feet_locked_on_the_body_vertical():
    """A camera 0.4 m above the floor: depth noise tilts the feet's plane 25° (refused, named), while
    the people stand upright; the foot-locking frame then takes the people's vertical as up."""
    from vibe_engine.world.grounding import body_up_lock_frame, check_ground

    rot, centre = _camera(pitch_deg=5.0, height=0.4)
    t, feet_w, _ = _people_scene()
    feet = _to_camera(feet_w, rot, centre)
    mid = feet.reshape(-1, 3).mean(0)
    tilt = aa_to_matrix(np.array([np.radians(25.0), 0.0, 0.0]))  # about the camera's x axis
    feet = (feet - mid) @ tilt.T + mid
    true_up = rot @ np.array([0, 0, 1.0])
    ups = [np.broadcast_to(0.5 * true_up, (len(t), 3))]  # pelvis → neck, upright
    tracks = [(feet, t)]
    plane = estimate_ground_tracks(tracks, ups)
    reason, tilt_only = check_ground(plane, tracks, ups)
    assert tilt_only and "off the people's vertical" in reason
    lock = body_up_lock_frame(tracks, ups)
    assert np.degrees(np.arccos(np.clip(lock[2, :3] @ true_up, -1, 1))) < 1e-6
    lowest = np.min(feet @ true_up, axis=1)  # the lock floor: the typical lowest foot
    assert lock[2, 3] == pytest.approx(-np.percentile(lowest, 10), abs=1e-9)


def test_no_lock_frame_when_the_refusal_is_not_the_tilt():
    """Too few feet on the floor (a person seen for a few frames): refused, and no fallback frame."""
    from vibe_engine.world.grounding import check_ground

    rot, centre = _camera(pitch_deg=20.0, height=2.0)
    t, feet_w, _ = _people_scene(num_frames=4)
    tracks = [(_to_camera(feet_w, rot, centre), t)]
    ups = [np.broadcast_to(0.5 * (rot @ np.array([0, 0, 1.0])), (len(t), 3))]
    reason, tilt_only = check_ground(estimate_ground_tracks(tracks, ups), tracks, ups)
    assert "foot points touch the floor" in reason and not tilt_only


def test_focal_35mm_option_is_a_user_focal_for_the_video_size(tmp_path):
    """``--focal-35mm`` (the add-on's Focal field) = ``--focal`` of f35 / 43.27 mm × the image diagonal."""
    from vibe_engine.cli import UsageError, build_parser, make_config

    clip = make_testsrc_clip(tmp_path / "c.mp4", 3, 320, 180)
    base = ["run", str(clip), "--out", str(tmp_path / "o.motion.npz")]
    cfg = make_config(build_parser().parse_args([*base, "--focal-35mm", "26"]))
    assert cfg.focal_px == pytest.approx(26.0 / math.hypot(36.0, 24.0) * math.hypot(320, 180), rel=1e-12)
    chosen = I.choose_focal(cfg.focal_px, 50.0, 320, 180)  # beats the container's tag
    assert chosen.source == "user" and chosen.focal_35mm == pytest.approx(26.0, rel=1e-12)
    for bad in (["--focal-35mm", "26", "--focal", "500"], ["--focal-35mm", "2"], ["--focal-35mm", "nan"]):
        with pytest.raises(UsageError):
            build_parser().parse_args([*base, *bad])


def _walk(direction, rot, centre, steps=12, frames_per_step=10):
    """Camera-frame feet (T,4,3) and times of a person planting both feet every 0.4 m along the
    world ``direction`` (3,) on the floor z = 0, 6 m in front of the camera (rot, centre)."""
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    side = np.cross([0.0, 0.0, 1.0], d)
    anchors = np.repeat(np.arange(steps) * 0.4 - steps * 0.2, frames_per_step)[:, None] * d
    foot = [0.1 * side, 0.1 * side + 0.15 * d, -0.1 * side, -0.1 * side + 0.15 * d]
    feet = anchors[:, None] + np.array(foot)[None] + [0.0, 0.0, 0.05]
    return _to_camera(feet, rot, centre), np.arange(len(anchors)) / FPS


def _angle(a, b):
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


@pytest.mark.parametrize("travel, lean", [((0.0, 1.0, 0.0), 0.0), ((1.0, 0.0, 0.0), 1.0)])
def test_body_vertical_decides_the_floor_tilt_across_the_image(travel, lean):
    """Feet plane rolled 3° (across the image), people upright: the normal is the precision-weighted
    mean, with the body's across-image spread widened by its lean when the walk crosses the image."""
    from vibe_engine.postprocess import ground as G

    rot, centre = _camera(pitch_deg=10.0, height=1.6)
    feet, t = _walk(travel, rot, centre)
    points = feet.reshape(-1, 3)
    true_up = rot @ np.array([0, 0, 1.0])
    ray = np.median(points, axis=0)
    across = G._tilt_axes(true_up, ray / np.linalg.norm(ray))[1]
    assert G._travel_across([(feet, t)], true_up, across) == pytest.approx(lean, abs=1e-3)
    turn = aa_to_matrix(np.cross(true_up, across) * np.radians(3.0))  # tilts the normal along `across`
    mid = points.mean(axis=0)
    points = (points - mid) @ turn.T + mid
    feet = (feet - mid) @ turn.T + mid
    feet_normal = turn @ true_up
    out = G.with_body_prior(points, feet_normal, true_up, [(feet, t)])
    prior_var = G.BODY_ACROSS_SIGMA_DEG**2 + (G.BODY_LEAN_DEG * lean) ** 2
    feet_var = G.FEET_TILT_MIN_DEG**2  # points exactly on their plane: no bootstrap or residual spread
    assert _angle(out, true_up) == pytest.approx(3.0 * prior_var / (feet_var + prior_var), abs=0.05)


def test_body_vertical_barely_counts_toward_the_camera():
    """People's vertical 10° off toward the camera (a monocular fit's weak direction), feet exact."""
    from vibe_engine.postprocess import ground as G

    rot, centre = _camera(pitch_deg=10.0, height=1.6)
    feet, t = _walk((0.0, 1.0, 0.0), rot, centre)
    points = feet.reshape(-1, 3)
    true_up = rot @ np.array([0, 0, 1.0])
    ray = np.median(points, axis=0)
    depth = G._tilt_axes(true_up, ray / np.linalg.norm(ray))[0]
    body = aa_to_matrix(np.cross(true_up, depth) * np.radians(10.0)) @ true_up
    out = G.with_body_prior(points, true_up, body, [(feet, t)])
    feet_var = G.FEET_TILT_MIN_DEG**2
    assert _angle(out, true_up) == pytest.approx(10.0 * feet_var / (feet_var + G.BODY_DEPTH_SIGMA_DEG**2), abs=0.02)
