"""Finite-M theory: the t = 0 cutoff law and the split of extreme atoms (theory/finite_m.py,
docs/theory.md §4.1-4.2)."""
import math

import numpy as np
import pytest
from scipy.special import erfc

from theory.errors import InputError
from theory.finite_m import (outlier_eigenvalues, split_extreme_atoms, split_theory, t0_cutoff_law,
                             label_cutoff, t0_prediction)
from theory.measure import CurvatureLaw


def test_label_cutoff_definition():
    for m in (10, 1000, 10**6):
        yc = label_cutoff(m)
        assert m * erfc(yc / math.sqrt(2)) == pytest.approx(1.0, rel=1e-9)
    # y_c^2 = 2 log M - log log M - log pi + o(1) (eq. 4.1)
    m = 10**8
    assert label_cutoff(m) ** 2 == pytest.approx(2 * math.log(m) - math.log(2 * math.log(m)) - math.log(math.pi / 2),
                                                   abs=0.1)
    with pytest.raises(InputError):
        label_cutoff(1)


def test_cutoff_law_moments():
    law = t0_cutoff_law(4.0, 10**6)
    assert law.mu == pytest.approx(16.0, abs=0.01)  # mu = 4 alpha at t = 0 (eq. 1.3)
    assert np.dot(law.weights, law.y ** 2) == pytest.approx(1.0, abs=1e-3)
    assert law.D.min() == pytest.approx(6 * law.yhat.min() ** 2 * 0 - 2 * label_cutoff(10**6) ** 2, rel=0.01)
    with pytest.raises(InputError):
        t0_cutoff_law(4.0, 1000, n_nodes=2)


def test_t0_prediction_drifts_like_log_m():
    """Lowest eigenvalue of the cutoff law goes to -infinity like -c log M, c -> 4 (eq. 4.3)."""
    lows = [t0_prediction(4.0, m).lowest for m in (10**5, 10**7, 10**9)]
    assert lows[0] > lows[1] > lows[2]
    slope = (lows[2] - lows[1]) / math.log(100.0)
    assert -4.2 < slope < -3.0


def test_t0_prediction_follows_the_expansion_at_large_m():
    """Eq. 4.3: lambda_min ~ D_min + 96 alpha / D_min with D_min = -2 y_c^2, up to O(1/D_min^2)."""
    alpha, m = 4.0, 10**9
    p = t0_prediction(alpha, m)
    d_min = -2 * p.y_cut2
    assert p.lowest == pytest.approx(d_min + 96 * alpha / d_min, abs=2.0)


def test_split_finds_planted_outlier_and_its_eigenvalue():
    """One atom far below the rest: split off, and eq. 4.2 gives the eigenvalue of the
    direct diagonalisation of H = (1/N) sum D_m a_m a_m^T - mu I."""
    rng = np.random.default_rng(3)
    n, m = 400, 1600
    D = 1.0 + 0.5 * rng.standard_normal(m)
    D[0] = -15.0
    s = rng.standard_normal(m)
    law = CurvatureLaw.from_samples(D, s, alpha=m / n, mu=0.5)
    rest, D_split = split_extreme_atoms(law)
    assert D_split.tolist() == [-15.0]
    pred = outlier_eigenvalues(rest, D_split)
    A = rng.standard_normal((m, n))
    A[0] *= math.sqrt(n) / np.linalg.norm(A[0])  # |a_0|^2 = N, as in eq. 4.2
    H = (A.T * D) @ A / n - 0.5 * np.eye(n)
    lam = np.linalg.eigvalsh(H)
    assert pred[0] == pytest.approx(lam[0], rel=0.02)
    assert lam[1] > pred[0] + 5  # the rest is a bulk far above
    st = split_theory(law)
    assert st.n_split == 1 and st.outliers[0] == pytest.approx(pred[0])


def test_split_keeps_a_law_without_outliers():
    rng = np.random.default_rng(0)
    law = CurvatureLaw.from_samples(1.0 + 0.1 * rng.standard_normal(2000), rng.standard_normal(2000), alpha=4, mu=0)
    rest, D_split = split_extreme_atoms(law)
    assert D_split.size == 0 and rest is law
    assert outlier_eigenvalues(rest, D_split).size == 0


def test_split_needs_an_empirical_law():
    law = CurvatureLaw(D=np.array([-5.0, 1.0, 2.0]), s=np.zeros(3), weights=np.array([0.2, 0.3, 0.5]), alpha=2, mu=0)
    with pytest.raises(InputError):
        split_extreme_atoms(law)
