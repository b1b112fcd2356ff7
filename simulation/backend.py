"""The landscape (eqs. 1.1-1.6) on any array library of the Python array API standard
(NumPy, PyTorch on CPU or GPU, CuPy, array_api_strict), through ``array-api-compat``.

Optional (``pip install 'phaseflow[array]'``; a GPU also needs its library, e.g. torch with
CUDA). Off by default: the flow (:mod:`simulation.flow`) runs on NumPy. What is here is the
part that costs the FLOPs, the two (M, N) x (N, B) products of an evaluation and of a
Hessian-vector product, written once against the standard namespace ``xp`` so that the same
code runs on every backend; tests run it on array_api_strict and NumPy and compare with
:func:`simulation.landscape.evaluate` to rounding.

:func:`run_flow` is the adaptive RKC flow of :func:`simulation.flow.run_dynamics` (same
stages, error estimate, controller, spectral-radius estimate and stop rules, recording only
t = 0) with the (N, B) arrays on the backend and the per-replica scalars (times, step sizes,
errors: B numbers per step) on the host; stopped replicas are frozen in place rather than
removed (no data-dependent shapes), and excluded from the shared stage count, so the steps
are those of ``run_dynamics``. Not ported: projected GD, the orthogonal protocol, the
recording grid, the decide hook.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.errors import InputError
from theory.loss import Loss, get_loss

from .data import Problem

__all__ = ["BackendProblem", "BackendPoint", "BackendFlowResult", "namespace", "to_backend", "evaluate",
           "hessian_vector_product", "project_tangent", "sphere", "to_numpy", "run_flow"]


def namespace(*arrays: Any) -> Any:
    """The array-API namespace of ``arrays`` (array_api_compat.array_namespace); InputError
    naming the extra to install when array-api-compat is missing."""
    try:
        from array_api_compat import array_namespace
    except ImportError:  # pragma: no cover - optional dependency
        raise InputError("the array backend needs array-api-compat (pip install 'phaseflow[array]')") from None
    return array_namespace(*arrays)


@dataclass(frozen=True)
class BackendProblem:
    """A :class:`~simulation.data.Problem` held by another array library: X (M, N), y (M, 1)."""

    X: Any
    y: Any
    n: int
    xp: Any
    w_star: Any = None


@dataclass(frozen=True)
class BackendPoint:
    """As :class:`simulation.landscape.LandscapePoint`, arrays of the backend."""

    yhat: Any
    energy: Any
    grad: Any
    mu: Any
    rgrad: Any


def to_backend(problem: Problem, xp: Any, device: Any = None) -> BackendProblem:
    """Copy the problem's X and y into namespace ``xp`` (its dtype kept; ``device`` e.g. "cuda")."""
    dtype = getattr(xp, str(problem.dtype))
    kw = {} if device is None else {"device": device}
    X = xp.asarray(np.ascontiguousarray(problem.X), dtype=dtype, **kw)
    y = xp.reshape(xp.asarray(problem.y, dtype=dtype, **kw), (problem.m, 1))
    w = None if problem.w_star is None else xp.reshape(xp.asarray(problem.w_star, dtype=dtype, **kw), (1, problem.n))
    return BackendProblem(X, y, problem.n, xp, w)


def to_numpy(a: Any) -> np.ndarray:
    """A backend array as a NumPy array (through DLPack or the host copy of the library)."""
    for attr in ("get", "cpu"):  # cupy, torch
        if hasattr(a, attr) and not isinstance(a, np.ndarray):
            a = getattr(a, attr)()
            break
    try:
        return np.asarray(a)
    except (TypeError, ValueError):
        return np.from_dlpack(a)


def evaluate(bp: BackendProblem, W: Any, loss: Loss | str | None = None) -> BackendPoint:
    """Energy, gradient, mu and Riemannian gradient at the columns of W (eqs. 1.1-1.4),
    as :func:`simulation.landscape.evaluate`; the loss must be polynomial (its compiled V,
    dV use only arithmetic, so they run on any backend)."""
    loss = get_loss(loss)
    xp = bp.xp
    yhat = bp.X @ W
    dV = loss.dV(yhat, bp.y)
    grad = xp.matrix_transpose(bp.X) @ dV
    energy = xp.sum(loss.V(yhat, bp.y), axis=0) / bp.n
    mu = xp.sum(dV * yhat, axis=0) / bp.n
    return BackendPoint(yhat, energy, grad, mu, grad - mu * W)


