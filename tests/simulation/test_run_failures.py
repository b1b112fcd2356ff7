"""What a new user hits with ``run`` (issue 19 items 1, 2, 7, 9, 5): own data without a
teacher, non-finite or degenerate states (never a hang), Ctrl-C, unstable GD, bad stop
rules, --threads. Everything that could hang runs in a subprocess with a timeout."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from simulation.data import make_problem, problem_from_arrays, random_starts
from simulation.flow import DIVERGENCE_FACTOR, Integrator, StopRules, run_dynamics
from theory.errors import InputError

ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1")


def cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "simulation", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def python(code, timeout=60):
    """Run ``code`` in a fresh interpreter: a regression that spins fails by timeout, not by hanging CI."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=ENV)


def one_line(stderr):
    lines = [ln for ln in stderr.replace("\r", "\n").splitlines() if ln.strip() and "replicas stopped" not in ln]
    return len(lines) == 1 and "Traceback" not in stderr


@pytest.fixture()
def own_data(tmp_path):
    """X, y of a planted problem without its teacher, and the problem itself."""
    p = make_problem(60, 5.0, seed=1)
    path = tmp_path / "xy.npz"
    np.savez(path, X=p.X, y=p.y)
    return path, p


# ------------------------------------------------------------------ item 1: no teacher
def test_flow_without_teacher_stops_by_energy(own_data):
    """Same data with and without W*: the same trajectory (q never enters the flow), and
    without the teacher q is NaN and success is e <= energy_tol."""
    _, p = own_data
    W0 = random_starts(60, 2, seed=0)
    stop = StopRules(t_max=50.0, success_overlap=1.0)  # the overlap rule cannot fire in either run
    with_teacher = run_dynamics(p, W0, stop)
    without = run_dynamics(problem_from_arrays(p.X, p.y), W0, stop)
    assert np.all(np.isnan(without.q))
    np.testing.assert_array_equal(without.energy, with_teacher.energy)
    np.testing.assert_array_equal(without.status, with_teacher.status)
    for e, s in zip(without.energy, without.status):
        assert (s == "success") == (e <= stop.energy_tol)


def test_run_own_data_without_teacher(own_data):
    path, _ = own_data
    out = cli("run", "--data", str(path), "--replicas", "2", "--t-max", "50", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)  # strict JSON: no NaN
    assert res["teacher"] is False and res["final_overlap"] == [None, None]
    assert set(res["unavailable"]) == {"final_overlap", "success_by_overlap"}
    assert all(e is not None and e >= 0 for e in res["final_energy"])
    table = cli("run", "--data", str(path), "--replicas", "2", "--t-max", "50")
    assert table.returncode == 0, table.stderr
    assert "no teacher W*" in table.stdout
    rows = [ln.split() for ln in table.stdout.splitlines() if ln.split()[:1] in (["0"], ["1"])]
    assert len(rows) == 2 and all(r[4] == "-" for r in rows)  # the overlap column


@pytest.mark.parametrize("extra", [("--q0", "0.2"), ("--protocol", "orthogonal")])
def test_teacher_options_need_the_teacher(own_data, extra):
    path, _ = own_data
    out = cli("run", "--data", str(path), *extra)
    assert out.returncode == 2 and "teacher" in out.stderr and one_line(out.stderr)


# ------------------------------------------------------------------ item 2: no hangs
@pytest.mark.parametrize("start", ["np.zeros((50, 2))", "np.full((50, 2), np.nan)",
                                   "np.where(np.arange(50)[:, None] == 3, np.nan, 1.0) * np.ones((50, 2))"])
