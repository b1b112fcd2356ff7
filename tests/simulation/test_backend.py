"""The array-API landscape (simulation.backend) against the NumPy one, on array_api_strict
(a standard-only library: anything NumPy-specific fails there) and on NumPy itself."""
import numpy as np
import pytest

from simulation import backend
from simulation.data import make_problem, random_starts
from simulation.landscape import evaluate, hessian_vector_product



def _namespaces():
    out = []
    try:
        import array_api_strict

        out.append(array_api_strict)
    except ImportError:
        pass
    try:
        import array_api_compat.numpy as xnp

        out.append(xnp)
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 2e-5)])
def test_backend_landscape_matches_numpy(dtype, rtol):
    spaces = _namespaces()
    if not spaces:
        pytest.skip("array-api-compat / array_api_strict not installed (extra 'array')")
    p = make_problem(48, 4.0, seed=3, dtype=dtype)
    W = random_starts(48, 5, seed=3, dtype=dtype)
    V = random_starts(48, 5, seed=4, dtype=dtype)
    ref = evaluate(p, W)
    ref_hv = hessian_vector_product(p, W, V, None, ref)
    for xp in spaces:
        bp = backend.to_backend(p, xp)
        Wx, Vx = xp.asarray(W), xp.asarray(V)
        assert backend.namespace(Wx) is not None
        pt = backend.evaluate(bp, Wx)
        hv = backend.hessian_vector_product(bp, Wx, Vx, None, pt)
        for got, want in ((pt.energy, ref.energy), (pt.grad, ref.grad), (pt.mu, ref.mu), (pt.rgrad, ref.rgrad),
                          (hv, ref_hv)):
            got = backend.to_numpy(got)
            assert got.dtype == np.dtype(dtype)
            scale = np.max(np.abs(want))
            np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale)
        np.testing.assert_allclose(np.linalg.norm(backend.to_numpy(backend.sphere(2 * Wx, xp)), axis=0),
                                   np.sqrt(48), rtol=1e-6)


# tolerances of the backend runs against run_dynamics: (stop times relative, q and W absolute)
_FLOW_TOL = {"float64": (1e-10, 1e-10), "float32": (1e-4, 1e-5)}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("options", [{"times": np.array([0.0])}, {}, {"batching": "independent", "width": 2},
                                     {"method": "gd"}], ids=["t0", "log-grid", "independent-refill", "gd"])
def test_backend_flow_matches_run_dynamics(dtype, options):
    """run_flow is run_dynamics' driver on the backend: at the protocol's settings the same
    statuses, steps and evaluation counts in float64 (the driver's control is the same NumPy
    code on the same numbers to rounding), stop times, overlaps and final states to rounding;
    the recorded trajectory too. In float32 a start decided at the horizon may be trapped on
    one path and timed out on the other, and the evaluation counts may differ by 1%: the
    float32 roundings of the two paths differ (seen with numpy 2.4.6 / OpenBLAS 0.3.31)."""
    spaces = _namespaces()
    if not spaces:
        pytest.skip("array-api-compat / array_api_strict not installed (extra 'array')")
    from simulation.flow import Integrator, StopRules, run_dynamics

    options = dict(options)
    if options.pop("method", None) == "gd":
        stop, integ = StopRules(t_max=10, success_overlap=0.9), Integrator(method="gd", lr=0.02)
    else:
        stop, integ = StopRules(t_max=30, success_overlap=0.9), Integrator(rtol=1e-2, atol=1e-3)
    p = make_problem(48, 5.0, seed=7, dtype=dtype)
    W0 = random_starts(48, 5 if "width" in options else 3, seed=7, dtype=dtype)
    ref = run_dynamics(p, W0, stop, integ, **options)
    t_tol, tol = _FLOW_TOL[dtype]
    for xp in spaces:
        got = backend.run_flow(backend.to_backend(p, xp), xp.asarray(W0), stop, integ, **options)
        if dtype == "float64":
            assert list(got.status) == list(ref.status)
            assert (got.gradient_evaluations, got.steps, got.rejected_steps) == (
                ref.gradient_evaluations, ref.steps, ref.rejected_steps)
        else:
            # float32: a start whose rms gradient reaches grad_tol = 1e-4 at the horizon may be
            # "trapped" on one path and "timeout" on the other (rounding of the last check), and
            # the float32 error estimate may steer the step controller by a step
            at_horizon = np.isclose(ref.stop_time, stop.t_max)
            assert all(g == r or (h and {g, r} <= {"trapped", "timeout"})
                       for g, r, h in zip(got.status, ref.status, at_horizon))
            assert got.gradient_evaluations == pytest.approx(ref.gradient_evaluations, rel=0.01)
        assert isinstance(got.W, np.ndarray) and got.W.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got.stop_time, ref.stop_time, rtol=t_tol)
        np.testing.assert_allclose(got.q, ref.q, atol=tol)
        np.testing.assert_allclose(got.W, ref.W, atol=10 * tol)
        np.testing.assert_array_equal(got.trajectory.recorded, ref.trajectory.recorded)
        np.testing.assert_allclose(got.trajectory.energy, ref.trajectory.energy, rtol=tol)


def test_backend_flow_refuses_what_is_not_ported():
    """No orthogonal protocol or decide hook on the backend (no such arguments); a bad
    option or start shape is the InputError of run_dynamics."""
    spaces = _namespaces()
    if not spaces:
        pytest.skip("array-api-compat / array_api_strict not installed (extra 'array')")
    from simulation.flow import StopRules
    from theory.errors import InputError

    xp = spaces[0]
    bp = backend.to_backend(make_problem(16, 4.0, seed=1), xp)
    W0 = xp.asarray(random_starts(16, 2, seed=1))
    with pytest.raises(InputError, match="width needs batching='independent'"):
        backend.run_flow(bp, W0, StopRules(t_max=1), width=1)
    with pytest.raises(InputError, match="starts must have shape"):
        backend.run_flow(bp, xp.asarray(random_starts(8, 2, seed=1)), StopRules(t_max=1))
    with pytest.raises(InputError, match="not finite"):
        backend.run_flow(bp, W0 * float("nan"), StopRules(t_max=1))
