"""The command line as a user runs it: JSON output, reproducibility, one-line errors."""
import json
import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "simulation", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "state.npz"
    out = run("run", "--n", "64", "--alpha", "3", "--replicas", "3", "--seed", "4", "--t-max", "300",
              "--save", str(path), "--json")
    assert out.returncode == 0, out.stderr
    return path, json.loads(out.stdout)


def test_run_json_fields(saved):
    _, res = saved
    for key in ("n", "alpha", "replicas", "seed", "success_fraction", "final_overlap", "final_energy",
                "status", "stop_time", "wall_seconds"):
        assert key in res
    assert len(res["status"]) == 3 and set(res["status"]) <= {"success", "trapped", "timeout"}


def test_same_command_same_numbers(saved):
    _, res = saved
    again = json.loads(run("run", "--n", "64", "--alpha", "3", "--replicas", "3", "--seed", "4",
                           "--t-max", "300", "--json").stdout)
    for key in ("final_overlap", "final_energy", "stop_time", "status"):
        assert again[key] == res[key]


def test_human_output_and_gd():
    out = run("run", "--n", "40", "--alpha", "6", "--replicas", "2", "--method", "gd", "--lr", "0.005",
              "--t-max", "50")
    assert out.returncode == 0 and "success fraction" in out.stdout


def test_hessian_on_saved_state(saved, tmp_path):
    path, _ = saved
    out = run("hessian", "--state", str(path), "--replica", "1", "--k", "3",
              "--export-measure", str(tmp_path / "m.npz"), "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert len(res["eigenvalues"]) == 3 and res["converged"] and max(res["residuals"]) < 1e-6
    assert (tmp_path / "m.npz").is_file()


@pytest.mark.parametrize("args", [
    ("run", "--alpha", "0"), ("run", "--alpha", "-2"), ("run", "--n", "1"), ("run", "--replicas", "0"),
    ("run", "--method", "sgd"), ("run", "--dtype", "float16"), ("run", "--n", "ten"), ("run", "--frobnicate"),
    ("hessian", "--state", "/nonexistent/state.npz"), ("hessian",), ("teleport",),
    ("run", "--q0", "1.5"), ("run", "--protocol", "sideways"), ("run", "--q0", "0.2", "--protocol", "orthogonal"),
])
def test_bad_input_is_one_line_nonzero(args):
    out = run(*args)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_malformed_state_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("definitely not numpy")
    out = run("hessian", "--state", str(bad))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_help():
    for sub in ((), ("run",), ("hessian",)):
        out = run(*sub, "--help")
        assert out.returncode == 0 and "usage" in out.stdout


def test_warm_starts_have_the_requested_overlap(tmp_path):
    """--q0: replica b is warm_start(problem, q0, seed + b), overlap exactly q0 at t = 0."""
    import numpy as np

    from simulation.data import make_problem, warm_start

    path = tmp_path / "warm.npz"
    out = run("run", "--n", "50", "--alpha", "3", "--replicas", "2", "--seed", "6", "--q0", "0.3",
              "--t-max", "1", "--save", str(path), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["q0"] == 0.3
    W0 = np.load(path)["W0"]
    p = make_problem(50, 3.0, seed=6)
    np.testing.assert_allclose(p.w_star @ W0 / 50, [0.3, 0.3], atol=1e-12)
    for b in range(2):
        np.testing.assert_array_equal(W0[:, b], warm_start(p, 0.3, 6 + b)[:, 0])


def test_warm_start_needs_a_teacher(tmp_path):
    import numpy as np

    from simulation.data import make_problem

    p = make_problem(30, 3.0, seed=1)
    np.savez(tmp_path / "data.npz", X=p.X, y=p.y)
    out = run("run", "--data", str(tmp_path / "data.npz"), "--q0", "0.2")
    assert out.returncode == 2 and "teacher" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_orthogonal_protocol_from_the_command_line():
    out = run("run", "--n", "60", "--alpha", "4", "--replicas", "2", "--seed", "3", "--t-max", "20",
              "--protocol", "orthogonal", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["protocol"] == "orthogonal" and max(abs(q) for q in res["final_overlap"]) < 1e-12


def test_threads_option():
    """--threads sets the BLAS threads of run (default RUN_THREADS, its measurement in --help);
    the numbers do not depend on it beyond the flow's tolerance."""
    from simulation.cli import RUN_THREADS

    common = ("run", "--n", "40", "--alpha", "3", "--replicas", "2", "--seed", "2", "--t-max", "3",
              "--success-overlap", "1", "--grad-tol", "0", "--json")
    one, two = (json.loads(run(*common, "--threads", t).stdout) for t in ("1", "2"))
    assert one["threads"] == 1 and two["threads"] == 2
    for key in ("final_energy", "final_overlap"):
        assert max(abs(a - b) for a, b in zip(one[key], two[key])) < 1e-5
    assert json.loads(run(*common).stdout)["threads"] == RUN_THREADS
    help_text = run("run", "--help").stdout
    assert "--threads" in help_text and "median" in help_text