def project_tangent(W: Any, V: Any, xp: Any) -> Any:
    """P_perp V = V - W <W, V> / N columnwise."""
    return V - W * (xp.sum(W * V, axis=0) / W.shape[0])


def hessian_vector_product(bp: BackendProblem, W: Any, V: Any, loss: Loss | str | None = None,
                           point: BackendPoint | None = None) -> Any:
    """Tangent Hessian times vectors, eq. (1.6), as :func:`simulation.landscape.hessian_vector_product`."""
    loss = get_loss(loss)
    xp = bp.xp
    if point is None:
        point = evaluate(bp, W, loss)
    D = loss.d2V(point.yhat, bp.y)
    V = project_tangent(W, V, xp)
    HV = xp.matrix_transpose(bp.X) @ (D * (bp.X @ V))
    return project_tangent(W, HV, xp) - point.mu * V


def sphere(W: Any, xp: Any) -> Any:
    """Rescale each column to |W|^2 = N."""
    return W * (math.sqrt(W.shape[0]) / xp.linalg.vector_norm(W, axis=0))


@dataclass(frozen=True)
class BackendFlowResult:
    """Outcome of :func:`run_flow`: W (N, B) on the backend; the rest NumPy arrays (B,)."""

    W: Any
    status: np.ndarray
    stop_time: np.ndarray
    energy: np.ndarray
    q: np.ndarray
    grad_norm: np.ndarray
    gradient_evaluations: int
    steps: int


def _host(a: Any) -> np.ndarray:
    return np.asarray(to_numpy(a), dtype=np.float64)


def _spectral_radius(bp, W, point, loss, V, iterations):
    xp = bp.xp
    lam = None
    for _ in range(iterations):
        V = V / xp.linalg.vector_norm(V, axis=0)
        HV = hessian_vector_product(bp, W, V, loss, point)
        lam = xp.linalg.vector_norm(HV, axis=0)
        V = HV
    lam = _host(lam)
    lam = np.where(np.isfinite(lam), lam, 0.0)
    return 1.2 * lam + 1.0, V


