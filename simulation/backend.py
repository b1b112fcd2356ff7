"""The landscape (eqs. 1.1-1.6) on any array library of the Python array API standard
(NumPy, PyTorch on CPU or GPU, CuPy, array_api_strict), through ``array-api-compat``.

Optional (``pip install 'phaseflow[array]'``; a GPU also needs its library, e.g. torch with
CUDA). Off by default: the flow (:mod:`simulation.flow`) runs on NumPy. What is here is the
part that costs the FLOPs, the two (M, N) x (N, B) products of an evaluation and of a
Hessian-vector product, written once against the standard namespace ``xp`` so that the same
code runs on every backend; tests run it on array_api_strict and NumPy and compare with
:func:`simulation.landscape.evaluate` to rounding.

Status (issue 17, item 3): the adaptive RKC loop itself is not ported yet (it indexes
replicas with NumPy masks at every step); :func:`to_backend` / :func:`evaluate` /
:func:`hessian_vector_product` are its building blocks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.errors import InputError
from theory.loss import Loss, get_loss

from .data import Problem

__all__ = ["BackendProblem", "BackendPoint", "namespace", "to_backend", "evaluate", "hessian_vector_product",
           "project_tangent", "sphere", "to_numpy"]


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
    return BackendProblem(X, y, problem.n, xp)


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
