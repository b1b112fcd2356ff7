"""Threshold states of the spurious minima and the critical alpha (2020 paper).

docs/theory.md §3. Zero-temperature one-step replica symmetry breaking (1RSB) with
Parisi parameter Y = beta m, inter-state overlap 0 and teacher overlap 0, for the
quartic loss V(u, y) = (u^2 - y^2)^2 / 2 of the papers. z, y i.i.d. N(0, 1):

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
  Hessian then has a gap alpha J / chi > 0 above 0 (the pitfall of physics.md §3).

The isolated eigenvalue toward the signal, its overlap and the BBP residual depend on mu
only through a shift of lambda, so alpha_c (eq. 3.9) is the same for both closures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial.legendre import leggauss
from scipy.optimize import brentq, root
from scipy.special import logsumexp

from .errors import ConvergenceError, InputError
from .loss import quartic_prox as prox_quartic
from .measure import Measure
from .spectrum import SpectrumSummary, spectrum_summary

__all__ = ["CLOSURES", "DEFAULT_CLOSURE", "Quadrature", "OneRSBAverages", "ThresholdState",
           "CriticalAlpha", "prox_quartic", "one_rsb_averages", "solve_threshold", "critical_alpha"]

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


# ============================================================================ quadrature
@dataclass(frozen=True)
class Quadrature:
    """Product rule for the tilted averages over the quarter plane z >= 0, y >= 0.

    f is even in z and in y. For each y the z-integral is done in the variable u = u*(z, y)
    (eq. 3.7): z(u) = u + chi V'(u, y) = 2 chi u^3 + (1 - 2 chi y^2) u is explicit and
    increasing on the global-minimiser branch, u runs over [u0(y), u_max(y)] with
    u0 = sqrt(max(0, y^2 - 1/(2 chi))) (the value at z = 0+) and z(u_max) = z_max, and
    dz = (1 + chi D) du. The integrand is then analytic in u: no root finding, no cusp.
    y is split at y_c = 1/sqrt(2 chi), where u0 ~ sqrt(y - y_c), with y = y_c + (y_max - y_c) s^2
    above it so that the integrand is smooth in s. Gauss-Legendre on every piece.
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

    def y_nodes(self, chi: float):
        """Nodes y >= 0 and weights of E_y of an even function, split at y_c = 1/sqrt(2 chi)."""
        t, w = self._legendre(self.n_y)
        y_c = 1.0 / math.sqrt(2.0 * chi)
        if y_c >= self.y_max:
            y, dy = self.y_max * t, self.y_max * w
        else:
            y = np.concatenate([y_c * (1 - t**2), y_c + (self.y_max - y_c) * t**2])
            dy = np.concatenate([y_c * 2 * t * w, (self.y_max - y_c) * 2 * t * w])
        return y, dy * 2 * np.exp(-y * y / 2) / _SQRT2PI

    def u_nodes(self, y: np.ndarray, chi: float):
        """Nodes u (shape (len(y), n_u)) on [u0(y), u_max(y)], their weights du, and u0(y).

        u = u0 + c sinh(tau), tau uniform-Legendre on [0, asinh((u_max - u0)/c)], with c the
        width of the near-singularity of 1/(1 + chi D) at (u0, y_c): 1 + chi D ~ c0 + 12 chi u0 v
        + 6 chi v^2 with v = u - u0 and c0 = |1 + chi D(u0)| = |1 - 2 chi y^2| (y < y_c) or
        2 |2 chi y^2 - 1| (y > y_c). The replicon integrand (eq. 3.5) is then smooth in tau.
        """
        t, w = self._legendre(self.n_u)
        u0 = np.sqrt(np.maximum(y * y - 1.0 / (2.0 * chi), 0.0))
        u_max = prox_quartic(np.full_like(y, self.z_max), y, chi)
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


def one_rsb_averages(alpha: float, chi: float, Y: float, quad: Quadrature = Quadrature()) -> OneRSBAverages:
    """Evaluate eqs. 3.1-3.8 at (alpha, chi, Y) on the quadrature rule ``quad`` (eq. 3.7)."""
    y, wy = quad.y_nodes(chi)
    u, du, u0 = quad.u_nodes(y, chi)
    Yv = y[:, None]
    Vp = 2 * u * (u * u - Yv * Yv)            # V'(u, y)
    D = 6 * u * u - 2 * Yv * Yv               # V''(u, y)
    response = 1 + chi * D                    # dz/du > 0 on the global-minimiser branch
    z = u + chi * Vp
    V = 0.5 * (u * u - Yv * Yv) ** 2
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
    f0 = u0**2 / (2 * chi) + 0.5 * (u0**2 - y**2) ** 2
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
    """

    alpha: float
    closure: str
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
    spectrum: SpectrumSummary = field(repr=False)
    measure: Measure = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready summary (no arrays)."""
        keys = ("alpha", "closure", "Y", "chi", "energy", "complexity", "mu", "mu_stationary",
                "mu_linear", "bulk_edge", "isolated_eigenvalue", "overlap2", "bbp_residual",
                "residuals", "converged", "iterations")
        return {k: getattr(self, k) for k in keys}


def _guess(alpha: float) -> tuple[float, float]:
    """Initial (chi, Y) for eqs. 3.4-3.5: power laws through the solutions at alpha = 3 and 7."""
    return 0.255 * (alpha / 3) ** -1.14, 0.406 * (alpha / 3) ** -1.21


