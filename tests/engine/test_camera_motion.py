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
from vibe_engine.world import camera_path as P  # noqa: E402

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


def _paint_person(grey, rng, i):
    """A textured blob moving inside BOX in frame ``i``, independent of the background (in place)."""
    cx, cy, w, hh = BOX
    patch = rng.uniform(0, 255, (int(hh * 0.8), int(w * 0.6))).astype(np.uint8)
    y0, x0 = int(cy - hh * 0.4), int(cx - w * 0.3 + 10 * np.sin(i / 4))
    grey[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]] = patch


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
        if person:
            _paint_person(grey, rng, i)
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
    P.to_reference_frame(motion.body, track, rots)
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


# ----------------------------------------------------------------------------- a camera moving over the floor

HEIGHT = 1.5  # m: the camera above the floor
TEX_RES, TEX_SIZE = 0.01, 1600  # floor texture: m per pixel, pixels (16 m square in front of the camera)
PITCH_DEG = 30.0  # the camera looks this far down


def _floor_camera(yaw: float) -> np.ndarray:
    """world_from_camera rotation (3,3) of an OpenCV camera in a z-up world looking along +y,
    pitched down by PITCH_DEG and turned by ``yaw`` (rad) about its own y axis."""
    base = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # columns: camera x, y, z in the world
    p = -np.radians(PITCH_DEG)
    pitch = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return base @ pitch @ aa_to_matrix(np.array([0.0, yaw, 0.0]))


def _floor_path(kind: str) -> np.ndarray:
    """world_from_camera (N,4,4): ``walk`` travels 0.8 m sideways and 0.3 m forward while turning by
    up to 2°, ``turn`` only turns, ``still`` stays."""
    t = np.linspace(0, 1, N)
    yaw = np.radians(2.0) * np.sin(np.pi * t) * (kind != "still")
    m = np.repeat(np.eye(4)[None], N, 0)
    m[:, :3, :3] = [_floor_camera(y) for y in yaw]
    m[:, 2, 3] = HEIGHT
    if kind == "walk":
        m[:, 0, 3], m[:, 1, 3] = 0.8 * t, 0.3 * t
    return m


def _floor_frames(path: np.ndarray, person: bool = True) -> list[np.ndarray]:
    """RGB frames of a textured floor z = 0 seen by the cameras ``path`` (each frame exactly the
    floor homography), with a "person" blob moving inside BOX."""
    floor = _texture(seed=2, size=TEX_SIZE)
    k = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]])
    to_tex = np.array([[1 / TEX_RES, 0, TEX_SIZE / 2], [0, 1 / TEX_RES, 0], [0, 0, 1.0]])  # floor (x, y) → texture px
    rng = np.random.default_rng(5)
    out = []
    for i, m in enumerate(path):
        r, c = m[:3, :3], m[:3, 3]
        floor_to_px = (k @ np.c_[r.T, -r.T @ c])[:, [0, 1, 3]]
        grey = cv2.warpPerspective(floor, to_tex @ np.linalg.inv(floor_to_px), (W, H),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=128)
        if person:
            _paint_person(grey, rng, i)
        out.append(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB))
    return out


def test_camera_walking_over_the_floor_is_recovered():
    """Known R, t per frame: rotation < 0.1° mean, the travel's direction within 1° and its length
    (in units of the camera height, scaled by the known height) within 2 %, the floor's normal."""
    path = _floor_path("walk")
    cam = _track(_floor_frames(path))
    truth = np.linalg.inv(path[0]) @ path  # ref_from_camera
    assert cam.kind == "moving" and cam.stats["translating"] and cam.centres is not None
    err = C.rotation_angle_deg(np.einsum("tji,tjk->tik", cam.ref_from_camera, truth[:, :3, :3]))
    assert err.mean() < 0.1 and err.max() < 0.3
    est, true = cam.centres[-1] * HEIGHT, truth[-1, :3, 3]
    cos = est @ true / np.linalg.norm(est) / np.linalg.norm(true)
    assert np.degrees(np.arccos(min(cos, 1.0))) < 1.0
    assert np.linalg.norm(est) / np.linalg.norm(true) == pytest.approx(1.0, abs=0.02)
    np.testing.assert_allclose(np.linalg.norm(cam.centres * HEIGHT - truth[:, :3, 3], axis=1), 0, atol=0.02)
    down = -path[0, 2, :3]  # the floor normal in the frame-0 camera (pointing down)
    assert np.degrees(np.arccos(min(cam.plane_normal @ down, 1.0))) < 1.0


@pytest.mark.parametrize("kind", ["turn", "still"])
def test_camera_that_does_not_travel_has_no_translation(kind):
    """Over the same floor, a turning camera stays rotation-only (no centres) and a still one static."""
    cam = _track(_floor_frames(_floor_path(kind)))
    assert cam.centres is None and not cam.stats["translating"]
    assert cam.kind == ("moving" if kind == "turn" else "static")
    truth = np.linalg.inv(_floor_path(kind)[0]) @ _floor_path(kind)
    err = C.rotation_angle_deg(np.einsum("tji,tjk->tik", cam.ref_from_camera, truth[:, :3, :3]))
    assert err.max() < 0.1


def test_rotation_sequences_stay_rotation_only():
    """The far-background sequences (pure rotation, a zoom) are never taken for a translating camera."""
    for rots, zoom in ((_rotations("sweep"), None), (_rotations("shake"), None),
                       (_rotations("static"), np.geomspace(1.0, 1.25, N))):
        cam = _track(_frames(rots, _texture(), zoom=zoom))
        assert cam.centres is None and cam.stats["translating"] is False


