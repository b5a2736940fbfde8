"""vibe_engine.blazepose.shape: per-track betas from landmark proportions, with known answers.

Landmarks are the stand-in body's own 33 virtual markers (``fit.Skeleton.from_body(body, betas)
.forward``) posed with known smooth random motions, hip-centred like BlazePose's world landmarks.
For such landmarks the length bias is zero (``EXACT``) and the estimate must recover the betas;
BlazePose-like corruption (confident outlier frames, garbage at low visibility, missing frames)
must not move it much.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tests.engine.test_fit import interpolate_poses, random_keyposes, synthetic_body
from vibe_engine.blazepose import fit
from vibe_engine.blazepose import shape as S
from vibe_engine.blazepose import topology as topo
from vibe_engine.blazepose.standin_body import load_standin_body

ZERO_BIAS = (0.0,) * len(S.GROUP_NAMES)
#: Landmarks that are exactly the body's markers: no bias, tiny noise level (weak prior).
EXACT = S.ShapeConfig(noise_sigma=0.002, length_bias=ZERO_BIAS)
FRAMES = 40
RECOVERY_TOL = 0.05  # betas units
ROBUST_TOL = 0.1  # betas units


@pytest.fixture(scope="module")
def body() -> dict:
    return load_standin_body()


@pytest.fixture(scope="module")
def model(body) -> S.ShapeModel:
    return S.ShapeModel.from_body(body)


@pytest.fixture(scope="module")
def rotations() -> np.ndarray:
    """(FRAMES,24,3,3) smooth random local rotations the fit can represent."""
    pose = interpolate_poses(random_keyposes(np.random.default_rng(7), 5), FRAMES // 4)
    return Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(-1, 24, 3, 3)


def landmarks(body: dict, betas, rotations: np.ndarray, size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Hip-centred world landmarks (T,33,3) of the posed body with these betas, times ``size``,
    and all-ones weights (T,33)."""
    b = np.zeros(10)
    b[: len(betas)] = betas
    _, markers = fit.Skeleton.from_body(body, b).forward(rotations)
    hip = 0.5 * (markers[:, topo.LM["left_hip"]] + markers[:, topo.LM["right_hip"]])
    return size * (markers - hip[:, None]).astype(np.float64), np.ones(markers.shape[:2])


def test_mean_body_gives_zero_betas(body, model, rotations) -> None:
    """Posed markers: only the hip joints' estimate (pelvis frame from the landmarks) is not exact."""
    world, weight = landmarks(body, [], rotations)
    np.testing.assert_allclose(S.estimate_betas(world, weight, model, EXACT), 0.0, atol=0.015)


@pytest.mark.parametrize("betas", [(0, 0, -1.5), (0, 0, 1.0), (0, 1.0, 0, -1.0), (0, 1.5, 0, -1.5)])
def test_known_betas_are_recovered(body, model, rotations, betas) -> None:
    world, weight = landmarks(body, betas, rotations)
    est = S.estimate_betas(world, weight, model, EXACT)
    truth = np.zeros(10)
    truth[: len(betas)] = betas
    np.testing.assert_allclose(est, truth, atol=RECOVERY_TOL)


def test_weight_with_muscle_is_barely_seen_in_the_bones(body, model, rotations) -> None:
    """More weight and more muscle together hardly change the skeleton (hip width +0.4 % per unit):
    that direction is left mostly to the prior, but the estimated body still has the observed
    proportions (group lengths equal up to one overall size, within 0.3 %)."""
    truth = np.r_[0.0, 1.0, 0.0, 1.0, np.zeros(6)]
    world, weight = landmarks(body, truth[:4], rotations)
    est = S.estimate_betas(world, weight, model, EXACT)
    assert 0.5 < est[1] < 0.95 and 0.5 < est[3] < 0.95
    ratio = np.log(model.group_lengths(est)) - np.log(model.group_lengths(truth))
    assert np.ptp(ratio) < 3e-3


