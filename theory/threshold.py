"""Threshold states of the spurious minima and the critical alpha (2020 paper).

docs/theory.md §3. Zero-temperature one-step replica symmetry breaking (1RSB) with
Parisi parameter Y = beta m, inter-state overlap 0 and teacher overlap 0. The loss comes
from the registry (:mod:`theory.loss`): V, V', V'' and the proximal map of eq. 3.1 are
``loss.V``, ``loss.dV``, ``loss.d2V`` and ``loss.prox``; the quadrature of eq. 3.7 is
specific to the quartic loss V(u, y) = (u^2 - y^2)^2 / 2 of the papers (see
:class:`Quadrature`), so only that loss is accepted today. z, y i.i.d. N(0, 1):

    f(z, y)   = min_u [ (u - z)^2 / (2 chi) + V(u, y) ],  u*(z, y) its minimiser   (eq. 3.1)
    <g>_Y     = E_y[ E_z(g e^{-Y f}) / E_z(e^{-Y f}) ]                              (eq. 3.2)
    G(chi, Y) = 1/2 log(1 + Y/chi) + alpha E_y log E_z e^{-Y f}                    (eq. 3.3)

Equations (residuals returned by :func:`one_rsb_averages`):

    chi:       alpha <(u* - z)^2>_Y = chi / (chi + Y)                             (eq. 3.4)
    replicon:  alpha <(chi D / (1 + chi D))^2>_Y = 1,  D = V''(u*, y)              (eq. 3.5)
    energy e = alpha <V>_Y,  complexity Sigma = G + Y e                            (eq. 3.6)

The Lagrange multiplier has two expressions that differ by the jump of u* at z = 0
(y^2 > 1/(2 chi)), docs/theory.md eq. 3.8:

    mu_stationary = alpha <V'(u*) u*>_Y                         (definition, eq. 1.3)
    mu_linear     = -1/chi + alpha <D / (1 + chi D)>_Y = mu_stationary + alpha J / chi

Closures (docs/theory.md §3.4), both on the same law (eqs. 3.4 and 3.5 solved):

- ``marginal`` (default): mu = mu_linear. With eq. 3.5 this places the bulk edge of the
  Hessian (eqs. 2.3-2.4) exactly at 0 with rho_e = -chi: the threshold states are marginal.
- ``stationary``: mu = mu_stationary, the multiplier of the predicted law itself. The
  Hessian then has a gap alpha J / chi > 0 above 0 (docs/theory.md §3.4).

The isolated eigenvalue toward the signal, its overlap and the BBP residual depend on mu
only through a shift of lambda, so alpha_c (eq. 3.9) is the same for both closures.

Status as a value: :class:`ThresholdState` and :class:`CriticalAlpha` carry ``converged``,
``iterations``, ``residual`` and ``message`` as reported by scipy's root finders; the
solvers take ``strict`` (raise :class:`~theory.errors.ConvergenceError` with the partial
result attached, the default) or return the failed result with ``strict=False``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from numpy.polynomial.legendre import leggauss
from scipy.optimize import brentq, root
from scipy.special import logsumexp

from .errors import InputError, raise_if_failed
from .loss import QUARTIC, Loss, get_loss
from .measure import Measure
from .spectrum import SpectrumSummary, spectrum_summary

__all__ = ["CLOSURES", "DEFAULT_CLOSURE", "SOLVER_TOL", "Quadrature", "OneRSBAverages", "ThresholdState",
           "CriticalAlpha", "threshold_loss", "one_rsb_averages", "solve_threshold", "critical_alpha"]

#: closure name -> one-line description (docs/theory.md §3.4)
CLOSURES = {
    "marginal": "1RSB law at replicon marginality, mu from the resolvent identity (Hessian edge at 0)",
    "stationary": "1RSB law at replicon marginality, mu = alpha <V'(u) u> (Hessian gapped by the jump term)",
}
DEFAULT_CLOSURE = "marginal"
SOLVER_TOL = 1e-10
_SQRT2PI = math.sqrt(2.0 * math.pi)


def _check_alpha(alpha) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise InputError(f"alpha must be a number, got {alpha!r}") from None
    if not (math.isfinite(a) and a > 0):
        raise InputError(f"alpha must be > 0, got {alpha!r}")
    return a


def _check_closure(closure: str) -> str:
    if closure not in CLOSURES:
        raise InputError(f"unknown closure {closure!r}; choose one of {', '.join(CLOSURES)}")
    return closure


@functools.lru_cache(maxsize=32)
def _is_quartic(l_expr: sp.Expr) -> bool:
    return l_expr == QUARTIC.l_expr or sp.expand(l_expr - QUARTIC.l_expr) == 0


def threshold_loss(loss: Loss | str | None = None) -> Loss:
    """The loss of the threshold states: ``get_loss(loss)`` (None: the registry default),
    which must have its proximal map in closed form (eq. 3.1) and, for the quadrature of
    eq. 3.7 (see :class:`Quadrature`), be the quartic loss.

    Raises
    ------
    InputError
        Unknown name, no closed-form prox, or a loss other than the quartic one (one line).
    """
    loss = get_loss(loss).require_prox("the threshold theory")
    if not _is_quartic(loss.l_expr):
        raise InputError(f"the threshold quadrature (docs/theory.md eq. 3.7) is quartic-specific (its branch "
                         f"point u0 = sqrt(y^2 - 1/(2 chi)) and node placement); loss {loss.name!r} is not "
                         f"the quartic loss")
    return loss


# ============================================================================ quadrature
@dataclass(frozen=True)
class Quadrature:
    """Product rule for the tilted averages over the quarter plane z >= 0, y >= 0.

    f is even in z and in y. For each y the z-integral is done in the variable u = u*(z, y)
    (eq. 3.7): z(u) = u + chi V'(u, y) is explicit, dz = (1 + chi D) du, and u runs over
    [u0(y), u_max(y)] with z(u_max) = z_max (u_max = ``loss.prox(z_max, y, chi)``). The
    integrand is then analytic in u: no root finding, no cusp.

    Quartic-specific (the reason :func:`threshold_loss` accepts only the quartic loss): that
    z(u) is increasing on the whole global-minimiser branch for z > 0, i.e. u*(z) jumps only
    at z = 0, from -u0 to u0 with the branch point u0 = sqrt(max(0, y^2 - 1/(2 chi))) (the
    positive root of z(u) = 2 chi u^3 + (1 - 2 chi y^2) u = 0); the split of y at
    y_c = 1/sqrt(2 chi), where u0 ~ sqrt(y - y_c) (with y = y_c + (y_max - y_c) s^2 above it
    so that the integrand is smooth in s); and the node placement of :meth:`u_nodes`, which
    uses the Taylor series of D = V'' = 6 u^2 - 2 y^2. Gauss-Legendre on every piece.
    """

    n_u: int = 80
    n_y: int = 64
    z_max: float = 11.0
    y_max: float = 11.0

    def __post_init__(self):
        if self.n_u < 8 or self.n_y < 8:
            raise InputError(f"quadrature needs n_u, n_y >= 8, got {self.n_u}, {self.n_y}")

    def refined(self, factor: float = 1.5) -> "Quadrature":
        """The same rule with ``factor`` times more nodes in each direction."""
        return Quadrature(int(self.n_u * factor), int(self.n_y * factor), self.z_max, self.y_max)

    @staticmethod
    def _legendre(n: int):
        t, w = leggauss(n)
        return (t + 1) / 2, w / 2

    def y_nodes(self, chi: float) -> tuple[np.ndarray, np.ndarray]:
        """Nodes y >= 0 and weights of E_y of an even function, split at y_c = 1/sqrt(2 chi)."""
        t, w = self._legendre(self.n_y)
        y_c = 1.0 / math.sqrt(2.0 * chi)
        if y_c >= self.y_max:
            y, dy = self.y_max * t, self.y_max * w
        else:
            y = np.concatenate([y_c * (1 - t**2), y_c + (self.y_max - y_c) * t**2])
            dy = np.concatenate([y_c * 2 * t * w, (self.y_max - y_c) * 2 * t * w])
        return y, dy * 2 * np.exp(-y * y / 2) / _SQRT2PI

    def u_nodes(self, y: np.ndarray, chi: float,
                loss: Loss = QUARTIC) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nodes u (shape (len(y), n_u)) on [u0(y), u_max(y)], their weights du, and u0(y).

        u = u0 + c sinh(tau), tau uniform-Legendre on [0, asinh((u_max - u0)/c)], with c the
        width of the near-singularity of 1/(1 + chi D) at (u0, y_c): 1 + chi D ~ c0 + 12 chi u0 v
        + 6 chi v^2 with v = u - u0 and c0 = |1 + chi D(u0)| = |1 - 2 chi y^2| (y < y_c) or
        2 |2 chi y^2 - 1| (y > y_c). The replicon integrand (eq. 3.5) is then smooth in tau.
        u0 and c are those of the quartic loss (see the class docstring); ``loss`` gives u_max.
        """
        t, w = self._legendre(self.n_u)
        u0 = np.sqrt(np.maximum(y * y - 1.0 / (2.0 * chi), 0.0))
        u_max = loss.prox(np.full_like(y, self.z_max), y, chi)
        c0 = np.abs(1 + chi * (6 * u0 * u0 - 2 * y * y))
        # v > 0 where 12 chi u0 v + 6 chi v^2 = c0 (the half-width of the peak of 1/(1 + chi D))
        c = 2 * c0 / (12 * chi * u0 + np.sqrt((12 * chi * u0) ** 2 + 24 * chi * c0))
        c = np.clip(c, 1e-300, u_max - u0)
        tau_max = np.arcsinh((u_max - u0) / c)
        tau = tau_max[:, None] * t[None, :]
        u = u0[:, None] + c[:, None] * np.sinh(tau)
        du = c[:, None] * np.cosh(tau) * tau_max[:, None] * w[None, :]
        return u, du, u0