def test_floor_distance_from_feet_on_the_floor():
    """Feet standing on the floor, seen from the walking camera (exact path): the floor's distance
    from the frame-0 camera is the camera height, whatever share of frames are in the air."""
    from vibe_engine.world import camera_translation as T

    path = _floor_path("walk")
    ref = np.linalg.inv(path[0]) @ path
    rng = np.random.default_rng(3)
    feet_world = np.zeros((N, 4, 3))
    feet_world[:, :, :2] = [1.0, 5.0] + rng.uniform(-0.3, 0.3, (N, 4, 2))
    feet_world[:, :, 2] = rng.uniform(0.0, 0.08, (N, 4))  # ankles a few cm up
    feet_world[:, 0, 2] = 0.0  # one foot on the floor
    feet_world[::5, :, 2] += 0.3  # every 5th frame in the air
    cam = np.einsum("tji,tfj->tfi", path[:, :3, :3], feet_world - path[:, None, :3, 3])  # each frame's camera
    turned = np.einsum("tij,tfj->tfi", ref[:, :3, :3], cam)  # R_n X: frame-0 orientation, no translation
    down = -path[0, 2, :3]
    s = T.metric_scale([(np.arange(N), turned)], ref[:, :3, 3] / HEIGHT, down)
    assert s == pytest.approx(HEIGHT, rel=1e-9)


def test_reference_frame_carries_the_camera_translation():
    """A body still in the world, seen by a travelling camera: in the frame-0 camera it stands still."""
    motion = make_motion(num_tracks=1, num_frames=10, seed=3)
    track = motion.tracks[0]
    track.frames = np.arange(10)
    ref = np.repeat(np.eye(4)[None], 10, 0)
    ref[:, :3, :3] = _rotations("sweep", n=10)
    ref[:, :3, 3] = np.linspace(0, 1, 10)[:, None] * [0.5, -0.1, 0.3]
    from vibe_blender.core.body import shaped_rest
    from vibe_blender.core.rotations import matrix_to_aa
    from vibe_engine.world.grounding import camera_joints
    world = camera_joints(motion.body, track)[0]
    pose0, transl0 = track.pose[0].copy(), track.transl[0].copy()
    _, rest = shaped_rest(motion.body, track.betas_track)
    r, c = ref[:, :3, :3], ref[:, :3, 3]
    track.pose = np.repeat(pose0[None], 10, 0)
    track.pose[:, 0] = matrix_to_aa(np.einsum("tji,jk->tik", r, aa_to_matrix(np.asarray(pose0[0], np.float64))))
    track.transl = (np.einsum("tji,tj->ti", r, rest[0] + transl0 - c) - rest[0]).astype(np.float32)  # camera_from_ref
    P.to_reference_frame(motion.body, track, ref)
    np.testing.assert_allclose(camera_joints(motion.body, track), np.repeat(world[None], 10, 0), atol=1e-4)


def test_translating_camera_world_is_the_background_floor():
    """A translating camera's floor (normal from the background, distance from the feet) replaces
    the plane of the feet alone; a rotating camera's world is left as the feet found it."""
    from vibe_engine.postprocess.ground import GroundPlane, world_from_camera
    from vibe_engine.world.grounding import WorldResult

    feet_plane = GroundPlane(normal=np.array([0.0, -0.99, -0.141]) / np.linalg.norm([0.0, -0.99, -0.141]), offset=1.7)
    motion = make_motion(num_tracks=1, num_frames=5, seed=1)
    down = np.array([0.0, 0.97, 0.243]) / np.linalg.norm([0.0, 0.97, 0.243])
    motion.meta["world"] = {"camera_motion": "moving", "camera_motion_stats": {}}
    found = P.background_floor(motion, WorldResult(world_from_camera(feet_plane), feet_plane))
    assert found.plane is feet_plane  # rotation only: no floor from the background
    motion.meta["world"]["camera_motion_stats"] = {"floor_normal": down.tolist(), "floor_distance_m": 1.45}
    found = P.background_floor(motion, WorldResult(world_from_camera(feet_plane), feet_plane))
    np.testing.assert_allclose(found.plane.normal, -down)
    assert found.plane.offset == 1.45
    np.testing.assert_allclose(found.matrix, world_from_camera(GroundPlane(-down, 1.45)))
    refused = P.background_floor(motion, WorldResult(None, feet_plane, [("NO_GROUND", "x")]))
    assert refused.matrix is None  # no ground from the feet: stays refused


def test_chunked_solves_match_and_handle_gaps(monkeypatch):
    """Solving a few frames at a time gives the same path as all at once, with frames without a
    fit (held) and pairs of different sizes (padded) in a translating clip."""
    from vibe_engine.world import camera_translation as T

    tracker = C.CameraTracker(W, H, F, {i: [BOX] for i in range(N)})
    for i, img in enumerate(_floor_frames(_floor_path("walk"))):
        tracker.add(i, img)
    for n in (5, 6, 20):
        tracker.pairs[n] = None
    for n in (8, 9, 30):
        k, key, cur = tracker.pairs[n]
        tracker.pairs[n] = (k, key[:C.MIN_INLIERS + n % 3], cur[:C.MIN_INLIERS + n % 3])
    whole = tracker.finish(N)
    monkeypatch.setattr(C, "CHUNK_FRAMES", 4)
    monkeypatch.setattr(T, "CHUNK_FRAMES", 4)
    parts = tracker.finish(N)
    assert whole.centres is not None and parts.centres is not None
    # the Gauss-Newton stops per batch once every step is < 1e-7: chunks may stop an iteration apart
    np.testing.assert_allclose(parts.ref_from_camera, whole.ref_from_camera, atol=1e-6)
    np.testing.assert_allclose(parts.centres, whole.centres, atol=1e-6)
    for n in (5, 6, 20):  # held: the previous frame's camera
        np.testing.assert_array_equal(whole.centres[n], whole.centres[n - 1])
