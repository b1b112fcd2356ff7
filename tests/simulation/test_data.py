import numpy as np
import pytest

from simulation.data import make_problem, problem_from_arrays, random_starts
from theory.errors import InputError


def test_conventions():
    p = make_problem(500, 4.0, seed=1)
    assert p.X.shape == (2000, 500) and p.m == 2000 and p.alpha == 4.0
    assert np.linalg.norm(p.w_star) ** 2 == pytest.approx(500)
    np.testing.assert_allclose(p.y, p.X @ p.w_star)
    assert np.var(p.X) * 500 == pytest.approx(1.0, rel=0.01)  # x_m ~ N(0, I/N)
    assert np.var(p.y) == pytest.approx(1.0, rel=0.1)


def test_seed_reproducible_and_replicas_independent_of_batch_size():
    a, b = make_problem(50, 3, 7), make_problem(50, 3, 7)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.w_star, b.w_star)
    assert not np.array_equal(a.X, make_problem(50, 3, 8).X)
    np.testing.assert_array_equal(random_starts(50, 5, 7)[:, :3], random_starts(50, 3, 7))
    assert np.allclose(np.linalg.norm(random_starts(50, 5, 7), axis=0) ** 2, 50)


def test_float32_is_float64_rounded():
    p64, p32 = make_problem(40, 2, 0), make_problem(40, 2, 0, "float32")
    assert p32.X.dtype == np.float32
    np.testing.assert_allclose(p32.X, p64.X, rtol=1e-6)


@pytest.mark.parametrize("n, alpha", [(1, 2.0), (10, 0.0), (10, -1.0), (10, float("nan"))])
def test_bad_sizes(n, alpha):
    with pytest.raises(InputError):
        make_problem(n, alpha, 0)


def test_bad_replicas_and_user_data():
    with pytest.raises(InputError):
        random_starts(10, 0, 0)
    with pytest.raises(InputError):
        problem_from_arrays(np.ones((5, 3)), np.ones(4))
    p = problem_from_arrays(np.eye(4, 3), np.ones(4))
    assert p.w_star is None and p.seed is None


# ----------------------------------------------------------------------------- memory estimate (issue 19 item 4)
@pytest.mark.parametrize("n, alpha, replicas, dtype", [
    (300, 6.0, 2, "float64"),    # X dominates: the draw
    (100, 2.0, 100, "float64"),  # the flow's working vectors dominate
    (100, 2.0, 100, "float32"),
])
def test_required_memory_bounds_the_measured_peak_of_a_run(n, alpha, replicas, dtype):
    import tracemalloc

    from simulation.data import RUN_OVERHEAD, required_memory
    from simulation.flow import StopRules, run_dynamics

    tracemalloc.start()  # NumPy reports its data buffers to tracemalloc
    try:
        problem = make_problem(n, alpha, 1, dtype)
        run_dynamics(problem, random_starts(n, replicas, 1, dtype), StopRules(t_max=0.2))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert problem.X.nbytes == round(alpha * n) * n * np.dtype(dtype).itemsize
    est = required_memory(n, alpha, replicas, dtype)
    assert peak <= est <= 1.5 * peak + RUN_OVERHEAD, (peak, est)


def test_check_memory_refuses_what_does_not_fit_naming_both_numbers(monkeypatch):
    from simulation import data

    assert data.available_memory() > 0  # Linux: /proc/meminfo
    need = data.required_memory(10_000_000, 6.0, 16)
    assert need >= 6 * 10**14 * 8  # X alone: M x N doubles
    monkeypatch.setattr(data, "available_memory", lambda: 10**9)
    with pytest.raises(InputError, match=r"need about 4\.8e\+06 GB of memory, only 1 GB available"):
        data.check_memory(10_000_000, 6.0, 16)
    assert data.check_memory(50, 2.0, 1) == data.required_memory(50, 2.0, 1)
    monkeypatch.setattr(data, "available_memory", lambda: None)  # the system does not say: no check
    assert data.check_memory(10_000_000, 6.0, 16) == need
