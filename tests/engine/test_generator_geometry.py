"""Rotation maths of the generator against independent numpy code and known rotations."""
import numpy as np
import pytest
import torch

from vibe_engine.models.geometry import axis_angle_to_rotmat, rot6d_to_rotmat, rotmat_to_axis_angle


def np_rodrigues(aa: np.ndarray) -> np.ndarray:
    """(…,3) axis-angle → (…,3,3), float64, plain numpy."""
    out = np.empty(aa.shape[:-1] + (3, 3))
    for idx in np.ndindex(aa.shape[:-1]):
        v = aa[idx]
        theta = np.linalg.norm(v)
        k = v / theta if theta > 0 else np.zeros(3)
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        out[idx] = np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx
    return out


def np_rot6d(x: np.ndarray) -> np.ndarray:
    """VIBE's 6D → matrix: 3×2 row-major view, Gram-Schmidt with eps 1e-6, b3 = b1×b2."""
    m = x.reshape(-1, 3, 2)
    out = []
    for a in m:
        b1 = a[:, 0] / max(np.linalg.norm(a[:, 0]), 1e-6)
        u = a[:, 1] - (b1 @ a[:, 1]) * b1
        b2 = u / max(np.linalg.norm(u), 1e-6)
        out.append(np.stack([b1, b2, np.cross(b1, b2)], axis=1))
    return np.array(out)


def test_rot6d_known_rotations():
    # identity, 180° about x (SPIN's mean global orientation) and 90° about z
    six = torch.tensor([[1, 0, 0, 1, 0, 0], [1, 0, 0, -1, 0, 0], [0, -1, 1, 0, 0, 0]], dtype=torch.float64)
    expected = np.array([np.eye(3), np.diag([1.0, -1, -1]), [[0, -1, 0], [1, 0, 0], [0, 0, 1]]])
    np.testing.assert_allclose(rot6d_to_rotmat(six).numpy(), expected, atol=1e-12)


def test_rot6d_random_matches_numpy_and_is_orthonormal():
    x = np.random.default_rng(0).standard_normal((500, 6))
    r = rot6d_to_rotmat(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(r, np_rot6d(x), atol=1e-12)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)


def test_rot6d_float32_batch_shape():
    x = torch.randn(2, 5, 24, 6)
    assert rot6d_to_rotmat(x).shape == (2, 5, 24, 3, 3)


def _axes(n: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((n, 3))
    return a / np.linalg.norm(a, axis=1, keepdims=True)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-6, 1e-4, 0.3, 1.0, 2.5, np.pi - 1e-2,
                                   np.pi - 1e-4, np.pi - 1e-6, np.pi])
def test_axis_angle_round_trip(angle):
    aa = _axes(64, 1) * angle
    r = np_rodrigues(aa)
    out = rotmat_to_axis_angle(torch.from_numpy(r)).numpy()
    assert np.isfinite(out).all()
    norms = np.linalg.norm(out, axis=1)
    assert (norms <= np.pi + 1e-9).all()
    np.testing.assert_allclose(norms, angle, atol=1e-7)
    np.testing.assert_allclose(np_rodrigues(out), r, atol=1e-7)
    if angle < np.pi - 1e-3:  # away from π the axis is unique
        np.testing.assert_allclose(out, aa, atol=1e-7)


def test_axis_angle_float32_near_pi_and_zero_no_nan():
    aa = np.concatenate([_axes(200, 2) * (np.pi - 1e-4), _axes(200, 3) * 1e-7, _axes(200, 4) * np.pi])
    r32 = torch.from_numpy(np_rodrigues(aa)).float()
    out = rotmat_to_axis_angle(r32).double().numpy()
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np_rodrigues(out), np_rodrigues(aa), atol=2e-6)


def test_axis_angle_random_rotations_match_rodrigues_inverse():
    rng = np.random.default_rng(5)
    aa = _axes(1000, 6) * rng.uniform(0, np.pi, (1000, 1))
    out = rotmat_to_axis_angle(torch.from_numpy(np_rodrigues(aa))).numpy()
    np.testing.assert_allclose(out, aa, atol=1e-9)
    np.testing.assert_allclose(axis_angle_to_rotmat(torch.from_numpy(aa)).numpy(), np_rodrigues(aa), atol=1e-12)
