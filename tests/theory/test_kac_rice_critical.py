"""Critical points of any index by annealed Kac-Rice (docs/theory.md §8.8-8.9).

Independent routes: (i) l = yhat^2 y^2, whose critical points are the 2N eigenvectors of A
(L = W^T A W / 2): Sigma_tot = 0 and beta = 0 across the spectrum of A, and the index of the
eigenvector at lambda = 2e is the spectral CDF of A, computed here by integrating the §2 bulk
density (eq. 2.10) of the law of D = y^2; (ii) direct diagonalisation of
H = (1/N) sum D_m a_m a_m^T - mu with D_m drawn from the predicted quartic law (eq. 8.14):
index (eq. 8.17) and (1/N) log|det H| (eq. 8.13); (iii) the §2 Stieltjes solver at z = i eta on
the predicted law gives rho = -chi; (iv) dSigma_tot/de = beta by finite differences.
"""
import math

import numpy as np
import pytest

from theory.errors import InputError
from theory.kac_rice import KacRiceQuadrature, SOLVER_TOL, solve_critical_points
from theory.loss import make_loss
from theory.measure import CurvatureLaw
from theory.spectrum import bulk_density, bulk_lower_edge, stieltjes

COARSE = KacRiceQuadrature(n_u=220, n_y=180)
WIDE = KacRiceQuadrature(n_u=240, n_y=180, u_max=8.0)   # the quadratic law has wider u tails
QUADRATIC = make_loss("yhat2y2", "yhat**2*y**2")
# a warm start near the quartic saddle branch at alpha = 4, e = 1.6 (default-grid solution, rounded)
QUARTIC_GUESS = (0.14, 0.17, 0.13, 0.12)


def _gauss_law(alpha, nodes=200):
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    return CurvatureLaw.from_samples(x**2, x, alpha, 0.0, weights=w / w.sum())


@pytest.mark.parametrize("energy", [0.3, 0.6])
def test_quadratic_loss_eigenvectors(energy):
    """Sigma_tot = 0, beta = 0 and index = spectral CDF of A at 2e (closed form, §8.8 check i);
    at e = 0.6 Re chi < 0 (2e above the mean of the spectrum)."""
    alpha = 3.0
    law = _gauss_law(alpha)
    edge = bulk_lower_edge(law).bulk_edge
    chi_ref = -stieltjes(np.array([2 * energy + 1e-12j]), law).g[0]
    # start away from the closed-form root chi = -g_A(2e), c = |chi|^2, beta = 0
    guess = (chi_ref.real + 0.05, 1.2 * chi_ref.imag, 1.3 * abs(chi_ref) ** 2, 0.05)
    p = solve_critical_points(alpha, energy=energy, loss=QUADRATIC, quad=WIDE, guess=guess)
    assert p.converged and p.residual < SOLVER_TOL
    assert abs(p.complexity) < 1e-7
    assert abs(p.beta) < 1e-6
    assert p.c == pytest.approx(abs(p.chi) ** 2, rel=1e-6)
    lam = np.linspace(edge * (1 - 1e-9), 2 * energy, 3001)
    cdf = np.trapezoid(bulk_density(lam, law, strict=False).density, lam)
    assert p.index == pytest.approx(cdf, abs=5e-5)
    assert p.chi.real == pytest.approx(chi_ref.real, abs=1e-6)
    assert p.chi.imag == pytest.approx(chi_ref.imag, abs=1e-6)
    assert (p.chi.real < 0) == (energy == 0.6)


@pytest.fixture(scope="module")
def quartic_saddles():
    return solve_critical_points(4.0, energy=1.6, quad=COARSE, guess=QUARTIC_GUESS)


