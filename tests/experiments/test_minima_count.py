"""Direct count of minima at small N (experiments/minima_count.py): Newton refinement and
deduplication on a tiny problem, and the table's arithmetic."""
import math

import numpy as np
import pytest

from experiments.minima_count import count_minima, count_table, newton_refine
from theory.loss import QUARTIC


def test_newton_returns_a_perturbed_minimum_to_itself():
    rec = count_minima(10, 4.0, 7, 60)
    assert rec["minima"], rec
    assert sum(m["hits"] for m in rec["minima"]) + rec["saddles"] + rec["unrefined"] == rec["starts"]
    assert all(m["hessian_min"] > 0 for m in rec["minima"])
    energies = sorted(m["energy"] for m in rec["minima"])
    assert all(b - a > 1e-9 for a, b in zip(energies, energies[1:]))   # distinct minima, distinct energies
    # rebuild the reduced data set and refine a perturbed copy of a minimum found by the flow
    from simulation import make_problem, random_starts, run_dynamics, StopRules, Integrator
    from simulation.protocols import OrthogonalComplement

    prob = make_problem(10, 4.0, seed=7, dtype="float64")
    comp = OrthogonalComplement.of(prob)
    w0 = comp.reduce(random_starts(10, 1, seed=8, dtype="float64"))
    w = run_dynamics(comp.problem, w0, StopRules(success_overlap=1.0), Integrator()).W[:, 0]
    X, y = comp.problem.X, comp.problem.y
    base = newton_refine(X, y, w, QUARTIC)
    kick = newton_refine(X, y, w + 1e-3 * np.random.default_rng(0).standard_normal(w.size), QUARTIC)
    assert base["converged"] and kick["converged"] and base["grad_norm"] < 1e-11
    assert abs(base["w"] @ kick["w"]) / w.size == pytest.approx(1.0, abs=1e-12)
    assert kick["steps"] <= 8                                          # quadratic convergence


def test_count_table_slopes():
    recs = [{"n": n, "starts": 10, "new_in_last_half": 0,
             "minima": [{"energy": 1.0 + 0.1 * i, "hits": 1 + i} for i in range(k)]}
            for n, k in ((10, 2), (10, 4), (20, 9), (20, 27))]
    rows = count_table(recs, sigma_typical=0.1)
    assert rows[0]["mean_count"] == 3 and rows[1]["mean_count"] == 18
    assert rows[1]["slope_annealed"] == pytest.approx((math.log(18) - math.log(3)) / 10)
    q0, q1 = (math.log(2) + math.log(4)) / 2, (math.log(9) + math.log(27)) / 2
    assert rows[1]["slope_quenched"] == pytest.approx((q1 - q0) / 10)
    e = np.array([1.0, 1.1, 1.0, 1.1, 1.2, 1.3])
    h = np.array([1, 2, 1, 2, 3, 4])
    assert rows[0]["e_over_minima"] == pytest.approx(e.mean())
    assert rows[0]["e_over_starts"] == pytest.approx((e * h).sum() / h.sum())
    r1 = (1.0 * 1 + 1.1 * 2) / 3 / 1.05
    r2 = (1.0 + 2.2 + 3.6 + 5.2) / 10 / 1.15
    assert rows[0]["ratio_starts_to_minima"] == pytest.approx((r1 + r2) / 2)
