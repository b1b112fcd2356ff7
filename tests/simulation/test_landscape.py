"""Landscape derivatives against finite differences, and batching against columns."""
import numpy as np
import pytest

from simulation.data import make_problem, random_starts
from simulation.landscape import evaluate, hessian_vector_product, project_sphere, project_tangent


@pytest.fixture(scope="module")
def setup():
    p = make_problem(60, 5.0, seed=3)
    W = random_starts(60, 3, seed=3)
    return p, W


def energy_total(p, w):
    return evaluate(p, w[:, None]).energy[0] * p.n  # L = N e


def test_gradient_matches_central_differences(setup):
    p, W = setup
    w = W[:, 0]
    pt = evaluate(p, w[:, None])
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = rng.standard_normal(p.n)
        eps = 1e-5
        fd = (energy_total(p, w + eps * v) - energy_total(p, w - eps * v)) / (2 * eps)
        assert fd == pytest.approx(pt.grad[:, 0] @ v, rel=1e-7)


def test_mu_and_riemannian_gradient_definitions(setup):
    p, W = setup
    pt = evaluate(p, W)
    # mu = <W, grad>/N and the Riemannian gradient is tangent (eqs. 1.3, 1.4)
    np.testing.assert_allclose(pt.mu, np.sum(W * pt.grad, axis=0) / p.n, rtol=1e-12)
    assert np.abs(np.sum(W * pt.rgrad, axis=0)).max() < 1e-9 * np.abs(pt.grad).max() * p.n


def test_tangent_hvp_matches_differences_of_riemannian_gradient(setup):
    """Riemannian Hessian = P_perp d(rgrad)[v] for v tangent (eq. 1.6)."""
    p, W = setup
    rng = np.random.default_rng(1)
    V = project_tangent(W, rng.standard_normal(W.shape))
    HV = hessian_vector_product(p, W, V)
    eps = 1e-6
    fd = (evaluate(p, W + eps * V).rgrad - evaluate(p, W - eps * V).rgrad) / (2 * eps)
    fd = project_tangent(W, fd)
    np.testing.assert_allclose(HV, fd, rtol=1e-6, atol=1e-6 * np.abs(HV).max())


def test_batch_equals_one_state_at_a_time(setup):
    p, W = setup
    pt = evaluate(p, W)
    for b in range(W.shape[1]):
        one = evaluate(p, W[:, b : b + 1])
        np.testing.assert_allclose(one.rgrad[:, 0], pt.rgrad[:, b], rtol=1e-12, atol=1e-12)
        assert one.energy[0] == pytest.approx(pt.energy[b], rel=1e-13)


def test_hvp_many_vectors_for_one_state(setup):
    p, W = setup
    w = W[:, :1]
    V = project_tangent(w, np.random.default_rng(2).standard_normal((p.n, 4)))
    HV = hessian_vector_product(p, w, V)
    for j in range(4):
        np.testing.assert_allclose(HV[:, j], hessian_vector_product(p, w, V[:, j : j + 1])[:, 0], rtol=1e-12)


def test_random_start_energy_matches_its_expectation():
    """At a random start yhat, y are independent N(0,1): E[V] = E[(yhat^2 - y^2)^2]/2 = 2,
    so e = alpha * 2 up to O(1/sqrt(M)) fluctuations."""
    p = make_problem(400, 5.0, seed=0)
    e = evaluate(p, random_starts(400, 8, seed=0)).energy
    assert np.mean(e) == pytest.approx(10.0, rel=0.1)


def test_project_sphere():
    W = np.random.default_rng(0).standard_normal((50, 4)) * 3
    assert np.allclose(np.linalg.norm(project_sphere(W), axis=0) ** 2, 50)
