"""Gradient flow and GD: the sphere constraint, integrator convergence, stop rules,
success rates on both sides of the transition, reproducibility."""
import numpy as np
import pytest

from simulation.data import make_problem, random_starts
from simulation.flow import Integrator, StopRules, rkc_coefficients, run_dynamics
from theory.errors import InputError

NO_STOP = dict(grad_tol=0.0, success_overlap=1.0, energy_tol=0.0)  # e > 0 at every state here


def test_rkc_coefficients_give_second_order_stability_polynomial():
    """Apply the RKC stages to y' = z y: R(z) must match exp(z) to O(z^3) and stay
    bounded by 1 on [-0.65 s^2, 0] (the stability interval used by rkc_stages)."""
    for s in (2, 5, 17):
        mu, nu, mut, gat = rkc_coefficients(s)

        def R(z):
            y0, yjm2, yjm1 = 1.0, 1.0, 1.0 + mut[1] * z
            for j in range(2, s + 1):
                yj = (1 - mu[j] - nu[j]) * y0 + mu[j] * yjm1 + nu[j] * yjm2 + mut[j] * z * yjm1 + gat[j] * z * y0
                yjm2, yjm1 = yjm1, yj
            return yjm1

        for z in (1e-2, -1e-2):
            assert abs(R(z) - np.exp(z)) < 5 * abs(z) ** 3
        zs = -np.linspace(0, ((s - 1) ** 2 - 1) / 1.54, 400)
        assert max(abs(R(z)) for z in zs) <= 1.0 + 1e-9


@pytest.fixture(scope="module")
def small():
    p = make_problem(120, 4.0, seed=2)
    return p, random_starts(120, 6, seed=2)


def test_sphere_constraint_holds(small):
    p, W0 = small
    r = run_dynamics(p, W0, StopRules(t_max=30.0))
    assert np.abs(np.linalg.norm(r.W, axis=0) ** 2 / p.n - 1).max() < 1e-10
    assert set(r.status) <= {"success", "trapped", "timeout"}


def test_tightening_tolerance_converges_like_a_second_order_method(small):
    """Global error of a 2nd-order method with per-step error control scales like
    rtol^(2/3): the change from rtol to rtol/1000 must shrink ~100x when rtol does 1000x,
    and be far below O(1)."""
    p, W0 = small
    stop = StopRules(t_max=8.0, **NO_STOP)
    runs = {tol: run_dynamics(p, W0, stop, Integrator(rtol=tol, atol=tol / 100)).W for tol in (1e-3, 1e-6, 1e-9)}
    err = {tol: np.sqrt(np.mean((runs[tol] - runs[1e-9]) ** 2)) for tol in (1e-3, 1e-6)}
    assert err[1e-3] < 1e-1
    assert err[1e-6] < err[1e-3] / 20  # (1000)^(2/3) = 100, allow a factor 5 of slack
    assert err[1e-6] < 1e-3


def test_gd_with_small_learning_rate_follows_the_flow(small):
    """Projected GD is the explicit Euler scheme of the flow: O(lr) difference at fixed time."""
    p, W0 = small
    stop = StopRules(t_max=1.0, **NO_STOP)
    times = np.array([0.0, 1.0])
    flow = run_dynamics(p, W0, stop, Integrator(rtol=1e-8), times=times)
    diffs = []
    for lr in (4e-3, 1e-3):
        gd = run_dynamics(p, W0, stop, Integrator(method="gd", lr=lr), times=times)
        diffs.append(np.abs(gd.trajectory.q[-1] - flow.trajectory.q[-1]).max())
    assert diffs[1] < diffs[0] / 2.5 and diffs[1] < 1e-2


def test_trajectory_grid_is_recorded(small):
    p, W0 = small
    r = run_dynamics(p, W0, StopRules(t_max=5.0, **NO_STOP), times=np.geomspace(0.01, 5, 10))
    tr = r.trajectory
    assert tr.recorded.all() and np.all(np.diff(np.nanmean(tr.energy, axis=1)) < 0)  # energy decreases
    np.testing.assert_allclose(tr.q[-1], r.q)


def test_same_seed_same_numbers(small):
    p, W0 = small
    a = run_dynamics(p, W0, StopRules(t_max=20.0))
    b = run_dynamics(make_problem(120, 4.0, seed=2), random_starts(120, 6, seed=2), StopRules(t_max=20.0))
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.stop_time, b.stop_time)


def test_float32_runs_and_agrees_with_float64():
    p64 = make_problem(100, 3.0, seed=4)
    W0 = random_starts(100, 4, seed=4)
    stop = StopRules(t_max=3.0, **NO_STOP)
    r64 = run_dynamics(p64, W0, stop)
    r32 = run_dynamics(p64.astype("float32"), W0, stop)
    assert r32.W.dtype == np.float32
    np.testing.assert_allclose(r32.q, r64.q, atol=5e-3)


