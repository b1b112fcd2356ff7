"""The escape mechanism (theory/escape.py, docs/theory.md §4.4, eqs. 4.5-4.8)."""
import math

import numpy as np
import pytest

from theory.errors import InputError
from theory.escape import (MEDIAN_ABS_NORMAL, check_times, growth_exponent, integrated_growth,
                           mechanism_probability, mechanism_target)


@pytest.mark.parametrize("bad", [[], [1.0, 0.5], [-1.0, 2.0], [0.0, float("nan")], [0.0, 0.0], ["a"]])
def test_check_times_rejects(bad):
    with pytest.raises(InputError):
        check_times(bad)


def test_check_times_accepts_a_scalar_and_lists():
    assert check_times(0.0).tolist() == [0.0]
    assert check_times((0, 0.5, 2)).dtype == np.float64


def test_growth_exponent_trapezoid_and_stop_at_informed():
    t = [0.0, 1.0, 2.0, 3.0]
    iso = [-2.0, -2.0, None, 5.0]  # None and positive values count as rate 0
    lam, t_end = growth_exponent(t, iso)
    assert lam == pytest.approx(2.0 + 1.0) and t_end == 3.0
    lam, t_end = growth_exponent(t, iso, q=[0.01, 0.1, 0.5, 0.9])
    assert lam == pytest.approx(2.0) and t_end == 1.0
    lam, t_end = growth_exponent(t, iso, q=[0.5, 0.1, 0.1, 0.1])  # informed from the start
    assert lam == 0.0 and t_end == 0.0
    with pytest.raises(InputError):
        growth_exponent(t, iso[:3])


def test_integrated_growth_is_the_integral_of_the_rate():
    """Eq. 4.6 on a fine grid: int_0^2 (1 + t^2) dt = 2 + 8/3."""
    t = np.linspace(0.0, 2.0, 2001)
    assert integrated_growth(t, 1.0 + t * t) == pytest.approx(2.0 + 8.0 / 3.0, rel=1e-6)


def test_integrated_growth_stops_at_the_first_nan():
    t = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert integrated_growth(t, [1.0, 3.0, np.nan, 5.0, 5.0]) == pytest.approx(2.0)
    assert integrated_growth(t, [1.0, np.nan, 3.0, 5.0, 5.0]) == 0.0  # fewer than two points before the NaN
    with pytest.raises(InputError):
        integrated_growth(t, [1.0, 2.0])


@pytest.mark.parametrize("lam, n, q_star", [(2.0, 512, 0.27), (3.5, 1024, 1.0), (0.5, 128, 0.1)])
def test_mechanism_probability_against_monte_carlo(lam, n, q_star):
    """Eq. 4.7 against a direct Monte Carlo of P(|z| e^Lambda / sqrt(N) >= q*), z ~ N(0, 1)."""
    z = np.random.default_rng(7).standard_normal(400_000)
    hit = np.abs(z) * math.exp(lam) / math.sqrt(n) >= q_star
    p_mc = hit.mean()
    se = math.sqrt(max(p_mc * (1 - p_mc), 1e-12) / z.size)
    assert float(mechanism_probability(lam, n, q_star)) == pytest.approx(p_mc, abs=4 * se + 1e-6)


def test_mechanism_probability_is_vectorised_and_monotone():
    p = mechanism_probability([0.0, 1.0, 2.0, 3.0, 6.0], 512, 0.1)
    assert p.shape == (5,) and np.all(np.diff(p) > 0) and p[-1] > 0.99


def test_mechanism_target_is_where_the_median_start_succeeds():
    """Eq. 4.8: Lambda = log(q* sqrt N / Phi^-1(3/4)); there P(success) = 1/2, and
    Phi^-1(3/4) is the median of |z| (checked by sampling)."""
    z = np.abs(np.random.default_rng(1).standard_normal(1_000_001))
    assert MEDIAN_ABS_NORMAL == pytest.approx(np.median(z), abs=3e-3)
    assert MEDIAN_ABS_NORMAL == pytest.approx(0.6744897501960817, rel=1e-12)
    for n, q_star in ((128, 1.0), (1024, 0.27)):
        target = mechanism_target(n, q_star)
        assert target == pytest.approx(math.log(q_star * math.sqrt(n) / 0.6744897501960817), rel=1e-12)
        assert float(mechanism_probability(target, n, q_star)) == pytest.approx(0.5, abs=1e-12)
