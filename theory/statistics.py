"""Statistics of theory-versus-simulation comparisons, in one place.

- :func:`standard_error` of a mean over repeats (seeds, starts): std(ddof=1) / sqrt(count);
- binomial counts: :func:`binomial_standard_error` sqrt(p (1 - p) / m) and the
  :func:`wilson_interval` of a success probability (success curves, finite-N study);
- :func:`fit_logistic`: maximum-likelihood fit of P(alpha) = 1 / (1 + exp(-(alpha - alpha_c) / w))
  to success counts, alpha_c(N) of the finite-N study (docs/validation.md);
- :func:`extrapolate_in_n`: weighted least squares a + b / N (docs/theory.md eq. 5.29);
- :func:`kolmogorov_distance`: sup |F_a - F_b| between a sample and a weighted law.

Shared by simulation (success figures), the experiments and the benchmarks; it imports
nothing of either half.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["standard_error", "cluster_proportion", "cluster_bootstrap", "binomial_standard_error", "wilson_interval", "fit_logistic", "extrapolate_in_n",
           "kolmogorov_distance"]


def standard_error(x: ArrayLike, axis: int = 0) -> np.ndarray | float:
    """Standard error of the mean over ``axis`` (repeats: seeds, starts, trajectories),
    the sample standard deviation over sqrt(count): std(ddof=1) / sqrt(n)."""
    x = np.asarray(x)   # in its own precision, as the callers computed it before
    return x.std(axis=axis, ddof=1) / np.sqrt(x.shape[axis])


def binomial_standard_error(k: int, m: int) -> float:
    """Standard error sqrt(p (1 - p) / m) of p = k / m, with k (m - k) floored at 1 so that
    k = 0 and k = m do not claim zero uncertainty (sqrt(1 / m^3) there)."""
    if m < 1:
        raise ValueError(f"need m >= 1 trials, got {m}")
    return float(np.sqrt(max(k * (m - k), 1) / m ** 3))


def wilson_interval(k: ArrayLike, n: ArrayLike, z: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion k/n (NaN where n = 0).

    Unlike p +- z sqrt(p(1-p)/n) it stays inside [0, 1] and does not collapse to a point
    at k = 0 or k = n, which is where most cells of a sweep are.

    Parameters
    ----------
    k, n : array_like of int
        Successes and trials.
    z : float
        Standard-normal quantile (1: 68%, 1.96: 95%).

    Returns
    -------
    lower, upper : ndarray
    """
    k = np.asarray(k, float)
    n = np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        lo = np.where(k == 0, 0.0, np.clip(centre - half, 0.0, 1.0))  # exact ends: no -1e-16 error bars
        hi = np.where(k == n, 1.0, np.clip(centre + half, 0.0, 1.0))
        lo = np.where(n > 0, np.minimum(lo, p), np.nan)
        hi = np.where(n > 0, np.maximum(hi, p), np.nan)
    return lo, hi


def fit_logistic(alphas: ArrayLike, k: ArrayLike, m: ArrayLike) -> tuple[float, float, float]:
    """MLE of P(alpha) = 1 / (1 + exp(-(alpha - alpha_c) / w)) from k successes out of m.

    Returns (alpha_c, w, standard error of alpha_c from the observed information)."""
    from scipy.optimize import minimize

    a, k, m = (np.asarray(v, float) for v in (alphas, k, m))

    def nll(th):
        ac, lw = th
        p = np.clip(1 / (1 + np.exp(-(a - ac) / np.exp(lw))), 1e-12, 1 - 1e-12)
        return -np.sum(k * np.log(p) + (m - k) * np.log(1 - p))

    best = minimize(nll, [float(np.interp(0.5, k / m, a)) if np.all(np.diff(k / m) >= 0) else a.mean(), 0.0],
                    method="Nelder-Mead", options=dict(xatol=1e-6, fatol=1e-9, maxiter=4000))
    h = 1e-3
    H = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            e_i, e_j = np.eye(2)[i] * h, np.eye(2)[j] * h
            H[i, j] = (nll(best.x + e_i + e_j) - nll(best.x + e_i - e_j) - nll(best.x - e_i + e_j)
                       + nll(best.x - e_i - e_j)) / (4 * h * h)
    cov = np.linalg.inv(H)
    return float(best.x[0]), float(np.exp(best.x[1])), float(np.sqrt(max(cov[0, 0], 0.0)))


