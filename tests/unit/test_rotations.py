"""Rotation conversions against known answers, round trips and the 0 / π edge cases."""
import numpy as np
import pytest

from vibe_blender.core import rotations as rot

S = np.sqrt(0.5)


@pytest.mark.parametrize("aa,quat", [
    ([0, 0, 0], [1, 0, 0, 0]),
    ([np.pi / 2, 0, 0], [S, S, 0, 0]),
    ([0, np.pi, 0], [0, 0, 1, 0]),
    ([0, 0, -np.pi / 2], [S, 0, 0, -S]),
])
def test_known_quaternions(aa, quat):
    np.testing.assert_allclose(rot.aa_to_quat(aa), quat, atol=1e-15)
    np.testing.assert_allclose(rot.quat_to_aa(quat), aa, atol=1e-12)


def test_known_matrix_z90():
    m = rot.aa_to_matrix([0, 0, np.pi / 2])
    np.testing.assert_allclose(m @ [1, 0, 0], [0, 1, 0], atol=1e-15)  # x → y
    np.testing.assert_allclose(rot.matrix_to_quat(m), [S, 0, 0, S], atol=1e-15)


def _random_aa(n, max_angle, seed=0):
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    return axis * rng.uniform(0, max_angle, (n, 1))


def test_round_trips_batched():
    aa = _random_aa(2000, np.pi - 1e-3).reshape(20, 100, 3)
    np.testing.assert_allclose(rot.quat_to_aa(rot.aa_to_quat(aa)), aa, atol=1e-12)
    np.testing.assert_allclose(rot.matrix_to_aa(rot.aa_to_matrix(aa)), aa, atol=1e-9)
    m = rot.aa_to_matrix(aa)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-14)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-14)


def test_rodrigues_matches_closed_form():
    aa = _random_aa(50, 3.0, seed=1)
    theta = np.linalg.norm(aa, axis=1)
    k = aa / theta[:, None]
    kx = np.zeros((50, 3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    kx -= np.swapaxes(kx, 1, 2)
    ref = np.eye(3) + np.sin(theta)[:, None, None] * kx + (1 - np.cos(theta))[:, None, None] * kx @ kx
    np.testing.assert_allclose(rot.aa_to_matrix(aa), ref, atol=1e-14)


@pytest.mark.parametrize("angle", [0.0, 1e-12, 1e-8, 1e-7, 2e-6])
def test_tiny_angles(angle):
    aa = np.array([angle, -angle, 0.5 * angle])
    np.testing.assert_allclose(rot.quat_to_aa(rot.aa_to_quat(aa)), aa, atol=1e-20, rtol=1e-9)
    m = rot.aa_to_matrix(aa)
    np.testing.assert_allclose(rot.matrix_to_aa(m), aa, atol=1e-15)
    assert np.all(np.isfinite(m))


@pytest.mark.parametrize("axis", [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [-1, 2, 0.5]])
def test_half_turn(axis):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    m = rot.aa_to_matrix(np.pi * axis)
    np.testing.assert_allclose(m, 2 * np.outer(axis, axis) - np.eye(3), atol=1e-15)
    back = rot.matrix_to_aa(m)
    assert np.linalg.norm(back) == pytest.approx(np.pi, abs=1e-12)
    np.testing.assert_allclose(np.abs(back @ axis), np.pi, atol=1e-12)  # ±axis: same rotation


def test_quat_to_aa_takes_short_way():
    q = -rot.aa_to_quat([0.3, 0, 0])  # same rotation, other hemisphere
    np.testing.assert_allclose(rot.quat_to_aa(q), [0.3, 0, 0], atol=1e-14)
    np.testing.assert_allclose(rot.quat_to_aa(2.5 * q), [0.3, 0, 0], atol=1e-14)  # any norm


def test_multiply_composes_like_matrices():
    a, b = rot.aa_to_quat(_random_aa(30, 3, seed=2)), rot.aa_to_quat(_random_aa(30, 3, seed=3))
    np.testing.assert_allclose(rot.quat_to_matrix(rot.quat_multiply(a, b)),
                               rot.quat_to_matrix(a) @ rot.quat_to_matrix(b), atol=1e-14)


def test_continuity_removes_sign_flips():
    q = rot.aa_to_quat(np.linspace([0, 0, 0], [0, 0, 3], 40))[:, None, :].repeat(2, axis=1)
    flips = np.where(np.random.default_rng(0).random((40, 2)) < 0.5, -1.0, 1.0)
    fixed = rot.quat_continuity(q * flips[..., None], axis=0)
    assert (np.sum(fixed[1:] * fixed[:-1], -1) > 0).all()
    np.testing.assert_allclose(fixed, q * flips[0][None, :, None], atol=0)  # first sample kept
    np.testing.assert_allclose(rot.quat_continuity(fixed.swapaxes(0, 1), axis=1), fixed.swapaxes(0, 1))


def test_zero_quaternion_is_rejected():
    with pytest.raises(ValueError, match="zero-length"):
        rot.quat_to_matrix([0, 0, 0, 0])