# ============================================================================ 1RSB averages
@dataclass(frozen=True, eq=False)
class OneRSBAverages:
    """The tilted averages (eq. 3.2) at given (alpha, chi, Y) and the residuals built on them.

    Attributes
    ----------
    chi_residual : float
        alpha <(u - z)^2> - chi/(chi + Y), eq. 3.4.
    replicon_residual : float
        alpha <(chi D/(1 + chi D))^2> - 1, eq. 3.5 (> 0: the 1RSB solution is unstable).
    bbp_residual : float
        -alpha chi <(y^2 - 1) D/(1 + chi D)> - 1: eq. 2.9 at rho = -chi, the BBP residual
        when the edge sits at rho_e = -chi (at replicon marginality); > 0 iff a spike exists.
    energy, complexity, log_partition : float
        e = alpha <V> and Sigma = G + Y e, G of eq. 3.3.
    mu_stationary, mu_linear, jump : float
        eq. 3.8; mu_linear - mu_stationary = alpha * jump / chi.
    yhat, y, weights : ndarray
        The law of (u*, y) on the quarter plane as quadrature atoms (weights sum to 1).
    """

    alpha: float
    chi: float
    Y: float
    chi_residual: float
    replicon_residual: float
    bbp_residual: float
    energy: float
    complexity: float
    log_partition: float
    mu_stationary: float
    mu_linear: float
    jump: float
    yhat: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)


