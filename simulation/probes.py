"""Hessian probes at a state: lowest eigenpairs of the tangent-space Hessian by
matrix-free Lanczos, the full spectrum for moderate N, squared overlaps of the
eigenvectors with the teacher direction e, and export of the state's measure
(yhat, y, s, mu, alpha) for the random-matrix core (``theory.measure``).

The tangent space W-perp is parametrised by an orthonormal basis B (N, N-1): the first
N-1 columns of the Householder reflection Q that maps the last unit vector to W/|W|.
Applying B or B^T costs O(N), so the Lanczos operator z -> B^T H B z (eq. 1.6) needs
two products with X per application and never forms an N x N matrix.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from theory.errors import InputError, raise_if_failed
from theory.io import atomic_savez
from theory.loss import Loss, get_loss

from .data import Problem
from .landscape import evaluate, hessian_vector_product, teacher_direction

__all__ = ["HessianProbe", "TangentBasis", "StateMeasure", "lowest_eigenpairs", "full_spectrum", "state_measure",
           "export_measure", "FULL_SPECTRUM_MAX_N"]

FULL_SPECTRUM_MAX_N = 3000


@dataclass(frozen=True)
class TangentBasis:
    """Orthonormal basis of W-perp from one Householder vector u: Q = I - 2 u u^T / |u|^2."""

    u: np.ndarray

    @classmethod
    def at(cls, w: np.ndarray) -> "TangentBasis":
        w_hat = w / np.linalg.norm(w)
        u = w_hat.astype(np.float64, copy=True)
        u[-1] += 1.0 if w_hat[-1] >= 0 else -1.0  # u = w_hat + sign(w_N) e_N: no cancellation
        return cls(u / np.linalg.norm(u))

    def _reflect(self, v: np.ndarray) -> np.ndarray:
        return v - 2.0 * np.outer(self.u, self.u @ v).reshape(v.shape)

    def embed(self, z: np.ndarray) -> np.ndarray:
        """B z: tangent coordinates (N-1, ...) -> vectors of R^N orthogonal to W."""
        pad = np.zeros((z.shape[0] + 1,) + z.shape[1:])
        pad[:-1] = z
        return self._reflect(pad)

    def coordinates(self, v: np.ndarray) -> np.ndarray:
        """B^T v: the tangent coordinates of v (its W component is dropped)."""
        return self._reflect(v)[:-1]

    def matrix(self) -> np.ndarray:
        """B as a dense (N, N-1) array."""
        return self.embed(np.eye(self.u.size - 1))


@dataclass(frozen=True)
class HessianProbe:
    """Lowest eigenpairs of the tangent Hessian at one state.

    Attributes
    ----------
    eigenvalues : (k,) ascending
    overlap2 : (k,) squared overlap <v_i, e>^2 of each unit eigenvector with e (eq. 1.7)
    residuals : (k,) |H v_i - lambda_i v_i|
    converged : bool
        False only for a Lanczos run that did not converge, returned with ``strict=False``
        (then the arrays hold the eigenpairs that did converge, possibly fewer than k).
    method : "lanczos" or "full"
    mu, energy, q : the state's multiplier, energy per N and teacher overlap
    eigenvectors : (N, k) in R^N (orthogonal to W), or None if not kept
    message : str
        What happened ("" on success).
    """

    eigenvalues: np.ndarray
    overlap2: np.ndarray
    residuals: np.ndarray
    converged: bool
    method: str
    mu: float
    energy: float
    q: float
    eigenvectors: np.ndarray | None = None
    message: str = ""

    @property
    def residual(self) -> float:
        """Largest |H v_i - lambda_i v_i| (NaN without eigenpairs)."""
        return float(np.max(self.residuals)) if self.residuals.size else float("nan")


def _as_state(problem: Problem, w: ArrayLike) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if w.shape != (problem.n,):
        raise InputError(f"state must have N = {problem.n} components, got {w.shape}")
    return w * (np.sqrt(problem.n) / np.linalg.norm(w))


def _finish(problem, w, point, loss, lam, vecs, method, keep_vectors, converged=True, message="") -> HessianProbe:
    HV = hessian_vector_product(problem, w[:, None], vecs, loss, point)
    residuals = np.linalg.norm(HV - vecs * lam, axis=0)
    e = teacher_direction(problem, w) if problem.w_star is not None else None
    overlap2 = (e @ vecs) ** 2 if e is not None else np.full(lam.shape, np.nan)
    q = float(problem.w_star @ w / problem.n) if problem.w_star is not None else float("nan")
    return HessianProbe(lam, overlap2, residuals, converged, method, float(point.mu[0]),
                        float(point.energy[0]), q, vecs if keep_vectors else None, message)


def lowest_eigenpairs(problem: Problem, w: ArrayLike, k: int = 6, loss: Loss | str | None = None,
                      tol: float = 1e-10, keep_vectors: bool = False, seed: int = 0,
                      strict: bool = True, maxiter: int | None = None) -> HessianProbe:
    """Lowest k eigenpairs of the tangent Hessian (eq. 1.6) by implicitly restarted
    Lanczos (ARPACK via scipy's ``eigsh``) on the matrix-free operator B^T H B.

    If ARPACK does not converge (within ``maxiter`` restarts, default max(1000, 20 N)):
    with ``strict`` raises ConvergenceError (naming N, k and tol) with the partial probe
    (the eigenpairs that converged) as its ``result``; without, returns that probe with
    ``converged=False``.
    """
    loss = get_loss(loss)
    n = problem.n
    if not (1 <= k < n - 1):
        raise InputError(f"k must be between 1 and N-2 = {n - 2}, got {k}")
    w = _as_state(problem, w)
    p64 = problem.astype("float64")
    point = evaluate(p64, w[:, None], loss)
    basis = TangentBasis.at(w)

    def matvec(z):
        z = np.asarray(z, dtype=np.float64)
        v = basis.embed(z.reshape(n - 1, -1))
        return basis.coordinates(hessian_vector_product(p64, w[:, None], v, loss, point)).reshape(z.shape)

    op = LinearOperator((n - 1, n - 1), matvec=matvec, matmat=matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n - 1)
    try:
        lam, z = eigsh(op, k=k, which="SA", tol=tol, v0=v0, maxiter=max(1000, 20 * n) if maxiter is None else maxiter)
    except ArpackNoConvergence as exc:
        message = (f"Lanczos did not converge for the lowest {k} eigenpairs at N={n}, "
                   f"alpha={problem.alpha:g}, tol={tol:g} ({len(exc.eigenvalues)} converged)")
        lam, z = np.asarray(exc.eigenvalues, float), np.asarray(exc.eigenvectors, float).reshape(n - 1, -1)
        order = np.argsort(lam)
        failed = _finish(p64, w, point, loss, lam[order], basis.embed(z[:, order]), "lanczos", keep_vectors,
                         converged=False, message=message)
    else:
        failed = None
    if failed is not None:  # raised outside the except block: no ARPACK traceback attached
        return raise_if_failed(failed, strict)
    order = np.argsort(lam)
    return _finish(p64, w, point, loss, lam[order], basis.embed(z[:, order]), "lanczos", keep_vectors)


def full_spectrum(problem: Problem, w: ArrayLike, loss: Loss | str | None = None, k: int | None = None,
                  keep_vectors: bool = False) -> tuple[np.ndarray, HessianProbe]:
    """All N-1 eigenvalues of the tangent Hessian by dense diagonalisation (N <= 3000).

    Returns (eigenvalues (N-1,), probe of the lowest k with overlaps and residuals).
    Cost O(M N^2 + N^3).
    """
    loss = get_loss(loss)
    n = problem.n
    if n > FULL_SPECTRUM_MAX_N:
        raise InputError(f"the full spectrum is for N <= {FULL_SPECTRUM_MAX_N}, got N = {n}; use Lanczos")
    w = _as_state(problem, w)
    p64 = problem.astype("float64")
    point = evaluate(p64, w[:, None], loss)
    D = loss.d2V(point.yhat[:, 0], p64.y)
    Bm = TangentBasis.at(w).matrix()
    XB = p64.X @ Bm
    H_t = XB.T @ (D[:, None] * XB) - point.mu[0] * np.eye(n - 1)
    lam, z = np.linalg.eigh(H_t)
    k = n - 1 if k is None else min(k, n - 1)
    probe = _finish(p64, w, point, loss, lam[:k], Bm @ z[:, :k], "full", keep_vectors)
    return lam, probe


@dataclass(frozen=True)
class StateMeasure:
    """The empirical law of a state: predictions, labels, teacher projections.

    yhat_m = <x_m, W>, y_m, s_m = sqrt(N) <x_m, e> (eq. 1.7), alpha = M/N, mu (eq. 1.3).
    """

    yhat: np.ndarray
    y: np.ndarray
    s: np.ndarray
    alpha: float
    mu: float
    n: int
    loss: str


def state_measure(problem: Problem, w: ArrayLike, loss: Loss | str | None = None) -> StateMeasure:
    """The measure (yhat, y, s, mu, alpha) of the state w, for ``theory.measure``."""
    loss = get_loss(loss)
    w = _as_state(problem, w)
    p64 = problem.astype("float64")
    point = evaluate(p64, w[:, None], loss)
    e = teacher_direction(p64, w)
    s = np.sqrt(p64.n) * (p64.X @ e)
    return StateMeasure(point.yhat[:, 0], p64.y.copy(), s, p64.alpha, float(point.mu[0]), p64.n, loss.name)


def export_measure(path: str | os.PathLike, measure: StateMeasure, eigenvalues: np.ndarray | None = None,
                   eigenvalues_complete: bool = False) -> Path:
    """Write the measure file read by ``python -m theory spectrum --measure`` (atomic)."""
    extra = {}
    if eigenvalues is not None:
        extra = {"eigenvalues": np.asarray(eigenvalues, float),
                 "eigenvalues_complete": np.bool_(eigenvalues_complete)}
    return atomic_savez(path, yhat=measure.yhat, y=measure.y, s=measure.s, alpha=np.float64(measure.alpha),
                        mu=np.float64(measure.mu), n=np.int64(measure.n), loss=np.str_(measure.loss), **extra)
