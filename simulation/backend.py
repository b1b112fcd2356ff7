"""The landscape (eqs. 1.1-1.6) on any array library of the Python array API standard
(NumPy, PyTorch on CPU or GPU, CuPy, array_api_strict), through ``array-api-compat``.

Optional (``pip install 'phaseflow[array]'``; a GPU also needs its library, e.g. torch with
CUDA). Off by default: the flow (:mod:`simulation.flow`) runs on NumPy. What is here is the
part that costs the FLOPs, the two (M, N) x (N, B) products of an evaluation and of a
Hessian-vector product, written once against the standard namespace ``xp`` so that the same
code runs on every backend; tests run it on array_api_strict and NumPy and compare with
:func:`simulation.landscape.evaluate` to rounding.

:func:`run_flow` runs :func:`simulation.flow.run_dynamics`' own driver (the adaptive RKC
flow with shared or independent batching and refill, or projected GD; the recording grid)
with the (N, B) arrays on the backend, through :class:`BackendArrays`: the per-replica
control (times, step sizes, errors, stop rules: B numbers per step) stays in NumPy on the
host, stopped replicas are removed by ``xp.take`` on index arrays. Not on the backend: the
orthogonal protocol and the decide hook (both use NumPy-only code).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.errors import InputError
from theory.loss import Loss, get_loss

from .data import Problem
from .flow import FlowResult, Integrator, StopRules, _Arrays, _check_options, _run

__all__ = ["BackendProblem", "BackendPoint", "BackendFlowResult", "namespace", "to_backend", "evaluate",
           "hessian_vector_product", "project_tangent", "sphere", "to_numpy", "run_flow", "BackendArrays"]


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
    """A :class:`~simulation.data.Problem` held by another array library: X (M, N), y (M, 1),
    w_star (N,) or None."""

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
    w = None if problem.w_star is None else xp.asarray(problem.w_star, dtype=dtype, **kw)
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
class _DriverPoint:
    """A :class:`BackendPoint` with NumPy copies of the (B,) numbers the driver's stop rules,
    records and step control read (energy, mu, rms Riemannian gradient)."""

    at: BackendPoint
    energy: np.ndarray
    mu: np.ndarray
    grad_norm: np.ndarray

    @property
    def grad(self) -> Any:
        return self.at.grad

    @property
    def rgrad(self) -> Any:
        return self.at.rgrad


class BackendArrays(_Arrays):
    """The driver's arrays (:class:`simulation.flow._Arrays`) on the library of ``bp``:
    states, stages and gradients on ``device``; column selection by ``xp.take`` on index
    arrays (no boolean indexing, whose shapes depend on the data)."""

    def __init__(self, bp: BackendProblem, loss: Loss, device: Any = None):
        self.problem, self.loss, self.xt, self.xp, self.device = bp, loss, None, bp.xp, device
        self.dtype = np.dtype("float64" if bp.X.dtype == bp.xp.float64 else "float32")

    def evaluate(self, W):
        pt = evaluate(self.problem, W, self.loss)
        gn = to_numpy(self.norm(pt.rgrad)) / np.sqrt(W.shape[0])  # as LandscapePoint.grad_norm
        return _DriverPoint(pt, to_numpy(pt.energy), to_numpy(pt.mu), gn)

    def hessian_vector_product(self, W, V, point):
        return hessian_vector_product(self.problem, W, V, self.loss, point.at)

    def norm(self, V):
        return self.xp.linalg.vector_norm(V, axis=0)

    def sphere(self, W):
        return sphere(W, self.xp)

    def overlap(self, W) -> np.ndarray:
        if self.problem.w_star is None:
            return np.full(W.shape[1], np.nan)
        return to_numpy(self.problem.w_star @ W / W.shape[0])

    def cast(self, W0):
        return self.xp.astype(W0, getattr(self.xp, self.dtype.name), copy=True)

    def host(self, a) -> np.ndarray:
        return to_numpy(a)

    def asarray(self, a: np.ndarray):
        return self.xp.asarray(a, device=self.device)

    def _indices(self, sel):
        sel = np.asarray(sel)
        return self.asarray(np.flatnonzero(sel) if sel.dtype == bool else sel)

    def columns(self, a, sel):
        return self.xp.take(a, self._indices(sel), axis=a.ndim - 1)

    def put_columns(self, a, sel, values):
        B = a.shape[1]
        source = np.arange(B)  # column b of the result: b of a, or B + k of values
        source[np.flatnonzero(np.asarray(sel))] = B + np.arange(values.shape[1])
        return self.columns(self.xp.concat([a, values], axis=1), source)

    def hstack(self, a, b):
        return self.xp.concat([a, b], axis=a.ndim - 1)

    def where(self, mask, a, b):
        return self.xp.where(self.asarray(mask), a, b)

    def subset(self, point: _DriverPoint, sel) -> _DriverPoint:
        at = point.at
        return _DriverPoint(BackendPoint(*(self.columns(x, sel) for x in (at.yhat, at.energy, at.grad, at.mu,
                                                                          at.rgrad))),
                            point.energy[sel], point.mu[sel], point.grad_norm[sel])

    def concat(self, a: _DriverPoint, b: _DriverPoint) -> _DriverPoint:
        pairs = zip((a.at.yhat, a.at.energy, a.at.grad, a.at.mu, a.at.rgrad),
                    (b.at.yhat, b.at.energy, b.at.grad, b.at.mu, b.at.rgrad))
        return _DriverPoint(BackendPoint(*(self.hstack(x, y) for x, y in pairs)),
                            np.concatenate([a.energy, b.energy]), np.concatenate([a.mu, b.mu]),
                            np.concatenate([a.grad_norm, b.grad_norm]))

    def merge(self, old: _DriverPoint, new: _DriverPoint, take_new: np.ndarray) -> _DriverPoint:
        if take_new.all():
            return new
        pairs = zip((old.at.yhat, old.at.energy, old.at.grad, old.at.mu, old.at.rgrad),
                    (new.at.yhat, new.at.energy, new.at.grad, new.at.mu, new.at.rgrad))
        return _DriverPoint(BackendPoint(*(self.where(take_new, y, x) for x, y in pairs)),
                            np.where(take_new, new.energy, old.energy), np.where(take_new, new.mu, old.mu),
                            np.where(take_new, new.grad_norm, old.grad_norm))


def run_flow(bp: BackendProblem, W0: Any, stop: Any = None, integrator: Any = None,
             loss: Loss | str | None = None, times: np.ndarray | None = None, batching: str = "shared",
             width: int | None = None, progress: bool = False) -> FlowResult:
    """:func:`simulation.flow.run_dynamics` (free protocol, no ``decide``) for the columns of
    ``W0``, a backend array (N, B): the same driver, with the (N, B) arithmetic on the
    backend (see the module docstring). ``stop``, ``integrator``:
    :class:`~simulation.flow.StopRules`, :class:`~simulation.flow.Integrator` (flow or gd);
    ``times``, ``batching``, ``width``, ``progress`` as for ``run_dynamics``. Returns a
    :class:`~simulation.flow.FlowResult` of NumPy arrays (final states included)."""
    stop = StopRules() if stop is None else stop
    integrator = Integrator() if integrator is None else integrator
    _check_options(integrator, "free", None, batching, width)
    namespace(W0)  # InputError naming the extra if array-api-compat is missing
    from array_api_compat import device as device_of

    # host arrays sent to the backend go to W0's device (a GPU for torch/cupy)
    arrays = BackendArrays(bp, get_loss(loss), device_of(W0))
    return _run(arrays, W0, stop, integrator, times, progress, None, batching, width)


#: the name of the result of :func:`run_flow` before it was the driver of run_dynamics
BackendFlowResult = FlowResult
