"""Benchmark metrics against known answers."""
import numpy as np
import pytest

from benchmarks.synthetic import metrics as m
from vibe_blender.core.rotations import aa_to_matrix


@pytest.fixture()
def joints():
    rng = np.random.default_rng(0)
    return rng.normal(0, 0.4, (20, 24, 3))


def test_pa_mpjpe_ignores_similarity(joints):
    rot = aa_to_matrix(np.array([0.3, -1.0, 0.5]))
    moved = 1.3 * joints @ rot.T + np.array([0.5, -2.0, 3.0])
    assert m.pa_mpjpe(moved, joints) < 1e-9
    assert m.mpjpe(moved, joints) > 100


def test_reflection_is_not_a_valid_alignment(joints):
    mirrored = joints * np.array([-1.0, 1.0, 1.0])
    assert m.pa_mpjpe(mirrored, joints) > 10


def test_mpjpe_known_offset(joints):
    assert m.mpjpe(joints + np.array([0.003, 0.004, 0.0]), joints) == pytest.approx(5.0)
    assert m.mpjpe_root_aligned(joints + 0.5, joints) == pytest.approx(0.0, abs=1e-9)
    biased = joints.copy()
    biased[:, 5] += np.array([0.02, 0, 0])  # a joint defined 2 cm elsewhere
    assert m.mpjpe_root_aligned(biased, joints) == pytest.approx(20 / 24)
    assert m.mpjpe_root_aligned(biased, joints, bias_corrected=True) == pytest.approx(0.0, abs=1e-9)


def test_accel_error_known_answer():
    t = np.arange(10, dtype=float)
    gt = np.zeros((10, 24, 3))
    pred = gt.copy()
    pred[:, 3, 0] = 0.001 * t**2 / 2  # constant acceleration 1 mm/frame² on one joint
    assert m.accel_error(pred, gt) == pytest.approx(1 / 24)


def test_swing_kept():
    t = np.linspace(0, 2 * np.pi, 60)
    gt = np.zeros((60, 24, 3))
    gt[:, 20, 0] = 0.3 * np.sin(t)
    pred = gt.copy()
    pred[:, 20, 0] *= 0.6
    assert m.swing_kept(pred, gt) == pytest.approx(60.0)


def test_foot_skate_and_penetration():
    gt = np.zeros((11, 24, 3))
    pred = gt.copy()
    pred[:, 7, 0] = np.arange(11) * 0.002  # left ankle slides 2 mm per frame
    contacts = np.zeros((11, 4), bool)
    contacts[:, 0] = True
    assert m.foot_skate(pred, contacts) == pytest.approx(2.0)
    pred[:, 10, 2] = -0.03
    assert m.ground_penetration(pred, gt) == pytest.approx(3.0)


def test_root_trajectory_error():
    gt = np.zeros((11, 24, 3))
    gt[:, 0, 0] = np.linspace(0, 10, 11)  # 10 m walk
    pred = gt.copy()
    pred[:, 0, 0] *= 0.9  # travels 10 % short
    pred[:, 0] += 5.0  # offset away: removed by first-frame alignment
    assert m.root_trajectory_error(pred, gt) == pytest.approx(np.mean(np.linspace(0, 1, 11)) / 10 * 100)


def test_pck_and_detection_rate():
    gt = np.zeros((2, 3, 2))
    pred = gt + np.array([[[5, 0], [15, 0], [0, 0]], [[0, 0], [0, 0], [30, 0]]])
    assert m.pck_2d(pred, gt, np.array([100.0, 100.0])) == pytest.approx(4 / 6 * 100)
    assert m.detection_rate(np.array([1, 2, 3]), np.array([0, 1, 2, 3])) == pytest.approx(75.0)


def test_landmark_rows_known_answer():
    """Landmarks equal to the truth (hip-centred) score 0; the fitted SMPL is scored on the same joints."""
    from benchmarks.accuracy import LIMB_LANDMARKS, landmark_metrics
    from tests.fixtures.motion import make_motion
    from vibe_blender.core.body import forward_kinematics, shaped_rest

    motion = make_motion(num_tracks=1, num_frames=10, seed=2)
    track = motion.tracks[0]
    _, rest = shaped_rest(motion.body, track.betas_track)
    joints = forward_kinematics(aa_to_matrix(track.pose.astype(float)), rest, motion.body.parents)[:, :, :3, 3]
    joints = joints + track.transl[:, None]
    world = np.full((10, 33, 3), np.nan)
    limbs = joints[:, list(LIMB_LANDMARKS.values())]
    world[:, list(LIMB_LANDMARKS)] = limbs - limbs[:, 6:8].mean(1, keepdims=True)
    world[4] = np.nan  # a frame without a pose is left out
    track.extra["landmarks_world"] = world
    gt = {"joints_cam": joints}
    out = landmark_metrics(motion, gt)
    assert out["landmarks"]["pa_mpjpe"] < 1e-6 and out["landmarks"]["mpjpe"] < 1e-6
    assert out["smpl_post"]["mpjpe"] < 1e-6  # the track's own FK is the truth here
