"""A DMFT solution on its time grid, with its status, diagnostics and the law of the
effective process (docs/theory.md 5.5, 5.9, 5.11)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from ..loss import get_loss
from ..measure import Measure
from .config import DMFTConfig
from .grid import DMFTGrid

if TYPE_CHECKING:
    import xarray as xr

    from ..spectrum import SpectrumSummary

__all__ = ["DMFTResult", "energy_rise", "alpha_bbp"]


def energy_rise(energy: np.ndarray) -> float:
    """Largest rise of e(t) above its running minimum, max_k (e_k - min_{j<=k} e_j).

    Gradient flow cannot raise the energy (de/dt = -|grad_sphere L|^2 / N <= 0), and
    neither can its backward-Euler scheme (5.13) while each step is the minimiser of
    L + |W - W_prev|^2 / (2 dt) on the sphere (dt below 1 / |lowest Hessian eigenvalue|),
    so a rise in a DMFT solution is Monte Carlo error of the finite-S solution: a lower
    bound on its size at late times, where the energy changes slowly (docs/theory.md 5.8).
    """
    energy = np.asarray(energy, dtype=float)
    return float(np.max(energy - np.minimum.accumulate(energy)))


@dataclass(frozen=True, eq=False)
class DMFTResult:
    """Solution of the DMFT equations (docs/theory.md §5) on a time grid.

    A failed solution (``converged`` False) holds the rows solved before the failing step:
    ``t`` and every array stop at the last good step.

    Attributes
    ----------
    config : DMFTConfig, what was solved (alpha, q0, samples, seed, estimator, tolerances)
    t : (n+1,) grid times
    energy : (n+1,) energy per N, alpha E[V(h(t), y)] (eq. 5.23)
    mu : (n+1,) Lagrange multiplier alpha E[V'(h(t), y) h(t)] (eq. 5.24)
    mu_multiplier : (n+1,) multiplier of the discrete scheme fixed by |W|^2 = N (eq. 5.18);
        differs from ``mu`` by the discretisation and Monte Carlo error of K
    q : (n+1,) teacher overlap
    C : (n+1, n+1) two-time correlation C(t, s) = <W(t), W(s)> / N (= C_perp + q q^T)
    C_perp : (n+1, n+1) C - q q^T
    R : (n+1, n+1) response R(t_k, t_j) of a weight to an impulse at step j (lower triangular)
    K : (n+1, n+1) memory kernel alpha E[V''(h_k) J_kj] (eq. 5.16)
    M_C : (n+1, n+1) noise kernel alpha E[V'_k V'_j] (eq. 5.11)
    h : (S, n+1) samples of the effective prediction h(t) = yhat(t)
    g : (S, n+1) their cavity fields (eq. 5.17)
    y : (S,) their labels
    weights : (S,) importance weights of the samples (sum 1), None for plain sampling (y_scale = 1)
    energy_se, mu_se : (n+1,) Monte Carlo standard errors of energy and mu
    converged : bool, every step of the grid solved (up to the stop_overlap stop, when asked)
    iterations : int, inner fixed-point iterations (eq. 5.19) summed over the steps
    residual : float, largest last change of a kernel row (inf for a failed step)
    message : str, why the solution stopped ("" when converged)
    multiplier_gap : float, largest |mu_multiplier - mu| over the steps solved
    norm_error : float, largest |C(t, t) - 1| (eq. 5.18)
    wall_seconds : float
    memory_bytes : int, size of the per-sample response storage
    Kq, Kq_raw : (n+1, n+1) or None, the y^2-weighted kernel of the linear overlap response
        (docs/theory.md eq. 7.5), projected on the y^2 Stein identity (7.8) and raw; lower
        triangular, meaningful at q0 = 0 (:func:`theory.dmft.linear.overlap_response`)
    """

    config: DMFTConfig
    t: np.ndarray
    energy: np.ndarray
    mu: np.ndarray
    mu_multiplier: np.ndarray
    q: np.ndarray
    C: np.ndarray
    C_perp: np.ndarray
    R: np.ndarray
    K: np.ndarray
    M_C: np.ndarray
    h: np.ndarray
    g: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None
    energy_se: np.ndarray
    mu_se: np.ndarray
    converged: bool
    iterations: int
    residual: float
    message: str
    multiplier_gap: float
    norm_error: float
    wall_seconds: float
    memory_bytes: int
    Kq: np.ndarray | None = None
    Kq_raw: np.ndarray | None = None

    # ------------------------------------------------------------------ the problem
    @property
    def alpha(self) -> float:
        return self.config.alpha

    @property
    def q0(self) -> float:
        return self.config.q0

    @property
    def n_samples(self) -> int:
        return self.config.samples

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def y_scale(self) -> float:
        return self.config.y_scale

    @property
    def stein_rcond(self) -> float | None:
        return self.config.stein_rcond

    @property
    def grid(self) -> DMFTGrid:
        return self.config.grid

    @property
    def steps(self) -> int:
        """Time steps solved (len(t) - 1)."""
        return int(self.t.size - 1)

    # ------------------------------------------------------------------ diagnostics
    @property
    def energy_rise(self) -> float:
        """Largest rise of the energy above its running minimum (:func:`energy_rise`)."""
        return energy_rise(self.energy)

    def stein_residual(self, t: float) -> float:
        """Root-mean-square violation, in Monte Carlo standard errors, of the Stein identity

            alpha E[V'(h_k) g_l] = sum_{j=1..k} K_kj C_perp,jl,   l = 0..k,          (5.28)

        at the grid time t_k > 0 nearest to t (docs/theory.md 5.9). The left side is a
        light-tailed sample average, the right side uses the memory kernel K built from the
        per-sample responses; ~1 means K is consistent with the samples, several means the
        heavy tail of the response (5.8) has biased K (or, with ``stein_rcond``, that the
        projection left part of the identity unenforced).
        """
        k = max(self.index(t), 1)     # h_k, k >= 1, depends on g_1..g_k only (J_k0 = 0)
        K, C, g = self.K, self.C_perp, self.g
        S = self.h.shape[0]
        w = np.full(S, 1.0 / S) if self.weights is None else self.weights
        dV = get_loss(self.config.loss).dV
        terms = self.alpha * (S * w * dV(self.h[:, k], self.y))[:, None] * g[:, :k + 1]
        lhs, se = terms.mean(axis=0), terms.std(axis=0) / math.sqrt(S)
        rhs = K[k, 1:k + 1] @ C[1:k + 1, :k + 1]
        return float(np.sqrt(np.mean(((lhs - rhs) / se) ** 2)))

    def index(self, t: float) -> int:
        """Grid index nearest to time t."""
        return int(np.argmin(np.abs(self.t - t)))

    # ------------------------------------------------------------------ the law
    def measure(self, t: float, atoms: int | None = None, *, seed: int | None = None,
                weighted: bool = False) -> Measure:
        """Law of (yhat(t), y, s) at the grid time nearest to t, as a :class:`Measure`.

        s = (y - q yhat) / sqrt(1 - q^2) is the component along e, the unit vector of W*
        orthogonal to W (docs/theory.md eq. 1.7); mu is the observable mu(t) (eq. 5.24).

        Parameters
        ----------
        atoms : int or None
            The law as seen by a system of M = ``atoms`` measurements: M equal-weight atoms by
            systematic resampling (:meth:`Measure.resampled`, eq. 5.30). Default: the S
            samples themselves under plain sampling, S resampled atoms under importance
            sampling (``y_scale > 1``), whose weighted law carries labels far beyond an
            equal-weight sample of S (|y| up to ~7.7 at S = 8000, weight ~1e-10) that would
            otherwise set its bulk edge (docs/theory.md 5.11).
        seed : int or None
            None: deterministic systematic resampling (the typical system); an integer: M
            independent draws (one random system, with the extreme-label fluctuations of a
            real data set; average predictions over seeds to compare with averages over
            data sets).
        weighted : bool
            Return the weighted sample itself (importance weights of eq. 5.27): right for
            averages, not for spectra. Ignores ``atoms``.
        """
        k = self.index(t)
        q = float(self.q[k])
        hk = self.h[:, k]
        s = (self.y - q * hk) / math.sqrt(max(1.0 - q * q, 1e-300))
        loss = self.config.loss
        if self.weights is None:
            law = Measure.empirical(hk, self.y, s, alpha=self.alpha, mu=float(self.mu[k]), loss=loss)
        else:
            law = Measure.quadrature(hk, self.y, self.weights, s, alpha=self.alpha, mu=float(self.mu[k]),
                                     loss=loss, normalize=True)
        if weighted or (self.weights is None and atoms is None and seed is None):
            return law
        return law.resampled(self.n_samples if atoms is None else atoms, seed)

    def to_dataset(self) -> xr.Dataset:
        """The time series of the solution (energy, mu, their standard errors, q,
        mu_multiplier against t) as a labelled xarray Dataset whose attributes are its
        provenance (:func:`theory.io.provenance`: package version, the config with seed and
        estimator, the status and cost), for :func:`theory.io.write_netcdf`."""
        import xarray as xr

        from ..io import provenance

        series = {name: ("t", getattr(self, name)) for name in
                  ("energy", "energy_se", "mu", "mu_se", "q", "mu_multiplier")}
        attrs = provenance(kind="dmft", **self.config.estimator(), converged=self.converged,
                           message=self.message, iterations=self.iterations, residual=self.residual,
                           multiplier_gap=self.multiplier_gap, norm_error=self.norm_error,
                           wall_seconds=self.wall_seconds, memory_bytes=self.memory_bytes)
        return xr.Dataset(series, coords={"t": self.t}, attrs=attrs)

    def spectrum(self, times: Iterable[float], atoms: int | None = None) -> list[SpectrumSummary]:
        """spectrum_summary (docs/theory.md §2) of the law :meth:`measure` (t, atoms) at each time."""
        from ..spectrum import spectrum_summary

        return [spectrum_summary(self.measure(t, atoms)) for t in times]


def alpha_bbp(results: Sequence[DMFTResult], t: float, atoms: int | None = None) -> float | None:
    """alpha_BBP(t) at N = infinity from DMFT solutions at several alpha (eq. 5.26).

    The BBP residual (docs/theory.md eq. 2.9) of the law ``r.measure(t, atoms)`` is computed
    for each solution; alpha_BBP is where it turns positive (:func:`theory.spectrum.bbp_threshold`).
    None when it does not over the alphas given.
    """
    from ..spectrum import bbp_threshold

    return bbp_threshold([r.alpha for r in results], [r.spectrum([t], atoms)[0].residuals.bbp for r in results])