def test_degenerate_starts_are_input_errors(start):
    out = python("import numpy as np\n"
                 "from simulation.data import make_problem\nfrom simulation.flow import run_dynamics\n"
                 "from theory.errors import InputError\n"
                 "try:\n"
                 f"    run_dynamics(make_problem(50, 3.0, 0), {start})\n"
                 "except InputError as e:\n    print('InputError', e)\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("InputError") and "replicas 0, 1" in out.stdout
    assert "Warning" not in out.stderr


@pytest.mark.parametrize("method", ["flow", "gd"])
@pytest.mark.parametrize("scale", ["1e150", "1e10"])
def test_overflowing_data_stops_with_one_line(tmp_path, method, scale):
    """X and y times 1e150 overflow the energy; times 1e10 the flow would need ~1e40 steps.
    Either way: every replica 'diverged', one line naming them, exit 3, within the timeout."""
    p = make_problem(50, 4.0, seed=0)
    path = tmp_path / "big.npz"
    np.savez(path, X=p.X * float(scale), y=p.y * float(scale), w_star=p.w_star)
    out = cli("run", "--data", str(path), "--replicas", "2", "--t-max", "5", "--method", method, "--json")
    assert out.returncode == 3, out.stderr
    assert one_line(out.stderr) and "replicas 0, 1 diverged" in out.stderr
    assert json.loads(out.stdout)["status"] == ["diverged", "diverged"]


def test_a_diverging_replica_does_not_stop_the_others():
    """Projected GD with lr = 0.03 at N = 60, alpha = 5: replica 0's energy rises 11 -> 39
    (it used to end 'trapped' at e/N = 62); replicas 1-3 run to their own stop rule."""
    p = make_problem(60, 5.0, seed=3)
    r = run_dynamics(p, random_starts(60, 4, seed=3), StopRules(t_max=30.0), Integrator(method="gd", lr=0.03))
    assert r.status[0] == "diverged"
    assert r.energy[0] > DIVERGENCE_FACTOR * r.trajectory.energy[0, 0]
    assert set(r.status[1:]) <= {"success", "trapped", "timeout"} and r.stop_time[1:].max() > 10 * r.stop_time[0]


# ------------------------------------------------------------------ item 9: GD divergence, bad rules
def test_gd_with_a_large_learning_rate_is_diverged_with_a_hint():
    out = cli("run", "--n", "100", "--alpha", "6", "--replicas", "2", "--method", "gd", "--lr", "1",
              "--t-max", "30.5", "--json")
    assert out.returncode == 3 and one_line(out.stderr) and "lower --lr" in out.stderr
    res = json.loads(out.stdout)
    assert res["status"] == ["diverged", "diverged"] and max(res["stop_time"]) <= 30.5


def test_gd_stop_time_never_exceeds_t_max():
    """t_max not a multiple of lr: the last step is the last one within t_max (it was one past)."""
    p = make_problem(40, 3.0, seed=2)
    r = run_dynamics(p, random_starts(40, 2, seed=2), StopRules(t_max=0.1005),
                     Integrator(method="gd", lr=0.001))
    assert list(r.status) == ["timeout", "timeout"]
    assert r.stop_time.max() <= 0.1005 and r.stop_time.min() >= 0.1005 - 0.001


@pytest.mark.parametrize("kwargs", [dict(grad_tol=-1.0), dict(energy_tol=-1e-3), dict(t_max=-1.0),
                                    dict(t_max=float("inf")), dict(success_overlap=0.0),
                                    dict(success_overlap=1.5), dict(grad_tol=float("nan"))])
def test_bad_stop_rules(kwargs):
    with pytest.raises(InputError):
        StopRules(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(rtol=-1e-6), dict(atol=-1.0), dict(lr=-0.1), dict(lr=0.0),
                                    dict(method="flow", lr=-1.0), dict(max_stages=1)])
def test_bad_integrator(kwargs):
    with pytest.raises(InputError):
        Integrator(**kwargs)


@pytest.mark.parametrize("args", [("--grad-tol", "-1"), ("--rtol", "-1e-6"), ("--atol", "-1"), ("--t-max", "-5"),
                                  ("--lr", "-0.1"), ("--success-overlap", "1.5"), ("--energy-tol", "-1"),
                                  ("--threads", "0")])
def test_bad_run_options_one_line(args):
    out = cli("run", "--n", "20", *args)
    assert out.returncode == 2 and one_line(out.stderr), out.stderr


# ------------------------------------------------------------------ item 7: Ctrl-C
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_prints_and_saves_what_is_done(tmp_path, sig):
    """Some replicas stop within seconds (trapped / success at flow times 30-150), the last
    run to t_max = 1e5: interrupt once the progress bar shows, then check the saved file."""
    path = tmp_path / "run.npz"
    err = open(tmp_path / "stderr", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "simulation", "run", "--n", "100", "--alpha", "3", "--replicas",
                             "6", "--seed", "1", "--t-max", "100000", "--success-overlap", "1", "--energy-tol", "0",
                             "--grad-tol", "0", "--save", str(path)],
                            stdout=subprocess.PIPE, stderr=err, text=True, env=ENV)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        err.seek(0)
        if "replicas stopped" in err.read():
            break
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(sig)
    stdout, _ = proc.communicate(timeout=60)
    err.seek(0)
    stderr = err.read()
    assert proc.returncode == 130, stderr
    assert stderr.strip().endswith("python -m simulation: interrupted") and "Traceback" not in stderr
    assert "interrupted:" in stdout and "saved to" in stdout
    saved = np.load(path)
    status = [str(s) for s in saved["status"]]
    width = saved["status"].dtype.itemsize // 4  # state files store statuses as fixed-width strings
    assert len(status) == 6 and "interrupted"[:width] in status
    assert set(status) <= {s[:width] for s in ("success", "trapped", "timeout", "diverged", "interrupted")}
    rows = {ln.split()[0]: ln.split()[1] for ln in stdout.splitlines() if ln.split()[:1] in [[str(b)] for b in range(6)]}
    assert [rows[str(b)][:width] for b in range(6)] == status
    assert np.all(np.isfinite(saved["W"])) and np.allclose(np.sum(saved["W"] ** 2, axis=0), 100)
