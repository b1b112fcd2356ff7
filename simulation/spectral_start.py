"""Spectral starts of the simulator: the top eigenvector of the preprocessed data matrix.

For a problem (X, y) with x_m ~ N(0, I/N) (docs/theory.md §1) the spectral start with
preprocessing T is the top eigenvector of

    S = (N/M) sum_m T(y_m) x_m x_m^T = (1/M) sum_m T(y_m) a_m a_m^T,   a_m = sqrt(N) x_m,

(docs/theory.md eq. 6.1; (1/M) sum T x x^T = S/N has the same eigenvectors, and S has
O(1) eigenvalues, the ones :mod:`theory.spectral_start` predicts). It is computed by
matrix-free Lanczos (``scipy.sparse.linalg.eigsh`` on the operator v -> (N/M) X^T (T(y) * (X v))),
never forming the N x N matrix, and scaled to the sphere |W|^2 = N.

Sign. The loss depends on W only through (x_m . W)^2, so W and -W are the same start; the
sign is fixed deterministically: the component of largest magnitude is made positive.

Replicas. The eigenvector is a deterministic function of the data: B replicas from one
data set are B copies of the same start (the columns of ``W0`` are identical). Independent
spectral starts need independent data sets (different seeds).

T is applied to the labels as they are: in the package's model E y^2 = 1 exactly
(|W*|^2 = N), which the named preprocessings assume. With real data of unknown norm,
divide y by sqrt(mean(y^2)) first (Chen & Candes' lambda_0, PhasePack's normalisation).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from theory.errors import ConvergenceError, InputError, raise_if_failed
from theory.spectral_start import Preprocessing, get_preprocessing

from .data import Problem

__all__ = ["SpectralStart", "spectral_operator", "spectral_start"]


@dataclass(frozen=True, eq=False)
class SpectralStart:
    """A spectral start and how it was found.

    Attributes
    ----------
    W0 : ndarray (N, B)
        B identical columns: the top eigenvector of S scaled to |W|^2 = N, sign fixed.
    q0 : float
        Start overlap <W0, W*> / N (NaN without the teacher); q0^2 is the quantity
        theory.spectral_start predicts as ``overlap2``.
    top_eigenvalue : float
        Largest eigenvalue of S (eq. 6.1 normalisation).
    preprocess : str
    converged : bool
    iterations : int
        Matrix-vector products used by Lanczos.
    residual : float
        |S v - lambda v| for the unit eigenvector v.
    message : str
    """

    W0: np.ndarray
    q0: float
    top_eigenvalue: float
    preprocess: str
    converged: bool
    iterations: int
    residual: float
    message: str


def spectral_operator(problem: Problem, preprocess: str | Preprocessing) -> tuple[LinearOperator, list]:
    """The operator v -> (N/M) X^T (T(y) * (X v)) of S (float64) and a one-item call counter."""
    pre = get_preprocessing(preprocess)
    X = np.asarray(problem.X, dtype=np.float64)
    T = pre(np.asarray(problem.y, dtype=np.float64), problem.alpha)
    if not np.isfinite(T).all():
        raise InputError(f"preprocessing {pre.name!r} is not finite on {int((~np.isfinite(T)).sum())} label(s)")
    scale = problem.n / problem.m
    w = T * scale
    calls = [0]

    def matvec(v):
        calls[0] += 1
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        return X.T @ (w * (X @ v))

    op = LinearOperator((problem.n, problem.n), matvec=matvec, rmatvec=matvec, dtype=np.float64)
    return op, calls


def _fix_sign(v: np.ndarray) -> np.ndarray:
    """Make the component of largest magnitude positive (ties: the first one)."""
    k = int(np.argmax(np.abs(v)))
    return -v if v[k] < 0 else v


def spectral_start(problem: Problem, preprocess: str | Preprocessing, replicas: int = 1, seed: int | None = None,
                   *, tol: float = 1e-8, maxiter: int | None = None, strict: bool = True) -> SpectralStart:
    """Spectral start (docs/theory.md §6): top eigenvector of S by matrix-free Lanczos.

    Parameters
    ----------
    problem : Problem
    preprocess : str or Preprocessing
        Name (``plain``, ``trimmed``, ``mondelli-montanari``, ``luo-alghamdi-lu``),
        ``mondelli-montanari:D`` or a formula in y (and alpha), see theory.spectral_start.
    replicas : int
        Number of columns of ``W0``; all are the same start (see the module docstring).
    seed : int, optional
        Seed of Lanczos' start vector (default: the problem's seed, else 0). It changes
        the result only within the Lanczos tolerance.
    tol : float
        eigsh tolerance (relative accuracy of the eigenvalue).
    maxiter : int, optional
        eigsh restarts (default scipy's, 10 N).
    strict : bool
        Raise ConvergenceError if Lanczos does not converge; else return the best
        available vector with ``converged`` False.
    """
    if not isinstance(replicas, (int, np.integer)) or replicas < 1:
        raise InputError(f"replicas must be an integer >= 1, got {replicas!r}")
    pre = get_preprocessing(preprocess)
    op, calls = spectral_operator(problem, pre)
    n = problem.n
    seed = problem.seed if seed is None else seed
    seed = 0 if seed is None else seed
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    v0 = np.random.default_rng(np.random.SeedSequence([int(seed), 6])).standard_normal(n)
    converged, message = True, "converged"
    try:
        vals, vecs = eigsh(op, k=1, which="LA", v0=v0, tol=tol, maxiter=maxiter)
    except ArpackNoConvergence as exc:
        if exc.eigenvectors.shape[1] == 0:
            raise ConvergenceError(f"spectral start: Lanczos found no eigenvector after {calls[0]} products "
                                   f"(N={n}, M={problem.m}, preprocess {pre.name!r})") from None
        vals, vecs = exc.eigenvalues, exc.eigenvectors
        converged, message = False, f"Lanczos did not converge after {calls[0]} products"
    lam = float(vals[0])
    products = int(calls[0])
    v = vecs[:, 0] / np.linalg.norm(vecs[:, 0])
    residual = float(np.linalg.norm(op.matvec(v) - lam * v))
    v = _fix_sign(v)
    w = np.sqrt(n) * v
    q0 = float("nan") if problem.w_star is None else float(w @ np.asarray(problem.w_star, dtype=np.float64) / n)
    W0 = np.repeat(w[:, None], replicas, axis=1).astype(problem.dtype, copy=False)
    result = SpectralStart(W0=W0, q0=q0, top_eigenvalue=lam, preprocess=pre.name, converged=converged,
                           iterations=products, residual=residual, message=message)
    return raise_if_failed(result, strict)
