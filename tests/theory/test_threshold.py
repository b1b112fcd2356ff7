"""Threshold states and alpha_c (theory.threshold, docs/theory.md §3).

Independent checks: the prox against brute-force minimisation; the u-variable quadrature
against a plain z-grid integration; the identity mu_linear - mu_stationary = alpha J / chi
(Gaussian integration by parts, eq. 3.8); the energy against -dG/dY by finite differences;
marginality by the spectrum module of §2; alpha_c against the spectrum module's spike.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

import theory.threshold as threshold_module
from theory.errors import ConvergenceError, InputError
from theory.loss import make_loss, quartic_prox, quartic_prox_step
from theory.measure import Measure
from theory.spectrum import spectrum_summary
from theory.threshold import Quadrature, critical_alpha, one_rsb_averages, solve_threshold


@pytest.fixture(scope="module")
def states():
    return {a: solve_threshold(a) for a in (3.0, 5.0, 8.0)}


@pytest.fixture(scope="module")
def alpha_c():
    return critical_alpha()


def test_prox_is_the_global_minimiser():
    rng = np.random.default_rng(0)
    z, y, chi = rng.uniform(0, 4, 200), rng.normal(0, 2, 200), 0.15
    u = quartic_prox(z, y, chi)
    grid = np.linspace(-8, 8, 160001)
    for zi, yi, ui in zip(z, y, u):
        f = (grid - zi) ** 2 / (2 * chi) + 0.5 * (grid**2 - yi**2) ** 2
        brute = grid[np.argmin(f)]
        assert abs(ui - brute) < 2e-4, (zi, yi, ui, brute)
        assert abs(2 * chi * ui**3 + (1 - 2 * chi * yi**2) * ui - zi) < 1e-12 * (1 + abs(zi))


def _z_grid_averages(alpha, chi, Y, n_z=40001):
    """Plain integration in z (trapezoid on a fine grid, prox by Cardano) inside an adaptive
    integral over y (scipy quad_vec, split at y_c where u*(0+, y) starts to jump)."""
    from scipy.integrate import quad_vec

    z = np.linspace(0, 10, n_z)
    trap = np.full(n_z, z[1] - z[0])
    trap[[0, -1]] /= 2

    def inner(y):
        u = quartic_prox(z, np.full_like(z, y), chi)
        V = 0.5 * (u * u - y * y) ** 2
        f = (u - z) ** 2 / (2 * chi) + V
        w = trap * np.exp(-z * z / 2 - Y * f)
        P = w / w.sum()
        g = np.array([P @ V, P @ (u - z) ** 2, P @ (2 * u * u * (u * u - y * y))])
        return g * 2 * np.exp(-y * y / 2) / np.sqrt(2 * np.pi)

    avg, _ = quad_vec(inner, 0, 12, points=[1 / np.sqrt(2 * chi)], epsabs=1e-10, epsrel=1e-10)
    return dict(energy=alpha * avg[0], chi_residual=alpha * avg[1] - chi / (chi + Y), mu_stationary=alpha * avg[2])


def test_quadrature_against_plain_z_grid():
    alpha, chi, Y = 5.0, 0.1334, 0.216
    ours = one_rsb_averages(alpha, chi, Y)
    ref = _z_grid_averages(alpha, chi, Y)
    for key, tol in (("energy", 2e-6), ("chi_residual", 2e-6), ("mu_stationary", 2e-6)):
        assert getattr(ours, key) == pytest.approx(ref[key], abs=tol), key


def test_quadrature_converges():
    coarse = one_rsb_averages(13.8, 0.0582, 0.0715, Quadrature())
    fine = one_rsb_averages(13.8, 0.0582, 0.0715, Quadrature().refined(2.0))
    for key in ("chi_residual", "replicon_residual", "bbp_residual", "energy", "complexity",
                "mu_stationary", "mu_linear", "jump"):
        assert getattr(coarse, key) == pytest.approx(getattr(fine, key), rel=1e-9, abs=1e-11), key


@pytest.mark.parametrize("alpha", [3.0, 5.0, 8.0])
def test_residuals_and_marginality(states, alpha):
    st = states[alpha]
    assert st.converged
    assert abs(st.residuals["chi"]) < 1e-10 and abs(st.residuals["replicon"]) < 1e-10
    # marginal: the spectrum module (§2) puts the edge at 0 and at rho_e = -chi
    assert abs(st.bulk_edge) < 1e-8
    assert abs(st.spectrum.rho_edge + st.chi) < 1e-8
    assert st.isolated_eigenvalue is None  # below alpha_c


@pytest.mark.parametrize("alpha", [3.0, 5.0, 8.0])
def test_mu_identity_is_the_jump_term(states, alpha):
    """mu_linear - mu_stationary = alpha J / chi (integration by parts in z, eq. 3.8)."""
    st = states[alpha]
    avg = one_rsb_averages(alpha, st.chi, st.Y)
    assert avg.jump > 0
    assert avg.mu_linear - avg.mu_stationary == pytest.approx(alpha * avg.jump / st.chi, rel=1e-8)


def test_stationary_closure_is_gapped_by_the_jump(states):
    st = solve_threshold(5.0, closure="stationary")
    ref = states[5.0]
    assert st.energy == ref.energy and st.mu == pytest.approx(ref.mu_stationary)
    assert st.bulk_edge == pytest.approx(ref.mu_linear - ref.mu_stationary, abs=1e-8)
    assert st.bulk_edge > 0.1


def test_energy_is_minus_dG_dY(states):
    st = states[5.0]
    h = 1e-5
    gp = one_rsb_averages(5.0, st.chi, st.Y + h).log_partition
    gm = one_rsb_averages(5.0, st.chi, st.Y - h).log_partition
    assert -(gp - gm) / (2 * h) == pytest.approx(st.energy, rel=1e-7)


def test_alpha_c(alpha_c):
    assert alpha_c.converged and abs(alpha_c.residual) < 1e-10
    lo, hi = alpha_c.bracket
    assert lo <= alpha_c.alpha_c <= hi and (hi - lo) / alpha_c.alpha_c < 1e-8
    # the spectrum module of §2 sees no spike just below alpha_c and one just above
    below, above = solve_threshold(alpha_c.alpha_c * 0.98), solve_threshold(alpha_c.alpha_c * 1.02)
    assert below.isolated_eigenvalue is None and below.overlap2 == 0.0
    assert above.isolated_eigenvalue is not None and above.isolated_eigenvalue < above.bulk_edge
    assert 0 < above.overlap2 < 0.2


def test_alpha_c_stable_under_refinement(alpha_c):
    fine = critical_alpha(quad=Quadrature().refined(1.5))
    assert fine.alpha_c == pytest.approx(alpha_c.alpha_c, rel=1e-8)


def test_bad_input():
    with pytest.raises(InputError, match="alpha must be > 0"):
        solve_threshold(0.0)
    with pytest.raises(InputError, match="unknown closure"):
        solve_threshold(4.0, closure="annealed")
    with pytest.raises(ConvergenceError, match="alpha=0.8"):
        solve_threshold(0.8)  # no threshold state: chi runs away (zero-energy minima)
    with pytest.raises(InputError):
        critical_alpha(bracket=(5.0, 4.0))


def test_bad_loss_is_one_line_input_error():
    for call in (lambda loss: solve_threshold(4.0, loss=loss), lambda loss: critical_alpha(loss=loss),
                 lambda loss: one_rsb_averages(4.0, 0.17, 0.28, loss=loss)):
        with pytest.raises(InputError, match="proximal map") as exc:
            call("amplitude")  # registered, but no closed-form prox
        assert "\n" not in str(exc.value)
        with pytest.raises(InputError, match="unknown loss"):
            call("nope")
    # a loss with a prox whose quadrature (branch point of eq. 3.7) is not the quartic one
    doubled = make_loss("doubled", "2*(yhat**2 - y**2)**2", prox=quartic_prox, prox_step=quartic_prox_step)
    with pytest.raises(InputError, match="quartic-specific"):
        solve_threshold(4.0, loss=doubled)
    # the quartic loss by formula is accepted and gives the same state
    same = make_loss("quartic-by-formula", "(y**2 - yhat**2)**2", prox=quartic_prox, prox_step=quartic_prox_step)
    assert one_rsb_averages(5.0, 0.1334, 0.216, loss=same).energy == one_rsb_averages(5.0, 0.1334, 0.216).energy


def test_status_is_the_root_finders(states, monkeypatch):
    """iterations = the evaluations of eqs. 3.4-3.5 that scipy's root made (counted here
    independently); residual = the larger residual; message names alpha."""
    calls = []
    real = threshold_module._averages
    monkeypatch.setattr(threshold_module, "_averages", lambda *a: calls.append(a) or real(*a))
    st = solve_threshold(5.0)
    assert st.iterations == len(calls) - 1  # root's evaluations, plus one at the solution
    assert st.residual == max(abs(st.residuals["chi"]), abs(st.residuals["replicon"])) <= 1e-10
    assert st.converged and "alpha=5" in st.message and st.spectrum.converged
    assert st.spectrum.iterations > 0 and st.spectrum.residual == abs(st.spectrum.residuals.edge)
    assert st.to_dict()["message"] == st.message and st.to_dict()["loss"] == "quartic"


def test_failed_state_as_value():
    st = solve_threshold(0.8, strict=False)  # chi runs away: no threshold state
    assert not st.converged and st.iterations > 0 and st.residual > 1e-10
    assert "alpha=0.8" in st.message and "residual" in st.message
    assert np.isnan(st.bulk_edge) and st.spectrum is None and st.measure is None
    with pytest.raises(ConvergenceError) as exc:
        solve_threshold(0.8)
    assert exc.value.result is not None and not exc.value.result.converged
    assert str(exc.value) == exc.value.result.message


def test_failed_alpha_c_as_value():
    res = critical_alpha(bracket=(6.0, 8.0), strict=False)  # no spike on [6, 8]: no sign change
    assert not res.converged and np.isnan(res.alpha_c) and "does not change sign" in res.message
    with pytest.raises(ConvergenceError, match="does not change sign") as exc:
        critical_alpha(bracket=(6.0, 8.0))
    assert exc.value.result is not None and np.isnan(exc.value.result.alpha_c)
    res = critical_alpha(bracket=(0.8, 20.0), strict=False)  # the threshold solve at 0.8 fails
    assert not res.converged and "alpha=0.8" in res.message


def run_module(*args):
    return subprocess.run([sys.executable, "-m", "theory", *args], capture_output=True, text=True, timeout=300)


def test_cli_threshold_and_alpha_c_json(alpha_c):
    out = run_module("threshold", "--alpha", "5", "--json")
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    for key in ("alpha", "energy", "complexity", "mu", "bulk_edge", "isolated_eigenvalue", "overlap2",
                "residuals", "converged", "iterations", "residual", "message", "loss"):
        assert key in rec
    assert rec["converged"] is True and rec["iterations"] > 0 and rec["residual"] <= 1e-10
    assert rec["isolated_eigenvalue"] is None and abs(rec["bulk_edge"]) < 1e-8
    out = run_module("alpha-c", "--json")
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    assert rec["alpha_c"] == pytest.approx(alpha_c.alpha_c, rel=1e-12)
    assert {"alpha_c", "energy_at_alpha_c", "residual", "bracket", "converged", "iterations", "message"} <= set(rec)
    assert rec["converged"] is True and rec["iterations"] > 0


@pytest.mark.parametrize("args, status", [
    (("threshold", "--alpha", "-1"), 2),
    (("threshold", "--alpha", "4", "--closure", "nope"), 2),
    (("threshold",), 2),
    (("alpha-c", "--closure", "nope"), 2),
    (("threshold", "--alpha", "4", "--loss", "amplitude"), 2),
    (("threshold", "--alpha", "4", "--loss", "nope"), 2),
    (("alpha-c", "--loss", "amplitude"), 2),
    (("curve", "--alpha", "4", "--loss", "amplitude", "--out", "never-written.nc"), 2),
    (("threshold", "--alpha", "0.8"), 3),
])
def test_cli_errors_are_one_line(args, status):
    out = run_module(*args)
    assert out.returncode == status
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_curve_and_plot(tmp_path):
    """A curve whose first alpha fails (0.8: no threshold state) is written with that row
    failed, a one-line warning and exit 0; reading and plotting skip the row."""
    nc, png = tmp_path / "theory.nc", tmp_path / "theory.png"
    out = run_module("curve", "--alpha", "0.8", "12:16:2", "--out", str(nc), "--json")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("warning:") and "alpha = 0.8" in out.stderr
    summary = json.loads(out.stdout)
    assert summary["failed_alpha"] == [0.8] and summary["n_failed"] == 1 and summary["converged"] is False
    import xarray as xr

    from theory.curve import read_curve

    ds = xr.load_dataset(nc)
    assert list(ds["alpha"].values) == [0.8, 12.0, 14.0, 16.0]
    assert list(ds["converged"].values) == [False, True, True, True]
    assert np.isnan(ds["energy"].sel(alpha=0.8)) and np.isnan(ds["chi"].sel(alpha=0.8))
    assert "alpha=0.8" in str(ds["message"].sel(alpha=0.8).values) and ds["residual"].sel(alpha=0.8) > 1e-10
    assert np.all(ds["iterations"].values > 0) and np.all(ds["residual"].values[1:] <= 1e-10)
    assert {"package_version", "created", "closure", "loss", "quadrature"} <= set(ds.attrs)
    assert ds.attrs["loss"] == "quartic" and json.loads(ds.attrs["quadrature"])["n_u"] == Quadrature().n_u
    good = read_curve(nc)
    assert list(good["alpha"].values) == [12.0, 14.0, 16.0]
    assert list(read_curve(nc, keep_failed=True)["alpha"].values) == [0.8, 12.0, 14.0, 16.0]
    assert np.isnan(good["isolated_eigenvalue"].sel(alpha=12.0)) and good["overlap2"].sel(alpha=12.0) == 0
    assert good["isolated_eigenvalue"].sel(alpha=16.0) < 0 and 12 < good.attrs["alpha_c"] < 16
    assert good.attrs["alpha_c_converged"] == 1
    assert np.all(np.abs(good["bulk_edge"]) < 1e-8)
    # warm-started rows agree with independent solves
    assert good["energy"].sel(alpha=14.0) == pytest.approx(solve_threshold(14.0).energy, rel=1e-10)
    out = run_module("plot", "--curve", str(nc), "--out", str(png), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["failed_alpha"] == [0.8]
    assert png.stat().st_size > 10_000
    bad = tmp_path / "bad.nc"
    bad.write_text("not netcdf")
    out = run_module("plot", "--curve", str(bad), "--out", str(png))
    assert out.returncode == 2 and "Traceback" not in out.stderr


@pytest.mark.slow
def test_spike_of_a_sample_of_the_law_against_direct_diagonalisation():
    """Above alpha_c: draw M = alpha N atoms (yhat, y) of the predicted threshold law (random
    joint sign), build H = (1/N) sum_m D_m a_m a_m^T - mu with a_m[0] = s_m = y_m, and compare
    its lowest eigenvalue and the squared overlap of its eigenvector with e_0 with the §2
    prediction for that sample's law. The sample's edge lies well above the M = infinity
    edge 0: the threshold law reaches the pole D = -1/chi only through rare atoms
    (docs/theory.md §3.6), so finite samples are gapped."""
    alpha, n = 18.0, 1500
    st = solve_threshold(alpha)
    rng = np.random.default_rng(11)
    m = st.measure
    idx = rng.choice(m.size, size=int(alpha * n), p=m.weights)
    sign = rng.choice([-1.0, 1.0], size=idx.size)
    u, y = m.yhat[idx] * sign, m.y[idx] * sign
    sample = spectrum_summary(Measure.empirical(u, y, alpha=alpha, mu=st.mu))
    A = rng.standard_normal((idx.size, n))
    A[:, 0] = y
    H = (A.T * sample_D(u, y)) @ A / n - st.mu * np.eye(n)
    lam, vec = np.linalg.eigh(H)
    assert sample.isolated_eigenvalue is not None
    assert lam[0] == pytest.approx(sample.isolated_eigenvalue, abs=0.1)
    assert vec[0, 0] ** 2 == pytest.approx(sample.overlap2, abs=0.06)
    assert sample.bulk_edge > st.bulk_edge + 0.1


def sample_D(u, y):
    return 6 * u * u - 2 * y * y


@pytest.mark.parametrize("alpha", [1000.0, 1e5])
def test_large_alpha_converges_to_the_continued_solution(alpha):
    """Issue 19 item 11: from its own guess the solve converges at large alpha, to the state
    reached by continuation in alpha (each solve warm-started from the previous one) from
    alpha = 100, where the small-alpha guess still converges."""
    state = solve_threshold(alpha, strict=False)
    assert state.converged, state.message
    guess = None
    for a in np.geomspace(100.0, alpha, 8):
        step = solve_threshold(float(a), guess=guess)
        guess = (step.chi, step.Y)
    assert state.chi == pytest.approx(step.chi, rel=1e-9) and state.Y == pytest.approx(step.Y, rel=1e-9)
    assert state.energy == pytest.approx(step.energy, rel=1e-10)


def test_cli_threshold_range_in_help():
    out = run_module("threshold", "--help")
    assert "1.02 <= A <= 1e7" in " ".join(out.stdout.split())


@pytest.mark.parametrize("args", [
    ("threshold", "--alpha", "5", "--export-measure", "{missing}/m.npz"),
    ("threshold", "--alpha", "5", "--density", "{missing}/d.png"),
    ("curve", "--alpha", "12", "--out", "{missing}/c.nc"),
    ("curve", "--alpha", "12", "--out", "{folder}"),
])
def test_cli_output_path_checked_before_computing(tmp_path, args):
    """Issue 19 item 3: an output in a missing folder (or a folder as the file) is refused
    with one line and exit 2 before any solving; the folder is not created."""
    args = [a.format(missing=tmp_path / "missing", folder=tmp_path) for a in args]
    out = run_module(*args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert out.stdout == "" and not (tmp_path / "missing").exists()


def test_export_measure_reports_the_path_written(tmp_path):
    out = run_module("threshold", "--alpha", "5", "--export-measure", str(tmp_path / "law"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "law.npz").exists() and f"{tmp_path / 'law.npz'}" in out.stdout


def test_plot_refuses_a_curve_as_sweep_and_a_missing_out_folder(tmp_path):
    """Issue 19 items 8 and 3: ``plot --sweep <curve file>`` is a one-line error naming the
    kind of file (it raised KeyError), and ``--out`` in a missing folder is refused first."""
    nc = tmp_path / "theory.nc"
    assert run_module("curve", "--alpha", "12", "14", "--out", str(nc), "--json").returncode == 0
    out = run_module("plot", "--curve", str(nc), "--sweep", str(nc), "--out", str(tmp_path / "p.png"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "not a sweep file" in out.stderr
    assert "--curve" in out.stderr and not (tmp_path / "p.png").exists()
    out = run_module("plot", "--curve", str(nc), "--out", str(tmp_path / "missing" / "p.png"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "does not exist" in out.stderr
