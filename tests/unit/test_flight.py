"""Flights straightened with known answers: a body whose centre of mass crosses the ground in a
straight line during a jump, fitted at wrong depths along its camera rays in the air, comes back to
the true path exactly; runs that are no jump, and geometry that cannot say, are left alone."""
from types import SimpleNamespace

import numpy as np

from tests.unit.test_footlock import REST, body  # noqa: F401  (the skeleton body fixture)
from vibe_blender.core import motion_file as mf
from vibe_blender.core.body import forward_kinematics
from vibe_blender.core.rotations import aa_to_matrix
from vibe_engine.postprocess import flight, run

FPS = 30.0
CAMERA = np.array([0.0, 0.0, 1.6])  # world (z up): the camera 1.6 m above the ground


def _contacts(pattern: str) -> np.ndarray:
    """(T,4) contacts from a string: 'x' = a planted foot in that frame, '.' = none."""
    return np.array([[c == "x", False, False, False] for c in pattern])


def test_flights_are_the_short_runs_without_contact_between_two_contacts():
    pattern = "...xxx.....xx" + "." * 40 + "xxx..."
    times = np.arange(len(pattern)) / FPS
    # the 5-frame gap is a flight (frames 5 and 11 planted); the 40-frame gap (1.4 s) is not a jump;
    # the runs before the first and after the last contact have no take-off or no landing
    assert flight.flights(_contacts(pattern), times) == [(5, 11)]


def _jump(frames: int = 16):
    """Joints (T,24,3) of a rigid body whose joint mean (the centre of mass) goes in a straight line
    over the ground from take-off (frame 0) to landing (last frame), toward the camera and sideways,
    rising and falling on a parabola; planted at both ends."""
    t = np.arange(frames) / FPS
    share = t / t[-1]
    com = np.stack([0.6 * share, 5.0 - 0.8 * share, 1.0 + 0.3 * np.sin(np.pi * share)], axis=1)
    offsets = np.random.default_rng(0).normal(scale=0.3, size=(24, 3))
    joints = com[:, None] + (offsets - offsets.mean(0))[None]  # the joint mean is the centre of mass
    contacts = _contacts("x" + "." * (frames - 2) + "x")
    return joints, contacts, t


def _off_in_depth(joints: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """The same bodies moved along their root's camera ray: root distance × ``factors`` (T,)."""
    return joints + ((factors - 1.0)[:, None] * (joints[:, 0] - CAMERA))[:, None]


def test_a_flight_fitted_at_wrong_depths_comes_back_to_the_straight_path():
    joints, contacts, t = _jump()
    factors = 1.0 + 0.08 * np.sin(np.linspace(0.0, np.pi, len(t)))  # ≤ 8 % too far in the air
    fitted = _off_in_depth(joints, factors)
    q = flight.flight_factors(fitted, np.tile(CAMERA, (len(t), 1)), contacts, t)
    np.testing.assert_allclose(q * factors, 1.0, atol=1e-12)  # each distance back to the truth's
    np.testing.assert_allclose(_off_in_depth(fitted, q), joints, atol=1e-12)  # all joints back
    np.testing.assert_array_equal(q[[0, -1]], 1.0)  # take-off and landing stay where the lock put them


def test_no_shift_where_depth_cannot_say_or_would_move_too_far():
    joints, contacts, t = _jump()
    above = joints[:, 0] + np.array([0.0, 0.0, 8.0])  # a camera straight above the root every frame
    np.testing.assert_array_equal(
        flight.flight_factors(_off_in_depth(joints, np.full(len(t), 1.05)), above, contacts, t), 1.0)
    far = _off_in_depth(joints, np.r_[1.0, np.full(len(t) - 2, 1.3), 1.0])  # 30 % off: a wrong contact
    np.testing.assert_array_equal(flight.flight_factors(far, np.tile(CAMERA, (len(t), 1)), contacts, t), 1.0)


def test_the_post_processing_step_works_in_the_ground_frame_and_keeps_the_camera_frame(body):
    """run._straighten_flights: camera-frame transl in, the world (ground) frame for the line, the
    shift back in the camera frame; the standing skeleton jumps with a wrong depth in the air."""
    frames = 16
    world_from_camera = np.eye(4)
    # a level camera: OpenCV x right, y down, z forward → world x, −z, y (z up)
    world_from_camera[:3, :3] = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    world_from_camera[:3, 3] = CAMERA
    share = np.arange(frames) / (frames - 1)
    root_world = np.stack([0.6 * share, 5.0 - 0.8 * share, 1.0 + 0.3 * np.sin(np.pi * share)], axis=1)
    root_cam = (root_world - CAMERA) @ world_from_camera[:3, :3]
    factors = 1.0 + 0.06 * np.sin(np.pi * share)
    pose = np.zeros((frames, 24, 3))
    pose[:, 0] = [np.pi, 0.0, 0.0]  # SMPL y-up → camera y-down
    track = SimpleNamespace(frames=np.arange(frames), times=np.arange(frames) / FPS, num_frames=frames,
                            betas_track=np.zeros(10, np.float32), pose=pose.astype(np.float32),
                            transl=(factors[:, None] * root_cam - REST[0]).astype(np.float32),
                            extra={"contacts": _contacts("x" + "." * (frames - 2) + "x")})
    run._straighten_flights(body, track, world_from_camera, None)
    g = forward_kinematics(aa_to_matrix(pose), REST, np.array(mf.SMPL_PARENTS))
    joints_cam = g[:, :, :3, 3] + track.transl.astype(np.float64)[:, None]
    joints_world = joints_cam @ world_from_camera[:3, :3].T + CAMERA
    com = joints_world.mean(1)[:, :2]
    line = com[0] + share[:, None] * (com[-1] - com[0])
    assert np.abs(com - line).max() < 1e-5  # on the straight line (float32 members)
    assert np.abs(track.transl + REST[0] - root_cam).max() < 1e-5  # the true depths back, in the camera frame
