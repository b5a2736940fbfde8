"""Ground plane from the feet of a tilted synthetic scene, and foot-contact detection."""
import numpy as np
import pytest

from vibe_blender.core.rotations import aa_to_matrix
from vibe_engine.postprocess.contacts import detect_contacts
from vibe_engine.postprocess.ground import estimate_ground, world_from_camera

FPS = 30.0


def _walk(num_frames=150, speed=1.2, step_period=1.0, half_width=0.1):
    """World-frame (z up) heel/toe points of a walker along x, feet ``half_width`` m either side of
    the line: alternate stance (planted) and swing."""
    t = np.arange(num_frames) / FPS
    feet = np.zeros((num_frames, 4, 3))
    contact = np.zeros((num_frames, 4), bool)
    for side, (y_off, phase) in enumerate([(half_width, 0.0), (-half_width, 0.5)]):
        cycle = (t / step_period + phase) % 1.0
        swing = cycle > 0.6
        # position along x advances only during swing (planted otherwise): piecewise plant points
        n_cycles = np.floor(t / step_period + phase)
        progress = np.where(swing, (cycle - 0.6) / 0.4, 0.0)
        x = (n_cycles + progress) * speed * step_period
        lift = np.where(swing, 0.12 * np.sin(np.pi * progress), 0.0)
        for k, dx in enumerate([0.0, 0.2]):  # heel, toe
            feet[:, 2 * side + k] = np.stack([x + dx, np.full(num_frames, y_off), lift + 0.03], 1)
            contact[:, 2 * side + k] = ~swing
    return t, feet, contact


def _camera(pitch_deg, roll_deg, height):
    """camera_from_world (4x4) for a camera at `height` m, 4 m behind the walk, looking along +x."""
    level = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], float)  # world (x fwd, z up) → OpenCV
    tilt = aa_to_matrix(np.array([np.radians(pitch_deg), 0, 0])) @ aa_to_matrix(np.array([0, 0, np.radians(roll_deg)]))
    rot = tilt @ level
    centre = np.array([-4.0, 0.5, height])
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = -rot @ centre
    return m


def test_tilted_ground_recovered_within_one_degree():
    rng = np.random.default_rng(1)
    t, feet_w, _ = _walk()
    cam = _camera(pitch_deg=-18.0, roll_deg=6.0, height=1.6)
    feet_c = feet_w @ cam[:3, :3].T + cam[:3, 3] + rng.normal(0, 0.01, feet_w.shape)
    plane = estimate_ground(feet_c, t)
    true_up = cam[:3, :3] @ np.array([0, 0, 1.0])
    angle = np.degrees(np.arccos(np.clip(plane.normal @ true_up, -1, 1)))
    assert angle < 1.0
    assert abs(plane.offset - 1.57) < 0.03  # camera height above the plane of the stance feet (3 cm up)


def test_world_frame_puts_feet_on_the_ground():
    t, feet_w, _ = _walk()
    cam = _camera(pitch_deg=-10.0, roll_deg=-4.0, height=1.2)
    feet_c = feet_w @ cam[:3, :3].T + cam[:3, 3]
    m = world_from_camera(estimate_ground(feet_c, t))
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)
    back = feet_c @ m[:3, :3].T + m[:3, 3]
    stance_heights = np.sort(back[..., 2].ravel())[: back.shape[0]]
    assert np.all(np.abs(stance_heights) < 0.01)  # the ground passes through the planted feet


def test_level_camera_world_matches_default_convention():
    from vibe_engine.postprocess.ground import GroundPlane

    m = world_from_camera(GroundPlane(normal=np.array([0.0, -1.0, 0.0]), offset=1.5))
    np.testing.assert_allclose(m[:3, :3], [[1, 0, 0], [0, 0, 1], [0, -1, 0]], atol=1e-12)
    np.testing.assert_allclose(m[:3, 3], [0, 0, 1.5], atol=1e-12)


def test_standing_still_falls_back_to_body_axis():
    t = np.arange(60) / FPS
    # Two ankles side by side: a line, which cannot fix the ground's tilt about it.
    feet = np.tile(np.array([[0.1, 1.5, 4.0], [-0.1, 1.5, 4.0]]), (60, 1, 1))
    up = np.tile([0.0, -0.9961947, 0.0871557], (60, 1))  # camera pitched by 5°
    plane = estimate_ground(feet, t, body_up=up)
    np.testing.assert_allclose(plane.normal, up[0], atol=1e-9)


