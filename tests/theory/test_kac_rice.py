"""Kac-Rice landscape of the minima (docs/theory.md §8, theory/kac_rice.py).

Independent routes: (i) a loss whose critical points are known exactly, l = yhat^2 y^2,
for which L = W^T A W / 2 and the only minima are the lowest eigenvectors of A: the annealed
complexity of minima must vanish at e = lambda_min(A)/2 (the §2 edge of the law of D = y^2)
and be negative below; (ii) the log-determinant formula (eq. 8.4) against the integral of
log(lambda) over the bulk density of the §2 core (Stieltjes transform off the axis);
(iii) dSigma/de = beta (eq. 8.11) by finite differences; (iv) the §2 core applied to the
predicted law finds the bulk edge at 0 with rho_e = -chi on the marginal branch.
Fast tests use a coarse grid (a few seconds in all); the refinement check is slow.
"""
import json
import math

import numpy as np
import pytest

from theory.errors import InputError
from theory.kac_rice import (KacRiceQuadrature, SOLVER_TOL, kac_rice_loss, landscape, log_det,
                             solve_kac_rice)
from theory.loss import make_loss
from theory.measure import CurvatureLaw
from theory.spectrum import bulk_density, bulk_lower_edge

COARSE = KacRiceQuadrature(n_u=220, n_y=180)
QUADRATIC = make_loss("yhat2y2", "yhat**2*y**2")


def _gauss_law(alpha, mu=0.0, nodes=200):
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    return CurvatureLaw.from_samples(x**2, x, alpha, mu, weights=w / w.sum())


def test_quadratic_loss_minima_at_lowest_eigenvalue():
    """l = yhat^2 y^2: Sigma_min = 0 exactly at e = lambda_min(A)/2 (c = chi^2, kappa = 0, edge 0),
    Sigma < 0 and a gapped Hessian below; chi = -rho_e of the §2 edge of the law of D = y^2."""
    alpha = 3.0
    edge = bulk_lower_edge(_gauss_law(alpha))
    chi = -edge.rho_edge
    top = solve_kac_rice(alpha, 0.0, loss=QUADRATIC, branch="interior", guess=(1.3 * chi, 0.0, 1.5 * chi**2))
    assert top.residual < SOLVER_TOL
    assert abs(top.complexity) < 1e-7
    assert top.energy == pytest.approx(edge.bulk_edge / 2, rel=1e-6)
    assert top.chi == pytest.approx(chi, rel=1e-5)   # y-grid trapezoid vs Gauss-Hermite
    assert top.c == pytest.approx(top.chi**2, rel=1e-6)
    assert abs(top.bulk_edge) < 1e-6
    below = solve_kac_rice(alpha, 0.3, loss=QUADRATIC, branch="interior", guess=top.guess)
    assert below.energy < top.energy
    assert below.complexity < -1e-5
    assert below.bulk_edge > 1e-5


def test_log_det_against_density_integral():
    """eq. 8.4: (1/N) log det H from the closed form against int log(lambda) rho(lambda)."""
    law = _gauss_law(2.5, mu=-0.3, nodes=20)
    e = bulk_lower_edge(law)
    assert e.bulk_edge > 0.1
    x = e.bulk_edge + np.geomspace(1e-7, 40.0, 6001)
    dens = bulk_density(x, law, strict=False).density
    mass = np.trapezoid(dens, x)
    integral = np.trapezoid(dens * np.log(x), x)
    assert mass == pytest.approx(1.0, abs=2e-3)
    assert log_det(law) == pytest.approx(integral, abs=5e-3)


@pytest.fixture(scope="module")
def quartic_point():
    return solve_kac_rice(4.0, 0.0, quad=COARSE)


def test_quartic_typical_point_is_marginal(quartic_point):
    p = quartic_point
    assert p.converged and p.branch == "marginal" and p.kappa > 0
    assert p.residual < SOLVER_TOL
    assert abs(p.bulk_edge) < 1e-8                     # the §2 core on the law, eq. 8.8
    assert abs(p.residuals["rho_edge_plus_chi"]) < 1e-8
    assert p.complexity > 0
    assert p.atoms["weights"].sum() == pytest.approx(1.0, abs=1e-12)
    assert p.law["normalisation"] == pytest.approx(1.0, abs=1e-12)
    # the mass lives where the Hessian is defined: 1 + chi D > 0 on every atom (eq. 2.5)
    assert np.all(1 + p.chi * p.curvature_law.D > 0)
    # mu is the law's own multiplier alpha E[u V'] (eq. 1.3)
    w, u, y = p.atoms["weights"], p.atoms["yhat"], p.atoms["y"]
    assert p.mu == pytest.approx(4.0 * float(w @ (u * 2 * u * (u**2 - y**2))), rel=1e-12)


def test_sigma_slope_is_beta(quartic_point):
    """Envelope theorem: dSigma/de = beta (eq. 8.11)."""
    b, h = 0.1, 0.002
    lo = solve_kac_rice(4.0, b - h, quad=COARSE, guess=quartic_point.guess)
    hi = solve_kac_rice(4.0, b + h, quad=COARSE, guess=quartic_point.guess)
    slope = (hi.complexity - lo.complexity) / (hi.energy - lo.energy)
    assert slope == pytest.approx(b, abs=3e-5)


def test_bad_input():
    with pytest.raises(InputError):
        solve_kac_rice(0.0)
    with pytest.raises(InputError):
        solve_kac_rice(-1.0)
    with pytest.raises(InputError):
        kac_rice_loss(make_loss("odd", "(yhat - y)**2"))
    with pytest.raises(InputError):
        solve_kac_rice(4.0, branch="nope")
    with pytest.raises(InputError):
        landscape(4.0, energy=-1.0)
    with pytest.raises(InputError):
        KacRiceQuadrature(n_u=3)


def test_cli_bad_input_one_line(capsys):
    from theory.cli import main
    from theory.errors import run_cli

    for argv in (["landscape", "--alpha", "-1"], ["landscape", "--alpha", "4", "--loss", "nope"],
                 ["landscape", "--alpha", "4", "--energy", "0"], ["landscape"]):
        try:
            code = run_cli(main, argv)
        except SystemExit as exc:   # argparse usage errors exit directly
            code = exc.code
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, (argv, err)


@pytest.mark.slow
def test_cli_json_and_refinement(capsys):
    """Slow (~2 min): the JSON of the command, and energy / Sigma at beta = 0 stable under
    1.5x refinement of the default grid."""
    from theory.cli import main

    assert main(["landscape", "--alpha", "4", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    for key in ("e_low", "e_high", "e_marginal", "e_typical", "sigma_typical", "law", "bulk_edge",
                "isolated_eigenvalue", "overlap2", "residuals", "converged"):
        assert key in rec
    assert rec["converged"] and rec["e_low"] < rec["e_typical"]
    base = solve_kac_rice(4.0)
    fine = solve_kac_rice(4.0, quad=KacRiceQuadrature().refined(1.5), guess=base.guess)
    assert fine.energy == pytest.approx(base.energy, abs=1e-4)
    assert fine.complexity == pytest.approx(base.complexity, abs=1e-5)
    assert math.isfinite(base.bbp_residual)
