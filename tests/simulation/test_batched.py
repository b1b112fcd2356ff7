"""Batched starts (simulation.batched): resumable point files (the cluster statistics are
tested in tests/theory/test_statistics.py)."""
import numpy as np
import pytest

from simulation.batched import point_success, read_point, run_point
from simulation.flow import Integrator, StopRules
from theory.errors import InputError

STOP = StopRules(t_max=100, success_overlap=0.9)
INTEG = Integrator(rtol=1e-2, atol=1e-3)


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


# ------------------------------------------------------------------ independent batching
def _alone_and_batched(n, alpha, seed, B, dtype):
    from simulation.data import make_problem, random_starts
    from simulation.flow import run_dynamics

    problem = make_problem(n, alpha, seed, dtype)
    W0 = random_starts(n, B, seed, dtype)
    batch = run_dynamics(problem, W0, STOP, INTEG, times=np.array([0.0]), batching="independent")
    alone = [run_dynamics(problem, W0[:, b:b + 1], STOP, INTEG, times=np.array([0.0])) for b in range(B)]
    return batch, alone


def test_independent_batch_follows_each_start_alone():
    # every replica of an independent batch makes the steps of its run alone (the default,
    # non-batched runner): same status and evaluations, stop times and overlaps to rounding
    batch, alone = _alone_and_batched(96, 5.0, 3, 5, "float64")
    assert len(set(batch.extra["replica_evaluations"])) > 1  # the starts differ in stiffness
    for b, r in enumerate(alone):
        assert batch.status[b] == r.status[0]
        assert batch.extra["replica_evaluations"][b] == r.gradient_evaluations
        assert abs(batch.stop_time[b] - r.stop_time[0]) <= 1e-9 * max(1.0, r.stop_time[0])
        assert abs(batch.q[b] - r.q[0]) <= 1e-10
    # the batch's products: its largest stage count per step, at most the sum over starts
    assert max(batch.extra["replica_evaluations"]) <= batch.gradient_evaluations
    assert batch.gradient_evaluations <= sum(r.gradient_evaluations for r in alone)


def test_shared_batch_costs_every_start_the_stiffest_stages():
    # the contrast that motivates "independent": with one shared stage count a start takes
    # at least as many evaluations as alone, and some take more
    from simulation.data import make_problem, random_starts
    from simulation.flow import run_dynamics

    problem = make_problem(96, 5.0, 3, "float64")
    W0 = random_starts(96, 5, 3, "float64")
    shared = run_dynamics(problem, W0, STOP, INTEG, times=np.array([0.0]))
    _, alone = _alone_and_batched(96, 5.0, 3, 5, "float64")
    own = np.array([r.gradient_evaluations for r in alone])
    assert np.sum(shared.extra["replica_evaluations"]) > np.sum(own)


def test_evaluate_with_transposed_copy_matches():
    from simulation.data import make_problem
    from simulation.landscape import evaluate, hessian_vector_product

    problem = make_problem(50, 4.0, 1, "float64")
    rng = np.random.default_rng(2)
    xt = np.ascontiguousarray(problem.X.T)
    for B in (1, 3):
        W = rng.standard_normal((50, B))
        V = rng.standard_normal((50, B))
        a, b = evaluate(problem, W), evaluate(problem, W, xt=xt)
        for name in ("yhat", "energy", "grad", "mu", "rgrad"):
            np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(hessian_vector_product(problem, W, V, xt=xt),
                                   hessian_vector_product(problem, W, V), rtol=1e-12, atol=1e-10)


def test_batching_bad_values():
    from simulation.data import make_problem, random_starts
    from simulation.flow import run_dynamics

    problem = make_problem(20, 3.0, 1, "float64")
    W0 = random_starts(20, 2, 1, "float64")
    with pytest.raises(InputError, match="batching"):
        run_dynamics(problem, W0, STOP, INTEG, batching="own")
    with pytest.raises(InputError, match="independent"):
        run_dynamics(problem, W0, STOP, Integrator(method="gd"), batching="independent")
    with pytest.raises(InputError, match="independent"):
        run_dynamics(problem, W0, STOP, INTEG, protocol="orthogonal", batching="independent")


def test_run_point_records_batching_and_refuses_the_other(tmp_path):
    out = tmp_path / "p.nc"
    ds = run_point(out, 32, 5.0, [11], 3, STOP, INTEG, batching="independent")
    assert ds.attrs["batching"] == "independent"
    with pytest.raises(InputError, match="batching"):
        run_point(out, 32, 5.0, [11], 3, STOP, INTEG)  # a shared run cannot resume it
    old = tmp_path / "old.nc"
    ds = run_point(old, 32, 5.0, [11], 2, STOP, INTEG)
    from theory import io

    legacy = ds.copy()
    del legacy.attrs["batching"]  # files written before the attribute: shared
    io.write_netcdf(legacy, old)
    again = run_point(old, 32, 5.0, [11], 2, STOP, INTEG)
    assert np.array_equal(again["final_overlap"].values, ds["final_overlap"].values)


def test_refilled_batch_follows_each_start_alone():
    # width 3 of 8 starts: the others enter as starts stop; each still makes its alone steps
    from simulation.data import make_problem, random_starts
    from simulation.flow import run_dynamics

    problem = make_problem(96, 5.0, 3, "float64")
    W0 = random_starts(96, 8, 3, "float64")
    refill = run_dynamics(problem, W0, STOP, INTEG, times=np.array([0.0]), batching="independent", width=3)
    full = run_dynamics(problem, W0, STOP, INTEG, times=np.array([0.0]), batching="independent")
    for b in range(8):
        r = run_dynamics(problem, W0[:, b:b + 1], STOP, INTEG, times=np.array([0.0]))
        assert refill.status[b] == r.status[0]
        assert refill.extra["replica_evaluations"][b] == r.gradient_evaluations
        assert abs(refill.stop_time[b] - r.stop_time[0]) <= 1e-9 * max(1.0, r.stop_time[0])
    # never more than 3 columns at once: more products than the unrefilled batch
    assert refill.extra["step_log"][:, 3].max() == 3
    assert refill.gradient_evaluations > full.gradient_evaluations


def test_width_needs_independent_batching():
    from simulation.data import make_problem, random_starts
    from simulation.flow import run_dynamics

    problem = make_problem(20, 3.0, 1, "float64")
    W0 = random_starts(20, 2, 1, "float64")
    for kwargs in (dict(width=1), dict(batching="independent", width=0)):
        with pytest.raises(InputError, match="width"):
            run_dynamics(problem, W0, STOP, INTEG, **kwargs)
