"""theory.statistics against independent routes: scipy's binomial and KS statistics,
synthetic data with known parameters, exact lines."""
import numpy as np
import pytest
from scipy import stats

from theory.statistics import (binomial_standard_error, cluster_bootstrap, cluster_proportion, extrapolate_in_n,
                               fit_logistic, kolmogorov_distance, standard_error, wilson_interval)


def test_wilson_interval_matches_scipy():
    for k, n in ((3, 10), (0, 64), (64, 64), (17, 40)):
        lo, hi = wilson_interval(k, n, z=1.96)
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert lo == pytest.approx(ci.low, abs=2e-4) and hi == pytest.approx(ci.high, abs=2e-4)


def test_binomial_standard_error():
    assert binomial_standard_error(16, 64) == pytest.approx(np.sqrt(0.25 * 0.75 / 64))
    assert binomial_standard_error(0, 64) == pytest.approx(64 ** -1.5)
    with pytest.raises(ValueError):
        binomial_standard_error(0, 0)


def test_fit_logistic_recovers_known_parameters():
    rng = np.random.default_rng(0)
    alphas = np.linspace(3.0, 8.0, 11)
    m = np.full(alphas.size, 4000)
    p = 1 / (1 + np.exp(-(alphas - 5.2) / 0.6))
    k = rng.binomial(m, p)
    ac, w, se = fit_logistic(alphas, k, m)
    assert abs(ac - 5.2) < 3 * se and se < 0.02
    assert w == pytest.approx(0.6, rel=0.05)


def test_extrapolate_in_n_exact_line_and_chi2():
    ns = np.array([500, 1000, 2000, 4000])
    means = 1.5 + 30.0 / ns
    fit = extrapolate_in_n(ns, means, np.full(4, 0.01))
    assert fit["a"] == pytest.approx(1.5, abs=1e-10) and fit["b"] == pytest.approx(30.0, abs=1e-7)
    assert fit["chi2_per_dof"] == pytest.approx(0.0, abs=1e-12)
    assert extrapolate_in_n(ns[:2], means[:2], np.full(2, 0.01))["chi2_per_dof"] is None


def test_kolmogorov_distance_matches_ks_2samp_and_weights():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=300), rng.normal(0.3, 1.0, size=500)
    assert kolmogorov_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    # a weighted law: atoms 0 and 1 with weights 0.8 / 0.2 against a sample all at 0
    assert kolmogorov_distance(np.zeros(10), np.array([0.0, 1.0]), np.array([0.8, 0.2])) == pytest.approx(0.2)


def test_standard_error_matches_scipy_sem():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(7, 3))
    assert np.allclose(standard_error(x), stats.sem(x, axis=0), rtol=1e-14)
    assert standard_error([1.0, 2.0, 3.0, 4.0]) == pytest.approx(stats.sem([1.0, 2.0, 3.0, 4.0]))


def test_cluster_error_matches_the_spread_over_repeated_experiments():
    """Clusters with their own success probability (Beta-distributed, strong intra-cluster
    correlation): the cluster-robust and bootstrap errors estimate the true spread of P over
    repeated experiments; the binomial error underestimates it."""
    rng = np.random.default_rng(0)
    C, B, reps = 12, 16, 1500
    ps, ses, boots = [], [], []
    for r in range(reps):
        pc = rng.beta(2.0, 2.0, size=C)
        s = rng.random((C, B)) < pc[:, None]
        p, se = cluster_proportion(s)
        ps.append(p)
        ses.append(se)
        if r < 100:
            boots.append(cluster_bootstrap(s, reps=300, seed=r)[1])
    true = np.std(ps)
    assert np.mean(ses) == pytest.approx(true, rel=0.1)
    assert np.mean(boots) == pytest.approx(true, rel=0.15)
    assert np.sqrt(0.25 / (C * B)) < 0.7 * true  # the binomial error would claim too much


def test_cluster_proportion_with_one_start_per_cluster_is_binomial():
    s = np.array([[1], [0], [1], [1], [0], [0], [1], [1]], bool)
    p, se = cluster_proportion(s)
    assert p == 5 / 8 and se == pytest.approx(np.sqrt(p * (1 - p) / 8 * 8 / 7))
    assert np.isnan(cluster_proportion(s[:1])[1])