@pytest.mark.parametrize("alpha, bound", [(8.0, "at_least_85"), (2.5, "at_most_15")])
def test_success_rates_on_both_sides_of_the_transition(alpha, bound):
    """N = 256, 32 starts sharing one data set: well above the transition almost every
    start succeeds, well below almost none does."""
    p = make_problem(256, alpha, seed=11)
    r = run_dynamics(p, random_starts(256, 32, seed=11), StopRules(t_max=2000.0))
    if bound == "at_least_85":
        assert r.success_fraction >= 0.85
    else:
        assert r.success_fraction <= 0.15
        assert np.all(r.status != "timeout")


@pytest.mark.parametrize("kwargs", [dict(method="newton"), dict(method="gd", lr=0.0), dict(rtol=2.0)])
def test_bad_integrator(kwargs):
    with pytest.raises(InputError):
        Integrator(**kwargs)


def test_bad_stop_rules_and_starts(small):
    p, W0 = small
    with pytest.raises(InputError):
        StopRules(t_max=0.0)
    with pytest.raises(InputError):
        run_dynamics(p, W0[:-1])


# ---------------------------------------------------------------- the orthogonal protocol
@pytest.fixture(scope="module")
def orthogonal_runs():
    """N = 150, alpha = 5, 3 replicas, float64: orthogonal runs stopped at several t_max."""
    p = make_problem(150, 5.0, seed=7)
    W0 = random_starts(150, 3, seed=7)
    return p, W0, {t: run_dynamics(p, W0, StopRules(t_max=t), protocol="orthogonal") for t in (0.5, 5.0, 50.0)}


def test_orthogonal_flow_keeps_q_exactly_zero(orthogonal_runs):
    """The lifted states are orthogonal to W* to rounding at every stop time (starts with
    |q| ~ 1/sqrt(N) ~ 0.08 are projected), and stay on the sphere."""
    p, W0, runs = orthogonal_runs
    assert np.abs(p.w_star @ W0 / p.n).max() > 1e-3
    for r in runs.values():
        assert r.protocol == "orthogonal" and r.W.shape == W0.shape
        assert np.abs(p.w_star @ r.W / p.n).max() < 1e-13 and np.abs(r.q).max() < 1e-13
        np.testing.assert_allclose(np.linalg.norm(r.W, axis=0) ** 2, p.n, rtol=1e-12)
        assert set(r.status) <= {"trapped", "timeout", "success"}


def test_orthogonal_flow_decreases_the_energy(orthogonal_runs):
    """Final energies (evaluated on the original problem) decrease with the stop time, and
    the recorded trajectory energy decreases along the flow."""
    _, _, runs = orthogonal_runs
    e = np.array([runs[t].energy for t in sorted(runs)])
    assert np.all(np.diff(e, axis=0) < 0)
    tr = runs[50.0].trajectory
    for b in range(tr.energy.shape[1]):
        eb = tr.energy[tr.recorded[:, b], b]
        assert np.all(np.diff(eb) <= 1e-12)
    # the final recorded energy of a replica is its final energy (same state, another problem
    # in its coordinates: equal to rounding)
    r = runs[0.5]
    np.testing.assert_allclose(r.trajectory.energy[-1], r.energy, rtol=1e-12)


def test_orthogonal_flow_is_the_projected_flow(orthogonal_runs):
    """Independent numerics: the orthogonal flow is dW/dt = -(N/(N-1)) P_u g(W) with P_u the
    projector off u = W*/|W*|; integrate it by small explicit Euler steps (renormalising to
    the sphere) from the projected starts and compare at t = 0.5."""
    from simulation.landscape import evaluate, project_sphere

    p, W0, runs = orthogonal_runs
    u = p.w_star / np.linalg.norm(p.w_star)
    W = project_sphere(W0 - np.outer(u, u @ W0))
    dt, steps = 1e-4, 5000
    for _ in range(steps):
        g = evaluate(p, W).rgrad
        g -= np.outer(u, u @ g)
        W = project_sphere(W - dt * p.n / (p.n - 1) * g)
    assert np.sqrt(np.mean((W - runs[0.5].W) ** 2)) < 1e-3


def test_free_protocol_is_the_default(small):
    p, W0 = small
    a = run_dynamics(p, W0, StopRules(t_max=5.0))
    b = run_dynamics(p, W0, StopRules(t_max=5.0), protocol="free")
    assert a.protocol == b.protocol == "free"
    np.testing.assert_array_equal(a.W, b.W)


def test_status_is_per_replica():
    """A replica that succeeds and one that is stopped by the clock get their own status."""
    p = make_problem(60, 8.0, seed=1)
    W0 = np.stack([p.w_star + 0.05 * random_starts(60, 1, seed=2)[:, 0], random_starts(60, 1, seed=3)[:, 0]], 1)
    r = run_dynamics(p, W0, StopRules(t_max=0.05, grad_tol=0.0))
    assert list(r.status) == ["success", "timeout"]


def test_bad_protocol(small):
    p, W0 = small
    with pytest.raises(InputError):
        run_dynamics(p, W0, protocol="sideways")
