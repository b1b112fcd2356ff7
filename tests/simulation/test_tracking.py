"""The bridge from a flow to the theory (simulation/tracking.py, docs/theory.md §4):
states at exact times and the empirical law of a state."""
import math

import numpy as np
import pytest

from simulation.data import make_problem, random_starts
from simulation.flow import StopRules, run_dynamics
from simulation.landscape import evaluate
from simulation.tracking import law_at_state, states_at_times
from theory.errors import InputError


def test_states_at_times_is_the_flow():
    """Segmenting at recording times gives the same states as one uninterrupted flow."""
    p = make_problem(96, 5.0, 11)
    w0 = random_starts(96, 1, 11)[:, 0]
    states = dict(states_at_times(p, w0, [0.0, 0.7, 1.5]))
    assert list(states) == [0.0, 0.7, 1.5]
    np.testing.assert_allclose(states[0.0], w0 * math.sqrt(96) / np.linalg.norm(w0))
    r = run_dynamics(p, w0[:, None], StopRules(t_max=1.5, success_overlap=1.0, energy_tol=0.0, grad_tol=0.0),
                     times=np.array([0.0]))
    assert np.linalg.norm(states[1.5] - r.W[:, 0]) / math.sqrt(96) < 1e-4


def test_states_at_times_keeps_a_batch_and_rejects_bad_times():
    p = make_problem(40, 3.0, 2)
    W0 = random_starts(40, 3, 2)
    (_, W), = states_at_times(p, W0, [0.3])
    assert W.shape == (40, 3)
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), math.sqrt(40), rtol=1e-6)
    with pytest.raises(InputError):
        next(states_at_times(p, W0, [0.5, 0.1]))


def test_law_at_state_atoms():
    """Atoms (yhat, y, s) = (x.w, x.w*, sqrt(N) x.e), e the unit part of w* orthogonal to w;
    D = 6 yhat^2 - 2 y^2 for the quartic loss; alpha = M/N and the state's mu (eq. 1.3)."""
    n = 50
    p = make_problem(n, 4.0, 5)
    w = random_starts(n, 1, 9)[:, 0]
    w *= math.sqrt(n) / np.linalg.norm(w)
    law = law_at_state(p, w)
    X = np.asarray(p.X, dtype=np.float64)
    e = p.w_star - (p.w_star @ w / n) * w
    e /= np.linalg.norm(e)
    np.testing.assert_allclose(law.yhat, X @ w, rtol=1e-12)
    np.testing.assert_allclose(law.y, X @ p.w_star, rtol=1e-12)
    np.testing.assert_allclose(np.abs(law.s), np.abs(math.sqrt(n) * X @ e), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(law.curvature_law().D, 6 * law.yhat ** 2 - 2 * law.y ** 2, rtol=1e-10, atol=1e-12)
    assert law.alpha == pytest.approx(4.0)
    assert law.mu == pytest.approx(float(evaluate(p, w[:, None]).mu[0]), rel=1e-12)
