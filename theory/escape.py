"""The escape mechanism: overlap growth along the spike and the finite-N success law.

docs/theory.md §4.4. Linearising the flow along the isolated eigenvector of the Hessian
toward the signal, a start with overlap |q(0)| = |z| / sqrt(N), z ~ N(0, 1), grows as

    |q(t)| ~ |q(0)| exp(Lambda(t)),                                         (4.5)
    Lambda(t) = int_0^t max(0, -lambda_iso(t')) dt',                         (4.6)

and succeeds when it reaches q* before the informative direction is lost:

    P_success(alpha, N) = erfc( q* sqrt(N) e^{-Lambda_N(alpha)} / sqrt(2) ),  (4.7)
    Lambda_N(alpha_c(N)) = log( q* sqrt(N) / MEDIAN_ABS_NORMAL ).            (4.8)

This module holds only the theory of the mechanism; the rates lambda_iso(t) come from
the random-matrix core (theory.spectrum, theory.finite_m) applied to laws along a flow,
measured (experiments) or predicted (theory.dmft).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erfc
from scipy.special import ndtri

from .errors import InputError

__all__ = ["Q_INFORMED", "MEDIAN_ABS_NORMAL", "growth_exponent", "integrated_growth",
           "mechanism_probability", "mechanism_target", "check_times"]

#: Above this |q| a state counts as informed: the linear growth of eq. 4.5 is over.
Q_INFORMED = 0.3
#: Median of |z| for z ~ N(0, 1), Phi^{-1}(3/4) = 0.6745: the median start has |q(0)| sqrt(N)
#: equal to it (eq. 4.8).
MEDIAN_ABS_NORMAL = float(ndtri(0.75))


def check_times(times: ArrayLike) -> np.ndarray:
    """Recording times as a float array: finite, >= 0, strictly increasing, at least one.

    Raises InputError otherwise.
    """
    try:
        arr = np.asarray(times, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"times must be numbers, got {times!r}") from None
    if arr.size == 0:
        raise InputError("times is empty")
    if not np.all(np.isfinite(arr)):
        raise InputError("times must be finite")
    if arr[0] < 0:
        raise InputError(f"times must be >= 0, got {arr[0]:g}")
    if np.any(np.diff(arr) <= 0):
        raise InputError("times must be strictly increasing")
    return arr


def growth_exponent(times: ArrayLike, iso: Sequence[float | None], q: ArrayLike | None = None,
                    q_informed: float = Q_INFORMED) -> tuple[float, float]:
    """Lambda = integral of max(0, -lambda_iso(t')) dt' along one trajectory (eq. 4.6).

    Trapezoid rule on the recorded grid; a missing isolated eigenvalue (None, below BBP)
    counts as rate 0, so only the informative stretches contribute. With ``q`` given, the
    integral stops at the last recorded time before |q| first reaches ``q_informed`` (the
    linear growth regime of eq. 4.5 is over).

    Returns
    -------
    (Lambda, t_end)
    """
    t = check_times(times)
    if len(iso) != t.size:
        raise InputError(f"iso has {len(iso)} values but times has {t.size}")
    rate = np.array([0.0 if v is None else max(0.0, -float(v)) for v in iso])
    last = t.size - 1
    if q is not None:
        big = np.flatnonzero(np.abs(np.asarray(q, dtype=np.float64)) >= q_informed)
        if big.size:
            last = max(int(big[0]) - 1, 0)
    if last < 1:
        return 0.0, float(t[0])
    tt, rr = t[:last + 1], rate[:last + 1]
    return float(np.sum(0.5 * (rr[1:] + rr[:-1]) * np.diff(tt))), float(tt[-1])


def integrated_growth(times: ArrayLike, rate: ArrayLike) -> float:
    """Lambda of eq. 4.6 from a mean rate r(t) = <max(0, -lambda_iso(t))> on a grid:
    trapezoid rule up to the first NaN (no uninformed trajectory left to average over)."""
    t = check_times(times)
    r = np.asarray(rate, dtype=np.float64)
    if r.shape != t.shape:
        raise InputError(f"rate has shape {r.shape} but times has {t.shape}")
    ok = np.isfinite(r)
    last = len(r) if ok.all() else int(np.argmin(ok))
    if last < 2:
        return 0.0
    return float(np.sum(0.5 * (r[1:last] + r[:last - 1]) * np.diff(t[:last])))


def mechanism_probability(lam: ArrayLike, n: ArrayLike, q_star: float) -> np.ndarray | float:
    """Eq. 4.7: P(success) = P(|z| e^Lambda / sqrt(N) >= q*) = erfc(q* sqrt(N) e^-Lambda / sqrt 2)."""
    return erfc(q_star * np.sqrt(n) * np.exp(-np.asarray(lam, float)) / math.sqrt(2.0))


def mechanism_target(n: float, q_star: float) -> float:
    """Eq. 4.8: the growth exponent at which the median start succeeds,
    Lambda_N(alpha_c(N)) = log(q* sqrt(N) / MEDIAN_ABS_NORMAL)."""
    return float(np.log(q_star * np.sqrt(n) / MEDIAN_ABS_NORMAL))
