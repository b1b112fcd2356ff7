"""Hessian probes against independent dense linear algebra in R^N."""
import numpy as np
import pytest

from simulation.data import make_problem, random_starts
from simulation.flow import StopRules, run_dynamics
from simulation.landscape import evaluate, teacher_direction
from simulation.probes import TangentBasis, export_measure, full_spectrum, lowest_eigenpairs, state_measure
from theory.errors import InputError
from theory.io import load_npz


@pytest.fixture(scope="module")
def trapped():
    p = make_problem(150, 3.0, seed=5)
    r = run_dynamics(p, random_starts(150, 2, seed=5), StopRules(t_max=500))
    return p, r.W[:, 0]


def dense_tangent_spectrum(p, w):
    """Eigenvalues of P (X^T D X) P - mu P in R^N, dropping the one eigenvector along W."""
    pt = evaluate(p, w[:, None])
    D = 6 * pt.yhat[:, 0] ** 2 - 2 * p.y**2  # quartic V'', written out independently
    P = np.eye(p.n) - np.outer(w, w) / p.n
    H = P @ (p.X.T * D) @ p.X @ P - pt.mu[0] * P
    lam, vec = np.linalg.eigh(H)
    along_w = np.argmax((w @ vec) ** 2)
    return np.delete(lam, along_w), np.delete(vec, along_w, axis=1)


def test_tangent_basis_is_orthonormal_and_orthogonal_to_w():
    for sign in (1, -1):
        w = np.random.default_rng(0).standard_normal(9)
        w[-1] = sign * abs(w[-1])
        B = TangentBasis.at(w).matrix()
        assert np.allclose(B.T @ B, np.eye(8)) and np.abs(w @ B).max() < 1e-12


def test_full_spectrum_and_lanczos_match_dense_projection(trapped):
    p, w = trapped
    lam_dense, vec_dense = dense_tangent_spectrum(p, w)
    lam_full, probe_full = full_spectrum(p, w, k=5)
    np.testing.assert_allclose(lam_full, lam_dense, atol=1e-9 * np.abs(lam_dense).max())
    probe = lowest_eigenpairs(p, w, k=5)
    np.testing.assert_allclose(probe.eigenvalues, lam_dense[:5], atol=1e-8)
    assert probe.residuals.max() < 1e-6 and probe.converged
    e = teacher_direction(p, w)
    np.testing.assert_allclose(probe.overlap2, (e @ vec_dense[:, :5]) ** 2, atol=1e-6)
    np.testing.assert_allclose(probe_full.overlap2, probe.overlap2, atol=1e-6)


def test_trapped_state_is_a_local_minimum(trapped):
    p, w = trapped
    probe = lowest_eigenpairs(p, w, k=2)
    assert probe.eigenvalues[0] > 0  # trapped = Riemannian gradient ~ 0 and positive curvature


def test_state_measure_and_export_round_trip(trapped, tmp_path):
    p, w = trapped
    m = state_measure(p, w)
    assert m.alpha == pytest.approx(3.0) and m.yhat.shape == (p.m,)
    np.testing.assert_allclose(m.mu, evaluate(p, w[:, None]).mu[0])
    # s_m = sqrt(N) <x_m, e> is standard Gaussian-like and independent of the W direction
    assert np.mean(m.s**2) == pytest.approx(1.0, rel=0.15)
    path = export_measure(tmp_path / "m.npz", m, np.arange(3.0), eigenvalues_complete=False)
    a = load_npz(path)
    np.testing.assert_array_equal(a["yhat"], m.yhat)
    assert float(a["alpha"]) == pytest.approx(3.0) and str(a["loss"]) == "quartic"


def test_bad_k(trapped):
    p, w = trapped
    with pytest.raises(InputError):
        lowest_eigenpairs(p, w, k=0)


def test_lanczos_failure_is_a_value_or_an_error(trapped):
    """One restart at tol 1e-15 cannot converge: strict raises with the partial probe
    attached, strict=False returns it with converged=False and the message."""
    from theory.errors import ConvergenceError

    p, w = trapped
    with pytest.raises(ConvergenceError, match="did not converge") as info:
        lowest_eigenpairs(p, w, k=4, tol=1e-15, maxiter=1)
    assert info.value.result is not None and not info.value.result.converged
    probe = lowest_eigenpairs(p, w, k=4, tol=1e-15, maxiter=1, strict=False)
    assert not probe.converged and "did not converge" in probe.message
    assert probe.eigenvalues.size < 4 and probe.residuals.shape == probe.eigenvalues.shape
    ok = lowest_eigenpairs(p, w, k=4)
    assert ok.converged and ok.message == "" and ok.residual < 1e-6