def test_overall_size_does_not_change_the_shape(body, model, rotations) -> None:
    """BlazePose's metric size does not follow stature: only proportions count."""
    world, weight = landmarks(body, (0, -1.0, 1.0, 1.0), rotations)
    a = S.estimate_betas(world, weight, model, EXACT)
    b = S.estimate_betas(0.85 * world, weight, model, EXACT)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_default_prior_shrinks_towards_the_mean(body, model, rotations) -> None:
    """With the default (BlazePose) noise level the prior dominates: the estimate moves from 0
    towards the truth, by less than the truth, never past it."""
    truth = np.array([0, 0, 1.5, 0])
    world, weight = landmarks(body, truth, rotations)
    est = S.estimate_betas(world, weight, model, S.ShapeConfig(length_bias=ZERO_BIAS))[:4]
    assert 0.3 < est[2] < 1.5
    assert np.linalg.norm(est - truth) < 0.8 * np.linalg.norm(truth)


def test_estimate_stays_in_the_supported_range(body, model, rotations) -> None:
    world, weight = landmarks(body, [], rotations)
    for side in ("left", "right"):  # absurdly wide hips: far outside what the betas can make
        world[:, topo.LM[f"{side}_hip"], 0] *= 3.0
    est = S.estimate_betas(world, weight, model, EXACT)
    assert np.all(est >= model.bounds[:, 0] - 1e-9) and np.all(est <= model.bounds[:, 1] + 1e-9)
    assert np.isclose(np.abs(est[1:4]).max(), 2.0)  # pinned at a bound


def test_bounds_follow_the_stand_in_phenotype_range(body, model) -> None:
    """Phenotypes in [0, 1] around the base (height 0.375, step 0.05; others 0.5, step ±0.25)."""
    np.testing.assert_allclose(model.bounds[:4], [[-7.5, 12.5], [-2, 2], [-2, 2], [-2, 2]])
    bare = synthetic_body()
    np.testing.assert_allclose(S.beta_bounds(bare, 10), np.tile([-3.0, 3.0], (10, 1)))


def test_height_is_left_to_the_prior_by_default(body, model, rotations) -> None:
    world, weight = landmarks(body, (2.0,), rotations)
    assert S.estimate_betas(world, weight, model, EXACT)[0] == 0.0
    tall = S.estimate_betas(world, weight, model, S.ShapeConfig(slots=(0, 1, 2, 3), noise_sigma=0.002,
                                                                   length_bias=ZERO_BIAS))
    np.testing.assert_allclose(tall[:4], [2.0, 0, 0, 0], atol=0.4)  # proportions only: weakly determined


