"""alpha_BBP(t) and the growth exponent from laws along trajectories (experiments/bbp.py,
docs/theory.md §4.3-4.4)."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from experiments.bbp import (bbp_report, crossing_alpha, growth_rate, load_points, plot_alpha_bbp_diagram,
                             plot_alpha_bbp_t, run_point, save_point)

RESULTS = Path(__file__).resolve().parents[2] / "results"


def test_growth_rate_averages_uninformed_trajectories():
    q = np.array([[0.01, 0.1, 0.5], [0.02, 0.2, 0.25]])
    iso = np.array([[-2.0, np.nan, -9.0], [-4.0, 3.0, -1.0]])
    r, cnt = growth_rate({"q": q, "iso": iso})
    # t0: mean(2, 4); t1: rates 0 (no spike) and 0 (positive iso); t2: only the second is uninformed
    np.testing.assert_allclose(r, [3.0, 0.0, 1.0])
    assert cnt.tolist() == [2, 2, 1]
    r, cnt = growth_rate({"q": np.full((2, 1), 0.9), "iso": np.full((2, 1), -1.0)})
    assert np.isnan(r[0]) and cnt[0] == 0


def test_crossing_alpha():
    assert crossing_alpha([2.0, 4.0, 6.0], [1.0, 2.0, 4.0], 3.0) == pytest.approx(5.0)
    assert math.isnan(crossing_alpha([2.0, 4.0], [1.0, 2.0], 5.0))


def synthetic_points(times, alphas, n=400, starts=3):
    """Residual R = alpha - 3 - 10 t on every trajectory (alpha_BBP(t) = 3 + 10 t),
    lambda_iso = -alpha/2 where R > 0, |q| small throughout."""
    t = np.asarray(times)
    data = {}
    for a in alphas:
        bbp = np.tile(a - 3.0 - 10.0 * t, (starts, 1))
        iso = np.where(bbp > 0, -a / 2, np.nan)
        data[(n, a)] = {"q": np.full_like(bbp, 0.01), "iso": iso, "bbp": bbp}
    return data


def test_bbp_report_on_a_known_law(tmp_path):
    times = [0.0, 0.05, 0.1, 0.2]
    alphas = [2.0, 3.0, 4.0, 5.0, 6.0]
    q_star = 0.6744897501960817 * math.exp(0.5) / 20.0   # eq. 4.8 target Lambda = 0.5 at N = 400
    res = bbp_report(synthetic_points(times, alphas), times, q_star=q_star)
    r = res["by_n"][400]
    np.testing.assert_allclose(r["alpha_bbp_t"], [3.0, 3.5, 4.0, 5.0])
    # Lambda(alpha) = trapezoid of alpha/2 over the times where R > 0 (integrand 0 elsewhere), by hand
    np.testing.assert_allclose(r["Lambda"], [0.0, 0.0, 0.15, 0.375, 0.6], atol=1e-12)
    assert r["alpha_c_pred"] == pytest.approx(5.0 + (0.5 - 0.375) / (0.6 - 0.375))
    np.testing.assert_allclose(r["p_pred"], [math.erfc(q_star * 20.0 * math.exp(-lam) / math.sqrt(2))
                                             for lam in r["Lambda"]], rtol=1e-12)
    assert r["starts"] == [3] * 5 and np.shape(r["frac_iso"]) == (5, 4)
    assert r["frac_iso"][0] == [0.0, 0.0, 0.0, 0.0] and r["frac_iso"][-1] == [1.0, 1.0, 1.0, 1.0]
    plot_alpha_bbp_diagram(res, 400, tmp_path / "d.png")
    plot_alpha_bbp_t(res, tmp_path / "t.png")
    assert (tmp_path / "d.png").stat().st_size > 1000 and (tmp_path / "t.png").stat().st_size > 1000


def test_run_point_save_and_load(tmp_path):
    times = (0.0, 0.02, 0.1)
    d = run_point(40, 4.0, 2, times)
    assert all(v.shape == (2, 3) for v in d.values())
    assert np.all(np.abs(d["q"][:, 0]) < 0.5) and np.all(d["energy"][:, 0] > d["energy"][:, -1])
    save_point(tmp_path, 40, 4.0, d, times)
    back = load_points(tmp_path)[(40, 4.0)]
    np.testing.assert_array_equal(back["iso"], d["iso"])
    prov = json.loads(str(back["provenance"]))
    assert prov["starts"] == 2 and prov["n"] == 40 and "package_version" in prov


@pytest.mark.skipif(not (RESULTS / "bbp_t_16").is_dir(), reason="results/bbp_t_16 not present")
def test_stored_runs_reproduce_the_validation_table():
    """docs/validation.md, alpha_BBP(t) from 16 trajectories per (N, alpha), t = 0.01..0.3."""
    res = bbp_report(load_points(RESULTS / "bbp_t_16"))
    times = res["times"]
    cols = [times.index(t) for t in (0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)]
    table = {512: [2.02, 2.20, 2.50, 2.99, 3.72, 4.45, 5.84, 7.10, 7.60],
             1024: [2.31, 2.45, 2.78, 3.29, 4.08, 4.93, 6.57, 7.26, 7.86]}
    for n, row in table.items():
        got = [res["by_n"][n]["alpha_bbp_t"][k] for k in cols]
        assert got == pytest.approx(row, abs=0.005 + 1e-9)
