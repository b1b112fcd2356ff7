"""The flow held at teacher overlap q (experiments/overlap.py) and its comparison helper.

The fixed-overlap flow is the orthogonal protocol with a shifted loss; checked here: the
shifted loss and its yhat-derivative against the quartic at the shifted prediction (finite
differences), the overlap held exactly, the gradient on the sub-sphere ~0 at the stop, and
q = 0 reproducing the orthogonal protocol on the same data and starts.
"""
import math

import numpy as np
import pytest

from experiments.overlap import fixed_overlap_loss, overlap_compare, simulate_fixed_overlap
from theory.loss import QUARTIC


def test_fixed_overlap_loss_is_the_quartic_at_the_shifted_prediction():
    rng = np.random.default_rng(1)
    yhat, y = rng.standard_normal((2, 50))
    for q in (0.0, 0.35):
        r = math.sqrt(1 - q * q)
        loss = fixed_overlap_loss(q)
        assert np.allclose(loss.V(yhat, y), QUARTIC.V(q * y + r * yhat, y), rtol=1e-12)
        h = 1e-6
        fd = (loss.V(yhat + h, y) - loss.V(yhat - h, y)) / (2 * h)
        assert np.allclose(loss.dV(yhat, y), fd, rtol=1e-6, atol=1e-8)


def test_flow_holds_the_overlap_and_stops_on_the_subsphere():
    run = simulate_fixed_overlap(200, 4.0, 0.3, 2, t_max=500.0)
    assert run["status"] == ["trapped", "trapped"]
    assert np.allclose(run["q"], 0.3, atol=1e-6)
    assert max(run["subsphere_grad_norm"]) < 1e-3
    # on the sub-sphere the gradient along the signal is free (eq. 8.24): not 0
    assert min(abs(g) for g in run["grad_signal"]) > 1e-2


def test_q0_is_the_orthogonal_protocol():
    from experiments.threshold import RTOL, point_seed
    from simulation import Integrator, StopRules, make_problem, random_starts, run_dynamics

    run = simulate_fixed_overlap(200, 4.0, 0.0, 2, t_max=500.0)
    seed = point_seed(200, 4.0, "orthogonal")
    prob = make_problem(200, 4.0, seed=seed, dtype="float32")
    ref = run_dynamics(prob, random_starts(200, 2, seed=seed, dtype="float32"), StopRules(t_max=500.0),
                       Integrator(rtol=RTOL), protocol="orthogonal")
    assert np.allclose(run["energy"], ref.energy, atol=1e-4)


def test_overlap_compare_shifts():
    pred = [{"alpha": 4.0, "overlap": q, "e_restricted": e, "mu_restricted": m, "sigma_restricted": 0.1}
            for q, e, m in ((0.0, 1.6, -0.9), (0.4, 1.3, -0.5))]
    runs = [{"alpha": 4.0, "overlap": 0.0, "status": ["trapped", "trapped", "failed"], "energy": [1.4, 1.6, 9.0],
             "mu_restricted": [-1.0, -1.2, 0.0]},
            {"alpha": 4.0, "overlap": 0.4, "status": ["trapped", "trapped"], "energy": [1.1, 1.2],
             "mu_restricted": [-0.4, -0.6]}]
    rows = {r["overlap"]: r for r in overlap_compare(pred, runs)}
    assert rows[0.0]["trapped"] == 2 and rows[0.0]["e_sim"] == pytest.approx(1.5)
    assert rows[0.4]["shift_e_sim"] == pytest.approx(-0.35)
    assert rows[0.4]["shift_e_kr"] == pytest.approx(-0.3)
    assert rows[0.4]["shift_mu_sim"] == pytest.approx(0.6)
    assert rows[0.4]["e_sim_se"] == pytest.approx(0.05)