def test_contacts_match_the_walk():
    t, feet_w, truth = _walk()
    found = detect_contacts(feet_w, t)
    agree = (found == truth).mean()
    assert agree > 0.9
    # never a contact while the foot is high in the air
    assert not np.any(found & (feet_w[..., 2] > 0.12))


def test_contact_flicker_is_cleaned():
    t = np.arange(30) / FPS
    pts = np.zeros((30, 1, 3))
    pts[:, 0, 2] = 0.3
    pts[10:20, 0, 2] = 0.0
    pts[14, 0, 2] = 0.3  # a one-frame glitch inside a contact
    pts[25, 0, 2] = 0.0  # a one-frame touch
    found = detect_contacts(pts, t, speed_max=100.0)[:, 0]
    assert found[10:20].all() and not found[25] and found.sum() == 10


def test_planted_foot_drifting_in_depth_is_still_in_contact():
    # A monocular depth error: the planted foot drifts 1.5 m/s along the viewing direction (+x here)
    # while its lateral position and height stay put. With the viewing direction known it is a
    # contact; a foot moving as fast sideways (what the image shows) is not.
    t = np.arange(30) / FPS
    drift = np.zeros((30, 1, 3))
    drift[:, 0, 0] = 1.5 * t
    view = np.array([1.0, 0.0, -0.2])
    assert detect_contacts(drift, t, view_dir=view).all()
    assert not detect_contacts(drift, t).any()
    sideways = drift[..., [1, 0, 2]]
    assert not detect_contacts(sideways, t, view_dir=view).any()


def test_contact_hysteresis_keeps_a_slowly_lifting_heel():
    # Height 0 → 0.14 m over 20 frames at 0.2 m/s: the contact that started low lasts while the
    # heel stays within 1.5 × the height bound (0.15 m); a point that only hovers at 0.14 m never starts one.
    t = np.arange(40) / FPS
    pts = np.zeros((40, 2, 3))
    pts[10:30, 0, 2] = np.linspace(0.0, 0.14, 20)
    pts[30:, 0, 2] = 0.14
    pts[:, 1, 2] = 0.14
    pts[:4, 1, 2] = 0.0  # its floor level stays 0 (5th percentile)
    found = detect_contacts(pts, t)
    assert found[:, 0].all()
    assert found[:3, 1].all() and not found[3:, 1].any()


def test_slow_toe_of_a_planted_heel_is_planted():
    # Heel (ankle) planted; the toe joint's estimate floats 12 cm up (beyond the height bound) but
    # holds still: a rigid foot, so the toe is planted too. A toe that moves stays free.
    t = np.arange(30) / FPS
    pts = np.zeros((30, 4, 3))
    pts[:, 1, 2] = 0.12
    pts[:, 3, 2] = 0.12
    pts[:3, [1, 3], 2] = 0.0  # their floor level (5th percentile) stays 0
    pts[:, 3, 0] = 1.0 * t  # the right toe slides at 1 m/s
    found = detect_contacts(pts, t)
    assert found[:, 0].all() and found[:, 2].all()
    assert found[:, 1].all() and not found[4:, 3].any()
    assert not detect_contacts(pts, t, flat_feet=False)[4:, 1].any()


def test_ground_with_a_platform_is_not_tilted():
    # The walker steps onto a 40 cm platform for the second half: stance feet on two parallel
    # levels. The ground's direction is still recovered within 1°, and the plane is the lower level.
    rng = np.random.default_rng(8)
    t, feet_w, _ = _walk(num_frames=240)
    feet_w[120:, :, 2] += 0.4
    cam = _camera(pitch_deg=-25.0, roll_deg=3.0, height=3.0)
    feet_c = feet_w @ cam[:3, :3].T + cam[:3, 3] + rng.normal(0, 0.01, feet_w.shape)
    plane = estimate_ground(feet_c, t)
    true_up = cam[:3, :3] @ np.array([0, 0, 1.0])
    assert np.degrees(np.arccos(np.clip(plane.normal @ true_up, -1, 1))) < 1.0
    assert abs(plane.offset - (3.0 - 0.03)) < 0.03


def test_height_bound_allows_for_depth_uncertainty():
    # A planted point whose estimated height is 18 cm above its floor level: beyond the height
    # bound, unless a camera 3 m above it makes its height that uncertain (depth known to 10 %).
    t = np.arange(30) / FPS
    pts = np.zeros((30, 1, 3))
    pts[3:, 0, 2] = 0.18
    found = detect_contacts(pts, t, camera=np.array([0.0, -8.0, 3.0]))
    assert found[3:].all()
    assert not detect_contacts(pts, t)[4:].any()


