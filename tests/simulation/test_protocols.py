"""The reduction to the complement of W*: an isometry that keeps every prediction."""
import numpy as np
import pytest

from simulation.data import make_problem, problem_from_arrays, random_starts
from simulation.protocols import OrthogonalComplement, check_protocol
from theory.errors import InputError


@pytest.fixture(scope="module")
def setup():
    p = make_problem(40, 3.0, seed=1)
    return p, OrthogonalComplement.of(p), random_starts(40, 4, seed=1)


def test_reduction_keeps_predictions_and_the_sphere(setup):
    """<x''_m, W''> = <x_m, P_u W>/|P_u W| sqrt(N), |W''|^2 = N-1, by explicit projection."""
    p, comp, W0 = setup
    u = p.w_star / np.linalg.norm(p.w_star)
    P = W0 - np.outer(u, u @ W0)
    P *= np.sqrt(p.n) / np.linalg.norm(P, axis=0)
    Wr = comp.reduce(W0)
    assert comp.problem.n == p.n - 1 and Wr.shape == (p.n - 1, 4)
    np.testing.assert_allclose(np.linalg.norm(Wr, axis=0) ** 2, p.n - 1)
    np.testing.assert_allclose(comp.problem.X @ Wr, p.X @ P, atol=1e-12)
    np.testing.assert_allclose(comp.lift(Wr), P, atol=1e-12)
    np.testing.assert_allclose(comp.teacher_unit(), u, atol=1e-15)


def test_complement_component(setup):
    p, comp, W0 = setup
    V = comp.complement_component(W0)
    assert np.abs(p.w_star @ V).max() < 1e-12
    np.testing.assert_allclose(comp.complement_component(V), V, atol=1e-13)


def test_needs_a_teacher_and_a_known_protocol():
    p = make_problem(20, 2.0, seed=0)
    with pytest.raises(InputError):
        OrthogonalComplement.of(problem_from_arrays(p.X, p.y))
    with pytest.raises(InputError):
        check_protocol("diagonal")
    assert check_protocol("orthogonal") == "orthogonal"