def test_quartic_direct_diagonalisation(quartic_saddles):
    """Index and log|det| of H at the predicted law against direct diagonalisation (N = 800)."""
    p = quartic_saddles
    assert p.converged and p.residual < SOLVER_TOL and p.chi.imag > 0
    assert p.law["normalisation"] == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(7)
    n, alpha = 800, 4.0
    w = p.atoms["weights"]
    D = p.atoms["D"][rng.choice(w.size, size=int(alpha * n), p=w / w.sum())]
    X = rng.standard_normal((D.size, n))
    ev = np.linalg.eigvalsh((X.T * D) @ X / n - p.mu * np.eye(n))
    assert (ev < 0).mean() == pytest.approx(p.index, abs=0.015)
    assert np.log(np.abs(ev)).mean() == pytest.approx(p.log_abs_det, abs=0.04)
    assert 0.05 < p.index < 0.3          # macroscopic index: a saddle, not a minimum
    assert p.index > p.index_limit > 0


def test_quartic_chi_is_the_stieltjes_root(quartic_saddles):
    """The §2 solver at z = i eta on the predicted law returns rho = -chi (eq. 2.1 at 0 + i0)."""
    p = quartic_saddles
    law = CurvatureLaw.from_samples(p.atoms["D"], p.atoms["y"], 4.0, p.mu, weights=p.atoms["weights"])
    rho = stieltjes(np.array([1e-9j]), law, max_atoms=20000).g[0]
    assert -rho.real == pytest.approx(p.chi.real, abs=2e-4)
    assert -rho.imag == pytest.approx(p.chi.imag, abs=2e-4)


def test_quartic_sigma_slope_is_beta(quartic_saddles):
    """Envelope theorem dSigma_tot/de = beta (eq. 8.16)."""
    p, h = quartic_saddles, 0.01
    g = (p.chi.real, p.chi.imag, p.c, p.beta)
    lo = solve_critical_points(4.0, energy=1.6 - h, quad=COARSE, guess=g)
    hi = solve_critical_points(4.0, energy=1.6 + h, quad=COARSE, guess=g)
    slope = (hi.complexity - lo.complexity) / (2 * h)
    assert slope == pytest.approx(p.beta, abs=2e-5)
    assert lo.index < p.index < hi.index   # the index grows with the energy


def test_bad_input():
    with pytest.raises(InputError):
        solve_critical_points(-1.0)
    with pytest.raises(InputError):
        solve_critical_points(4.0, energy=-0.5)
    with pytest.raises(InputError):
        solve_critical_points(4.0, beta=math.inf)
    with pytest.raises(InputError):
        solve_critical_points(4.0, guess=(0.1, -0.1, 0.1))
    with pytest.raises(InputError):
        solve_critical_points(4.0, loss=make_loss("odd", "(yhat - y)**2"))


@pytest.mark.slow
def test_cli_critical_json(capsys):
    """Slow (~1.5 min): `landscape --critical --json` carries the critical-point numbers."""
    import json

    from theory.cli import main

    assert main(["landscape", "--alpha", "4", "--critical", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert "e_threshold_kr" in rec and rec["e_threshold_kr"] is None   # index > 0 at every energy (§8.9)
    crit = rec["critical"]
    assert crit["converged"] and crit["residual"] < SOLVER_TOL
    assert 0 < rec["e_low_critical"] < rec["e_low"]     # Sigma_tot >= Sigma_min: wider window
    assert crit["index_at_e_low_critical"] > 0
    assert crit["sigma_tot_at_e_typical"] > rec["sigma_typical"]


def test_critical_landscape_bad_input():
    from theory.kac_rice import critical_landscape

    with pytest.raises(InputError):
        critical_landscape(0.0)
    with pytest.raises(InputError):
        critical_landscape(4.0, index_levels=(2.0,))
    with pytest.raises(InputError):
        critical_landscape(4.0, e_min_fraction=1.5)


@pytest.mark.slow
def test_critical_maximum_is_the_top(quartic_saddles):
    """Slow (~30 s): the beta = 0 point is the maximum of Sigma_tot along the walk up (eq. 8.16)."""
    from theory.kac_rice import critical_maximum

    top, walk, msg = critical_maximum(4.0, quartic_saddles, quad=COARSE)
    assert top is not None and top.converged, msg
    assert abs(top.beta) == 0.0 and top.residual < SOLVER_TOL
    assert all(top.complexity >= p.complexity - 1e-12 for p in walk)
    assert walk[-1].beta <= 0 < walk[-2].beta if len(walk) > 1 else walk[-1].beta <= 0
