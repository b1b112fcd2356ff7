"""Tests of theory.spectral_start (docs/theory.md §6) against independent numerics.

Direct diagonalisation: the spectral matrix S = (1/M) sum_m T(y_m) a_m a_m^T is built
here without the package's simulator, a_m = (y_m, g_m) with the signal along the first
coordinate and g_m ~ N(0, I_{N-1}); its top eigenvector comes from eigsh on the operator
(never the N x N matrix). The labels sit at the normal quantiles (randomly permuted), as
in tests/theory/test_spectrum.py: this removes the O(M^(-1/2)) sampling noise of the law
of y and leaves the random-matrix fluctuations the formulas are about. The comparison is
absolute on overlap^2 (|measured - predicted| <= 0.03).
"""
import json
import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.sparse.linalg import LinearOperator, eigsh
from scipy.special import ndtri

from theory.cli import main
from theory.errors import InputError, run_cli
from theory.spectral_start import (
    PREPROCESSINGS,
    get_preprocessing,
    label_cutoff,
    overlap2,
    spectral_law,
    spectral_prediction,
    weak_recovery_threshold,
)

N = 2000


def direct_overlap2(preprocess: str, alpha: float, n: int, seed: int) -> tuple[float, float]:
    """(overlap^2 of the top eigenvector with e_1, top eigenvalue) of S at quantile labels."""
    rng = np.random.default_rng(seed)
    m = round(alpha * n)
    y = rng.permutation(ndtri((np.arange(m) + 0.5) / m))
    A = rng.standard_normal((m, n))
    A[:, 0] = y
    T = get_preprocessing(preprocess)(y, alpha) / m
    op = LinearOperator((n, n), matvec=lambda v: A.T @ (T * (A @ np.ravel(v))), dtype=float)
    vals, vecs = eigsh(op, k=1, which="LA", v0=np.ones(n), tol=1e-7)
    return float(vecs[0, 0] ** 2), float(vals[0])


@pytest.mark.parametrize("preprocess, alpha", [
    ("mondelli-montanari", 2.0),
    ("luo-alghamdi-lu", 2.0),
    ("trimmed", 6.0),
])
def test_overlap_against_direct_diagonalisation(preprocess, alpha):
    pred = spectral_prediction(preprocess, alpha)
    assert pred.converged and pred.top_eigenvalue is not None
    q2, top = direct_overlap2(preprocess, alpha, N, seed=1)
    assert abs(q2 - pred.overlap2) <= 0.03, (q2, pred.overlap2)
    assert abs(top - pred.top_eigenvalue) <= 0.03 * abs(pred.top_eigenvalue), (top, pred.top_eigenvalue)


def test_plain_finite_m_against_direct_diagonalisation():
    """T = y^2 at N = 1000, alpha = 12: the cutoff law (labels |y| <= y_c(M)) predicts the spike."""
    n, alpha = 1000, 12.0
    pred = spectral_prediction("plain", alpha, m=int(alpha * n))
    assert pred.top_eigenvalue is not None
    q2, _ = direct_overlap2("plain", alpha, n, seed=2)
    assert abs(q2 - pred.overlap2) <= 0.03, (q2, pred.overlap2)


@pytest.mark.slow
@pytest.mark.parametrize("preprocess, alphas", [
    ("mondelli-montanari", (0.8, 1.5, 3.0)),
    ("luo-alghamdi-lu", (0.8, 1.5, 3.0)),
    ("trimmed", (3.0, 6.0)),
])
def test_overlap_against_direct_diagonalisation_seeds(preprocess, alphas):
    for alpha in alphas:
        pred = spectral_prediction(preprocess, alpha)
        q2 = np.mean([direct_overlap2(preprocess, alpha, N, seed)[0] for seed in range(3)])
        assert abs(q2 - pred.overlap2) <= 0.03, (alpha, q2, pred.overlap2)


def test_plain_overlap_vanishes_at_fixed_alpha_as_m_grows():
    """Eq. 6.6: the cutoff law's spike disappears once y_c(M)^2 outgrows it (alpha = 4)."""
    o = [spectral_prediction("plain", 4.0, m=int(4 * n)).overlap2 for n in (250, 2000, 16000)]
    assert o[0] > o[1] > 0.0 and o[2] == 0.0
    assert spectral_prediction("plain", 4.0).overlap2 == 0.0
    assert spectral_prediction("plain", 4.0).bulk_edge is None


def test_mondelli_montanari_edge_is_one_over_alpha():
    """With b = sqrt(2 alpha), alpha E[(T/(1 - T))^2] = 2 alpha / b^2 = 1: the edge of eq. 2.4
    sits at lambda = sup T = 1, where the top of the bulk is psi(1) = 1/alpha (eq. 6.4)."""
    for alpha in (0.8, 2.0, 5.0):
        assert spectral_prediction("mondelli-montanari", alpha).bulk_edge == pytest.approx(1 / alpha, rel=1e-6)


