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


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_backend_flow_matches_run_dynamics(dtype):
    """The array-API flow gives run_dynamics' numbers (protocol settings, recording only
    t = 0): same statuses, stop times and overlaps to rounding; in float64 the same evaluations."""
    spaces = _namespaces()
    if not spaces:
        pytest.skip("array-api-compat / array_api_strict not installed (extra 'array')")
    from simulation.flow import Integrator, StopRules, run_dynamics

    stop, integ = StopRules(t_max=30, success_overlap=0.9), Integrator(rtol=1e-2, atol=1e-3)
    p = make_problem(48, 5.0, seed=7, dtype=dtype)
    W0 = random_starts(48, 3, seed=7, dtype=dtype)
    ref = run_dynamics(p, W0, stop, integ, times=np.array([0.0]))
    for xp in spaces:
        got = backend.run_flow(backend.to_backend(p, xp), xp.asarray(W0), stop, integ)
        assert list(got.status) == list(ref.status)
        # float64: the same steps; float32: rounding (mu is summed in another order) moves the
        # step sequence slightly
        assert got.gradient_evaluations == pytest.approx(ref.gradient_evaluations, rel=0 if dtype == "float64" else 0.05)
        np.testing.assert_allclose(got.stop_time, ref.stop_time, rtol=1e-4)
        np.testing.assert_allclose(got.q, ref.q, atol=1e-4)