@pytest.mark.parametrize("seed", [9, 10])
def test_two_single_stances_on_two_levels_give_the_floor_not_a_slope(seed):
    # 1.3 s standing on a 30 cm box, then 2 s on the floor 90 cm ahead, feet noisy by 1.5 cm: one plane
    # slanted from box to floor (18°) holds about as many stance points as the floor alone (the RANSAC
    # picked it: 17-18° here before the levels), so only the levels along the people's vertical (here
    # exact) say which is the floor: the dominant one. Its direction and height are recovered.
    rng = np.random.default_rng(seed)
    t = np.arange(100) / FPS
    stance = np.array([[0.0, 0.1, 0.03], [0.2, 0.1, 0.03], [0.0, -0.1, 0.03], [0.2, -0.1, 0.03]])
    feet_w = np.repeat(stance[None], len(t), 0)
    feet_w[:40, :, 2] += 0.3
    feet_w[40:, :, 0] += 0.9
    cam = _camera(pitch_deg=-20.0, roll_deg=4.0, height=1.8)
    feet_c = feet_w @ cam[:3, :3].T + cam[:3, 3] + rng.normal(0, 0.015, feet_w.shape)
    true_up = cam[:3, :3] @ np.array([0, 0, 1.0])
    plane = estimate_ground(feet_c, t, body_up=np.repeat(0.5 * true_up[None], len(t), 0))
    assert np.degrees(np.arccos(np.clip(plane.normal @ true_up, -1, 1))) < 1.5
    assert abs(plane.offset - (1.8 - 0.03)) < 0.06


def test_feet_on_a_box_then_on_the_floor_are_both_contacts():
    """1.5 s standing on a 0.3 m box, a 0.5 s jump down, 1.5 s on the floor: with raised supports
    (the ground saw several levels) both stances are contacts, the flight is not."""
    t = np.arange(105) / FPS
    z = np.where(t < 1.5, 0.33, 0.03)
    flight = (t >= 1.5) & (t < 2.0)
    z[flight] = 0.33 + 0.3 * np.sin(np.pi * (t[flight] - 1.5) / 0.5) - 0.3 * (t[flight] - 1.5) / 0.5
    pts = np.zeros((len(t), 1, 3))
    pts[:, 0, 0] = np.where(t < 1.5, 0.0, np.where(flight, 2.0 * (t - 1.5), 1.0))
    pts[:, 0, 2] = z
    found = detect_contacts(pts, t, raised_supports=True)[:, 0]
    assert found[(t > 0.1) & (t < 1.4)].all() and found[t > 2.1].all()
    assert not found[(t > 1.6) & (t < 1.9)].any()
    assert not detect_contacts(pts, t)[(t > 0.1) & (t < 1.4), 0].any()  # one floor: the box is 30 cm up


def test_a_person_on_a_box_then_the_floor_stands_on_levels_a_walker_does_not():
    from vibe_engine.postprocess.ground import stands_on_levels

    cam = _camera(pitch_deg=-20.0, roll_deg=4.0, height=1.8)
    up = np.repeat((0.5 * cam[:3, :3] @ np.array([0, 0, 1.0]))[None], 100, 0)
    t = np.arange(100) / FPS
    stance = np.array([[0.0, 0.1, 0.03], [0.2, 0.1, 0.03], [0.0, -0.1, 0.03], [0.2, -0.1, 0.03]])
    feet_w = np.repeat(stance[None], len(t), 0)
    feet_w[:40, :, 2] += 0.3
    feet_w[40:, :, 0] += 0.9
    assert stands_on_levels(feet_w @ cam[:3, :3].T + cam[:3, 3], t, up)
    t, walk_w, _ = _walk(num_frames=100)
    assert not stands_on_levels(walk_w @ cam[:3, :3].T + cam[:3, 3], t, up)


