"""Early decisions (simulation.decide) and the flow's decide hook, against independent numerics."""
import numpy as np
import pytest

from simulation.data import make_problem, random_starts
from simulation.decide import EarlyDecider, EarlyRules, TrajectoryLog, lowest_ritz
from simulation.flow import STATUS_RUNNING, STATUS_TRAPPED, Integrator, StopRules, run_dynamics
from simulation.landscape import evaluate
from simulation.probes import full_spectrum
from theory.errors import InputError
from theory.loss import get_loss

STOP = StopRules(t_max=100, success_overlap=0.9)
INTEG = Integrator(rtol=1e-2, atol=1e-3)


def test_lowest_ritz_matches_dense_diagonalisation():
    """Lanczos run to the full tangent dimension gives the lowest eigenvalue of the dense
    tangent Hessian (probes.full_spectrum); with few steps, an upper bound."""
    p = make_problem(40, 3.0, seed=2)
    W = random_starts(40, 3, seed=2)
    pt = evaluate(p, W)
    theta, res = lowest_ritz(p, W, pt, get_loss(None), steps=39)
    few, _ = lowest_ritz(p, W, pt, get_loss(None), steps=5)
    for b in range(3):
        lam, _ = full_spectrum(p, W[:, b])
        assert theta[b] == pytest.approx(lam[0], abs=1e-8)
        assert few[b] >= lam[0] - 1e-10
    assert np.all(res < 1e-6)


def test_decide_hook_stops_replicas_and_marks_them():
    """A hook that traps replica 1 at once: it stops at t = 0 as trapped, marked early;
    the others run to the protocol's rules, unmarked."""
    p = make_problem(64, 6.0, seed=1, dtype="float32")
    W0 = random_starts(64, 3, seed=1, dtype="float32")

    def hook(problem, loss, idx, t, W, point, q, n_eval):
        codes = np.full(idx.size, STATUS_RUNNING)
        codes[idx == 1] = STATUS_TRAPPED
        return codes, 2

    r = run_dynamics(p, W0, STOP, INTEG, times=np.array([0.0]), decide=hook)
    plain = run_dynamics(p, W0, STOP, INTEG, times=np.array([0.0]))
    assert r.status[1] == "trapped" and r.stop_time[1] == 0 and r.extra["decided_early"].tolist() == [False, True,
                                                                                                        False]
    assert r.extra["replica_evaluations"][1] == 9 + 2
    assert list(r.status[[0, 2]]) == list(plain.status[[0, 2]])
    assert plain.extra["replica_evaluations"].max() == plain.gradient_evaluations


def test_early_success_stops_at_the_lower_overlap():
    p = make_problem(128, 7.0, seed=3, dtype="float32")
    W0 = random_starts(128, 4, seed=3, dtype="float32")
    plain = run_dynamics(p, W0, STOP, INTEG, times=np.array([0.0]))
    early = run_dynamics(p, W0, STOP, INTEG, times=np.array([0.0]), decide=EarlyDecider(EarlyRules(0.6)))
    won = plain.status == "success"
    assert won.any()
    assert np.all(early.status[won] == "success") and np.all(early.extra["decided_early"][won])
    assert np.all(np.abs(early.q[won]) >= 0.6) and np.all(np.abs(early.q[won]) < 0.9)
    # each early success took fewer evaluations (the batch's other replicas run on: the
    # shared stage count couples their steps, so their own counts may differ slightly)
    assert np.all(early.extra["replica_evaluations"][won] < plain.extra["replica_evaluations"][won])


def test_trajectory_log_observes_without_changing_the_run():
    p = make_problem(64, 4.0, seed=4, dtype="float32")
    W0 = random_starts(64, 2, seed=4, dtype="float32")
    log = TrajectoryLog(reference_steps=30)
    logged = run_dynamics(p, W0, STOP, INTEG, times=np.array([0.0]), decide=log)
    plain = run_dynamics(p, W0, STOP, INTEG, times=np.array([0.0]))
    assert np.array_equal(logged.W, plain.W) and logged.gradient_evaluations == plain.gradient_evaluations
    h = log.history(0)
    assert h[0, 0] == 0 and h[-1, 0] == pytest.approx(plain.stop_time[0])
    assert np.all(np.diff(h[:, 0]) > 0) and np.all(np.diff(h[:, 4]) >= 0)


def test_rules_validate_their_fields():
    for bad in (dict(success_overlap=1.5), dict(trap_grad=0.0), dict(trap_curvature=-1.0), dict(lanczos_steps=1),
                dict(recheck_factor=1.0), dict(success_by=0.0)):
        with pytest.raises(InputError):
            EarlyRules(**bad)
    with pytest.raises(InputError, match="free protocol"):
        p = make_problem(16, 3.0, seed=0)
        run_dynamics(p, random_starts(16, 1, seed=0), STOP, decide=EarlyDecider(EarlyRules(0.5)),
                     protocol="orthogonal")


def test_early_trap_stops_at_the_gradient_level_with_positive_curvature():
    """Replicas the trap rule stops have rms gradient <= trap_grad (and above the protocol's
    1e-4) and a positive 20-step Ritz value; each probe's Lanczos steps are counted."""
    p = make_problem(64, 3.0, seed=6, dtype="float32")
    W0 = random_starts(64, 6, seed=6, dtype="float32")
    decider = EarlyDecider(EarlyRules(trap_grad=1e-2, trap_curvature=0.01))
    early = run_dynamics(p, W0, STOP, INTEG, times=np.array([0.0]), decide=decider)
    plain = run_dynamics(p, W0, STOP, INTEG, times=np.array([0.0]))
    stopped = early.extra["decided_early"]
    assert stopped.any() and np.all(early.status[stopped] == "trapped")
    assert np.all((early.grad_norm[stopped] <= 1e-2) & (early.grad_norm[stopped] > 1e-4))
    assert all(decider.trapped_theta[int(b)] >= 0.01 for b in np.flatnonzero(stopped))
    assert decider.probes >= stopped.sum()
    assert np.all(early.stop_time[stopped] < plain.stop_time[stopped])
