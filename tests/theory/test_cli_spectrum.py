"""Tests of ``python -m theory spectrum`` (theory.cli)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from theory.cli import main
from theory.measure import Measure, write_measure_file
from theory.spectrum import spectrum_summary


@pytest.fixture(scope="module")
def state_file(tmp_path_factory):
    """A t = 0 state at N = 300 (yhat independent of y, s = y) with its full spectrum."""
    rng = np.random.default_rng(4)
    n, alpha = 300, 4.0
    A = rng.standard_normal((int(alpha * n), n))
    m = Measure.empirical(rng.standard_normal(A.shape[0]), A[:, 0], alpha=alpha)
    eigs = np.linalg.eigvalsh((A.T * m.D) @ A / n - m.mu * np.eye(n))
    path = tmp_path_factory.mktemp("cli") / "state.npz"
    write_measure_file(path, m, n=n, eigenvalues=eigs, eigenvalues_complete=True)
    return path, m, eigs


def run_module(*args):
    return subprocess.run([sys.executable, "-m", "theory", *args], capture_output=True, text=True, timeout=120)


def test_json_matches_api(state_file, capsys):
    path, m, _ = state_file
    assert main(["spectrum", "--measure", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ref = spectrum_summary(m)
    for key in ("alpha", "mu", "bulk_edge", "overlap2", "rho_edge", "converged"):
        assert out[key] == pytest.approx(getattr(ref, key))
    assert out["isolated_eigenvalue"] == ref.isolated_eigenvalue or out["isolated_eigenvalue"] == pytest.approx(
        ref.isolated_eigenvalue)
    assert set(out["residuals"]) == {"edge", "isolated", "bbp"}
    assert out["converged"] is True and out["iterations"] == ref.iterations > 0
    assert out["residual"] == pytest.approx(ref.residual) and out["message"] == ref.message


def test_overrides_and_table(state_file, capsys):
    path, m, _ = state_file
    assert main(["spectrum", "--measure", str(path), "--alpha", "2", "--mu", "0.5"]) == 0
    text = capsys.readouterr().out
    ref = spectrum_summary(Measure.empirical(m.yhat, m.y, alpha=2.0, mu=0.5))
    lines = dict(line.split(None, 1) for line in text.strip().splitlines())
    assert float(lines["alpha"]) == 2.0 and float(lines["mu"]) == 0.5
    assert float(lines["bulk_edge"]) == pytest.approx(ref.bulk_edge, rel=1e-9)
    assert lines["isolated_eigenvalue"] == ("none" if ref.isolated_eigenvalue is None
                                            else lines["isolated_eigenvalue"])


def test_null_isolated_eigenvalue_in_json(tmp_path, capsys):
    # D = 6 yhat^2 - 2 y^2 at t = 0 has no spike on the symmetric Gauss-Hermite law
    path = write_measure_file(tmp_path / "gh.npz", Measure.gauss_hermite_t0(21, alpha=4.0))
    assert main(["spectrum", "--measure", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["isolated_eigenvalue"] is None and out["rho_iso"] is None and out["overlap2"] == 0.0


def test_density_png_complete_and_partial(state_file, tmp_path):
    path, m, eigs = state_file
    png = tmp_path / "density.png"
    assert main(["spectrum", "--measure", str(path), "--density", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    partial = write_measure_file(tmp_path / "partial.npz", m, eigenvalues=eigs[:10], eigenvalues_complete=False)
    png2 = tmp_path / "partial.png"
    assert main(["spectrum", "--measure", str(partial), "--density", str(png2)]) == 0
    assert png2.stat().st_size > 1000


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["spectrum", "--measure", "/nonexistent/x.npz"], "does not exist"),
        (["spectrum"], "required"),
        (["spectrum", "--measure", "X", "--alpha", "abc"], "alpha"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_errors_are_one_line(args, fragment):
    proc = run_module(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and fragment in proc.stderr


def test_bad_values_one_line(state_file, tmp_path):
    path, _, _ = state_file
    for args, fragment in ((["--alpha", "-1"], "alpha must be positive"), (["--loss", "cubic"], "unknown loss"),
                           (["--density", str(tmp_path / "no" / "such" / "dir" / "f.png")], "does not exist"),
                           (["--density", str(tmp_path)], "is a folder")):
        proc = run_module("spectrum", "--measure", str(path), *args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert fragment in proc.stderr


def test_closed_pipe_stops_quietly():
    # `python -m theory ... --json | head -c 1`: no traceback when the reader goes away
    proc = subprocess.run(
        f"{sys.executable} -m theory dmft --alpha 4 --t-max 0.05 --samples 400 --points 1 --json | head -c 1",
        shell=True, capture_output=True, text=True, timeout=120)
    assert proc.stdout == "{"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