def one_rsb_averages(alpha: float, chi: float, Y: float, quad: Quadrature = Quadrature(),
                     loss: Loss | str | None = None) -> OneRSBAverages:
    """Evaluate eqs. 3.1-3.8 at (alpha, chi, Y) on the quadrature rule ``quad`` (eq. 3.7).

    ``loss``: registry name or :class:`~theory.loss.Loss` (None: the registry default),
    checked by :func:`threshold_loss`.
    """
    return _averages(alpha, chi, Y, quad, threshold_loss(loss))


def _averages(alpha: float, chi: float, Y: float, quad: Quadrature, loss: Loss) -> OneRSBAverages:
    """:func:`one_rsb_averages` for a loss already checked by :func:`threshold_loss`."""
    y, wy = quad.y_nodes(chi)
    u, du, u0 = quad.u_nodes(y, chi, loss)
    Yv = y[:, None]
    Vp = loss.dV(u, Yv)                       # V'(u, y)
    D = loss.d2V(u, Yv)                       # V''(u, y)
    response = 1 + chi * D                    # dz/du > 0 on the global-minimiser branch
    z = u + chi * Vp
    V = loss.V(u, Yv)
    f = 0.5 * chi * Vp**2 + V                 # (u - z)^2 / (2 chi) + V
    with np.errstate(divide="ignore"):
        log_w = np.log(2 * du * response / _SQRT2PI) - z * z / 2 - Y * f
    log_zy = logsumexp(log_w, axis=1)         # log E_z e^{-Y f} for each y
    P = np.exp(log_w - log_zy[:, None])       # per-y tilted weights, rows sum to 1

    def avg(g):
        return float(wy @ np.sum(P * g, axis=1))

    a = float(alpha)
    energy = a * avg(V)
    G = 0.5 * math.log1p(Y / chi) + a * float(wy @ log_zy)
    # u* jumps from -u0 to u0 at z = 0 when y^2 > 1/(2 chi); tilted density of z at 0
    f0 = u0**2 / (2 * chi) + loss.V(u0, y)
    jump = float(wy @ np.where(u0 > 0, 2 * u0 * np.exp(-Y * f0 - log_zy) / _SQRT2PI, 0.0))
    return OneRSBAverages(
        alpha=a, chi=float(chi), Y=float(Y),
        chi_residual=a * avg((chi * Vp) ** 2) - chi / (chi + Y),
        replicon_residual=a * avg((chi * D / response) ** 2) - 1.0,
        bbp_residual=-a * chi * avg((Yv * Yv - 1) * D / response) - 1.0,
        energy=energy, complexity=G + Y * energy, log_partition=G,
        mu_stationary=a * avg(Vp * u),
        mu_linear=-1.0 / chi + a * avg(D / response),
        jump=jump,
        yhat=u.ravel(), y=np.broadcast_to(Yv, u.shape).ravel(),
        weights=(wy[:, None] * P).ravel() / float(wy.sum()),
    )


