"""Kac-Rice minima at teacher overlap q != 0 (docs/theory.md §8.10, theory/kac_rice.py).

Independent routes: (i) a loss that does not depend on y, l = (yhat^2 - 1)^2, for which the
signal is irrelevant: in the fields (yhat, s) the law factorises, the gradient along the signal
vanishes with tau = 0, and Sigma(e, q) = Sigma(e, 0) + 1/2 log(1 - q^2) exactly (eq. 8.22),
computed on the two different grids (the quadrant at q = 0, the half plane with phi_q at q);
(ii) the half-plane grid at q = 1e-8 against the quadrant grid at q = 0 (quartic loss);
(iii) the symmetry q -> -q; (iv) the envelope dSigma/dq (eq. 8.23) against finite differences
of Sigma - beta e at fixed beta. A coarse grid keeps the file to a few seconds.
"""
import math

import numpy as np
import pytest

from theory.errors import InputError
from theory.kac_rice import KacRiceQuadrature, SOLVER_TOL, landscape, solve_at_energy, solve_kac_rice
from theory.loss import make_loss

COARSE = KacRiceQuadrature(n_u=220, n_y=180)
Y_FREE = make_loss("yfree", "(yhat**2 - 1)**2")


@pytest.fixture(scope="module")
def quartic_q0():
    return solve_kac_rice(4.0, 0.2, quad=COARSE)


def test_signal_free_loss_is_pure_entropy():
    """l independent of y: Sigma(beta, q) - Sigma(beta, 0) = 1/2 log(1 - q^2), same energy, tau = 0,
    dSigma/dq = -q / (1 - q^2)."""
    base = solve_kac_rice(3.0, 0.2, loss=Y_FREE, quad=COARSE, guess=(0.2, 0.01, 0.1))
    assert base.converged
    for q in (0.4, -0.7):
        pt = solve_kac_rice(3.0, 0.2, loss=Y_FREE, quad=COARSE, overlap=q, guess=base.guess)
        assert pt.converged and pt.residual < SOLVER_TOL
        assert pt.complexity - base.complexity == pytest.approx(0.5 * math.log(1 - q * q), abs=1e-10)
        assert pt.energy == pytest.approx(base.energy, abs=1e-11)
        assert abs(pt.tau) < 1e-9
        assert pt.dsigma_doverlap == pytest.approx(-q / (1 - q * q), abs=1e-9)


def test_half_plane_grid_continues_the_quadrant(quartic_q0):
    """q = 1e-8 (half plane, phi_q, tau solved) against q = 0 (quadrant, tau = 0)."""
    p0 = quartic_q0
    p1 = solve_kac_rice(4.0, 0.2, quad=COARSE, overlap=1e-8, guess=p0.guess)
    assert p1.converged and p1.branch == p0.branch == "marginal"
    assert p1.energy == pytest.approx(p0.energy, abs=1e-8)
    assert p1.complexity == pytest.approx(p0.complexity, abs=1e-8)
    assert p1.bbp_residual == pytest.approx(p0.bbp_residual, abs=1e-7)
    assert abs(p1.tau) < 1e-6 and abs(p1.dsigma_doverlap) < 1e-6
    assert p0.overlap == 0.0 and p0.tau == 0.0 and p0.dsigma_doverlap == 0.0


def test_overlap_symmetry_and_constraints(quartic_q0):
    q = 0.3
    plus = solve_kac_rice(4.0, 0.2, quad=COARSE, overlap=q, guess=quartic_q0.guess)
    minus = solve_kac_rice(4.0, 0.2, quad=COARSE, overlap=-q, guess=quartic_q0.guess)
    assert plus.converged and minus.converged
    assert plus.residual < SOLVER_TOL
    assert abs(plus.residuals["gradient_signal"]) < SOLVER_TOL
    assert minus.complexity == pytest.approx(plus.complexity, abs=1e-12)
    assert minus.energy == pytest.approx(plus.energy, abs=1e-12)
    assert minus.tau == pytest.approx(-plus.tau, abs=1e-10)
    assert minus.dsigma_doverlap == pytest.approx(-plus.dsigma_doverlap, abs=1e-10)
    # the law: normalised, correlated with the teacher like the prior phi_q only in sign
    assert plus.law["normalisation"] == pytest.approx(1.0, abs=1e-12)
    assert plus.law["mean_yhat_y"] * q > 0
    w, u, y, s = (plus.atoms[k] for k in ("weights", "yhat", "y", "s"))
    assert np.allclose(s, (y - q * u) / math.sqrt(1 - q * q))
    quartic_dv = 2 * u * (u**2 - y**2)
    assert abs(float(w @ (quartic_dv * s))) < 1e-9          # the gradient along e vanishes (eq. 8.21)
    assert np.all(1 + plus.chi * plus.curvature_law.D > 0)   # support of eq. 8.6