def test_outlier_frames_barely_move_it(body, model, rotations) -> None:
    """A quarter of the frames confidently wrong (limbs stretched or shrunk by up to 30 %)."""
    betas = (0, -1.0, 1.0, 1.0)
    world, weight = landmarks(body, betas, rotations)
    clean = S.estimate_betas(world, weight, model, EXACT)
    rng = np.random.default_rng(3)
    bad = rng.choice(FRAMES, FRAMES // 4, replace=False)
    world[bad] *= rng.uniform(0.7, 1.3, (bad.size, 33, 1))
    est = S.estimate_betas(world, weight, model, EXACT)
    assert np.abs(est - clean).max() < ROBUST_TOL


def test_unseen_landmarks_are_ignored(body, model, rotations) -> None:
    """Where a landmark is barely seen (visibility·presence 0.2) its position does not count at all:
    garbage there gives exactly the estimate of the true positions, and nearly the full-data one."""
    world, weight = landmarks(body, (0, 1.0, -1.0), rotations)
    full = S.estimate_betas(world, weight, model, EXACT)
    rng = np.random.default_rng(4)
    hidden = rng.random(weight.shape) < 0.3
    weight[hidden] = 0.2
    reference = S.estimate_betas(world, weight, model, EXACT)
    world[hidden] = rng.normal(0.0, 0.5, (hidden.sum(), 3))
    np.testing.assert_array_equal(S.estimate_betas(world, weight, model, EXACT), reference)
    np.testing.assert_allclose(reference, full, atol=0.15)


def test_frames_without_a_pose_are_skipped(body, model, rotations) -> None:
    """NaN frames (no pose found) are left out; the rest give nearly the same estimate."""
    cfg = S.ShapeConfig(length_bias=ZERO_BIAS)
    world, weight = landmarks(body, (0, 1.0, -1.0), rotations)
    clean = S.estimate_betas(world, weight, model, cfg)
    world[::5] = np.nan
    weight[::5] = 0.0
    np.testing.assert_allclose(S.estimate_betas(world, weight, model, cfg), clean, atol=0.02)


def test_too_few_observations_leave_the_mean_shape(body, model, rotations) -> None:
    world, weight = landmarks(body, (0, 1.0), rotations)
    weight[:] = 0.5  # nothing confident
    np.testing.assert_array_equal(S.estimate_betas(world, weight, model, EXACT), np.zeros(10))
    lengths, counts = S.observed_lengths(world, weight, EXACT)
    assert np.isnan(lengths).all() and (counts == 0).all()


def test_body_without_shape_directions_gives_zeros(rotations) -> None:
    body = synthetic_body()  # shapedirs all zero
    model = S.ShapeModel.from_body(body)
    world, weight = landmarks(body, [], rotations)
    np.testing.assert_array_equal(S.estimate_betas(world, weight, model), np.zeros(10))


def test_group_lengths_are_the_skeletons(body, model) -> None:
    """The linear marker model matches the body's skeleton built with those betas (< 0.5 mm)."""
    betas = np.array([1.0, -1.5, 1.0, 2.0, 0, 0, 0, 0, 0, 0])
    _, markers = fit.Skeleton.from_body(body, betas).forward(np.eye(3)[None, None].repeat(24, 1))
    seg = np.linalg.norm(markers[0, S.SEGMENTS[:, 0]] - markers[0, S.SEGMENTS[:, 1]], axis=-1)
    direct = np.bincount(S.SEGMENT_GROUP, seg) / np.bincount(S.SEGMENT_GROUP)
    np.testing.assert_allclose(model.group_lengths(betas), direct, atol=5e-4)


@pytest.fixture(scope="module")
def engine_track(body) -> dict:
    """The backend with shape estimation on, over 12 frames of the demo clip (one man)."""
    from tests.engine.test_blazepose import MAN, read_frame
    from tests.engine.test_blazepose_backend import COUNT, FIRST, HEIGHT, WIDTH
    from vibe_engine.blazepose.backend import BlazePoseBackend

    be = BlazePoseBackend(model="full", body=body, image_size=(WIDTH, HEIGHT), shape=S.ShapeConfig())
    be.start_track(1, MAN)
    for index in range(FIRST, FIRST + COUNT):
        be.add_frame(1, index, read_frame(index), MAN)
    return be.finish_track(1)


def test_engine_writes_the_estimated_shape(body, engine_track) -> None:
    """betas rows = betas_track = the estimate from the track's own landmarks; non-zero in the
    estimated slots only."""
    out = engine_track
    world, weight = out["extra"]["landmarks_world"], out["extra"]["visibility"] * out["extra"]["presence"]
    from vibe_engine.blazepose.fit import mirror_landmarks

    m = out["extra"]["mirrored"]  # the estimate sees the relabelled frames (pooled sides: same lengths)
    world = np.where(m[:, None, None], mirror_landmarks(world, world[..., :2], weight)[0], world)
    expected = S.estimate_betas(world, weight, S.ShapeModel.from_body(body))
    np.testing.assert_allclose(out["betas_track"], expected, atol=1e-6)
    np.testing.assert_array_equal(out["betas"], np.tile(out["betas_track"], (len(out["frames"]), 1)))
    assert np.abs(out["betas_track"][1:4]).max() > 0.01
    assert out["betas_track"][0] == 0.0 and not out["betas_track"][4:].any()


def test_engine_fits_with_the_estimated_skeleton(body, engine_track) -> None:
    """The fitted markers have the bone lengths of the body built with betas_track (knee→ankle,
    elbow→wrist: markers at the joints), which differ from the mean body's by more than 1 mm."""
    markers = engine_track["joints3d"].astype(np.float64)
    _, rest = fit.Skeleton.from_body(body, engine_track["betas_track"]).forward(np.eye(3)[None, None].repeat(24, 1))
    _, mean = fit.Skeleton.from_body(body).forward(np.eye(3)[None, None].repeat(24, 1))
    for a, b in (("left_knee", "left_ankle"), ("right_elbow", "right_wrist")):
        got = np.linalg.norm(markers[:, topo.LM[a]] - markers[:, topo.LM[b]], axis=-1)
        want = np.linalg.norm(rest[0, topo.LM[a]] - rest[0, topo.LM[b]])
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert abs(want - np.linalg.norm(mean[0, topo.LM[a]] - mean[0, topo.LM[b]])) > 1e-3  # not the mean body
