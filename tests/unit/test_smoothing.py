"""Local-fit smoothing of rotations and vectors: known answers (constant, step, wrap, swing, line, depth)."""
import numpy as np
import pytest

from vibe_blender.core.rotations import aa_to_quat, quat_continuity
from vibe_engine.postprocess.smoothing import smooth_rotations, smooth_translation, smooth_vectors

FPS = 30.0


def _times(n, fps=FPS):
    return np.arange(n) / fps


def test_constant_rotation_passes_unchanged():
    pose = np.tile(np.array([0.3, -1.2, 1.9]), (50, 24, 1))
    out = smooth_rotations(pose, _times(50))
    np.testing.assert_allclose(out, pose, atol=1e-12)


def test_constant_rotation_beyond_pi_is_the_same_rotation():
    pose = np.tile(np.array([0.3, -1.2, 2.9]), (20, 2, 1))  # angle 3.15 rad > π
    q_in, q_out = aa_to_quat(pose), aa_to_quat(smooth_rotations(pose, _times(20)))
    np.testing.assert_allclose(np.abs(np.sum(q_in * q_out, -1)), 1.0, atol=1e-12)


def test_constant_vector_passes_unchanged():
    x = np.tile([1.0, -2.0, 4.5], (40, 1))
    np.testing.assert_allclose(smooth_vectors(x, _times(40)), x, atol=1e-12)


def test_step_is_not_overshot_and_monotone():
    x = np.zeros((90, 1))
    x[45:] = 1.0
    y = smooth_vectors(x, _times(90))[:, 0]
    assert y.min() >= -1e-12 and y.max() <= 1 + 1e-12
    assert np.all(np.diff(y) >= -1e-12)
    assert abs(y[0]) < 1e-3 and abs(y[-1] - 1.0) < 1e-3


def test_rotation_step_is_not_overshot():
    angle = np.where(np.arange(60) < 30, 0.0, 1.0)
    pose = np.zeros((60, 1, 3))
    pose[:, 0, 2] = angle
    out = smooth_rotations(pose, _times(60))
    assert np.all(np.abs(out[:, 0, :2]) < 1e-12)
    z = out[:, 0, 2]
    assert z.min() >= -1e-12 and z.max() <= 1 + 1e-12 and np.all(np.diff(z) >= -1e-12)


def test_rotations_stay_unit_and_continuous_through_pi():
    # A slow spin about z through ±π: axis-angle flips sign at π, the smoothed rotation must not.
    theta = np.linspace(2.8, 3.5, 60)
    wrapped = np.where(theta > np.pi, theta - 2 * np.pi, theta)
    pose = np.zeros((60, 1, 3))
    pose[:, 0, 2] = wrapped
    out = smooth_rotations(pose, _times(60))
    q = quat_continuity(aa_to_quat(out), axis=0)[:, 0]
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    steps = 2 * np.arccos(np.clip(np.sum(q[1:] * q[:-1], -1), -1, 1))
    assert steps.max() < 1.5 * (0.7 / 59)  # never a jump; at most the input's angular speed, with slack
    np.testing.assert_allclose(np.abs(out[:, 0, 2]), np.abs(wrapped), atol=0.02)


def test_swing_amplitude_kept_and_jitter_removed():
    rng = np.random.default_rng(0)
    t = _times(300)
    clean = 0.8 * np.sin(2 * np.pi * 1.0 * t)  # a 1 Hz arm swing, ±0.8 rad
    pose = np.zeros((300, 1, 3))
    pose[:, 0, 0] = clean + rng.normal(0, 0.03, 300)
    out = smooth_rotations(pose, t)[:, 0, 0]
    kept = (out[30:-30].max() - out[30:-30].min()) / (clean[30:-30].max() - clean[30:-30].min())
    assert kept >= 0.9
    accel = lambda x: np.abs(np.diff(x, 2))
    assert accel(out - clean).mean() < 0.4 * accel(pose[:, 0, 0] - clean).mean()


def test_frame_rate_independent():
    # Times, not frame indices, drive the filter: 30 and 60 fps samplings of one signal agree.
    f = lambda t: np.stack([np.sin(3 * t), np.cos(2 * t)], 1)
    t30, t60 = _times(60, 30.0), _times(120, 60.0)
    y30, y60 = smooth_vectors(f(t30), t30), smooth_vectors(f(t60), t60)
    np.testing.assert_allclose(y30[5:-5], y60[::2][5:-5], atol=0.02)


def test_straight_line_and_uneven_timestamps_pass_unchanged():
    # Uniform motion is a polynomial of degree 1: the local quadratic fit reproduces it exactly,
    # also with dropped frames (uneven timestamps).
    t = np.sort(np.random.default_rng(1).choice(np.arange(90) / FPS, 60, replace=False))
    x = np.stack([0.5 * t, 2.0 - 0.3 * t, 4.0 + 0.1 * t], 1)
    np.testing.assert_allclose(smooth_vectors(x, t), x, atol=1e-9)


def test_root_depth_smoothed_more_than_lateral():
    # Same noise on x and on depth z: the depth comes out much calmer, a lateral swing keeps its range.
    rng = np.random.default_rng(2)
    t = _times(150)
    clean = np.stack([0.3 * np.sin(2 * np.pi * t), np.zeros_like(t), 5.0 + 0.2 * t], 1)
    noisy = clean + rng.normal(0, 0.02, clean.shape)
    out = smooth_translation(noisy, t)
    err = lambda k: np.abs(np.diff(out[:, k] - clean[:, k], 2)).mean()
    assert err(2) < 0.5 * err(0)
    assert np.ptp(out[15:-15, 0]) > 0.9 * np.ptp(clean[15:-15, 0])


def test_timestamps_must_match_and_not_decrease():
    x = np.zeros((5, 3))
    for bad in (np.arange(4) / FPS, np.array([0.0, 0.1, 0.05, 0.2, 0.3])):
        with pytest.raises(ValueError):
            smooth_vectors(x, bad)


def test_chunked_fit_equals_whole(monkeypatch):
    from vibe_engine.postprocess import smoothing

    pose = np.random.default_rng(3).normal(0, 0.5, (50, 3, 3))
    whole = smooth_rotations(pose, _times(50))
    monkeypatch.setattr(smoothing, "CHUNK_FRAMES", 7)
    np.testing.assert_array_equal(smooth_rotations(pose, _times(50)), whole)