def run_flow(bp: BackendProblem, W0: Any, stop: Any = None, integrator: Any = None,
             loss: Loss | str | None = None) -> BackendFlowResult:
    """The adaptive RKC flow of :func:`simulation.flow.run_dynamics` (free protocol,
    recording only t = 0) for the columns of ``W0`` (a backend array (N, B)), see the module
    docstring. ``stop``, ``integrator``: :class:`~simulation.flow.StopRules`,
    :class:`~simulation.flow.Integrator` (method "flow")."""
    from .flow import (DIVERGENCE_FACTOR, MAX_STEPS, NONFINITE_RETRIES, Integrator, StopRules,
                       rkc_coefficients, rkc_max_step, rkc_stages)

    stop = StopRules() if stop is None else stop
    integrator = Integrator() if integrator is None else integrator
    if integrator.method != "flow":
        raise InputError("the array backend runs the flow only (method 'flow')")
    loss = get_loss(loss)
    xp = bp.xp
    dtype = W0.dtype
    dname = "float64" if dtype == xp.float64 else "float32"
    rtol, atol = integrator.tolerances(dname)
    grad_tol = stop.gradient_tolerance(dname)
    n, B = W0.shape
    namespace(W0)  # InputError naming the extra if array-api-compat is missing
    from array_api_compat import device as device_of

    dev = device_of(W0)  # host arrays sent to the backend go to W0's device (a GPU for torch/cupy)
    W = sphere(W0, xp)

    def overlap(W):
        if bp.w_star is None:
            return np.full(B, np.nan)
        return _host(bp.w_star @ W)[0] / n

    point = evaluate(bp, W, loss)
    e0 = _host(point.energy)
    q = overlap(W)
    n_eval = 9
    V0 = xp.asarray(np.random.default_rng(0).standard_normal((n, B)).astype(dname), device=dev)
    rho, V = _spectral_radius(bp, W, point, loss, V0, 8)
    t = np.zeros(B)
    h = np.full(B, min(1e-3, 1.0 / rho.max()))
    failures = np.zeros(B, dtype=int)
    running = np.ones(B, bool)
    status = np.full(B, "running", dtype=object)
    final = {k: np.full(B, np.nan) for k in ("t", "energy", "q", "gn")}
    since_rho = steps = 0
    while running.any():
        energy, gn = _host(point.energy), _host(xp.linalg.vector_norm(point.rgrad, axis=0)) / np.sqrt(n)
        mu = _host(point.mu)
        stuck = ((failures >= NONFINITE_RETRIES) | ~(t + h > t)
                 | (stop.t_max - t > MAX_STEPS * rkc_max_step(integrator.max_stages, rho)))
        new = np.full(B, "running", dtype=object)
        new[t >= stop.t_max * (1 - 1e-12)] = "timeout"
        new[gn <= grad_tol] = "trapped"
        new[energy > DIVERGENCE_FACTOR * e0] = "diverged"
        new[(np.abs(q) >= stop.success_overlap) | (energy <= stop.energy_tol)] = "success"
        new[~(np.isfinite(energy) & np.isfinite(gn) & np.isfinite(mu)) | stuck] = "diverged"
        done = running & (new != "running")
        if done.any():
            status[done] = new[done]
            for k, v in (("t", t), ("energy", energy), ("q", q), ("gn", gn)):
                final[k][done] = v[done]
            running &= ~done
            if not running.any():
                break
        if since_rho >= 25:
            r_new, V = _spectral_radius(bp, W, point, loss, V, 4)
            rho = np.where(running, r_new, rho)
            n_eval += 4
            since_rho = 0
        h_step = np.where(running, np.minimum(h, stop.t_max - t), 0.0)
        s = rkc_stages(float(np.max(h_step[running] * rho[running])), integrator.max_stages)
        h_step = np.minimum(h_step, rkc_max_step(s, rho))
        mu_c, nu_c, mut_c, gat_c = (c.astype(dname) for c in rkc_coefficients(s))
        hs = xp.asarray(h_step.astype(dname), device=dev)
        F0 = -point.rgrad
        Y_jm2 = W
        Y_jm1 = W + (float(mut_c[1]) * hs) * F0
        for j in range(2, s + 1):
            F_jm1 = -evaluate(bp, Y_jm1, loss).rgrad
            Y_j = (float(1 - mu_c[j] - nu_c[j]) * W + float(mu_c[j]) * Y_jm1 + float(nu_c[j]) * Y_jm2
                   + hs * (float(mut_c[j]) * F_jm1 + float(gat_c[j]) * F0))
            Y_jm2, Y_jm1 = Y_jm1, Y_j
        W_new = sphere(Y_jm1, xp)
        new_point = evaluate(bp, W_new, loss)
        n_eval += s
        steps += 1
        since_rho += 1
        h64 = xp.asarray(h_step, device=dev)
        est = xp.astype(0.8 * (W - W_new), xp.float64) + 0.4 * h64 * xp.astype(F0 - new_point.rgrad, xp.float64)
        scale = atol + rtol * xp.maximum(xp.abs(W), xp.abs(W_new))
        err = np.sqrt(_host(xp.mean((est / xp.astype(scale, xp.float64)) ** 2, axis=0)))
        finite = np.isfinite(err)
        err = np.where(finite, err, np.inf)
        failures = np.where(finite, 0, failures + 1)
        accept = (err <= 1.0) & running
        fac = np.clip(0.8 * np.maximum(err, 1e-10) ** (-1.0 / 3.0), 0.1, 5.0)
        truncated = h_step < h
        h = np.where(running, np.where(accept & truncated, np.maximum(h, h_step * fac), h_step * fac), h)
        take = xp.asarray(accept, device=dev)
        W = xp.where(take, W_new, W)
        t = np.where(accept, t + h_step, t)
        point = BackendPoint(*(xp.where(take, b, a) for a, b in
                               ((point.yhat, new_point.yhat), (point.energy, new_point.energy),
                                (point.grad, new_point.grad), (point.mu, new_point.mu),
                                (point.rgrad, new_point.rgrad))))
        q = overlap(W)
    return BackendFlowResult(W, status.astype(str), final["t"], final["energy"], final["q"], final["gn"],
                             n_eval, steps)
