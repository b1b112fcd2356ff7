"""Slow validation of the random-matrix core (docs/theory.md §2) on a simulator state.

A trapped gradient-flow state at N = 2000, alpha = 4: its full tangent-Hessian spectrum
(dense diagonalisation) against the bulk density predicted from its own empirical measure
(yhat_m, y_m, s_m, mu). Measured (docs/validation.md): Kolmogorov distance 0.0017 and 0.0020
for the two trapped replicas; the predicted edge (-0.06, -0.02) lies 0.1-0.25 below the
lowest eigenvalue (0.05, 0.23): the minimum's lowest modes sit above the free-convolution
edge. About 10 minutes on 2 cores.
"""
import numpy as np
import pytest

from simulation import Integrator, StopRules, full_spectrum, make_problem, random_starts, run_dynamics, state_measure
from theory.measure import Measure
from theory.spectrum import bulk_density, spectrum_summary

pytestmark = pytest.mark.slow


def kolmogorov_to_density(eigenvalues: np.ndarray, x: np.ndarray, density: np.ndarray) -> float:
    """sup |F_emp - F_pred| on the grid x (F_pred by the trapezoid rule)."""
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(x))])
    emp = np.searchsorted(np.sort(eigenvalues), x, side="right") / eigenvalues.size
    return float(np.max(np.abs(cdf - emp)))


def test_trapped_state_spectrum_against_its_own_measure():
    n, alpha, seed = 2000, 4.0, 7
    prob = make_problem(n, alpha, seed)
    res = run_dynamics(prob, random_starts(n, 2, seed), StopRules(t_max=3000, grad_tol=1e-7), Integrator(rtol=1e-5))
    trapped = np.flatnonzero(res.status == "trapped")
    assert trapped.size >= 1, res.status
    for b in trapped:
        w = res.W[:, b]
        lam, _ = full_spectrum(prob, w, k=3)
        sm = state_measure(prob, w)
        m = Measure.empirical(sm.yhat, sm.y, sm.s, alpha=sm.alpha, mu=sm.mu)
        x = np.linspace(lam[0] - 0.5, lam[-1] + 0.5, 4000)
        dens = bulk_density(x, m).density
        assert kolmogorov_to_density(lam, x, dens) <= 0.03
        edge = spectrum_summary(m).bulk_edge
        assert abs(lam[0] - edge) < 0.3