def _solve_chi_y(alpha: float, quad: Quadrature, guess=None):
    """Newton-type solve of eqs. 3.4-3.5 in (log chi, log Y); returns (averages, iterations)."""
    def residual(x):
        chi, Y = np.exp(np.clip(x, -30, 30))
        avg = one_rsb_averages(alpha, chi, Y, quad)
        return [avg.chi_residual, avg.replicon_residual]

    starts = [_guess(alpha)] if guess is None else [guess, _guess(alpha)]
    for start in starts:  # a warm start first, the power-law guess as the fallback
        sol = root(residual, np.log(start), method="hybr", options={"xtol": 1e-13})
        chi, Y = np.exp(sol.x)
        avg = one_rsb_averages(alpha, chi, Y, quad)
        worst = max(abs(avg.chi_residual), abs(avg.replicon_residual))
        if worst <= SOLVER_TOL and np.all(np.isfinite(sol.x)):
            break
    else:
        raise ConvergenceError(
            f"threshold equations (3.4)-(3.5) at alpha={alpha:g}: residual {worst:.2e} > {SOLVER_TOL:g} "
            f"after {sol.nfev} evaluations (chi={chi:.4g}, Y={Y:.4g}; {' '.join(str(sol.message).split())})")
    return avg, int(sol.nfev)


def solve_threshold(alpha: float, closure: str = DEFAULT_CLOSURE, quad: Quadrature = Quadrature(),
                    guess: tuple[float, float] | None = None) -> ThresholdState:
    """Threshold state at ``alpha``: solve eqs. 3.4-3.5, build the law, apply the closure.

    Raises
    ------
    InputError
        alpha <= 0 or an unknown closure.
    ConvergenceError
        The equations or the spectrum of the resulting law do not converge.
    """
    alpha = _check_alpha(alpha)
    closure = _check_closure(closure)
    avg, iterations = _solve_chi_y(alpha, quad, guess)
    mu = avg.mu_linear if closure == "marginal" else avg.mu_stationary
    measure = Measure.quadrature(avg.yhat, avg.y, avg.weights, alpha=alpha, mu=mu)
    spec = spectrum_summary(measure)
    return ThresholdState(
        alpha=alpha, closure=closure, Y=avg.Y, chi=avg.chi, energy=avg.energy,
        complexity=avg.complexity, mu=mu, mu_stationary=avg.mu_stationary, mu_linear=avg.mu_linear,
        bulk_edge=spec.bulk_edge, isolated_eigenvalue=spec.isolated_eigenvalue,
        overlap2=spec.overlap2, bbp_residual=avg.bbp_residual,
        residuals={"chi": float(avg.chi_residual), "replicon": float(avg.replicon_residual),
                   "stationarity": float(mu - avg.mu_stationary),
                   "edge": float(spec.bulk_edge) if closure == "marginal" else None,
                   "rho_edge_plus_chi": float(spec.rho_edge + avg.chi)},
        converged=bool(spec.converged), iterations=iterations, spectrum=spec, measure=measure)


# ============================================================================ critical alpha
@dataclass(frozen=True)
class CriticalAlpha:
    """alpha_c where the threshold Hessian's spike leaves the bulk edge (eq. 3.9).

    ``residual`` is the BBP residual (eq. 2.9 at rho_e = -chi) at alpha_c; ``bracket`` the
    final alpha bracket of the root search (relative width <= ``rel_tol``).
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


def critical_alpha(closure: str = DEFAULT_CLOSURE, quad: Quadrature = Quadrature(),
                   bracket: tuple[float, float] = (6.0, 24.0), rel_tol: float = 1e-10) -> CriticalAlpha:
    """Solve bbp_residual(alpha) = 0 along the threshold line (eqs. 3.4, 3.5, 3.9).

    The BBP residual is independent of the closure (mu only shifts lambda); ``closure`` is
    validated and recorded. Brent's method on alpha, each evaluation warm-started from the
    previous (chi, Y).
    """
    closure = _check_closure(closure)
    lo, hi = (float(b) for b in bracket)
    if not (0 < lo < hi):
        raise InputError(f"alpha bracket must satisfy 0 < lo < hi, got {bracket}")
    last = {"neg": lo, "pos": hi}

    def bbp(alpha):
        avg, _ = _solve_chi_y(alpha, quad, last.get("guess"))
        last["guess"] = (avg.chi, avg.Y)
        if avg.bbp_residual < 0:
            last["neg"] = max(last["neg"], alpha)
        else:
            last["pos"] = min(last["pos"], alpha)
        return avg.bbp_residual

    f_lo, f_hi = bbp(lo), bbp(hi)
    if not (f_lo < 0 < f_hi):
        raise ConvergenceError(
            f"alpha_c: BBP residual does not change sign on [{lo:g}, {hi:g}] "
            f"({f_lo:.3g}, {f_hi:.3g}); widen --bracket")
    alpha_c, info = brentq(bbp, lo, hi, xtol=rel_tol * lo, rtol=4 * np.finfo(float).eps,
                           full_output=True, disp=False)
    avg, _ = _solve_chi_y(alpha_c, quad, last.get("guess"))
    return CriticalAlpha(alpha_c=float(alpha_c), energy_at_alpha_c=float(avg.energy),
                         complexity_at_alpha_c=float(avg.complexity), Y=avg.Y, chi=avg.chi,
                         residual=float(avg.bbp_residual), bracket=(last["neg"], last["pos"]),
                         converged=bool(info.converged), iterations=int(info.iterations), closure=closure)
