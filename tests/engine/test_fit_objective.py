"""vibe_engine.blazepose.objective: the hand-written gradient of the fit's objective against
central finite differences (float64), and the default backend's independence from torch."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from tests.engine.test_fit import make_sequence, synthetic_body
from vibe_engine.blazepose import fit, objective as O

#: Central-difference step and the agreement asked for (relative to the gradient's largest entry).
STEP = 1e-6
REL_TOL = 1e-6


def _problem(cfg: fit.FitConfig, frames: int = 8) -> tuple[O.Problem, np.ndarray]:
    """A short synthetic track with noise, parameters pushed away from the optimum (some hinges
    beyond their limits)."""
    _, obs = make_sequence(seed=3, keys=2, step=frames - 1, noise_m=0.02)
    obs = fit.Observations(obs.world[:frames], obs.image[:frames], obs.weight[:frames] * 0.7, obs.focal_px,
                           obs.cx, obs.cy)
    sk = fit.Skeleton.from_body(synthetic_body())
    loc = fit.initial_rotations(obs.world, sk)
    _, markers = sk.forward(loc)
    prob = O.build_problem(loc, sk, obs, cfg)
    x = O.initial_vector(loc, fit.solve_translation(markers, obs), prob)
    rng = np.random.default_rng(0)
    x = x + 0.05 * rng.standard_normal(x.shape)
    _, flex, _, _ = prob.split(x)
    flex[:, 0] = -0.3 * prob.lever_flex[0]  # a knee bent backwards: the limit term is active
    flex[:, 2] = 3.0 * prob.lever_flex[2]   # an elbow beyond 150°
    return prob, x


def _numeric(prob: O.Problem, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    def total(v: np.ndarray) -> float:
        return sum(O.evaluate(v, prob)[0].values())

    out = []
    for i in idx:
        e = np.zeros_like(x)
        e[i] = STEP
        out.append((total(x + e) - total(x - e)) / (2 * STEP))
    return np.array(out)


def _transl_z(prob: O.Problem, x: np.ndarray) -> np.ndarray:
    """Indices of transl z in x: the 2D term's metres-per-pixel factor uses it without gradient."""
    t, f = prob.frames, len(fit.FREE_JOINTS)
    start = t * f * 3 + t * 4
    return np.arange(start + 2, start + 3 * t, 3)


def test_gradient_matches_finite_differences() -> None:
    prob, x = _problem(fit.FitConfig())
    losses, grad = O.evaluate(x, prob)
    assert all(v > 0 for v in losses.values()), losses  # every term is exercised
    idx = np.setdiff1d(np.arange(x.size), _transl_z(prob, x))
    num = _numeric(prob, x, idx)
    assert np.abs(num - grad[idx]).max() <= REL_TOL * np.abs(num).max()


def test_gradient_of_translation_depth_without_the_2d_term() -> None:
    """With the 2D term off, transl z is an ordinary parameter: its gradient matches too."""
    prob, x = _problem(dataclasses.replace(fit.FitConfig(), w2d=0.0))
    _, grad = O.evaluate(x, prob)
    idx = _transl_z(prob, x)
    num = _numeric(prob, x, idx)
    assert np.abs(num - grad[idx]).max() <= REL_TOL * max(np.abs(num).max(), 1e-9)


@pytest.mark.parametrize("v", [np.zeros(3), np.array([1e-6, -2e-6, 0.5e-6]), np.array([0.3, -1.2, 2.0])])
def test_so3_exp_and_right_jacobian(v: np.ndarray) -> None:
    """exp is a rotation; J_rᵀ matches the finite-difference derivative of a linear functional."""
    r = O.so3_exp(v)
    assert np.allclose(r @ r.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(r), 1.0)
    a = np.random.default_rng(1).standard_normal((3, 3))
    g_omega = O._vee_grad(r, a)  # d/dω <a, R exp(ω)> at 0
    num = np.array([(np.sum(a * O.so3_exp(v + STEP * e)) - np.sum(a * O.so3_exp(v - STEP * e))) / (2 * STEP)
                    for e in np.eye(3)])
    assert np.allclose(O.right_jacobian_t(v, g_omega), num, atol=1e-7)


def test_default_backend_never_imports_torch() -> None:
    """Fit + post-processing modules of the BlazePose path run without loading torch, nor
    ``scipy.stats`` (0.3-0.4 CPU s to import: docs/engine-protocol.md, "CPU budget")."""
    code = (
        "import sys\n"
        "from tests.engine.test_fit import make_sequence, synthetic_body\n"
        "import vibe_engine.cli, vibe_engine.pipeline, vibe_engine.postprocess.run\n"
        "from vibe_engine.blazepose import backend, fit\n"
        "gt, obs = make_sequence(seed=1, keys=2, step=10)\n"
        "res = fit.fit_track(obs, fit.Skeleton.from_body(synthetic_body()), fit.FitConfig(iterations=5))\n"
        "print(res.pose.shape, 'torch' in sys.modules,\n"
        "      'scipy.stats' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"], out.stdout
