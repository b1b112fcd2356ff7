"""N -> infinity dynamics of gradient flow on the sphere: dynamical mean-field theory.

Equations and derivation: docs/theory.md section 5. The flow
dW/dt = -grad L + mu W is reduced to

* a single-measurement effective process (eq. 5.9, discretised as eq. 5.14)
  ``h(t) = q(t) y + g(t) - int_0^t R(t, s) V'(h(s), y) ds``, with g a centred Gaussian
  process of covariance C_perp(t, s) = C(t, s) - q(t) q(s), independent of y ~ N(0, 1);
* a single-weight effective process (eq. 5.10) that is *linear*, so that its response
  R, its correlation C_perp, the teacher overlap q and the multiplier mu obey closed
  Volterra recursions (eqs. 5.15-5.18) driven by the averages over the measurement
  process: the noise kernel M_C = alpha E[V'(t) V'(s)] and the memory kernel
  K = alpha E[V''(h(t)) dh(t)/dP(s)] (eq. 5.11-5.12).

Both processes are causal, so the solver marches in time: at step k the row k of all
kernels is found self-consistently (an inner fixed point, eq. 5.19) while rows < k are
final. Averages over the measurement process are Monte Carlo averages over S sampled
(y, Gaussian path) pairs, with common random numbers fixed by ``seed`` and antithetic
pairs (y, g) / (-y, -g) (the W -> -W symmetry), (y, z0) from a scrambled Sobol sequence. The per-sample response
dh(t)/dP(s) is propagated exactly for the discrete scheme (eq. 5.16), which is what
costs O(S n^2) memory and O(S n^3) time on n grid steps.

The time discretisation is backward Euler (eq. 5.13), the DMFT of which is exact for the
implicit scheme; the measurement step is then the proximal map of V, a cubic solved in
closed form. Only the quartic loss is supported (the prox is quartic-specific).

The law of (yhat(t), y, s) (``DMFTResult.measure``) feeds the random-matrix core
(theory.spectrum) as the M equal-weight atoms that a system of M = alpha N measurements
sees, resampled from the (importance-weighted) samples (eq. 5.30, docs/theory.md 5.11).
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import ConvergenceError, InputError
from .loss import QUARTIC
from .loss import quartic_prox_step as prox_quartic
from .measure import Measure

__all__ = ["DMFTGrid", "DMFTResult", "solve_dmft", "time_grid", "prox_quartic", "t0_limits",
           "alpha_bbp"]

#: Inner (per time step) fixed point: tolerance on the change of the kernel rows.
INNER_TOL = 1e-9
INNER_MAX_ITER = 200
#: Runaway guard: the norm-fixed multiplier (eq. 5.18) and the observable mu (eq. 5.24)
#: agree up to Monte Carlo noise and O(dt); beyond |mu_mult - mu| > MULT_TOL_ABS +
#: MULT_TOL_REL |mu| the solution has run away (heavy-tailed estimate of the memory kernel
#: K, docs/theory.md 5.5) and ConvergenceError is raised.
MULT_TOL_ABS = 2.0
MULT_TOL_REL = 0.5


# ---------------------------------------------------------------------------- grid
@dataclass(frozen=True)
class DMFTGrid:
    """Time grid of the backward-Euler scheme (eq. 5.13).

    Steps grow geometrically from ``dt0`` by the factor ``growth`` until ``dt_max``,
    then stay at ``dt_max`` until ``t_max``; the last step is shortened to end at t_max.
    """

    t_max: float
    dt0: float = 0.005
    dt_max: float = 0.1
    growth: float = 1.04

    def __post_init__(self):
        for name in ("t_max", "dt0", "dt_max"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InputError(f"{name} must be a positive finite number, got {v!r}")
        if self.dt0 > self.dt_max:
            raise InputError(f"dt0 = {self.dt0} must not exceed dt_max = {self.dt_max}")
        if not (self.growth >= 1.0 and math.isfinite(self.growth)):
            raise InputError(f"growth must be >= 1, got {self.growth!r}")


def time_grid(grid: DMFTGrid) -> np.ndarray:
    """Times t_0 = 0 < t_1 < ... < t_n = t_max of the grid (eq. 5.13)."""
    times = [0.0]
    dt = grid.dt0
    while times[-1] < grid.t_max * (1 - 1e-12):
        times.append(min(times[-1] + dt, grid.t_max))
        dt = min(dt * grid.growth, grid.dt_max)
    t = np.asarray(times)
    if t.size < 3:
        raise InputError(f"grid has only {t.size - 1} step(s); lower dt0 or raise t_max")
    return t


# ---------------------------------------------------------------------------- t = 0
def t0_limits(alpha: float, q0: float = 0.0, n_nodes: int = 40) -> dict:
    """Exact t = 0 values (eqs. 5.20-5.22) by Gauss-Hermite quadrature.

    At t = 0, (yhat, y) is a centred Gaussian pair of unit variances and correlation q0.
    Returns energy per N = alpha E[V], mu = alpha E[V' yhat], b = alpha E[V' y],
    dq/dt = mu q0 - b and de/dt = -(alpha E[V'^2] + (mu, b) G^-1 (mu, b)^T - mu^2) with
    G = [[1, q0], [q0, 1]] (at q0 = 0: 2 alpha, 4 alpha, 0, 0, -48 alpha).
    """
    from numpy.polynomial.hermite_e import hermegauss

    x, w = hermegauss(n_nodes)
    w = w / w.sum()
    z1, z2 = np.meshgrid(x, x, indexing="ij")
    W = np.outer(w, w)
    h = z1
    y = q0 * z1 + math.sqrt(1.0 - q0 * q0) * z2
    V, dV = QUARTIC.V(h, y), QUARTIC.dV(h, y)
    E = lambda f: float(np.sum(W * f))  # noqa: E731
    mu = alpha * E(dV * h)
    b = alpha * E(dV * y)
    G = np.array([[1.0, q0], [q0, 1.0]])
    v = np.array([mu, b])
    grad2 = alpha * E(dV * dV) + float(v @ np.linalg.solve(G, v)) - mu * mu
    return {"energy": alpha * E(V), "mu": mu, "b": b, "dq_dt": mu * q0 - b, "de_dt": -grad2}


# ---------------------------------------------------------------------------- result
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

    Attributes
    ----------
    alpha, q0 : float
    t : (n+1,) grid times
    energy : (n+1,) energy per N, alpha E[V(h(t), y)] (eq. 5.23)
    mu : (n+1,) Lagrange multiplier alpha E[V'(h(t), y) h(t)] (eq. 5.24)
    mu_multiplier : (n+1,) multiplier of the discrete scheme fixed by |W|^2 = N (eq. 5.18);
        differs from ``mu`` by the discretisation error
    q : (n+1,) teacher overlap
    C : (n+1, n+1) two-time correlation C(t, s) = <W(t), W(s)> / N (= C_perp + q q^T)
    R : (n+1, n+1) response R(t_k, t_j) of a weight to an impulse at step j (lower triangular)
    h : (S, n+1) samples of the effective prediction h(t) = yhat(t)
    y : (S,) their labels
    energy_se, mu_se : (n+1,) Monte Carlo standard errors of energy and mu
    weights : (S,) importance weights of the samples (mean 1), None for plain sampling
        (``y_scale = 1``)
    residual : float, largest last change of a kernel row in the inner fixed point
    converged : bool
    wall_seconds : float
    memory_bytes : int, size of the per-sample response storage
    """

    alpha: float
    q0: float
    t: np.ndarray
    energy: np.ndarray
    mu: np.ndarray
    mu_multiplier: np.ndarray
    q: np.ndarray
    C: np.ndarray
    R: np.ndarray
    h: np.ndarray
    y: np.ndarray
    energy_se: np.ndarray
    mu_se: np.ndarray
    residual: float
    converged: bool
    wall_seconds: float
    memory_bytes: int
    n_samples: int
    inner_iterations: int = 0
    extra: dict = field(default_factory=dict)
    weights: np.ndarray | None = None

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
        K, C, g = self.extra["K"], self.extra["C_perp"], self.extra["g"]
        S = self.h.shape[0]
        w = np.full(S, 1.0 / S) if self.weights is None else self.weights
        terms = self.alpha * (S * w * QUARTIC.dV(self.h[:, k], self.y))[:, None] * g[:, :k + 1]
        lhs, se = terms.mean(axis=0), terms.std(axis=0) / math.sqrt(S)
        rhs = K[k, 1:k + 1] @ C[1:k + 1, :k + 1]
        return float(np.sqrt(np.mean(((lhs - rhs) / se) ** 2)))

    def index(self, t: float) -> int:
        """Grid index nearest to time t."""
        return int(np.argmin(np.abs(self.t - t)))

    def measure(self, t: float, atoms: int | None = None, *, seed: int | None = None,
                weighted: bool = False) -> Measure:
        """Law of (yhat(t), y, s) at the grid time nearest to t, as a :class:`Measure`.

        s = (y - q yhat) / sqrt(1 - q^2) is the component along e, the unit vector of W*
        orthogonal to W (physics.md §1); mu is the observable mu(t) (eq. 5.24).

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
        if self.weights is None:
            law = Measure.empirical(hk, self.y, s, alpha=self.alpha, mu=float(self.mu[k]))
        else:
            law = Measure.quadrature(hk, self.y, self.weights, s, alpha=self.alpha, mu=float(self.mu[k]),
                                     normalize=True)
        if weighted or (self.weights is None and atoms is None and seed is None):
            return law
        return law.resampled(self.n_samples if atoms is None else atoms, seed)

    def spectrum(self, times, atoms: int | None = None) -> list:
        """spectrum_summary (docs/theory.md §2) of the law :meth:`measure` (t, atoms) at each time."""
        from .spectrum import spectrum_summary

        return [spectrum_summary(self.measure(t, atoms)) for t in times]


# ---------------------------------------------------------------------------- weight row
def _weight_row(k, dt, a_mem, K_kk, Mc_row, b_k, q_prev, C, R, X_col):
    """Row k of the weight-side recursions (eqs. 5.15-5.18).

    Parameters
    ----------
    a_mem : (k,) coefficients of w_j (j < k) in the numerator: e_{k-1} - dt K[k, :k]
    K_kk : float, equal-time memory kernel
    Mc_row : (k+1,) alpha E[V'_k V'_j], j <= k
    b_k : float, alpha E[V'(h_k) y]
    q_prev : q_{k-1}
    C, R : kernels (rows < k final)
    X_col : (k,) E[w_j xi_k] = sum_{l <= j} R[j, l] dt_l M_C[l, k]

    Returns
    -------
    c, mu_k, q_k, R_row (k+1,), Cperp_row (k+1,)
    """
    Ck = C[:k, :k]
    num2 = float(a_mem @ Ck @ a_mem + 2.0 * dt * (a_mem @ X_col) + dt * dt * Mc_row[k])
    Nq = q_prev - dt * b_k
    dK = dt * K_kk

    def excess(c):
        return num2 / (c * c) + Nq * Nq / ((c - dK) ** 2) - 1.0

    lo = max(0.0, dK) + 1e-300
    # excess decreases from +inf at lo; bracket the root upward
    hi = max(1.0, 2.0 * lo)
    while excess(hi) > 0:
        hi *= 2.0
        if hi > 1e300:
            raise ConvergenceError(f"multiplier equation has no root at step {k}")
    lo_c = lo * (1 + 1e-12) if lo > 0 else 1e-300
    for _ in range(200):  # bisection in log space is robust; excess is monotone
        mid = math.sqrt(lo_c * hi) if lo_c > 0 else hi / 2
        if excess(mid) > 0:
            lo_c = mid
        else:
            hi = mid
        if hi - lo_c <= 1e-15 * hi:
            break
    c = 0.5 * (lo_c + hi)
    mu_k = (1.0 - c + dK) / dt
    return _rows(k, c, mu_k, Nq / (c - dK), a_mem, num2, X_col, dt, C, R)


def _rows(k, c, mu_k, q_k, a_mem, num2, X_col, dt, C, R):
    """Rows k of R and C_perp given c_k (eq. 5.15')."""
    Ck = C[:k, :k]
    R_row = np.empty(k + 1)
    R_row[:k] = (a_mem @ R[:k, :k]) / c
    R_row[k] = 1.0 / c
    C_row = np.empty(k + 1)
    C_row[:k] = (a_mem @ Ck + dt * X_col) / c
    C_row[k] = num2 / (c * c)
    return c, mu_k, q_k, R_row, C_row


# ---------------------------------------------------------------------------- solver
def solve_dmft(alpha: float, t_max: float, q0: float = 0.0, *, n_samples: int = 4000,
               grid: DMFTGrid | None = None, seed: int = 0, dtype="float64",
               partners: int | None = None, y_scale: float | None = None, y_cut: float = math.inf,
               stein_rcond: float | None = 1e-3, progress: bool = False) -> DMFTResult:
    """Solve the DMFT of gradient flow (docs/theory.md §5) from q(0) = q0 up to t_max.

    The default estimator is the one validated against simulation (N = 4000,
    docs/validation.md, DMFT section): the Stein projection (stein_rcond = 1e-3) always,
    with importance sampling y_scale = 2 below q0 = 0.2 (random starts at alpha = 3, 4 to
    t = 8, alpha = 6 while the finite system has not escaped; q0 = 0.1 at alpha = 4 to t = 2)
    and y_scale = 1 above (q0 = 0.3, alpha = 4, t <= 2), see :func:`default_y_scale`. y_scale = 1,
    stein_rcond = None is the plain Monte Carlo solver, biased from t ~ 1/4 on
    (docs/theory.md 5.8).

    Parameters
    ----------
    alpha : float > 0
    t_max : float > 0
    q0 : float in [0, 1), teacher overlap at t = 0 (0: random start)
    n_samples : even int >= 2, Monte Carlo samples of the measurement process
    grid : DMFTGrid (default ``DMFTGrid(t_max)``)
    seed : seed of the common random numbers (y, z0, eta)
    dtype : storage of the per-sample response ("float64" or "float32")
    partners : number P of other samples whose V' paths make each noise path (eq. 5.12);
        None (default): all of them, O(S^2) per evaluation; an integer P: random partners,
        O(S P), faster for large S but untested against simulation (one run of four at
        S = 2000, P = 512 went astray by t = 0.3)
    y_scale : float >= 1, importance sampling of the label (eq. 5.27): y is drawn from
        N(0, y_scale^2) and every average carries the weight phi(y) / phi_{y_scale}(y)
        (mean 1, bounded by y_scale). Values > 1 put more samples in the large-|y| tail
        that carries the heavy-tailed response kernel (docs/theory.md 5.8); 1 is plain
        sampling; None (default): :func:`default_y_scale` (q0)
    y_cut : float > 0, labels are drawn from the law restricted to |y| <= y_cut (default
        inf: no cut; P(|y| > 5) = 6e-7). Meant to keep the enriched tail of y_scale > 1
        without its extreme labels; tried at y_scale = 2, y_cut = 5, it did *not* cure the
        late-time drift (docs/validation.md, DMFT section)
    stein_rcond : float in (0, 1) or None (off); default 1e-3. After each memory row K[k, :k] is
        built from the per-sample responses (5.16), add to it the smallest correction that
        makes it satisfy the Stein identity (5.28) with the sample average alpha E[V'_k g_l]
        on its left, in the directions where C_perp[1:k, :k] has singular values above
        stein_rcond times the largest (a truncated pseudo-inverse; docs/theory.md 5.9).
        The norm multiplier (5.18) then agrees with alpha E[V'h] and the runaways of plain
        sampling stop; alone it does not remove the bias at t ~ 0.1-0.5, together with
        y_scale = 2 it does (docs/theory.md 5.9)
    progress : print progress to stderr

    Raises
    ------
    InputError on bad parameters; ConvergenceError when an inner fixed point fails.
    """
    alpha, t_max, q0 = _check_inputs(alpha, t_max, q0, n_samples)
    y_scale = default_y_scale(q0) if y_scale is None else y_scale
    if not (isinstance(y_scale, (int, float, np.floating)) and math.isfinite(y_scale) and y_scale >= 1.0):
        raise InputError(f"y_scale must be a finite number >= 1, got {y_scale!r}")
    y_scale = float(y_scale)
    if stein_rcond is not None and not (isinstance(stein_rcond, (int, float, np.floating)) and 0 < stein_rcond < 1):
        raise InputError(f"stein_rcond must be None or a number in (0, 1), got {stein_rcond!r}")
    if not (isinstance(y_cut, (int, float, np.floating)) and y_cut > 0):
        raise InputError(f"y_cut must be a positive number, got {y_cut!r}")
    grid = DMFTGrid(t_max) if grid is None else grid
    if abs(grid.t_max - t_max) > 1e-12 * t_max:
        raise InputError(f"grid.t_max = {grid.t_max} differs from t_max = {t_max}")
    t = time_grid(grid)
    n = t.size - 1
    dts = np.diff(t, prepend=0.0)          # dts[0] = 0, dts[k] = t_k - t_{k-1}
    S = int(n_samples)
    label = f"alpha={alpha:g}, q0={q0:g}, t_max={t_max:g}, S={S}, steps={n}"

    rng = np.random.default_rng(seed)
    half = S // 2
    y, z0 = _sobol_normal_pairs(rng, half)   # quasi-random: the t = 0 averages are nearly exact
    if y_cut < math.inf:          # inverse CDF restricted to |y| <= y_cut (eq. 5.27)
        from scipy.special import ndtr, ndtri

        edge = ndtr(y_cut / y_scale)
        y = y_scale * ndtri(1.0 - edge + (2.0 * edge - 1.0) * ndtr(y))
    else:
        y = y * y_scale
    # eq. 5.27: importance weights phi(y) / phi_sigma(y), normalised to mean 1
    wt = np.exp(-0.5 * y * y * (1.0 - 1.0 / y_scale ** 2))
    wt = np.concatenate([wt, wt]) / wt.mean()
    E = lambda f: float(np.mean(wt * f))  # noqa: E731  weighted average over samples
    sqrt_w = np.sqrt(wt[:half])
    # eq. 5.12: xi_s(t) = sqrt(alpha / P) sum_p eta_{s p} V'_{s_p}(t) over P partners s_p
    # (other samples of the first half, never s itself): a Gaussian path whose covariance,
    # given the partners, is their empirical M_C. P = half - 1 (dense) or ``partners``.
    P = half - 1 if partners is None else int(min(partners, half - 1))
    if P < 1:
        raise InputError(f"need at least 4 samples for the noise partners, got {S}")
    if P == half - 1:
        eta = rng.standard_normal((half, half))
        np.fill_diagonal(eta, 0.0)
        eta *= math.sqrt(alpha / P)
        noise = lambda v: eta @ (sqrt_w * v)  # noqa: E731
    else:
        idx = (np.arange(half)[:, None] + 1 + rng.integers(0, half - 1, size=(half, P))) % half
        eta_s = rng.standard_normal((half, P)) * math.sqrt(alpha / P)
        noise = lambda v: np.einsum("sp,sp->s", eta_s, (sqrt_w * v)[idx])  # noqa: E731
    y = np.concatenate([y, -y])            # antithetic pairs (y, g) -> (-y, -g)
    z0 = np.concatenate([z0, -z0])

    loss = QUARTIC
    C = np.zeros((n + 1, n + 1))           # C_perp
    R = np.zeros((n + 1, n + 1))
    xi = np.zeros((S, n + 1))              # weight-side noise paths (eq. 5.12)
    K = np.zeros((n + 1, n + 1))           # memory kernel alpha E[D_k J_kj]
    Mc = np.zeros((n + 1, n + 1))          # noise kernel alpha E[V'_k V'_j]
    X = np.zeros((n + 1, n + 1))           # X[j, k] = E[w_j xi_k]
    q = np.zeros(n + 1)
    mu_mult = np.zeros(n + 1)
    h = np.zeros((S, n + 1))
    G = np.zeros((S, n + 1))               # cavity fields g (for the Stein projection)
    Vp = np.zeros((S, n + 1))
    B = np.zeros((n + 1, S, n + 1), dtype=np.dtype(dtype))   # B[j, s, l] = dt_j D_j J_jl

    # t = 0 (eq. 5.13 row 0)
    C[0, 0] = 1.0 - q0 * q0
    R[0, 0] = 1.0
    q[0] = q0
    h[:, 0] = q0 * y + math.sqrt(C[0, 0]) * z0
    G[:, 0] = math.sqrt(C[0, 0]) * z0
    Vp[:, 0] = loss.dV(h[:, 0], y)
    Mc[0, 0] = alpha * E(Vp[:, 0] ** 2)
    mu_mult[0] = alpha * E(Vp[:, 0] * h[:, 0])

    t_start = time.perf_counter()
    last_report = t_start
    worst_residual = 0.0
    worst_gap = 0.0
    inner_total = 0
    for k in range(1, n + 1):
        dt = dts[k]
        # initial guesses: previous row, shifted
        K_row = np.zeros(k + 1)
        K_row[:k] = K[k - 1, :k]
        Mc_row = np.zeros(k + 1)
        Mc_row[:k] = Mc[k - 1, :k]
        Mc_row[k] = Mc[k - 1, k - 1]
        b_k = 0.0 if q0 == 0.0 else alpha * E(Vp[:, k - 1] * y)
        K_kk = K[k - 1, k - 1] if k > 1 else alpha * E(loss.d2V(h[:, 0], y))
        Bk = B[:k]
        xi_k = xi[:, k - 1].copy()
        mem_past = None
        residual = np.inf
        # Stein projection (5.28): rows < k of C_perp are final, so the truncated
        # pseudo-inverse of C_perp[1:k, :k] is fixed for the whole step
        Cm = C[1:k, :k]
        Cm_pinv = np.linalg.pinv(Cm, rcond=stein_rcond) if stein_rcond is not None and k > 1 else None
        for outer in range(INNER_MAX_ITER):
            # cheap inner fixed point with the memory row K[k, :k] frozen
            for inner in range(INNER_MAX_ITER):
                inner_total += 1
                X_col = R[:k, :k] @ (dts[:k] * Mc_row[:k])
                a_mem = -dt * K_row[:k]
                a_mem[k - 1] += 1.0
                c, mu_k, q_k, R_row, C_row = _weight_row(k, dt, a_mem, K_kk, Mc_row, b_k, q[k - 1],
                                                         C, R, X_col)
                # cavity field g = R (e_0 sqrt(1 - q0^2) z0 + dt xi)  (eq. 5.17)
                g_k = R_row[0] * math.sqrt(1.0 - q0 * q0) * z0 + xi[:, 1:k] @ (dts[1:k] * R_row[1:k]) \
                    + dt * R_row[k] * xi_k
                mem_past = Vp[:, 1:k] @ (dts[1:k] * R_row[1:k]) if k > 1 else np.zeros(S)
                rhs = q_k * y + g_k - mem_past
                hk = prox_quartic(rhs, y, dt * R_row[k], h[:, k - 1])
                Vk = loss.dV(hk, y)
                Dk = loss.d2V(hk, y)
                new_xi = noise(Vk[:half])
                new_xi = np.concatenate([new_xi, -new_xi])
                Jkk = 1.0 / (1.0 + dt * R_row[k] * Dk)
                new_Mc = alpha * ((wt * Vk) @ np.concatenate([Vp[:, :k], Vk[:, None]], axis=1)) / S
                # at q0 = 0 the law is symmetric under y -> -y (V depends on y^2), so
                # E[V' y] = 0 and q stays 0 exactly (eq. 5.18); Monte Carlo noise would
                # otherwise seed q like a finite system of size ~S
                new_b = 0.0 if q0 == 0.0 else alpha * E(Vk * y)
                new_Kkk = alpha * E(Dk * Jkk)
                change = max(np.max(np.abs(new_Mc - Mc_row)) / (1.0 + np.max(np.abs(new_Mc))),
                             np.max(np.abs(new_xi - xi_k)) / (1.0 + np.max(np.abs(new_xi))),
                             abs(new_b - b_k) / (1.0 + abs(new_b)),
                             abs(new_Kkk - K_kk) / (1.0 + abs(new_Kkk)))
                Mc_row, b_k, K_kk, xi_k = new_Mc, new_b, new_Kkk, new_xi
                if change < INNER_TOL:
                    break
            else:
                raise ConvergenceError(f"inner fixed point did not converge at t={t[k]:.4g} "
                                       f"({label}); last change {change:.2e}; a smaller dt_max helps "
                                       f"where q grows fast (docs/theory.md 5.5)")
            # memory row from the per-sample response (eq. 5.16)
            Y = (R_row[:k] @ Bk.reshape(k, -1)).reshape(S, n + 1)[:, :k]   # (S, k)
            Jk = -Y * Jkk[:, None]                                           # J[k, :k]
            new_K = alpha * ((wt * Dk) @ Jk) / S
            if Cm_pinv is not None:
                # Stein identity: sum_{j=1..k} K_kj C_jl = alpha E[V'_k g_l], l < k; the
                # min-norm correction of the memory row that enforces it where C is
                # well conditioned (singular values above stein_rcond * largest)
                lhs = alpha * ((wt * Vk) @ G[:, :k]) / S
                r_st = lhs - new_K[1:k] @ Cm - K_kk * C_row[:k]
                new_K[1:k] += r_st @ Cm_pinv
            changeK = np.max(np.abs(new_K - K_row[:k])) / (1.0 + np.max(np.abs(new_K)))
            K_row[:k] = new_K
            if changeK < INNER_TOL * 10 or outer >= 1 and changeK < 1e-8:
                break
        else:
            raise ConvergenceError(f"memory kernel did not converge at t={t[k]:.4g} ({label}); "
                                   f"last change {changeK:.2e}")
        residual = max(change, changeK)
        worst_residual = max(worst_residual, residual)
        # store row k
        K[k, :k] = K_row[:k]
        K[k, k] = K_kk
        Mc[k, :k + 1] = Mc_row
        Mc[:k + 1, k] = Mc_row
        X[:k, k] = X_col
        R[k, :k + 1] = R_row
        C[k, :k + 1] = C_row
        C[:k + 1, k] = C_row
        xi[:, k] = xi_k
        q[k] = q_k
        mu_mult[k] = mu_k
        h[:, k] = hk
        G[:, k] = g_k
        Vp[:, k] = Vk
        B[k, :, :k] = (dt * Dk[:, None] * Jk).astype(B.dtype, copy=False)
        B[k, :, k] = dt * Dk * Jkk
        mu_obs_k = alpha * E(Vk * hk)
        gap = abs(mu_k - mu_obs_k)
        worst_gap = max(worst_gap, gap)
        if gap > MULT_TOL_ABS + MULT_TOL_REL * abs(mu_obs_k):
            raise ConvergenceError(f"runaway at t={t[k]:.4g} ({label}): norm multiplier {mu_k:.3g} vs "
                                   f"alpha E[V'h] = {mu_obs_k:.3g}; more samples or another seed")
        now = time.perf_counter()
        if progress and (now - last_report > 2.0 or k == n):
            print(f"dmft {label}: t = {t[k]:.4g} ({k}/{n}), q = {q_k:.4f}, "
                  f"e = {alpha * E(loss.V(hk, y)):.4f}, {now - t_start:.1f} s",
                  file=sys.stderr, flush=True)
            last_report = now
    if not np.all(np.isfinite(h)):
        raise ConvergenceError(f"non-finite effective process ({label})")

    Vall = wt[:, None] * loss.V(h, y[:, None])
    energy = alpha * Vall.mean(axis=0)
    energy_se = alpha * Vall.std(axis=0) / math.sqrt(S)
    muv = wt[:, None] * Vp * h
    mu = alpha * muv.mean(axis=0)
    mu_se = alpha * muv.std(axis=0) / math.sqrt(S)
    return DMFTResult(alpha=alpha, q0=q0, t=t, energy=energy, mu=mu, mu_multiplier=mu_mult, q=q,
                      C=C + np.outer(q, q), R=R, h=h, y=y, energy_se=energy_se, mu_se=mu_se,
                      residual=float(worst_residual), converged=True,
                      wall_seconds=time.perf_counter() - t_start, memory_bytes=int(B.nbytes),
                      n_samples=S, inner_iterations=inner_total,
                      weights=None if y_scale == 1.0 else wt / S,
                      extra={"grid": grid, "seed": seed, "partners": P, "y_scale": y_scale, "y_cut": y_cut,
                             "multiplier_gap": worst_gap, "norm_error": float(np.max(np.abs(np.diag(C) + q * q - 1.0))), "C_perp": C, "K": K, "M_C": Mc, "g": G})


#: Below this start overlap the default estimator samples the label with importance (eq. 5.27).
IMPORTANCE_SAMPLING_BELOW_Q0 = 0.2


def default_y_scale(q0: float) -> float:
    """The validated label importance-sampling scale (eq. 5.27) for a start with overlap q0.

    2 for q0 < 0.2: from a random start it removes the heavy-tail bias at t = 0.1-0.5 and,
    with the Stein projection, matches simulation to t = 8 (alpha = 3, 4); from q0 = 0.1
    (alpha = 4, q plateaus near 0.4) it matches within 1.8 sigma where plain sampling is 2
    sigma low in mu at t = 0.1. 1 (plain) for q0 >= 0.2: from q0 = 0.3 the flow converges
    to the signal by t ~ 1, importance sampling leaves its rare extreme labels unconverged
    (e 2-2.5 sigma low at t = 0.3-0.5, an energy floor at t = 2) and plain sampling matches
    (docs/validation.md, DMFT section). Tested at q0 = 0, 0.1, 0.3; the switch at 0.2 lies
    between the tested values.
    """
    return 2.0 if q0 < IMPORTANCE_SAMPLING_BELOW_Q0 else 1.0


def _sobol_normal_pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n pairs of independent standard normals from a scrambled 2-d Sobol sequence.

    The t = 0 averages (polynomials of y and z0) then have errors far below the
    1/sqrt(n) of plain Monte Carlo; the later Monte Carlo noise comes from eta (eq. 5.12).
    """
    import warnings

    from scipy.special import ndtri
    from scipy.stats import qmc

    with warnings.catch_warnings():          # n need not be a power of 2
        warnings.simplefilter("ignore")
        u = qmc.Sobol(d=2, scramble=True, seed=rng).random(n)
    u = np.clip(u, 0.5 / n / 64, 1 - 0.5 / n / 64)
    return ndtri(u[:, 0]), ndtri(u[:, 1])


def _check_inputs(alpha, t_max, q0, n_samples):
    for name, v in (("alpha", alpha), ("t_max", t_max), ("q0", q0)):
        if not (isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(v)):
            raise InputError(f"{name} must be a finite number, got {v!r}")
    if alpha <= 0:
        raise InputError(f"alpha must be positive, got {alpha}")
    if t_max <= 0:
        raise InputError(f"t_max must be positive, got {t_max}")
    if not (0.0 <= q0 < 1.0):
        raise InputError(f"q0 must be in [0, 1), got {q0}")
    if not (isinstance(n_samples, (int, np.integer)) and n_samples >= 2 and n_samples % 2 == 0):
        raise InputError(f"n_samples must be an even integer >= 2, got {n_samples!r}")
    return float(alpha), float(t_max), float(q0)


# ---------------------------------------------------------------------------- BBP
def alpha_bbp(results, t: float, atoms: int | None = None) -> float | None:
    """alpha_BBP(t) at N = infinity from DMFT solutions at several alpha (eq. 5.26).

    The BBP residual (docs/theory.md eq. 2.9) of the law ``r.measure(t, atoms)`` is computed
    for each solution; alpha_BBP is where it turns positive (:func:`theory.spectrum.bbp_threshold`).
    None when it does not over the alphas given.
    """
    from .spectrum import bbp_threshold

    return bbp_threshold([r.alpha for r in results], [r.spectrum([t], atoms)[0].residuals.bbp for r in results])
