"""Batched starts (simulation.batched): cluster statistics against Monte Carlo, resumable point files."""
import numpy as np
import pytest

from simulation.batched import cluster_bootstrap, cluster_proportion, point_success, read_point, run_point
from simulation.flow import Integrator, StopRules
from theory.errors import InputError

STOP = StopRules(t_max=100, success_overlap=0.9)
INTEG = Integrator(rtol=1e-2, atol=1e-3)


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


def test_run_point_resumes_and_refuses_other_parameters(tmp_path):
    out = tmp_path / "p.nc"
    ds = run_point(out, 32, 5.0, [11, 12], 3, STOP, INTEG)
    assert ds["status"].shape == (2, 3) and not np.any(ds["status"].values == "pending")
    again = run_point(out, 32, 5.0, [11, 12], 3, STOP, INTEG)  # nothing to run: same numbers
    assert np.array_equal(again["final_overlap"].values, ds["final_overlap"].values)
    res = point_success(read_point(out))
    assert res["starts"] == 6 and 0 <= res["p"] <= 1
    with pytest.raises(InputError):
        run_point(out, 32, 6.0, [11, 12], 3, STOP, INTEG)
