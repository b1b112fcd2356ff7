"""Linear response of the teacher overlap around the q = 0 solution (docs/theory.md §7.1-7.6).

One q0 = 0 DMFT solve (:func:`theory.dmft.solve_dmft`) carries the y^2-weighted memory kernel
Kq of eq. 7.5 (``DMFTResult.Kq``, projected on the Stein identity 7.8, and ``Kq_raw``).
:func:`overlap_response` marches the linear Volterra recursion (7.6) for the response
Gamma(k, j) to a unit overlap injected at step j, whose column j = 0 is the growth factor
G(t) = lim q(t) / q0 (7.1), and propagates the finite-N source of the overlap (7.10) to its
variance Var zeta (7.11), so that sqrt(N) q(t) ~ z G(t) + zeta(t) while q is small (7.12).
It also propagates the finite-S source of the solver's own sample (the S-sample analogue of
7.10), which the nonlinear solver from q0 > 0 carries (§7.7 i).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..loss import get_loss
from .result import DMFTResult

__all__ = ["OverlapResponse", "overlap_response", "response_matrix"]

ESTIMATORS = ("projected", "raw")


@dataclass(frozen=True, eq=False)
class OverlapResponse:
    """The linear overlap response of one q0 = 0 DMFT solution (docs/theory.md 7.3-7.6).

    Attributes
    ----------
    t : (n+1,) grid times
    G : (n+1,) growth factor G(t_k) = Gamma(k, 0) (eqs. 7.1, 7.6), G(0) = 1
    var_zeta : (n+1,) Var zeta(t_k), the finite-N source of sqrt(N) q (eq. 7.11)
    ratio : (n+1,) r = Var zeta / G^2 (eq. 7.13)
    sample_source : (n+1,) the overlap the solver's own S samples would inject from q = 0,
        zeta_S(t_k) = -sum_j Gamma(k, j) (dt_j / a_j) alpha E_S[V'(h_j) y] (in units of q, not
        sqrt(N) q): the finite-S source of the nonlinear solver from q0 > 0 (§7.7 i)
    gamma : (n+1, n+1) Gamma(k, j), lower triangular with unit diagonal
    a : (n+1,) a_k = 1 - dt_k mu_k + dt_k Kq_kk, the diagonal of (7.6) (a_0 = 1)
    estimator : "projected" (Kq projected on 7.8; the validated one, §7.9 D) or "raw"
    alpha, seed, samples : of the solution
    converged : the q0 = 0 solution converged and every a_k > 0
    message : why not ("" when converged)
    """

    t: np.ndarray
    G: np.ndarray
    var_zeta: np.ndarray
    ratio: np.ndarray
    sample_source: np.ndarray
    gamma: np.ndarray
    a: np.ndarray
    estimator: str
    alpha: float
    seed: int
    samples: int
    converged: bool
    message: str

    def at(self, t: float) -> dict:
        """G, Var zeta, r and the sample source at the grid time nearest to t (plain floats)."""
        k = int(np.argmin(np.abs(self.t - t)))
        return {"t": float(self.t[k]), "G": float(self.G[k]), "var_zeta": float(self.var_zeta[k]),
                "ratio": float(self.ratio[k]), "sample_source": float(self.sample_source[k])}


def response_matrix(Kq: np.ndarray, a: np.ndarray, dts: np.ndarray) -> np.ndarray:
    """Gamma(k, j) of the linear recursion (7.6) started at every step j:

        Gamma(j, j) = 1,   Gamma(k, j) a_k = Gamma(k-1, j) - dt_k sum_{l=j..k-1} Kq_kl Gamma(l, j),  k > j.

    ``Kq`` (n+1, n+1) lower triangular (its diagonal enters only through ``a``), ``a`` and
    ``dts`` (n+1,). Column 0 is G (7.6)."""
    n1 = a.size
    gam = np.zeros((n1, n1))
    gam[0, 0] = 1.0
    for k in range(1, n1):
        # rows l < k of column j vanish for l < j, so the full sum over l < k is the sum over l >= j
        gam[k, :k] = (gam[k - 1, :k] - dts[k] * (Kq[k, :k] @ gam[:k, :k])) / a[k]
        gam[k, k] = 1.0
    return gam


def overlap_response(result: DMFTResult, estimator: str = "projected") -> OverlapResponse:
    """The linear overlap response (7.6) and the finite-N source (7.10, 7.11) of a q0 = 0 solution.

    Parameters
    ----------
    result : a :class:`DMFTResult` from q0 = 0 (possibly partial: the rows it has)
    estimator : "projected" (Kq corrected by the y^2-weighted Stein identity 7.8; the one that
        matches simulation, §7.9 D) or "raw" (7.5 from the per-sample responses; what the
        nonlinear solver's b = alpha E[V' y] is at first order, §7.7 ii)

    Raises
    ------
    InputError for q0 != 0, a result without Kq, or an unknown estimator.
    """
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if result.q0 != 0.0:
        raise InputError(f"the linear response is taken around the q = 0 solution; got q0 = {result.q0:g}")
    Kq = result.Kq if estimator == "projected" else result.Kq_raw
    if Kq is None:
        raise InputError("this DMFTResult carries no Kq (solved by an older version)")
    t = result.t
    dts = np.diff(t, prepend=0.0)
    a = 1.0 - dts * result.mu_multiplier + dts * np.diag(Kq)
    a[0] = 1.0
    message = "" if result.converged else f"partial q0 = 0 solution: {result.message}"
    if np.any(a[1:] <= 0):
        k = int(np.argmax(a[1:] <= 0)) + 1
        message = message or f"a_k <= 0 at t = {t[k]:.4g}: the linear recursion (7.6) is unstable (lower dt_max)"
    gam = response_matrix(Kq, a, dts)
    # the finite-N source (7.10): C_beta(t_j, t_l) = alpha E[V'_j V'_l y^2]
    S = result.h.shape[0]
    w = np.full(S, 1.0 / S) if result.weights is None else result.weights      # sums to 1
    dV = get_loss(result.config.loss).dV(result.h, result.y[:, None])          # (S, n+1)
    wy2 = w * result.y ** 2
    c_beta = result.alpha * (dV * wy2[:, None]).T @ dV                         # (n+1, n+1)
    inj = np.zeros_like(a)
    inj[1:] = dts[1:] / a[1:]                   # a source beta_j injects -dt_j beta_j / a_j (7.11)
    v = gam * inj[None, :]                      # v[k, j] = Gamma(k, j) dt_j / a_j, j >= 1
    var_zeta = np.einsum("kj,jl,kl->k", v, c_beta, v)
    beta_s = result.alpha * ((w * result.y) @ dV)                               # alpha E_S[V' y]
    sample_source = -(v @ beta_s)
    G = gam[:, 0].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(G != 0, var_zeta / G ** 2, np.inf)
    return OverlapResponse(t=t.copy(), G=G, var_zeta=var_zeta, ratio=ratio, sample_source=sample_source,
                           gamma=gam, a=a, estimator=estimator, alpha=result.alpha, seed=int(result.seed),
                           samples=int(result.n_samples), converged=not message, message=message)
