"""Camera rotation from the background with known answers: a textured far background seen by a
camera turning along a known rotation sequence (each frame made exactly with H = K R K⁻¹), a
"person" moving on top of it inside its box, a static camera, a blank wall; the motion-file member;
tracks turned into the frame-0 camera."""
import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from tests.fixtures.motion import make_motion  # noqa: E402
from vibe_blender.core import motion_file as mf  # noqa: E402
from vibe_blender.core.rotations import aa_to_matrix  # noqa: E402
from vibe_engine.world import camera_motion as C  # noqa: E402

W, H, F = 480, 270, 420.0
N = 40
BOX = np.array([240.0, 150.0, 110.0, 110.0])  # the person's box (cx, cy, w, h), px


def _texture(seed=0, size=1400):
    """A large random-blob texture (the far background) with strong corners."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (size // 8, size // 8)).astype(np.float32)
    img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(img, 0, 255).astype(np.uint8)


def _rotations(kind, n=N, seed=1):
    """ref_from_camera (n,3,3): pan + tilt sweeps (deg) or smoothed handheld shake."""
    t = np.linspace(0, 1, n)
    if kind == "static":
        return np.repeat(np.eye(3)[None], n, 0)
    if kind == "sweep":
        aa = np.stack([np.radians(3) * np.sin(2 * np.pi * t), np.radians(8) * np.sin(np.pi * t), 0 * t], -1)
    else:  # shake
        rng = np.random.default_rng(seed)
        aa = np.cumsum(rng.normal(0, np.radians(0.15), (n, 3)), 0)
        aa -= aa[0]
    return aa_to_matrix(aa)


def _frames(rots, texture, person=True, blank=False, zoom=None):
    """RGB frames of a camera with ref_from_camera ``rots`` (and focal F × ``zoom`` (n,)) looking at
    a plane at infinity."""
    size = texture.shape[0]
    k_tex = np.array([[F, 0, size / 2], [0, F, size / 2], [0, 0, 1.0]])  # the texture = frame-0 view, larger
    k = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]])
    rng = np.random.default_rng(5)
    out = []
    for i, r in enumerate(rots):
        if zoom is not None:
            k = np.array([[F * zoom[i], 0, W / 2], [0, F * zoom[i], H / 2], [0, 0, 1.0]])
        # pixel x of frame i has ray K⁻¹x in its camera, r·K⁻¹x in the reference: texture K_tex r K⁻¹ x
        h = k_tex @ r @ np.linalg.inv(k)
        grey = cv2.warpPerspective(texture, h, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        if blank:
            grey[:] = 128
        if person:  # a textured blob moving inside the box, independent of the background
            cx, cy, w, hh = BOX
            patch = rng.uniform(0, 255, (int(hh * 0.8), int(w * 0.6))).astype(np.uint8)
            y0, x0 = int(cy - hh * 0.4), int(cx - w * 0.3 + 10 * np.sin(i / 4))
            grey[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]] = patch
        out.append(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB))
    return out


def _track(frames, focal=F, mode="auto", calibrate=False):
    tracker = C.CameraTracker(W, H, focal, {i: [BOX] for i in range(len(frames))})
    for i, img in enumerate(frames):
        tracker.add(i, img)
    return tracker.finish(len(frames), mode, calibrate=calibrate)


@pytest.mark.parametrize("kind", ["sweep", "shake"])
def test_known_rotation_sequence_is_recovered(kind):
    rots = _rotations(kind)
    path = _track(_frames(rots, _texture()))
    assert path.kind == "moving" and path.failed == 0
    err = C.rotation_angle_deg(np.einsum("tji,tjk->tik", path.ref_from_camera, rots))
    assert err.mean() < 0.1 and err.max() < 0.3  # degrees; the sweep reaches 8.5°


def test_focal_is_recovered_from_the_rotation():
    rots = _rotations("sweep")
    path = _track(_frames(rots, _texture()), focal=F * 1.25, calibrate=True)
    assert path.focal_scale * 1.25 == pytest.approx(1.0, abs=0.03)
    err = C.rotation_angle_deg(np.einsum("tji,tjk->tik", path.ref_from_camera, rots))
    assert err.mean() < 0.15


def test_zoom_is_recovered_per_frame():
    zoom = np.geomspace(1.0, 1.25, N)
    path = _track(_frames(_rotations("static"), _texture(), zoom=zoom))
    assert path.kind == "moving" and path.zoom is not None
    np.testing.assert_allclose(path.zoom, zoom, rtol=0.03)  # chained over keyframes: drifts ~2 % by 25 % zoom
    assert C.rotation_angle_deg(path.ref_from_camera).max() < 0.1


def test_static_camera_stays_static():
    path = _track(_frames(_rotations("static"), _texture()))
    assert path.kind == "static" and path.reason == ""
    assert path.stats["largest_rotation_deg"] < C.STATIC_MAX_DEG / 5
    np.testing.assert_array_equal(path.ref_from_camera, np.repeat(np.eye(3)[None], N, 0))


def test_blank_wall_falls_back_to_static_with_the_reason():
    path = _track(_frames(_rotations("sweep"), _texture(), blank=True), mode="moving")
    assert path.kind == "static" and "no usable background" in path.reason


def test_reference_frame_turns_the_body_about_the_camera():
    """A body fixed in the world, seen by a turning camera: in the frame-0 camera it stands still."""
    motion = make_motion(num_tracks=1, num_frames=10, seed=3)
    track = motion.tracks[0]
    rots = _rotations("sweep", n=10)
    track.frames = np.arange(10)
    from vibe_engine.world.grounding import camera_joints
    world = camera_joints(motion.body, track)[0]  # frame-0 joints: the truth in the reference camera
    pose0, transl0 = track.pose[0].copy(), track.transl[0].copy()
    # what each frame's camera saw of that still body: camera_from_ref = rotsᵀ
    track.pose = np.repeat(pose0[None], 10, 0)
    track.transl = np.repeat(transl0[None], 10, 0)
    from vibe_blender.core.body import shaped_rest
    from vibe_blender.core.rotations import matrix_to_aa
    _, rest = shaped_rest(motion.body, track.betas_track)
    r0 = aa_to_matrix(np.asarray(pose0[0], np.float64))
    track.pose[:, 0] = matrix_to_aa(np.einsum("tji,jk->tik", rots, r0))
    track.transl = (np.einsum("tji,j->ti", rots, rest[0] + transl0) - rest[0]).astype(np.float32)
    C.to_reference_frame(motion.body, track, rots)
    np.testing.assert_allclose(camera_joints(motion.body, track), np.repeat(world[None], 10, 0), atol=1e-4)


def test_camera_member_round_trip_and_old_files(tmp_path):
    motion = make_motion(num_tracks=1, num_frames=12, seed=4)
    n = motion.meta["video"]["frames"]
    path = np.repeat(np.eye(4)[None], n, 0)
    path[:, :3, :3] = _rotations("sweep", n=n)
    motion.camera = {"world_from_camera": path, "focal_px": np.full(n, 900.0)}
    mf.write_motion(tmp_path / "m.motion.npz", motion)
    back = mf.read_motion(tmp_path / "m.motion.npz")
    np.testing.assert_array_equal(back.camera["world_from_camera"], path)
    motion.camera = {}
    mf.write_motion(tmp_path / "old.motion.npz", motion)  # a file without the member reads as before
    assert mf.read_motion(tmp_path / "old.motion.npz").camera == {}
    motion.camera = {"world_from_camera": path[:-1]}
    with pytest.raises(mf.MotionFileError, match="camera/world_from_camera"):
        mf.validate(motion)
