"""Loss, gradient, Lagrange multiplier, Riemannian gradient and the tangent-space
Hessian-vector product, for a batch of B states that share one data set.

States are the columns of W (N, B); every quantity is computed with matrix-matrix
products X @ W and X.T @ (...) (no Python loop over measurements or states). The
pointwise loss V = l/2 and its derivatives come from ``theory.loss`` (sympy-derived).
Equations: docs/theory.md §1, eqs. (1.1)-(1.7).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from theory.loss import Loss, get_loss

from .data import Problem

__all__ = [
    "LandscapePoint",
    "evaluate",
    "project_tangent",
    "project_sphere",
    "hessian_vector_product",
    "teacher_overlap",
    "teacher_direction",
]


@dataclass(frozen=True)
class LandscapePoint:
    """The landscape at B states (columns).

    Attributes
    ----------
    yhat : (M, B) predictions <x_m, W>
    energy : (B,) e = L / N, eq. (1.1)
    grad : (N, B) Euclidean gradient sum_m V'(yhat_m) x_m, eq. (1.2)
    mu : (B,) Lagrange multiplier <W, grad L> / N, eq. (1.3)
    rgrad : (N, B) Riemannian gradient grad - mu W, eq. (1.4)
    """

    yhat: np.ndarray
    energy: np.ndarray
    grad: np.ndarray
    mu: np.ndarray
    rgrad: np.ndarray

    @property
    def grad_norm(self) -> np.ndarray:
        """|rgrad| / sqrt(N) per state: the root-mean-square Riemannian gradient component."""
        return np.linalg.norm(self.rgrad, axis=0) / np.sqrt(self.rgrad.shape[0])


def _labels(problem: Problem) -> np.ndarray:
    return problem.y[:, None]


def evaluate(problem: Problem, W: np.ndarray, loss: Loss | str | None = None,
             xt: np.ndarray | None = None) -> LandscapePoint:
    """Energy, gradient, mu and Riemannian gradient at the columns of W (eqs. 1.1-1.4).

    Cost: two (M, N) x (N, B) products. ``xt``: a C-contiguous copy of X.T (N, M); with it
    both products are taken in the row-major shape (B, K) x (K, L) with the large operand
    contiguous, (W.T xt).T and (V'.T X).T, which OpenBLAS runs ~2x faster at B = 2-32
    than X @ W and X.T @ V' (same numbers to rounding, other bits; used by the batched
    flow, ``run_dynamics(..., batching="independent")``, docs/numerics.md issue 17).
    """
    loss = get_loss(loss)
    n = W.shape[0]
    yhat = problem.X @ W if xt is None else _product(W, xt)
    y = _labels(problem)
    dV = loss.dV(yhat, y)
    grad = problem.X.T @ dV if xt is None else _product(dV, problem.X)
    energy = loss.V(yhat, y).sum(axis=0) / n
    mu = np.einsum("mb,mb->b", dV, yhat) / n
    rgrad = grad - mu * W
    return LandscapePoint(yhat, energy, grad, mu, rgrad)


def _product(A: np.ndarray, big: np.ndarray) -> np.ndarray:
    """big.T @ A as (A.T @ big).T (A: (K, B), big: C-contiguous (K, L)); one column
    through the matrix-vector product."""
    if A.shape[1] == 1:
        return (A[:, 0] @ big)[:, None]
    return (A.T @ big).T


def project_tangent(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """P_perp V = V - W <W, V> / N columnwise (W broadcasts if it has one column)."""
    return V - W * (np.sum(W * V, axis=0) / W.shape[0])


def project_sphere(W: np.ndarray) -> np.ndarray:
    """Rescale each column to the sphere |W|^2 = N."""
    return W * (math.sqrt(W.shape[0]) / np.linalg.norm(W, axis=0))  # Python float keeps float32


def hessian_vector_product(
    problem: Problem,
    W: np.ndarray,
    V: np.ndarray,
    loss: Loss | str | None = None,
    point: LandscapePoint | None = None,
    xt: np.ndarray | None = None,
) -> np.ndarray:
    """Tangent-space Hessian times vectors, eq. (1.6):

        H v = P_perp X^T (D * (X v)) - mu v,   D_m = V''(yhat_m, y_m),

    with v first projected on the tangent space.

    Parameters
    ----------
    W : (N, B) states, or (N, 1) one state
    V : (N, B) one vector per state, or (N, k) k vectors for a single state W (N, 1)
    point : LandscapePoint, optional
        ``evaluate(problem, W)`` if already known (saves one product).
    xt : C-contiguous X.T, optional: the products as in :func:`evaluate` with ``xt``.
    """
    loss = get_loss(loss)
    if point is None:
        point = evaluate(problem, W, loss, xt)
    D = loss.d2V(point.yhat, _labels(problem))
    V = project_tangent(W, V)
    if xt is None:
        HV = problem.X.T @ (D * (problem.X @ V))
    else:
        HV = _product(D * _product(V, xt), problem.X)
    return project_tangent(W, HV) - point.mu * V


def teacher_overlap(problem: Problem, W: np.ndarray) -> np.ndarray:
    """q = <W, W*> / N per column (B,); NaN for every column when the teacher is unknown
    (user data without W*), so that stop rules and reports on q simply do not apply."""
    if problem.w_star is None:
        return np.full(W.shape[1:], np.nan)
    return problem.w_star @ W / W.shape[0]


def teacher_direction(problem: Problem, w: np.ndarray) -> np.ndarray:
    """e, eq. (1.7): unit vector along the component of W* orthogonal to the state w (N,)."""
    if problem.w_star is None:
        raise ValueError("the teacher direction needs W*")
    n = w.shape[0]
    perp = problem.w_star - w * (w @ problem.w_star) / n
    norm = np.linalg.norm(perp)
    if norm == 0:
        raise ValueError("the state is parallel to the teacher: e is undefined")
    return perp / norm