@pytest.mark.parametrize("beta,q", [(0.0, 0.15), (0.3, 0.25)])
def test_overlap_envelope_matches_finite_differences(quartic_q0, beta, q):
    """eq. 8.23: d(Sigma - beta e)/dq at fixed beta = dSigma/dq at fixed e."""
    h = 1e-4
    mid = solve_kac_rice(4.0, beta, quad=COARSE, overlap=q, guess=quartic_q0.guess)
    lo = solve_kac_rice(4.0, beta, quad=COARSE, overlap=q - h, guess=mid.guess)
    hi = solve_kac_rice(4.0, beta, quad=COARSE, overlap=q + h, guess=mid.guess)

    def g(p):
        return p.complexity - beta * p.energy

    assert (g(hi) - g(lo)) / (2 * h) == pytest.approx(mid.dsigma_doverlap, abs=1e-7)


def test_solve_at_energy_keeps_the_overlap(quartic_q0):
    pt = solve_at_energy(4.0, quartic_q0.energy, quad=COARSE, overlap=0.2)
    assert pt.converged and pt.overlap == 0.2
    assert pt.energy == pytest.approx(quartic_q0.energy, abs=1e-9)


def test_bad_overlap():
    for q in (1.0, -1.0, 1.5, float("nan"), "x"):
        with pytest.raises(InputError):
            solve_kac_rice(4.0, overlap=q, quad=COARSE)
    with pytest.raises(InputError):
        landscape(4.0, overlap=2.0, quad=COARSE)


def test_cli_bad_overlap_one_line(capsys):
    from theory.cli import main
    from theory.errors import run_cli

    for argv in (["landscape", "--alpha", "4", "--overlap", "1"],
                 ["landscape", "--alpha", "4", "--overlap", "0.2", "--critical"]):
        code = run_cli(main, argv)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, (argv, err)


@pytest.mark.parametrize("beta,q", [(0.0, 0.15), (0.1, 0.5)])
def test_restricted_envelope_matches_finite_differences(beta, q):
    """Minima on the sub-sphere of overlap q (eq. 8.24): eq. 8.25 against finite differences."""
    h = 1e-4
    mid = solve_kac_rice(4.0, beta, quad=COARSE, overlap=q, restricted=True)
    lo = solve_kac_rice(4.0, beta, quad=COARSE, overlap=q - h, restricted=True, guess=mid.guess)
    hi = solve_kac_rice(4.0, beta, quad=COARSE, overlap=q + h, restricted=True, guess=mid.guess)
    assert mid.converged and mid.restricted and mid.tau == 0.0
    assert mid.residuals["gradient_signal"] is None      # free on the sub-sphere, not an equation

    def g(p):
        return p.complexity - beta * p.energy

    assert (g(hi) - g(lo)) / (2 * h) == pytest.approx(mid.dsigma_doverlap, abs=1e-7)
    # the Hessian multiplier of the sub-sphere: alpha E[V' (yhat - q y)] / (1 - q^2) (eq. 8.24)
    w, u, y = (mid.atoms[k] for k in ("weights", "yhat", "y"))
    dv = 2 * u * (u**2 - y**2)
    assert mid.mu == pytest.approx(4.0 * float(w @ (dv * (u - q * y))) / (1 - q * q), rel=1e-10)


def test_restricted_equals_whole_sphere_at_q0(quartic_q0):
    r = solve_kac_rice(4.0, 0.2, quad=COARSE, restricted=True, guess=quartic_q0.guess)
    assert r.energy == pytest.approx(quartic_q0.energy, abs=1e-12)
    assert r.complexity == pytest.approx(quartic_q0.complexity, abs=1e-12)


def test_overlap_curvature():
    """d^2 Sigma/dq^2 at q = 0: -1 exactly for the y-free loss (the area term alone); for the quartic
    the Richardson value from eq. 8.23 against a second difference of Sigma(e, q) itself."""
    from theory.kac_rice import overlap_curvature

    free = overlap_curvature(3.0, 0.3, loss=Y_FREE, quad=COARSE)
    assert free["converged"] and free["value"] == pytest.approx(-1.0, abs=1e-5)
    assert free["residual"] < 1e-3
    c = overlap_curvature(4.0, 1.5, quad=COARSE)
    s = [solve_at_energy(4.0, 1.5, quad=COARSE, overlap=q).complexity for q in (0.0, 0.05, 0.1)]
    second = (4 * 2 * (s[1] - s[0]) / 0.05**2 - 2 * (s[2] - s[0]) / 0.1**2) / 3
    assert c["value"] == pytest.approx(second, abs=2e-5)
    assert c["value"] < -0.1
    with pytest.raises(InputError):
        overlap_curvature(4.0, 1.5, quad=COARSE, h=0.5)


@pytest.mark.slow
def test_cli_json_at_an_overlap(capsys):
    """Slow (~20 s): the landscape command at q = 0.2 on the default grid."""
    import json

    from theory.cli import main

    assert main(["landscape", "--alpha", "4", "--overlap", "0.2", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["converged"] and rec["overlap"] == 0.2 and rec["restricted"] is False
    assert rec["e_low"] < rec["e_typical"] < rec["e_high"]
    assert abs(rec["residuals"]["gradient_signal"]) < SOLVER_TOL
    assert rec["dsigma_doverlap"] < 0 and rec["tau"] != 0