# ============================================================================ threshold state
@dataclass(frozen=True, eq=False)
class ThresholdState:
    """The threshold state at one alpha (docs/theory.md §3).

    ``mu`` is the closure's multiplier; ``bulk_edge``, ``isolated_eigenvalue``,
    ``overlap2`` come from :func:`theory.spectrum.spectrum_summary` on ``measure`` (an
    independent check of marginality: |bulk_edge| <= 1e-8 for the ``marginal`` closure).
    ``residuals``: chi (eq. 3.4), replicon (eq. 3.5), stationarity (mu - alpha <V' u>: the
    jump term alpha J / chi for ``marginal``, 0 for ``stationary``), edge (the bulk edge;
    the marginality residual, ``marginal`` only) and rho_edge_plus_chi (the spectrum module's
    rho_e against -chi, eq. 3.5 seen from §2).

    Status: ``converged`` (eqs. 3.4-3.5 solved to :data:`SOLVER_TOL` and the spectrum
    searches converged), ``iterations`` (residual evaluations of scipy's ``hybr`` root
    finder over all starts tried; it reports no iteration count), ``residual`` (the larger
    of |chi| and |replicon| residuals, the equations solved), ``message`` (one line).
    A state that failed in eqs. 3.4-3.5 (``strict=False``) holds the root finder's last
    iterate (chi, Y and what follows from them are not a solution); its spectral fields are
    NaN and ``spectrum`` and ``measure`` None.
    """

    alpha: float
    closure: str
    loss: str
    Y: float
    chi: float
    energy: float
    complexity: float
    mu: float
    mu_stationary: float
    mu_linear: float
    bulk_edge: float
    isolated_eigenvalue: float | None
    overlap2: float
    bbp_residual: float
    residuals: dict
    converged: bool
    iterations: int
    residual: float
    message: str
    spectrum: SpectrumSummary | None = field(repr=False)
    measure: Measure | None = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready summary (no arrays)."""
        keys = ("alpha", "closure", "loss", "Y", "chi", "energy", "complexity", "mu", "mu_stationary",
                "mu_linear", "bulk_edge", "isolated_eigenvalue", "overlap2", "bbp_residual",
                "residuals", "converged", "iterations", "residual", "message")
        return {k: getattr(self, k) for k in keys}


#: Above this alpha the initial guess follows the large-alpha law (the power laws through
#: alpha = 3 and 7 are kept below it, so every validated state is solved from the same start).
LARGE_ALPHA_GUESS_ABOVE = 24.0


def _guess(alpha: float) -> tuple[float, float]:
    """Initial (chi, Y) for eqs. 3.4-3.5.

    alpha <= 24: power laws through the solutions at alpha = 3 and 7. Above: chi ~ Y ~
    0.0157 (alpha / 100)^-0.56, through the solutions at alpha = 100 (chi = 0.0157,
    Y = 0.0158) and 1e5 (3.28e-4, 3.29e-4); the small-alpha laws are 30x too small at
    alpha = 1000, where the solver then fails. With these starts the equations converge
    for 1.02 <= alpha <= 1e7 (tests/theory/test_threshold.py); as alpha -> 1+ chi and Y
    diverge (chi = 38, Y = 309 at alpha = 1.1) and below alpha = 1 there is no threshold state.
    """
    if alpha <= LARGE_ALPHA_GUESS_ABOVE:
        return 0.255 * (alpha / 3) ** -1.14, 0.406 * (alpha / 3) ** -1.21
    scale = 0.0157 * (alpha / 100) ** -0.56
    return scale, scale


@dataclass(frozen=True, eq=False)
class _ChiYSolution:
    """Eqs. 3.4-3.5 solved (or not) at one alpha: the averages at the last iterate and the status."""

    averages: OneRSBAverages
    converged: bool
    iterations: int
    residual: float
    message: str


def _solve_chi_y(alpha: float, quad: Quadrature, loss: Loss, guess=None) -> _ChiYSolution:
    """Newton-type solve of eqs. 3.4-3.5 in (log chi, log Y), scipy ``root(method="hybr")``.

    A warm start ``guess`` first, the power-law guess as the fallback; converged when the
    larger residual is <= SOLVER_TOL. Failure is returned as a value, never raised.
    """
    def residual(x):
        chi, Y = np.exp(np.clip(x, -30, 30))
        avg = _averages(alpha, chi, Y, quad, loss)
        return [avg.chi_residual, avg.replicon_residual]

    starts = [_guess(alpha)] if guess is None else [guess, _guess(alpha)]
    evaluations = 0
    for start in starts:
        sol = root(residual, np.log(start), method="hybr", options={"xtol": 1e-13})
        evaluations += int(sol.nfev)
        chi, Y = np.exp(sol.x)
        avg = _averages(alpha, chi, Y, quad, loss)
        worst = float(np.max(np.abs([avg.chi_residual, avg.replicon_residual])))
        if worst <= SOLVER_TOL and np.all(np.isfinite(sol.x)):
            return _ChiYSolution(avg, True, evaluations, worst,
                                 f"threshold equations (3.4)-(3.5) at alpha={alpha:g}: residual {worst:.2e} "
                                 f"<= {SOLVER_TOL:g} after {evaluations} evaluations")
    return _ChiYSolution(
        avg, False, evaluations, worst,
        f"threshold equations (3.4)-(3.5) at alpha={alpha:g}: residual {worst:.2e} > {SOLVER_TOL:g} "
        f"after {evaluations} evaluations (chi={chi:.4g}, Y={Y:.4g}; {' '.join(str(sol.message).split())})")


def solve_threshold(alpha: float, closure: str = DEFAULT_CLOSURE, quad: Quadrature = Quadrature(),
                    guess: tuple[float, float] | None = None, *, loss: Loss | str | None = None,
                    strict: bool = True) -> ThresholdState:
    """Threshold state at ``alpha``: solve eqs. 3.4-3.5, build the law, apply the closure.

    Parameters
    ----------
    alpha : float
        M/N > 0.
    closure : str
        A key of :data:`CLOSURES`.
    quad : Quadrature
        The rule of eq. 3.7.
    guess : (chi, Y), optional
        Warm start (the power-law guess is the fallback).
    loss : Loss or str, optional
        Registry name or loss (None: the registry default, quartic); see :func:`threshold_loss`.
    strict : bool
        Raise on failure (default); False returns the failed state (see :class:`ThresholdState`).

    Raises
    ------
    InputError
        alpha <= 0, an unknown closure or a loss the threshold states cannot use.
    ConvergenceError
        ``strict`` and the equations or the spectrum of the resulting law did not
        converge (the failed state attached as ``result``).
    """
    alpha = _check_alpha(alpha)
    closure = _check_closure(closure)
    loss = threshold_loss(loss)
    sol = _solve_chi_y(alpha, quad, loss, guess)
    avg = sol.averages
    mu = avg.mu_linear if closure == "marginal" else avg.mu_stationary
    if sol.converged:
        measure = Measure.quadrature(avg.yhat, avg.y, avg.weights, alpha=alpha, mu=mu, loss=loss)
        spec = spectrum_summary(measure, strict=False)
        bulk_edge, iso, overlap2, rho_edge = spec.bulk_edge, spec.isolated_eigenvalue, spec.overlap2, spec.rho_edge
        converged, message = spec.converged, f"{sol.message}; spectrum of the law: {spec.message}"
    else:
        measure = spec = None
        bulk_edge = iso = overlap2 = rho_edge = math.nan
        converged, message = False, sol.message
    state = ThresholdState(
        alpha=alpha, closure=closure, loss=loss.name, Y=avg.Y, chi=avg.chi, energy=avg.energy,
        complexity=avg.complexity, mu=mu, mu_stationary=avg.mu_stationary, mu_linear=avg.mu_linear,
        bulk_edge=bulk_edge, isolated_eigenvalue=iso, overlap2=overlap2, bbp_residual=avg.bbp_residual,
        residuals={"chi": float(avg.chi_residual), "replicon": float(avg.replicon_residual),
                   "stationarity": float(mu - avg.mu_stationary),
                   "edge": float(bulk_edge) if closure == "marginal" else None,
                   "rho_edge_plus_chi": float(rho_edge + avg.chi)},
        converged=bool(converged), iterations=sol.iterations, residual=sol.residual, message=message,
        spectrum=spec, measure=measure)
    return raise_if_failed(state, strict)


# ============================================================================ critical alpha
@dataclass(frozen=True)
class CriticalAlpha:
    """alpha_c where the threshold Hessian's spike leaves the bulk edge (eq. 3.9).

    ``residual`` is the BBP residual (eq. 2.9 at rho_e = -chi) at alpha_c; ``bracket`` the
    final alpha bracket of the root search (relative width <= ``rel_tol``).

    Status: ``converged`` (brentq's own verdict, and the threshold state at alpha_c solved),
    ``iterations`` (brentq's; when a threshold solve inside the search failed, the alpha
    evaluations brentq had made), ``message`` (one line). A failed result has NaN values.
    """

    alpha_c: float
    energy_at_alpha_c: float
    complexity_at_alpha_c: float
    Y: float
    chi: float
    residual: float
    bracket: tuple[float, float]
    converged: bool
    iterations: int
    closure: str
    loss: str
    message: str


class _ThresholdFailed(Exception):
    """A threshold solve failed inside the alpha_c search (carries its solution)."""

    def __init__(self, solution: _ChiYSolution):
        super().__init__(solution.message)
        self.solution = solution


def critical_alpha(closure: str = DEFAULT_CLOSURE, quad: Quadrature = Quadrature(),
                   bracket: tuple[float, float] = (6.0, 24.0), rel_tol: float = 1e-10, *,
                   loss: Loss | str | None = None, strict: bool = True) -> CriticalAlpha:
    """Solve bbp_residual(alpha) = 0 along the threshold line (eqs. 3.4, 3.5, 3.9).

    The BBP residual is independent of the closure (mu only shifts lambda); ``closure`` is
    validated and recorded. Brent's method on alpha, each evaluation warm-started from the
    previous (chi, Y). ``loss`` as in :func:`solve_threshold`.

    Raises
    ------
    InputError
        An unknown closure, a bad bracket or a loss the threshold states cannot use.
    ConvergenceError
        ``strict`` and the BBP residual does not change sign on the bracket, a threshold
        solve failed or brentq did not converge (the failed result attached as ``result``).
    """
    closure = _check_closure(closure)
    loss = threshold_loss(loss)
    lo, hi = (float(b) for b in bracket)
    if not (0 < lo < hi):
        raise InputError(f"alpha bracket must satisfy 0 < lo < hi, got {bracket}")
    last = {"neg": lo, "pos": hi, "calls": 0}

    def bbp(alpha):
        sol = _solve_chi_y(alpha, quad, loss, last.get("guess"))
        last["calls"] += 1
        if not sol.converged:
            raise _ThresholdFailed(sol)
        avg = sol.averages
        last["guess"] = (avg.chi, avg.Y)
        if avg.bbp_residual < 0:
            last["neg"] = max(last["neg"], alpha)
        else:
            last["pos"] = min(last["pos"], alpha)
        return avg.bbp_residual

    def failed(message: str, iterations: int = 0) -> CriticalAlpha:
        return raise_if_failed(CriticalAlpha(
            alpha_c=math.nan, energy_at_alpha_c=math.nan, complexity_at_alpha_c=math.nan, Y=math.nan,
            chi=math.nan, residual=math.nan, bracket=(last["neg"], last["pos"]), converged=False,
            iterations=iterations, closure=closure, loss=loss.name, message=message), strict)

    try:
        f_lo, f_hi = bbp(lo), bbp(hi)
    except _ThresholdFailed as exc:
        return failed(f"alpha_c: {exc}")
    if not (f_lo < 0 < f_hi):
        return failed(f"alpha_c: BBP residual does not change sign on [{lo:g}, {hi:g}] "
                      f"({f_lo:.3g}, {f_hi:.3g}); widen --bracket")
    try:
        alpha_c, info = brentq(bbp, lo, hi, xtol=rel_tol * lo, rtol=4 * np.finfo(float).eps,
                               full_output=True, disp=False)
    except _ThresholdFailed as exc:
        return failed(f"alpha_c: {exc}", last["calls"] - 2)  # not counting the 2 sign checks above
    sol = _solve_chi_y(alpha_c, quad, loss, last.get("guess"))
    avg = sol.averages
    converged = bool(info.converged) and sol.converged
    if not info.converged:
        message = f"alpha_c: brentq did not converge after {info.iterations} iterations ({info.flag})"
    elif not sol.converged:
        message = f"alpha_c: brentq converged but the state at alpha_c did not: {sol.message}"
    else:
        message = (f"alpha_c: brentq converged in {info.iterations} iterations "
                   f"(BBP residual {avg.bbp_residual:.2e})")
    return raise_if_failed(CriticalAlpha(
        alpha_c=float(alpha_c), energy_at_alpha_c=float(avg.energy), complexity_at_alpha_c=float(avg.complexity),
        Y=avg.Y, chi=avg.chi, residual=float(avg.bbp_residual), bracket=(last["neg"], last["pos"]),
        converged=converged, iterations=int(info.iterations), closure=closure, loss=loss.name,
        message=message), strict)