def test_ransac_seed_finds_the_floor_beside_a_platform_and_repeats():
    """OpenCV's RANSAC (ground._ransac_normal): 600 floor points on a plane tilted 12° from the prior
    up and 400 on a parallel level 30 cm higher, both with 1 cm noise. The seed's normal is the
    floor's within 0.5° (a least-squares plane through both levels is not), and the same points
    give the same normal bit for bit (OpenCV's RANSAC has a fixed seed)."""
    from vibe_engine.postprocess.ground import _fit_plane, _ransac_normal

    rng = np.random.default_rng(3)
    true_up = aa_to_matrix(np.array([np.radians(12.0), 0.0, 0.0])) @ np.array([0.0, -1.0, 0.0])
    axes = np.linalg.svd(np.eye(3) - np.outer(true_up, true_up))[0][:, :2].T
    uv = rng.uniform(-1.5, 1.5, (1000, 2)) * [1.0, 3.0]
    height = np.where(np.arange(1000) < 600, 0.0, 0.3) + rng.normal(0, 0.01, 1000)
    points = uv @ axes + np.outer(height, true_up) + np.array([0.0, 1.5, 5.0])
    points[600:] += 1.2 * axes[0]  # the platform beside the floor: a least-squares plane tilts
    prior = np.array([0.0, -1.0, 0.0])
    normal = _ransac_normal(points, prior)
    assert np.degrees(np.arccos(np.clip(normal @ true_up, -1, 1))) < 0.5
    assert np.degrees(np.arccos(np.clip(abs(_fit_plane(points)[1] @ true_up), -1, 1))) > 3.0
    np.testing.assert_array_equal(_ransac_normal(points.copy(), prior), normal)


@pytest.mark.parametrize("lean_deg", [6.0, 10.0, 14.0])  # below, at and beyond LEVEL_SLOPE_DEG
def test_walk_along_one_line_fixes_the_floor_slope_along_it(lean_deg):
    """Stance points of a walk across the image along one line (feet 5 cm either side of it: too
    narrow to span a plane) on a floor rolled 8° in the image, and a body vertical that leans
    ``lean_deg`` along the walk (the lean of walking across the image). The floor keeps the feet's
    slope along the line (the known roll) and the body's tilt about the line (here the truth):
    within 1° of the true floor. (Successive stances along the leaning vertical differ in height
    by about the stride × sin(lean), more than LEVEL_GAP here from about 9°: they are one floor,
    not levels.)"""
    t, feet_w, _ = _walk(num_frames=240, half_width=0.05)
    level = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float)  # world (x across, y ahead, z up) → OpenCV
    roll, pitch = aa_to_matrix(np.array([0.0, 0.0, np.radians(8.0)])), aa_to_matrix(np.array([np.radians(-12.0), 0, 0]))
    rot = roll @ pitch @ level
    feet_c = (feet_w - [2.5, -6.0, 1.6]) @ rot.T  # camera 1.6 m up, 6 m back, the walk centred ahead
    true_up = rot @ np.array([0.0, 0.0, 1.0])
    lean = rot @ aa_to_matrix(np.array([0.0, np.radians(lean_deg), 0.0])) @ np.array([0.0, 0.0, 1.0])
    plane = estimate_ground(feet_c, t, body_up=np.repeat(lean[None], len(t), 0))
    assert np.degrees(np.arccos(np.clip(lean @ true_up, -1, 1))) == pytest.approx(lean_deg, abs=1e-6)
    assert np.degrees(np.arccos(np.clip(plane.normal @ true_up, -1, 1))) < 1.0


def test_a_feet_floor_seen_from_near_its_height_gets_a_camera_height_warning():
    """The same walk, 1 cm foot noise, seen by a level camera 0.35 m and 1.6 m up: the floor's tilt
    toward the camera moves the low camera's height by far more (its rays meet the floor a few
    degrees down), so only that one is flagged; a floor from the lines never is."""
    from vibe_engine.world.grounding import CAMERA_HEIGHT_MAX_REL, _height_warnings, height_uncertainty

    rng = np.random.default_rng(3)
    t, feet_w, planted = _walk()
    found = {}
    for height in (0.35, 1.6):
        cam = _camera(pitch_deg=0.0, roll_deg=0.0, height=height)
        feet = [(feet_w @ cam[:3, :3].T + cam[:3, 3] + rng.normal(0, 0.01, feet_w.shape), t)]
        plane = estimate_ground(*feet[0])
        rel, depression = height_uncertainty(plane, feet)
        rays = feet_w[planted] - [-4.0, 0.5, height]  # from the camera to the planted points
        true_depression = np.degrees(np.arcsin(np.median(-rays[:, 2] / np.linalg.norm(rays, axis=-1))))
        assert abs(depression - true_depression) < 0.2  # 1 cm noise at 4-10 m: < 0.15°
        found[height] = (rel, _height_warnings(plane, feet, "feet"), _height_warnings(plane, feet, "lines"))
    rel_low, warn_low, lines_low = found[0.35]
    rel_high, warn_high, _ = found[1.6]
    assert rel_low > CAMERA_HEIGHT_MAX_REL > rel_high and rel_low > 3 * rel_high
    assert [c for c, _ in warn_low] == ["CAMERA_HEIGHT_UNCERTAIN"] and "0.3" in warn_low[0][1]
    assert warn_high == [] and lines_low == []