def test_mondelli_montanari_bbp_residual_is_sqrt_2alpha_minus_1():
    """At the edge lambda_e = 1 (rho_e = -alpha), G = (y^2 - 1)/sqrt(2 alpha) and eq. 2.9 is
    alpha E[(y^2 - 1) G] - 1 = sqrt(2 alpha) - 1: the threshold alpha_w = 1/2 in closed form (eq. 6.7)."""
    for alpha in (0.6, 0.8, 2.0, 5.0):
        p = spectral_prediction("mondelli-montanari", alpha)
        assert p.rho_edge == pytest.approx(-alpha, rel=1e-9)
        assert p.bbp_residual == pytest.approx(math.sqrt(2 * alpha) - 1, rel=1e-9)


def test_overlap2_equals_eigenvector_overlap_at_root():
    p = spectral_prediction("luo-alghamdi-lu", 1.5)
    assert overlap2("luo-alghamdi-lu", 1.5) == pytest.approx(p.overlap2, rel=1e-10)


def test_overlap2_by_quad_in_mondelli_montanari_variables():
    """Eqs. 6.3-6.5 by adaptive quadrature (no core, no composite rule): trimmed at alpha = 6."""
    alpha, tau2 = 6.0, 9.0
    def phi(y):
        return math.exp(-y * y / 2) / math.sqrt(2 * math.pi)

    def E(f):  # E over y ~ N(0,1) of f(y) 1{y^2 <= 9}: T = y^2 there, 0 outside (f(0) terms vanish)
        return 2 * quad(lambda y: f(y) * phi(y), 0, 3, limit=200)[0]

    def spike(lam):
        return E(lambda y: y * y * (y * y - 1) / (lam - y * y)) - 1 / alpha
    lam = brentq(spike, tau2 + 1e-9, 1e4)
    G2 = E(lambda y: (y * y / (lam - y * y)) ** 2)
    sG2 = E(lambda y: y * y * (y * y / (lam - y * y)) ** 2)
    q2 = (1 - alpha * G2) / (1 - alpha * G2 + alpha * sG2)
    top = lam / alpha + lam * E(lambda y: y * y / (lam - y * y))
    pred = spectral_prediction("trimmed", alpha)
    assert pred.overlap2 == pytest.approx(q2, abs=1e-6)
    assert pred.top_eigenvalue == pytest.approx(top, rel=1e-6)


def test_alpha_w_of_mondelli_montanari_family_tends_to_one_half():
    a6 = weak_recovery_threshold("mondelli-montanari:0.6")
    a51 = weak_recovery_threshold("mondelli-montanari:0.51")
    a5001 = weak_recovery_threshold("mondelli-montanari:0.5001")
    assert all(r.converged for r in (a6, a51, a5001))
    assert a6.alpha_w > a51.alpha_w > a5001.alpha_w >= 0.5 - 1e-9
    assert abs(a5001.alpha_w - 0.5) < 1e-4
    assert abs(a6.alpha_w - 0.5) > 1e-2  # the limit is approached, not built in


def test_alpha_w_is_where_the_spike_appears():
    r = weak_recovery_threshold("trimmed")
    assert r.converged and abs(r.residual) < 1e-10
    assert spectral_prediction("trimmed", r.alpha_w * 0.98).top_eigenvalue is None
    assert spectral_prediction("trimmed", r.alpha_w * 1.02).top_eigenvalue is not None


def test_plain_has_no_threshold_without_n():
    r = weak_recovery_threshold("plain", strict=False)
    assert not r.converged and r.alpha_w is None and "unbounded" in r.message


def test_law_mapping():
    law = spectral_law("trimmed", 3.0, m=1000)
    assert law.mu == 0.0 and law.alpha == 3.0
    assert np.allclose(law.D, -get_preprocessing("trimmed")(law.s, 3.0) / 3.0)
    assert np.abs(law.s).max() <= label_cutoff(1000)
    assert law.weights.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("spec", ["nonsense", "y**2 +", "y*z", "3", "mondelli-montanari:0.4",
                                  "mondelli-montanari:x", ""])
def test_bad_preprocessing_is_one_line_input_error(spec):
    with pytest.raises(InputError) as info:
        get_preprocessing(spec)
    assert "\n" not in str(info.value)


def test_formula_and_names():
    assert set(PREPROCESSINGS) >= {"plain", "trimmed", "mondelli-montanari", "luo-alghamdi-lu"}
    f = get_preprocessing("y**2 * Heaviside(9 - y**2, 0)")
    y = np.array([0.5, 2.9, 3.1])
    assert np.array_equal(f(y, 1.0), get_preprocessing("trimmed")(y, 1.0))
    assert f.breakpoints(1.0) == [-3.0, 0.0, 3.0]


def test_cli_json(capsys):
    assert main(["spectral-init", "--preprocess", "mondelli-montanari", "--alpha", "2", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["alpha_w"] == pytest.approx(0.5, abs=1e-6)
    assert rec["overlap2"] == pytest.approx(spectral_prediction("mondelli-montanari", 2.0).overlap2)
    assert rec["converged"] is True


def test_cli_bad_preprocessing_exit_2(capsys):
    assert run_cli(main, ["spectral-init", "--preprocess", "bogus", "--alpha", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown preprocessing" in err
