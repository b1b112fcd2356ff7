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