def extrapolate_in_n(ns: ArrayLike, means: ArrayLike, ses: ArrayLike) -> dict:
    """Weighted least-squares fit means = a + b / N (docs/theory.md eq. 5.29).

    Returns a (the N = infinity value) and b with their standard errors and the fit's
    chi^2 per degree of freedom (None with two sizes: the line then has no check)."""
    x = 1.0 / np.asarray(ns, float)
    A = np.stack([np.ones_like(x), x], axis=1) / np.asarray(ses)[:, None]
    coef, *_ = np.linalg.lstsq(A, np.asarray(means) / np.asarray(ses), rcond=None)
    cov = np.linalg.inv(A.T @ A)
    dof = len(ns) - 2
    chi2 = float(np.sum((A @ coef - np.asarray(means) / np.asarray(ses)) ** 2))
    return dict(a=float(coef[0]), a_se=float(np.sqrt(cov[0, 0])), b=float(coef[1]), b_se=float(np.sqrt(cov[1, 1])),
                chi2_per_dof=chi2 / dof if dof > 0 else None)


def kolmogorov_distance(a: ArrayLike, b: ArrayLike, wb: ArrayLike | None = None) -> float:
    """Kolmogorov distance sup_x |F_a(x) - F_b(x)| between the empirical law of a sample a
    and the law of atoms b with weights wb (summing to 1; None: equal weights, which is
    scipy.stats.ks_2samp's statistic)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    wb = np.full(b.size, 1.0 / b.size) if wb is None else np.asarray(wb, float)
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid, side="right") / a.size
    order = np.argsort(b)
    cb = np.concatenate([[0.0], np.cumsum(wb[order])])
    fb = cb[np.searchsorted(b[order], grid, side="right")]
    return float(np.max(np.abs(fa - fb)))


def cluster_proportion(success: ArrayLike, decided: ArrayLike | None = None) -> tuple[float, float]:
    """P = (successes) / (decided starts) over clusters (rows), and its cluster-robust
    standard error, the between-cluster variance of the ratio estimator::

        se^2 = C / (C - 1) * sum_c (y_c - P n_c)^2 / (sum_c n_c)^2

    (y_c successes and n_c decided starts of cluster c; C clusters with n_c > 0). With one
    start per cluster it is sqrt(P(1-P)/(C-1)), the binomial error up to C/(C-1).
    NaN se with fewer than 2 clusters.
    """
    s = np.atleast_2d(np.asarray(success, bool))
    d = np.ones_like(s, bool) if decided is None else np.atleast_2d(np.asarray(decided, bool))
    y = (s & d).sum(axis=1).astype(float)
    m = d.sum(axis=1).astype(float)
    keep = m > 0
    y, m = y[keep], m[keep]
    if m.sum() == 0:
        return float("nan"), float("nan")
    p = y.sum() / m.sum()
    C = y.size
    if C < 2:
        return float(p), float("nan")
    se = np.sqrt(C / (C - 1) * np.sum((y - p * m) ** 2)) / m.sum()
    return float(p), float(se)


def cluster_bootstrap(success: ArrayLike, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """P over all starts and the standard deviation of P over ``reps`` resamplings of whole
    clusters (rows) with replacement."""
    s = np.atleast_2d(np.asarray(success, float))
    C = s.shape[0]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, C, size=(reps, C))
    boot = s[pick].mean(axis=(1, 2))
    return float(s.mean()), float(boot.std(ddof=1))
