"""Annealed Kac-Rice complexity of the local minima of the empirical risk at teacher overlap q.

docs/theory.md §8. The expected number of local minima of L on the sphere with energy
e N and q = 0 is exp(N Sigma(e)); the empirical law nu of (yhat_m, y_m) at the counted
minima is a tilt of the Gaussian law (eq. 8.6), restricted to 1 + chi D > 0 with
D = V''(yhat, y) and chi = -rho(0) (rho the Stieltjes transform of §2 at 0):

    nu(u, y) = phi(u) phi(y) (1 + chi D) exp(-(chi + kappa) u V' - c V'^2 / 2 - beta V
                                             + kappa D / (1 + chi D)) / Z          (eq. 8.6)

Four scalars (chi, kappa, c, beta) solve (residuals of :class:`KacRicePoint`)

    r_lambda = chi lambda(-chi) = -1 - chi mu + alpha chi E[D / (1 + chi D)]          (eq. 8.7)
    r_edge   = alpha E[(chi D / (1 + chi D))^2] - 1        (marginal branch, kappa > 0) (eq. 8.8)
    r_c      = c alpha E[V'^2] - 1                                                    (eq. 8.9)
    energy   e = alpha E[V],  mu = alpha E[u V']                                      (eq. 8.10)

and the complexity is Sigma = 1/2 log c - log chi + beta e - kappa / chi + alpha log Z
(eq. 8.11); dSigma/de = beta. On the ``interior`` branch kappa = 0 and eq. 8.8 is
replaced by the inequality alpha E[(chi D / (1 + chi D))^2] < 1 (Hessian gapped); on the
``marginal`` branch the bulk edge of the Hessian is at 0. The Hessian (edge, isolated
eigenvalue toward the signal, overlap) is computed by :mod:`theory.spectrum` on the law of
(D, s = y) with the law's own mu (eq. 1.3).

Teacher overlap q != 0 (docs/theory.md §8.10, ``overlap=``): the prior of the fields is phi_q,
the field along the direction toward the signal is s = (y - q yhat)/sqrt(1 - q^2), the gradient
along it is a constraint E[V' s] = 0 with multiplier tau (eq. 8.21), and Sigma gains
1/2 log(1 - q^2) (eq. 8.22); dSigma/dq by the envelope (eq. 8.23). ``restricted=True`` counts the
minima of L on the sub-sphere of overlap q instead (where a flow held at q stops; eq. 8.24).

Critical points of any index (docs/theory.md §8.8-8.9, :func:`solve_critical_points`,
:func:`critical_curve`, :func:`critical_landscape`): no edge constraint, chi = -rho(0 + i0) is
complex, the law is phi phi |1 + chi D| exp(-Re(chi) u V' - c V'^2/2 - beta V) / Z on the whole
plane (eq. 8.14), Sigma_tot = 1/2 log c - log|chi| + beta e + alpha log Z (eq. 8.16) and the index
density is (1/pi)[arg chi - alpha E arg(1 + chi D) + mu Im chi] (eq. 8.17).

Quadrature: the trapezoid rule on a uniform (u, y) grid of the quadrant u, y >= 0 (losses
even in yhat and in y: V depends on yhat^2 and y^2), masked to 1 + chi D > 0. On the
marginal branch the integrand vanishes with all its derivatives at the mask boundary
(factor exp(kappa D / (1 + chi D))), so the rule converges faster than any power.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike
from scipy.optimize import brentq, root

from typing import TYPE_CHECKING

from .errors import ConvergenceError, InputError, raise_if_failed
from .loss import YHAT, Y, Loss, get_loss
from .measure import CurvatureLaw
from .spectrum import SpectrumSummary, bulk_lower_edge, inverse_stieltjes, spectrum_summary

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["KacRiceQuadrature", "HIGH_QUAD", "KacRicePoint", "Landscape", "LandscapeConfig", "LANDSCAPE_DEFAULTS",
           "BRANCHES", "SOLVER_TOL",
           "kac_rice_loss", "log_det", "solve_kac_rice", "solve_at_energy", "landscape", "complexity_curve", "bbp_alpha",
           "phase_diagram", "CriticalPoint", "CRIT_LOCAL_NODES", "INDEX_LEVELS", "solve_critical_points",
           "critical_curve", "critical_landscape", "critical_maximum", "overlap_curvature"]

#: tolerance on every residual of eqs. 8.7-8.9 (and of the energy target)
SOLVER_TOL = 1e-10
#: branch name -> meaning (docs/theory.md §8.4)
BRANCHES = {
    "marginal": "minima with the Hessian bulk edge at 0 (kappa > 0, eq. 8.8)",
    "interior": "minima with a gapped Hessian (kappa = 0, alpha E[x^2] < 1)",
}


def _check_alpha(alpha) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise InputError(f"alpha must be a number, got {alpha!r}") from None
    if not math.isfinite(a) or a <= 0:
        raise InputError(f"alpha must be a finite number > 0, got {alpha!r}")
    return a


def kac_rice_loss(loss: Loss | str | None = None) -> Loss:
    """The loss (registry name or :class:`~theory.loss.Loss`) if it is even in yhat and in y.

    Evenness lets the quadrature use one quadrant and makes the gradient component along
    the teacher direction, alpha E[V' y], vanish identically at q = 0 (docs/theory.md §8.2);
    other losses raise InputError.
    """
    loss = get_loss(loss)
    l_expr = loss.l_expr
    even_u = sp.simplify(l_expr.subs(YHAT, -YHAT) - l_expr) == 0
    even_y = sp.simplify(l_expr.subs(Y, -Y) - l_expr) == 0
    if not (even_u and even_y):
        raise InputError(f"the Kac-Rice landscape needs a loss even in yhat and in y; "
                         f"{loss.name!r} is not")
    return loss


def log_det(law: CurvatureLaw) -> float:
    """(1/N) log det H for a law whose Hessian bulk lies above 0 (docs/theory.md eq. 8.4):

        mu rho - log(-rho) - 1 + alpha E[log(1 - D rho)],   rho = rho(0) in (rho_e, 0),

    rho(0) the root of lambda(rho) = 0 (eq. 2.3) on the physical branch. Raises InputError
    when the bulk edge is not above 0 (then log|det| needs the density on both sides of 0).
    """
    edge = bulk_lower_edge(law)
    if not edge.bulk_edge > 0:
        raise InputError(f"log_det needs the bulk edge above 0, got {edge.bulk_edge:.3g}")
    D, w = law.D, law.weights
    rho = brentq(lambda r: float(inverse_stieltjes(r, law)), edge.rho_edge, edge.rho_edge * 1e-12,
                 xtol=1e-300, rtol=1e-15)
    return float(law.mu * rho - math.log(-rho) - 1.0 + law.alpha * float(w @ np.log1p(-D * rho)))


# ============================================================================ quadrature
@dataclass(frozen=True)
class KacRiceQuadrature:
    """Uniform trapezoid grid on [0, u_max] x [0, y_max] (docs/theory.md §8.5).

    The default (480 x 400 nodes, u_max = 6, y_max = 8) gives energies and complexities
    stable to ~1e-5 under 1.5x refinement of both spacings (tests).
    """

    n_u: int = 480
    n_y: int = 400
    u_max: float = 6.0
    y_max: float = 8.0

    def __post_init__(self):
        if self.n_u < 16 or self.n_y < 16:
            raise InputError(f"quadrature needs at least 16 nodes per axis, got {self.n_u} x {self.n_y}")
        if not (self.u_max > 0 and self.y_max > 0):
            raise InputError("quadrature ranges u_max, y_max must be > 0")

    def refined(self, factor: float = 1.5) -> "KacRiceQuadrature":
        return replace(self, n_u=int(round(self.n_u * factor)), n_y=int(round(self.n_y * factor)))

    def grid(self, overlap: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u, y, w): flattened nodes and trapezoid weights of the field density on the plane.

        ``overlap`` q = 0: phi(u) phi(y) on the quadrant u, y >= 0, each node standing for its
        four mirror images. q != 0: the correlated density phi_q(u, y) (eq. 8.19) on the half
        plane u in [-u_max, u_max], y >= 0 at the same spacing, each node with y > 0 standing
        for itself and its image (-u, -y); the two agree node by node at q = 0.
        """
        u = np.linspace(0.0, self.u_max, self.n_u)
        y = np.linspace(0.0, self.y_max, self.n_y)
        wu = np.full(u.size, u[1] - u[0])
        wu[0] /= 2
        wy = np.full(y.size, y[1] - y[0])
        wy[0] /= 2
        if overlap == 0.0:
            U, Yg = np.meshgrid(u, y, indexing="ij")
            w = np.outer(wu, wy) * np.exp(-(U**2 + Yg**2) / 2) * (2.0 / np.pi)
            return U.ravel(), Yg.ravel(), w.ravel()
        q = float(overlap)
        u = np.concatenate([-u[:0:-1], u])
        wu = np.full(u.size, u[1] - u[0])
        wu[[0, -1]] /= 2
        U, Yg = np.meshgrid(u, y, indexing="ij")
        one_q2 = 1.0 - q * q
        dens = np.exp(-(U**2 - 2 * q * U * Yg + Yg**2) / (2 * one_q2)) / (2 * np.pi * math.sqrt(one_q2))
        w = np.outer(wu, 2 * wy) * dens
        return U.ravel(), Yg.ravel(), w.ravel()


class _Grid:
    """The loss evaluated once on the quadrature nodes of teacher overlap ``overlap``
    (weights below 1e-300 dropped); s = (y - q u) / sqrt(1 - q^2) is the field along the
    direction e toward the signal in the tangent space (eq. 8.19)."""

    def __init__(self, loss: Loss, quad: KacRiceQuadrature, overlap: float = 0.0, restricted: bool = False):
        q = float(overlap)
        u, y, w = quad.grid(q)
        keep = w > 1e-300
        self.overlap = q
        self.restricted = bool(restricted)
        # eq. 8.21 is an equation (multiplier tau) for the minima of L on the whole sphere at q != 0
        self.with_tau = q != 0.0 and not self.restricted
        self.u, self.y, self.w0 = u[keep], y[keep], w[keep]
        self.logw0 = np.log(self.w0)
        self.V = np.asarray(loss.V(self.u, self.y), float)
        self.dV = np.asarray(loss.dV(self.u, self.y), float)
        self.D = np.asarray(loss.d2V(self.u, self.y), float)
        one_q2 = 1.0 - q * q
        # the field whose average with V' is the multiplier mu of the Hessian (eq. 1.3): yhat on the
        # whole sphere, (yhat - q y)/(1 - q^2) on the sub-sphere of overlap q (eq. 8.24)
        if self.restricted:
            self.uV1 = (self.u - q * self.y) / one_q2 * self.dV
        else:
            self.uV1 = self.u * self.dV
        self.V1sq = self.dV ** 2
        self.s = (self.y - q * self.u) / math.sqrt(one_q2)
        self.V1s = self.dV * self.s
        if q != 0.0:   # q-derivatives at fixed (u, y), for the envelope dSigma/dq (eqs. 8.23, 8.25)
            self.dq_log_density = (q / one_q2 + self.u * self.y / one_q2
                                   - q * (self.u**2 - 2 * q * self.u * self.y + self.y**2) / one_q2**2)
            if self.restricted:
                self.V1_dq_mult = self.dV * (2 * q * self.u - (1 + q * q) * self.y) / one_q2**2
            else:
                self.V1_dq_s = self.dV * (q * self.y - self.u) / one_q2**1.5
        # nodes on the outer rim of the grid (tail diagnostic)
        self.rim = (np.abs(self.u) > quad.u_max * 0.97) | (self.y > quad.y_max * 0.97)


@dataclass(frozen=True)
class _Law:
    weights: np.ndarray          # normalised, on the kept nodes (zeros outside 1 + chi D > 0)
    log_z: float
    inside: np.ndarray           # mask 1 + chi D > 0


def _law(g: _Grid, chi: float, kappa: float, c: float, beta: float, tau: float = 0.0) -> _Law:
    """Normalised weights of eq. 8.6 (eq. 8.20 with the multiplier ``tau`` at q != 0) on the
    grid, and log Z."""
    w1 = 1.0 + chi * g.D
    inside = w1 > 0
    safe = np.where(inside, w1, 1.0)
    expo = (g.logw0 + np.log(safe) - (chi + kappa) * g.uV1 - 0.5 * c * g.V1sq - beta * g.V
            + kappa * g.D / safe)
    if tau != 0.0:
        expo = expo - tau * g.V1s
    expo = np.where(inside, expo, -np.inf)
    top = float(np.max(expo)) if inside.any() else -np.inf
    if not math.isfinite(top):
        return _Law(np.zeros_like(g.u), -math.inf, inside)
    ew = np.exp(expo - top)
    z = float(ew.sum())
    return _Law(ew / z, math.log(z) + top, inside)


@dataclass(frozen=True)
class _Averages:
    energy: float
    mu: float
    r_lambda: float
    r_edge: float
    r_c: float
    r_grad: float
    complexity: float
    tail: float
    law: _Law


def _averages(g: _Grid, alpha: float, chi: float, kappa: float, c: float, beta: float,
              tau: float = 0.0) -> _Averages:
    law = _law(g, chi, kappa, c, beta, tau)
    p = law.weights
    safe = np.where(law.inside, 1.0 + chi * g.D, 1.0)
    x = np.where(law.inside, chi * g.D / safe, 0.0)
    energy = alpha * float(p @ g.V)
    mu = alpha * float(p @ g.uV1)
    r_lambda = -1.0 - chi * mu + alpha * float(p @ x)
    r_edge = alpha * float(p @ (x * x)) - 1.0
    r_c = c * alpha * float(p @ g.V1sq) - 1.0
    # eq. 8.21: the gradient along e, normalised by its natural scale (E[V'^2] E[s^2])^(1/2); exactly 0
    # at q = 0 by u -> -u symmetry (the quadrant grid does not see it)
    r_grad = 0.0 if g.overlap == 0.0 else float(p @ g.V1s) / math.sqrt(float(p @ g.V1sq) * float(p @ g.s**2))
    complexity = (0.5 * math.log(c) - math.log(chi) + beta * energy - kappa / chi + alpha * law.log_z
                  + 0.5 * math.log1p(-g.overlap**2))
    tail = float(p[g.rim].sum())
    return _Averages(energy, mu, r_lambda, r_edge, r_c, r_grad, complexity, tail, law)


# ============================================================================ one point
@dataclass(frozen=True, eq=False)
class KacRicePoint:
    """The counted minima at one (alpha, beta, q) (docs/theory.md §8, §8.10 for q != 0).

    ``beta`` = dSigma/de; ``overlap`` q = <W, W*>/N, ``restricted`` (minima of L on the
    sub-sphere of overlap q, eq. 8.24), ``tau`` the multiplier of the gradient along the
    signal (eq. 8.21; 0 at q = 0 and when restricted), ``dsigma_doverlap`` = dSigma/dq at fixed energy
    (envelope, eq. 8.23). ``branch``: a key of :data:`BRANCHES`. ``bulk_edge``,
    ``rho_edge``, ``isolated_eigenvalue``, ``overlap2``, ``bbp_residual`` come from
    :func:`theory.spectrum.spectrum_summary` on the law of (D, s = y) with mu (an
    independent evaluation of eqs. 2.3-2.9: on the marginal branch bulk_edge ~ 0 and
    rho_edge = -chi). ``law``: summary numbers of nu (eq. 8.6), among them
    ``mean_Vprime_s`` = E_nu[V' s], the unnormalised gradient along the signal. ``residuals``:
    eqs. 8.7-8.9 (edge only on the marginal branch), ``gradient_signal`` (eq. 8.21 as solved,
    normalised; 0 by symmetry at q = 0, None on the restricted sub-sphere where it is free) and
    the tail mass on the grid rim. Status: ``converged`` (every residual
    below :data:`SOLVER_TOL`, rim mass below 1e-9, spectrum converged, branch consistent),
    ``iterations`` (residual evaluations), ``residual`` (the largest equation residual),
    ``message``.
    """

    alpha: float
    loss: str
    beta: float
    energy: float
    complexity: float
    branch: str
    chi: float
    kappa: float
    c: float
    mu: float
    overlap: float
    restricted: bool
    tau: float
    dsigma_doverlap: float
    bulk_edge: float
    rho_edge: float
    isolated_eigenvalue: float | None
    overlap2: float
    bbp_residual: float
    law: dict
    residuals: dict
    converged: bool
    iterations: int
    residual: float
    message: str
    curvature_law: CurvatureLaw | None = field(default=None, repr=False)
    atoms: dict | None = field(default=None, repr=False)
    spectrum: SpectrumSummary | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-ready summary (no arrays)."""
        keys = ("alpha", "loss", "beta", "energy", "complexity", "branch", "chi", "kappa", "c", "mu",
                "overlap", "restricted", "tau", "dsigma_doverlap", "bulk_edge", "rho_edge", "isolated_eigenvalue", "overlap2", "bbp_residual", "law",
                "residuals", "converged", "iterations", "residual", "message")
        return {k: getattr(self, k) for k in keys}

    @property
    def guess(self) -> tuple[float, float, float, float]:
        """(chi, kappa, c, tau): a warm start for a nearby point."""
        return (self.chi, max(self.kappa, 1e-3), self.c, self.tau)


def _law_summary(g: _Grid, p: np.ndarray, alpha: float) -> dict:
    au = np.abs(g.u)
    # E[yhat y]: 0 on the quadrant grid (q = 0) by u -> -u symmetry
    yhat_y = 0.0 if g.overlap == 0.0 else float(p @ (g.u * g.y))
    return {"mean_abs_yhat": float(p @ au), "mean_yhat2": float(p @ g.u**2),
            "mean_V": float(p @ g.V), "mean_D": float(p @ g.D), "P_D_negative": float(p[g.D < 0].sum()),
            "P_abs_yhat_below_abs_y": float(p[au < g.y].sum()), "min_D": float(g.D[p > 1e-14].min()),
            "mean_yhat_y": yhat_y, "mean_y2": float(p @ g.y**2),
            "mean_Vprime_s": 0.0 if g.overlap == 0.0 else float(p @ g.V1s), "normalisation": float(p.sum())}


def _default_guess(alpha: float) -> tuple[float, float, float, float]:
    # power laws through the alpha = 3 and 7 solutions at beta = 0 (quartic loss)
    chi = 0.2444 * (alpha / 3.0) ** -1.024
    c = 0.1041 * (alpha / 3.0) ** -2.06
    return (chi, 0.015, c, 0.0)


def _check_overlap(overlap) -> float:
    try:
        q = float(overlap)
    except (TypeError, ValueError):
        raise InputError(f"overlap must be a number, got {overlap!r}") from None
    if not (math.isfinite(q) and abs(q) < 1.0):
        raise InputError(f"overlap q must satisfy |q| < 1, got {overlap!r}")
    return q


_GRIDS: dict = {}


def _cached(cache: dict, kind, loss: Loss, quad: KacRiceQuadrature, *args):
    """``kind(loss, quad, *args)``, built once per (loss, grid, args) and kept in ``cache`` (at most 5)."""
    key = (loss.name, str(loss.l_expr), quad, *args)
    if key not in cache:
        if len(cache) > 4:
            cache.clear()
        cache[key] = kind(loss, quad, *args)
    return cache[key]


def _grid(loss: Loss, quad: KacRiceQuadrature, overlap: float = 0.0, restricted: bool = False) -> _Grid:
    return _cached(_GRIDS, _Grid, loss, quad, float(overlap), bool(restricted))


def _newton_polish(f, x, tol: float, max_steps: int = 8):
    """A few Newton steps with a central-difference Jacobian, to push |f| below ``tol``."""
    fx = f(x)
    n = 0
    for _ in range(max_steps):
        if np.max(np.abs(fx)) < tol * 0.01:
            break
        h = 1e-6
        J = np.empty((fx.size, x.size))
        for j in range(x.size):
            dx = np.zeros_like(x)
            dx[j] = h
            J[:, j] = (f(x + dx) - f(x - dx)) / (2 * h)
            n += 2
        try:
            step = np.linalg.solve(J, -fx)
        except np.linalg.LinAlgError:
            break
        x_new = x + step
        f_new = f(x_new)
        n += 1
        if not np.all(np.isfinite(f_new)) or np.max(np.abs(f_new)) >= np.max(np.abs(fx)):
            break
        x, fx = x_new, f_new
    return x, fx, n


def _split_guess(guess) -> tuple[float, float, float, float]:
    """(chi, kappa, c[, tau]) -> (chi, kappa, c, tau), tau = 0 when absent."""
    chi0, kappa0, c0, *rest = (float(v) for v in guess)
    return chi0, kappa0, c0, (rest[0] if rest else 0.0)


def _solve_branch(g: _Grid, alpha: float, beta: float, branch: str, guess):
    """Root of eqs. 8.7-8.9 (and 8.21 at q != 0) on one branch; returns
    (chi, kappa, c, tau, residual vector, evals)."""
    evals = [0]
    with_tau = g.with_tau
    n_log = 3 if branch == "marginal" else 2

    def unpack(x):
        tau = float(x[n_log]) if with_tau else 0.0
        if branch == "marginal":
            return math.exp(x[0]), math.exp(x[1]), math.exp(x[2]), tau
        return math.exp(x[0]), 0.0, math.exp(x[1]), tau

    def f(x):
        evals[0] += 1
        if np.any(np.abs(x[:n_log]) > 60):
            return np.full(len(x), 1e6)
        chi, kappa, c, tau = unpack(x)
        a = _averages(g, alpha, chi, kappa, c, beta, tau)
        if not math.isfinite(a.complexity):
            return np.full(len(x), 1e6)
        r = [a.r_lambda, a.r_edge, a.r_c] if branch == "marginal" else [a.r_lambda, a.r_c]
        if with_tau:
            r.append(a.r_grad)
        r = np.array(r)
        return np.where(np.isfinite(r), r, 1e6)

    chi0, kappa0, c0, tau0 = _split_guess(guess)
    x0 = list(np.log([chi0, kappa0, c0]) if branch == "marginal" else np.log([chi0, c0]))
    if with_tau:
        x0.append(tau0)
    sol = root(f, np.array(x0), method="hybr", options={"xtol": 1e-13})
    x, fx, n = _newton_polish(f, sol.x, SOLVER_TOL)
    chi, kappa, c, tau = unpack(x)
    return chi, kappa, c, tau, fx, evals[0]


def solve_kac_rice(alpha: float, beta: float = 0.0, *, loss: Loss | str | None = None,
                   quad: KacRiceQuadrature = KacRiceQuadrature(), branch: str = "auto",
                   guess: tuple[float, ...] | None = None, overlap: float = 0.0, restricted: bool = False,
                   strict: bool = True) -> KacRicePoint:
    """The minima counted by Kac-Rice at (alpha, beta = dSigma/de, q), docs/theory.md eqs. 8.6-8.11
    (eqs. 8.19-8.23 at q != 0).

    Parameters
    ----------
    alpha : float
        M/N > 0.
    beta : float
        Lagrange multiplier of the energy (0: the most numerous minima).
    loss : Loss or str, optional
        Registry name or loss, even in yhat and y (default quartic).
    quad : KacRiceQuadrature
        The grid.
    branch : {"auto", "marginal", "interior"}
        "auto" (default): the interior branch (gapped Hessian) if its solution satisfies
        the gap condition, else the marginal one (docs/theory.md §8.4).
    guess : (chi, kappa, c) or (chi, kappa, c, tau), optional
        Warm start.
    overlap : float
        Teacher overlap q = <W, W*>/N of the counted minima, |q| < 1 (default 0). At q != 0
        the gradient along the signal is a constraint with its own multiplier tau (eq. 8.21).
    restricted : bool
        Count the minima of L restricted to the sub-sphere <W, W*>/N = q instead (eq. 8.24):
        the gradient along the signal is free, tau = 0. These are where a flow held at
        overlap q stops; at q = 0 the two counts coincide.
    strict : bool
        Raise ConvergenceError (the failed point attached) instead of returning it.
    """
    alpha = _check_alpha(alpha)
    beta = float(beta)
    if not math.isfinite(beta):
        raise InputError(f"beta must be finite, got {beta!r}")
    if branch not in ("auto", *BRANCHES):
        raise InputError(f"unknown branch {branch!r}; known: auto, {', '.join(BRANCHES)}")
    loss = kac_rice_loss(loss)
    g = _grid(loss, quad, _check_overlap(overlap), restricted)
    guess = tuple(guess) if guess is not None else _default_guess(alpha)
    evals = 0
    notes = []
    chosen = None
    if branch in ("auto", "interior"):
        chi, kappa, c, tau, fx, n = _solve_branch(g, alpha, beta, "interior", guess)
        evals += n
        a = _averages(g, alpha, chi, kappa, c, beta, tau)
        ok = np.max(np.abs(fx)) < SOLVER_TOL
        gapped = ok and a.r_edge < 1e-9
        if branch == "interior" or gapped:
            chosen = ("interior", chi, kappa, c, tau, fx, a)
        else:
            notes.append("interior branch " + ("not gapped (alpha E[x^2] - 1 = %.3g)" % a.r_edge
                                               if ok else "did not converge"))
    if chosen is None:
        chi, kappa, c, tau, fx, n = _solve_branch(g, alpha, beta, "marginal", guess)
        evals += n
        chosen = ("marginal", chi, kappa, c, tau, fx, _averages(g, alpha, chi, kappa, c, beta, tau))
    return _point(g, loss, alpha, beta, *chosen, evals, notes, strict)


def _dsigma_doverlap(g: _Grid, alpha: float, chi: float, kappa: float, tau: float, p: np.ndarray) -> float:
    """Envelope dSigma/dq at fixed energy (eq. 8.23):
    -q/(1 - q^2) + alpha E[d_q log phi_q] - tau alpha E[V' d_q s] on the whole sphere, and with
    -(chi + kappa) alpha E[V' d_q ytilde] in place of the tau term on the sub-sphere (eq. 8.25);
    0 at q = 0 by symmetry."""
    q = g.overlap
    if q == 0.0:
        return 0.0
    out = -q / (1 - q * q) + alpha * float(p @ g.dq_log_density)
    if g.restricted:
        return float(out - (chi + kappa) * alpha * float(p @ g.V1_dq_mult))
    return float(out - tau * alpha * float(p @ g.V1_dq_s))


def _point(g, loss, alpha, beta, branch, chi, kappa, c, tau, fx, a: _Averages, evals, notes, strict):
    residual = float(np.max(np.abs(fx)))
    p = a.law.weights
    keep = p > 0
    q = g.overlap
    residuals = {"lambda": float(a.r_lambda), "edge": float(a.r_edge) if branch == "marginal" else None,
                 "c": float(a.r_c), "gradient_signal": None if g.restricted and q else float(a.r_grad),
                 "rim_mass": a.tail}
    converged = residual < SOLVER_TOL and a.tail < 1e-9 and math.isfinite(a.complexity)
    messages = list(notes)
    if residual >= SOLVER_TOL:
        messages.append(f"{branch} branch: residual {residual:.2e} >= {SOLVER_TOL:g} "
                        f"(alpha={alpha:g}, beta={beta:g}" + (f", q={q:g})" if q else ")"))
    if a.tail >= 1e-9:
        messages.append(f"law reaches the grid rim (mass {a.tail:.1e}): enlarge u_max / y_max")
    if branch == "marginal" and converged and kappa <= 0:
        converged = False
        messages.append("marginal branch with kappa <= 0")
    spec = cl = None
    bulk_edge = rho_edge = bbp = overlap2 = math.nan
    iso = None
    law = {}
    if converged:
        cl = CurvatureLaw.from_samples(g.D[keep], g.s[keep], alpha, a.mu, weights=p[keep] / p[keep].sum())
        spec = spectrum_summary(cl, strict=False)
        bulk_edge, rho_edge, iso, overlap2 = spec.bulk_edge, spec.rho_edge, spec.isolated_eigenvalue, spec.overlap2
        bbp = spec.residuals.bbp
        residuals["rho_edge_plus_chi"] = float(rho_edge + chi) if branch == "marginal" else None
        if not spec.converged:
            converged = False
            messages.append(f"spectrum: {spec.message}")
        law = _law_summary(g, p, alpha)
    if converged:
        messages.append(f"converged ({branch} branch)")
    point = KacRicePoint(
        alpha=alpha, loss=loss.name, beta=beta, energy=a.energy, complexity=a.complexity, branch=branch,
        chi=chi, kappa=kappa, c=c, mu=a.mu, overlap=q, restricted=g.restricted, tau=float(tau),
        dsigma_doverlap=_dsigma_doverlap(g, alpha, chi, kappa, tau, p), bulk_edge=float(bulk_edge), rho_edge=float(rho_edge),
        isolated_eigenvalue=iso, overlap2=float(overlap2), bbp_residual=float(bbp), law=law,
        residuals=residuals, converged=bool(converged), iterations=int(evals), residual=residual,
        message="; ".join(messages), curvature_law=cl,
        atoms={"yhat": g.u[keep], "y": g.y[keep], "s": g.s[keep], "weights": p[keep] / max(p[keep].sum(), 1e-300)}
        if converged else None,
        spectrum=spec)
    return raise_if_failed(point, strict)


# ============================================================================ curves and window
def complexity_curve(alpha: float, betas: ArrayLike, *, loss: Loss | str | None = None,
                     quad: KacRiceQuadrature = KacRiceQuadrature(),
                     guess: tuple[float, ...] | None = None, overlap: float = 0.0,
                     restricted: bool = False) -> list[KacRicePoint]:
    """Sigma(e) at fixed alpha (and teacher overlap q): one :class:`KacRicePoint` per beta
    (non-strict), solved in order of distance from beta = 0 with warm starts (docs/theory.md §8.5)."""
    alpha = _check_alpha(alpha)
    betas = [float(b) for b in np.atleast_1d(betas)]
    order = sorted(range(len(betas)), key=lambda i: (abs(betas[i]), betas[i]))
    out: list = [None] * len(betas)
    last = {1: guess, -1: guess}
    for i in order:
        side = 1 if betas[i] >= 0 else -1
        pt = solve_kac_rice(alpha, betas[i], loss=loss, quad=quad, guess=last[side], overlap=overlap,
                            restricted=restricted, strict=False)
        if pt.converged:
            last[side] = pt.guess
            if betas[i] == 0:
                last = {1: pt.guess, -1: pt.guess}
        out[i] = pt
    return out


def _energy_target(alpha, energy, loss, quad, start: KacRicePoint):
    """The point of energy ``energy`` at the overlap of ``start``: Brent on beta (e decreases with beta)."""
    cache = {}

    def solve(beta):
        key = round(beta, 14)
        if key not in cache:
            cache[key] = solve_kac_rice(alpha, beta, loss=loss, quad=quad, guess=start.guess,
                                        overlap=start.overlap, restricted=start.restricted, strict=False)
        return cache[key]

    def f(beta):
        pt = solve(beta)
        if not pt.converged:
            raise ConvergenceError(pt.message, pt)
        return pt.energy - energy

    b0 = start.beta
    f0 = start.energy - energy
    step = 0.05 if f0 > 0 else -0.05
    b1 = b0
    for _ in range(40):
        pt = solve(b1 + step)
        if not pt.converged:   # overshot into the steep part of e(beta) (§8.7): shorter steps
            if abs(step) < 1e-4:
                raise ConvergenceError(pt.message, pt)
            step /= 4
            continue
        b_prev, b1 = b1, b1 + step
        f1 = pt.energy - energy
        if np.sign(f1) != np.sign(f0):
            beta = brentq(f, min(b_prev, b1), max(b_prev, b1), xtol=1e-12, rtol=1e-12)
            return solve(beta)
        f0 = f1
        step *= 1.6
    raise ConvergenceError(f"no beta gives energy {energy:g} at alpha = {alpha:g}", None)


#: grid of the search for e_high: the law spreads to large y above e_typical (docs/theory.md §8.6)
HIGH_QUAD = KacRiceQuadrature(n_u=720, n_y=600, u_max=9.0, y_max=12.0)


def _solve_energy_direct(g: _Grid, loss: Loss, alpha: float, energy: float, x0) -> KacRicePoint:
    """Marginal branch at fixed energy: (chi, kappa, c, beta[, tau]) from eqs. 8.7-8.10 (and 8.21
    at q != 0) together; ``x0`` = (log chi, log kappa, log c, beta[, tau]).

    Above e_typical e(beta) is very steep (alpha = 4: e 2.6 -> 3.4 for beta -0.05 -> -0.06),
    so the energy, not beta, is the parameter that continues the branch."""
    evals = [0]
    with_tau = g.with_tau
    x0 = list(x0)[:4] + ([x0[4] if len(x0) > 4 else 0.0] if with_tau else [])

    def f(v):
        evals[0] += 1
        if np.any(np.abs(v[:3]) > 60):
            return np.full(len(v), 1e6)
        chi, kappa, c = np.exp(v[:3])
        a = _averages(g, alpha, chi, kappa, c, v[3], v[4] if with_tau else 0.0)
        r = [a.r_lambda, a.r_edge, a.r_c, a.energy / energy - 1.0] + ([a.r_grad] if with_tau else [])
        r = np.array(r)
        return np.where(np.isfinite(r), r, 1e6)

    sol = root(f, np.asarray(x0, float), method="hybr", options={"xtol": 1e-13})
    x, fx, n = _newton_polish(f, sol.x, SOLVER_TOL)
    chi, kappa, c = (float(v) for v in np.exp(x[:3]))
    tau = float(x[4]) if with_tau else 0.0
    a = _averages(g, alpha, chi, kappa, c, float(x[3]), tau)
    return _point(g, loss, alpha, float(x[3]), "marginal", chi, kappa, c, tau, fx, a, evals[0] + n, [], False)


def _high_end(alpha: float, loss: Loss, typical: KacRicePoint, quad: KacRiceQuadrature = HIGH_QUAD):
    """e_high: continue the marginal branch in energy from e_typical (on ``quad``) until
    Sigma < 0, then Brent on the energy. Returns (point or None, message, evaluations)."""
    g = _grid(loss, quad, typical.overlap, typical.restricted)
    cur = solve_kac_rice(alpha, 0.0, loss=loss, quad=quad, guess=typical.guess, overlap=typical.overlap, restricted=typical.restricted,
                         strict=False)
    evals = cur.iterations
    if not (cur.converged and cur.branch == "marginal" and cur.complexity > 0):
        return None, f"no marginal start on the e_high grid: {cur.message}", evals

    def x_of(pt):
        return [math.log(pt.chi), math.log(max(pt.kappa, 1e-12)), math.log(pt.c), pt.beta, pt.tau]

    step = 0.1 * cur.energy
    for _ in range(80):
        nxt = _solve_energy_direct(g, loss, alpha, cur.energy + step, x_of(cur))
        evals += nxt.iterations
        if not nxt.converged:
            if step < 0.005 * cur.energy:
                return None, f"Sigma > 0 up to e = {cur.energy:.6g}; beyond: {nxt.message}", evals
            step /= 2
            continue
        if nxt.complexity < 0:
            lo = cur
            cache = {}

            def fs(e):
                if e not in cache:
                    cache[e] = _solve_energy_direct(g, loss, alpha, e, x_of(lo))
                    if not cache[e].converged:
                        raise ConvergenceError(cache[e].message, cache[e])
                return cache[e].complexity

            e_high = brentq(fs, cur.energy, nxt.energy, xtol=1e-12, rtol=1e-12)
            return cache.get(e_high) or _solve_energy_direct(g, loss, alpha, e_high, x_of(lo)), "", evals
        cur = nxt
    return None, f"Sigma > 0 up to e = {cur.energy:.6g} after 80 steps", evals


def solve_at_energy(alpha: float, energy: float, *, loss: Loss | str | None = None,
                    quad: KacRiceQuadrature = KacRiceQuadrature(), overlap: float = 0.0,
                    restricted: bool = False, strict: bool = True) -> KacRicePoint:
    """The counted minima at a given energy (and teacher overlap q; Brent on beta from beta = 0, eq. 8.10).

    Raises ConvergenceError (``strict``) when beta = 0 or the energy cannot be reached;
    with ``strict=False`` returns the failed point of the last attempt instead.
    """
    alpha = _check_alpha(alpha)
    energy = float(energy)
    if not (math.isfinite(energy) and energy > 0):
        raise InputError(f"energy must be a finite number > 0, got {energy!r}")
    loss = kac_rice_loss(loss)
    start = solve_kac_rice(alpha, 0.0, loss=loss, quad=quad, overlap=overlap, restricted=restricted, strict=strict)
    if not start.converged:
        return start
    try:
        return _energy_target(alpha, energy, loss, quad, start)
    except ConvergenceError as exc:
        if strict:
            raise
        return exc.result if isinstance(exc.result, KacRicePoint) else replace(
            start, converged=False, message=f"energy {energy:g} not reached: {exc}")


@dataclass(frozen=True, eq=False)
class Landscape:
    """Summary of the minima at one alpha (docs/theory.md §8.6).

    ``typical``: beta = 0 (the most numerous minima, e_typical, Sigma max). ``low`` / ``high``:
    the ends of the window Sigma >= 0 (e_low by beta, e_high by continuation in the energy on
    the larger grid :data:`HIGH_QUAD`; None when not found, see ``message``). ``marginal``: the lowest-energy point of the window on the
    marginal branch (e_marginal; equals e_low when every counted minimum is marginal).
    ``at_energy``: the point at the requested energy, if any.
    """

    alpha: float
    loss: str
    overlap: float
    restricted: bool
    typical: KacRicePoint
    low: KacRicePoint | None
    high: KacRicePoint | None
    marginal: KacRicePoint | None
    at_energy: KacRicePoint | None
    converged: bool
    iterations: int
    residual: float
    message: str

    def to_dict(self) -> dict:
        def e(pt):
            return None if pt is None else pt.energy

        def s(pt):
            return None if pt is None else pt.complexity

        t = self.typical
        at = self.at_energy or t
        out = {"alpha": self.alpha, "loss": self.loss, "overlap": self.overlap, "restricted": self.restricted,
               "e_low": e(self.low), "e_high": e(self.high), "e_marginal": e(self.marginal),
               "e_typical": t.energy,
               "sigma_low": s(self.low), "sigma_high": s(self.high), "sigma_marginal": s(self.marginal),
               "sigma_typical": t.complexity,
               "energy": at.energy, "sigma": at.complexity, "beta": at.beta, "branch": at.branch,
               "chi": at.chi, "kappa": at.kappa, "c": at.c, "mu": at.mu,
               "tau": at.tau, "dsigma_doverlap": at.dsigma_doverlap, "law": at.law, "bulk_edge": at.bulk_edge, "isolated_eigenvalue": at.isolated_eigenvalue,
               "overlap2": at.overlap2, "bbp_residual": at.bbp_residual, "residuals": at.residuals,
               "converged": self.converged, "iterations": self.iterations, "residual": self.residual,
               "message": self.message}
        return out


def _zero_crossing(alpha, loss, quad, inside: KacRicePoint, direction: float, beta_limit: float):
    """Walk beta from ``inside`` (Sigma > 0) in ``direction`` until Sigma < 0; Brent on the
    bracket. Returns (point or None, message, evaluations)."""
    evals = 0
    cur = inside
    step = 0.05 * direction
    while abs(cur.beta) < beta_limit:
        nxt = solve_kac_rice(alpha, cur.beta + step, loss=loss, quad=quad, guess=cur.guess,
                             overlap=inside.overlap, restricted=inside.restricted, strict=False)
        evals += nxt.iterations
        if not nxt.converged:
            if abs(step) > 0.004:
                step /= 3
                continue
            return None, f"Sigma > 0 up to e = {cur.energy:.6g} (beta = {cur.beta:.4g}); beyond: {nxt.message}", evals
        if nxt.complexity < 0:
            cache = {cur.beta: cur, nxt.beta: nxt}

            def f(b, _start=cur):
                if b not in cache:
                    cache[b] = solve_kac_rice(alpha, b, loss=loss, quad=quad, guess=_start.guess,
                                              overlap=_start.overlap, restricted=_start.restricted, strict=True)
                return cache[b].complexity

            b = brentq(f, min(cur.beta, nxt.beta), max(cur.beta, nxt.beta), xtol=1e-12, rtol=1e-12)
            return cache.get(b) or solve_kac_rice(alpha, b, loss=loss, quad=quad, guess=cur.guess,
                                                  overlap=inside.overlap, restricted=inside.restricted), "", evals
        cur = nxt
        step *= 1.5
    return None, f"Sigma > 0 up to |beta| = {beta_limit:g} (e = {cur.energy:.6g})", evals


def landscape(alpha: float, *, energy: float | None = None, loss: Loss | str | None = None,
              quad: KacRiceQuadrature | None = None, beta_limit: float | None = None,
              overlap: float | None = None, restricted: bool = False, strict: bool = True) -> Landscape:
    """Energy window, most numerous and marginal minima at ``alpha`` (docs/theory.md §8.6), among
    the minima at teacher overlap ``overlap`` (default q = 0; §8.10; ``restricted``: the minima of
    L on the sub-sphere of that overlap, eq. 8.24).

    Solves beta = 0 (e_typical), then walks beta up (lower e) to the zero of Sigma (e_low) and
    continues the marginal branch in energy (higher e) to the other zero (e_high), by Brent, and, if ``energy`` is given, the point at that
    energy. ``strict``: raise ConvergenceError when the typical point (or the requested
    energy) fails; missing window ends are reported in ``message``, not raised.
    """
    alpha = _check_alpha(alpha)
    loss = kac_rice_loss(loss if loss is not None else LANDSCAPE_DEFAULTS.loss)
    quad = quad if quad is not None else LANDSCAPE_DEFAULTS.quad
    beta_limit = float(beta_limit if beta_limit is not None else LANDSCAPE_DEFAULTS.beta_limit)
    overlap = _check_overlap(overlap if overlap is not None else LANDSCAPE_DEFAULTS.overlap)
    if energy is not None and not (math.isfinite(float(energy)) and float(energy) > 0):
        raise InputError(f"energy must be a finite number > 0, got {energy!r}")
    typical = solve_kac_rice(alpha, 0.0, loss=loss, quad=quad, overlap=overlap, restricted=restricted,
                             strict=False)
    evals = typical.iterations
    msgs = []
    low = high = marginal = at = None
    if typical.converged and typical.complexity > 0:
        low, m1, n1 = _zero_crossing(alpha, loss, quad, typical, +1.0, beta_limit)
        high, m2, n2 = _high_end(alpha, loss, typical)
        evals += n1 + n2
        msgs += [f"e_low: {m1}" if m1 else "", f"e_high: {m2}" if m2 else ""]
        if low is not None and low.branch == "marginal":
            marginal = low
        elif typical.branch == "marginal":
            marginal = typical
    elif typical.converged:
        msgs.append("Sigma < 0 at beta = 0: no exponentially numerous minima")
    if energy is not None and typical.converged:
        try:
            at = _energy_target(alpha, float(energy), loss, quad, typical)
            evals += at.iterations
        except ConvergenceError as exc:
            msgs.append(f"energy {energy}: {exc}")
    converged = typical.converged and (energy is None or (at is not None and at.converged))
    msgs.insert(0, typical.message)
    res = max([pt.residual for pt in (typical, low, high, at) if pt is not None])
    out = Landscape(alpha=alpha, loss=loss.name, overlap=overlap, restricted=bool(restricted), typical=typical, low=low, high=high, marginal=marginal,
                    at_energy=at, converged=bool(converged), iterations=int(evals), residual=float(res),
                    message="; ".join(m for m in msgs if m))
    return raise_if_failed(out, strict)


@dataclass(frozen=True)
class LandscapeConfig:
    """Defaults of :func:`landscape` and of ``python -m theory landscape`` (one place)."""

    loss: str = "quartic"
    beta_limit: float = 4.0
    #: teacher overlap q of the counted minima (§8.10)
    overlap: float = 0.0
    quad: KacRiceQuadrature = KacRiceQuadrature()
    #: index densities at which the crossover of the typical critical points is reported (§8.9)
    index_levels: tuple = (1e-2, 1e-3)
    #: the walk down in energy of :func:`critical_landscape` stops at this fraction of e_typical
    critical_e_min_fraction: float = 0.1


LANDSCAPE_DEFAULTS = LandscapeConfig()


# ============================================================================ BBP and phase diagram
def bbp_alpha(*, beta: float = 0.0, energy: float | None = None, loss: Loss | str | None = None,
              quad: KacRiceQuadrature = KacRiceQuadrature(), alpha_range: tuple[float, float] = (4.0, 24.0),
              overlap: float = 0.0, strict: bool = True) -> dict:
    """The alpha at which the counted minima (at teacher overlap ``overlap``) acquire an isolated
    eigenvalue toward the signal (BBP residual eq. 2.9 = 0 on the law at fixed ``beta``, or at
    fixed ``energy``).

    Returns a dict: alpha_bbp (None if no sign change in ``alpha_range``), the residuals at
    the ends, the point at alpha_bbp, converged, message.
    """
    loss = kac_rice_loss(loss)
    cache: dict = {}

    def point(a):
        if a not in cache:
            if energy is None:
                cache[a] = solve_kac_rice(a, beta, loss=loss, quad=quad, overlap=overlap, strict=True)
            else:
                start = solve_kac_rice(a, 0.0, loss=loss, quad=quad, overlap=overlap, strict=True)
                cache[a] = _energy_target(a, float(energy), loss, quad, start)
        return cache[a]

    lo, hi = (float(alpha_range[0]), float(alpha_range[1]))
    grid = np.geomspace(lo, hi, 9)
    vals = []
    for a in grid:
        vals.append(point(float(a)).bbp_residual)
        if len(vals) > 1 and np.sign(vals[-1]) != np.sign(vals[-2]):
            a_c = brentq(lambda x: point(x).bbp_residual, grid[len(vals) - 2], a, xtol=1e-9, rtol=1e-12)
            pt = point(a_c)
            return {"alpha_bbp": float(a_c), "energy": pt.energy, "complexity": pt.complexity, "beta": pt.beta,
                    "bbp_residual": pt.bbp_residual, "converged": True,
                    "message": f"BBP residual changes sign between alpha = {grid[len(vals) - 2]:.4g} and {a:.4g}"}
    out = {"alpha_bbp": None, "energy": None, "complexity": None, "beta": beta, "bbp_residual": None,
           "converged": False, "message": f"no sign change of the BBP residual for alpha in [{lo:g}, {hi:g}] "
                                          f"(residuals {vals[0]:.3g} .. {vals[-1]:.3g})"}
    if strict:
        raise ConvergenceError(out["message"], out)
    return out


def phase_diagram(alphas: ArrayLike, betas: ArrayLike, *, loss: Loss | str | None = None,
                  quad: KacRiceQuadrature = KacRiceQuadrature(), overlap: float = 0.0,
                  progress: Callable[[str], None] | None = None) -> "xr.Dataset":
    """Sigma, energy, branch and BBP residual on an (alpha, beta) grid at teacher overlap
    ``overlap``, as an xarray Dataset (docs/theory.md §8.7). Region codes: 0 no minima (Sigma < 0 or not solved), 1 minima
    without a spike toward the signal, 2 minima unstable toward the signal (BBP residual > 0)."""
    import xarray as xr

    alphas = np.asarray(alphas, float)
    betas = np.asarray(betas, float)
    shape = (alphas.size, betas.size)
    fields = {k: np.full(shape, np.nan) for k in ("energy", "complexity", "bbp_residual", "bulk_edge",
                                                  "isolated_eigenvalue", "mu", "chi", "kappa", "residual")}
    region = np.zeros(shape, dtype=np.int8)
    marginal = np.zeros(shape, dtype=np.int8)
    for i, a in enumerate(alphas):
        pts = complexity_curve(a, betas, loss=loss, quad=quad, overlap=overlap)
        for j, pt in enumerate(pts):
            if progress is not None:
                progress(f"alpha={a:g} beta={betas[j]:g}: {'ok' if pt.converged else 'failed'}")
            if not pt.converged:
                continue
            for k in fields:
                v = getattr(pt, k)
                fields[k][i, j] = np.nan if v is None else v
            marginal[i, j] = pt.branch == "marginal"
            if pt.complexity >= 0:
                region[i, j] = 2 if pt.bbp_residual > 0 else 1
    ds = xr.Dataset(
        {k: (("alpha", "beta"), v) for k, v in fields.items()},
        coords={"alpha": alphas, "beta": betas})
    ds["region"] = (("alpha", "beta"), region)
    ds["marginal"] = (("alpha", "beta"), marginal)
    units = {"energy": "e = L/N at the counted minima (eq. 8.10)", "complexity": "Sigma (eq. 8.11), annealed",
             "bbp_residual": "eq. 2.9 on the law (> 0: isolated eigenvalue toward the signal)",
             "bulk_edge": "Hessian bulk lower edge (eq. 2.3-2.4)", "isolated_eigenvalue": "eq. 2.7 (nan: none)",
             "mu": "Lagrange multiplier alpha E[u V'] (eq. 1.3)", "chi": "-rho(0)", "kappa": "edge multiplier",
             "residual": "largest residual of eqs. 8.7-8.9",
             "region": "0 no minima (Sigma < 0 or unsolved), 1 stable minima, 2 minima unstable toward the signal",
             "marginal": "1 on the marginal branch (edge at 0)"}
    for k, txt in units.items():
        ds[k].attrs["description"] = txt
    ds["beta"].attrs["description"] = "dSigma/de"
    ds.attrs["overlap"] = float(overlap)
    return ds


# ============================================================================ critical points of any index
#: Gauss-Legendre nodes per side of a crossing of 1 + Re(chi) D = 0 inside a grid cell (§8.8)
CRIT_LOCAL_NODES = 24


@dataclass(frozen=True, eq=False)
class CriticalPoint:
    """The critical points of any index counted by Kac-Rice at one (alpha, energy) (docs/theory.md §8.8).

    ``chi`` = -rho(0 + i0) is complex (Im chi > 0 when 0 lies inside the Hessian bulk);
    ``complexity`` is Sigma_tot (eq. 8.16), ``beta`` = dSigma_tot/de, ``index`` the fraction
    of negative Hessian eigenvalues per dimension N (eq. 8.17; ``index_limit`` = alpha times the
    law's mass on 1 + Re(chi) D < 0, its eps -> 0 limit), ``log_abs_det`` = (1/N) log |det H|
    (eq. 8.13). ``residuals``: eqs. 8.15a-c (8.15b divided by Im chi), the energy target, rim mass.
    Status: ``converged`` (every residual < :data:`SOLVER_TOL`, rim mass < 1e-9), ``iterations``,
    ``residual``, ``message``.
    """

    alpha: float
    loss: str
    energy: float
    beta: float
    complexity: float
    chi: complex
    c: float
    mu: float
    index: float
    index_limit: float
    log_abs_det: float
    law: dict
    residuals: dict
    converged: bool
    iterations: int
    residual: float
    message: str
    atoms: dict | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        keys = ("alpha", "loss", "energy", "beta", "complexity", "c", "mu", "index", "index_limit",
                "log_abs_det", "law", "residuals", "converged", "iterations", "residual", "message")
        out = {k: getattr(self, k) for k in keys}
        out["chi_re"], out["chi_im"] = float(self.chi.real), float(self.chi.imag)
        return out


class _RowGrid:
    """The quadrant grid kept two-dimensional (u along axis 0) for the crossing refinement."""

    def __init__(self, loss: Loss, quad: KacRiceQuadrature):
        self.loss = loss
        self.u = np.linspace(0.0, quad.u_max, quad.n_u)
        self.y = np.linspace(0.0, quad.y_max, quad.n_y)
        self.hu = self.u[1] - self.u[0]
        wu = np.full(self.u.size, self.hu)
        wu[0] /= 2
        self.wy = np.full(self.y.size, self.y[1] - self.y[0])
        self.wy[0] /= 2
        U, Yg = np.meshgrid(self.u, self.y, indexing="ij")
        self.gauss = np.exp(-(U**2 + Yg**2) / 2) * (2.0 / np.pi)
        self.w0 = np.outer(wu, self.wy) * self.gauss
        self.U, self.Y = U, Yg
        self.V = np.asarray(loss.V(U, Yg), float)
        self.dV = np.asarray(loss.dV(U, Yg), float)
        self.D = np.asarray(loss.d2V(U, Yg), float)
        self.rim = (U > quad.u_max * 0.97) | (Yg > quad.y_max * 0.97)
        self.gl_t, self.gl_w = np.polynomial.legendre.leggauss(CRIT_LOCAL_NODES)

    def nodes(self, chi: complex):
        """Flat (u, y, weight, V, V', D, rim) with each grid cell crossed by 1 + Re(chi) D = 0
        replaced by sinh-graded Gauss-Legendre nodes on both sides of the crossing (width of
        the grading |Im(chi) D| / |Re(chi) dD/du|, the scale of the near-singular factors)."""
        cr, ci = chi.real, chi.imag
        w = 1.0 + cr * self.D
        i, j = np.nonzero(w[:-1] * w[1:] < 0)
        wgt = self.w0.copy()
        half = 0.5 * self.hu * self.wy[j]
        np.subtract.at(wgt, (i, j), half * self.gauss[i, j])
        np.subtract.at(wgt, (i + 1, j), half * self.gauss[i + 1, j])
        ua, ub, yj = self.u[i], self.u[i + 1], self.y[j]
        wa, wb = w[i, j], w[i + 1, j]
        uc = ua + (ub - ua) * wa / (wa - wb)
        h = 1e-7 * max(1.0, float(self.u[-1]))
        for _ in range(4):   # Newton on 1 + Re(chi) D(u, y_j) = 0 inside the cell
            f = 1.0 + cr * np.asarray(self.loss.d2V(uc, yj), float)
            df = cr * (np.asarray(self.loss.d2V(uc + h, yj), float) - np.asarray(self.loss.d2V(uc - h, yj), float)) / (2 * h)
            step = np.where(np.abs(df) > 0, f / np.where(df == 0, 1.0, df), 0.0)
            uc = np.clip(uc - step, ua, ub)
        dc = np.asarray(self.loss.d2V(uc, yj), float)
        slope = np.abs(cr * (np.asarray(self.loss.d2V(uc + h, yj), float)
                             - np.asarray(self.loss.d2V(uc - h, yj), float)) / (2 * h))
        delta = np.maximum(np.abs(ci * dc) / np.maximum(slope, 1e-300), 1e-16 * self.hu)
        t, tw = self.gl_t, self.gl_w
        parts_u, parts_y, parts_w = [], [], []
        for lo, hi in ((ua, uc), (uc, ub)):
            tau_lo = np.arcsinh((lo - uc) / delta)
            tau_hi = np.arcsinh((hi - uc) / delta)
            tau = 0.5 * (tau_hi - tau_lo)[:, None] * t[None, :] + 0.5 * (tau_hi + tau_lo)[:, None]
            uu = uc[:, None] + delta[:, None] * np.sinh(tau)
            ww = (0.5 * (tau_hi - tau_lo))[:, None] * tw[None, :] * delta[:, None] * np.cosh(tau)
            parts_u.append(uu)
            parts_y.append(np.broadcast_to(yj[:, None], uu.shape))
            parts_w.append(ww * self.wy[j][:, None] * np.exp(-(uu**2 + yj[:, None]**2) / 2) * (2.0 / np.pi))
        lu = np.concatenate([p.ravel() for p in parts_u])
        ly = np.concatenate([p.ravel() for p in parts_y])
        lw = np.concatenate([p.ravel() for p in parts_w])
        u = np.concatenate([self.U.ravel(), lu])
        y = np.concatenate([self.Y.ravel(), ly])
        wt = np.concatenate([wgt.ravel(), lw])
        V = np.concatenate([self.V.ravel(), np.asarray(self.loss.V(lu, ly), float)])
        dV = np.concatenate([self.dV.ravel(), np.asarray(self.loss.dV(lu, ly), float)])
        D = np.concatenate([self.D.ravel(), np.asarray(self.loss.d2V(lu, ly), float)])
        rim = np.concatenate([self.rim.ravel(), np.zeros(lu.size, bool)])
        return u, y, wt, V, dV, D, rim, int(i.size)


_ROW_GRIDS: dict = {}


def _row_grid(loss: Loss, quad: KacRiceQuadrature) -> _RowGrid:
    return _cached(_ROW_GRIDS, _RowGrid, loss, quad)


@dataclass(frozen=True)
class _CritAverages:
    energy: float
    mu: float
    r_re: float
    r_im: float
    r_c: float
    complexity: float
    index: float
    index_limit: float
    log_abs_det: float
    tail: float
    crossings: int
    p: np.ndarray
    u: np.ndarray
    y: np.ndarray
    D: np.ndarray


def _crit_averages(g: _RowGrid, alpha: float, chi: complex, c: float, beta: float) -> _CritAverages:
    """Averages over the law of eq. 8.14 (no support restriction), residuals of eqs. 8.15,
    Sigma_tot (8.16), the index (8.17) and (1/N) log|det H| (8.13)."""
    u, y, wt, V, dV, D, rim, ncross = g.nodes(chi)
    one = 1.0 + chi * D
    absw = np.abs(one)
    good = (wt > 0) & (absw > 0)
    expo = np.full(u.size, -np.inf)
    expo[good] = (np.log(wt[good]) + np.log(absw[good]) - chi.real * u[good] * dV[good]
                  - 0.5 * c * dV[good] ** 2 - beta * V[good])
    top = float(np.max(expo))
    ew = np.exp(expo - top)
    z = float(ew.sum())
    p = ew / z
    log_z = math.log(z) + top
    energy = alpha * float(p @ V)
    mu = alpha * float(p @ (u * dV))
    safe = np.where(good, one, 1.0)
    e1 = complex(p @ (D / safe))
    r = -1.0 - chi * mu + alpha * chi * e1
    r_im = -mu + alpha * float(p @ (D / np.abs(safe) ** 2))
    r_c = c * alpha * float(p @ dV**2) - 1.0
    sigma = 0.5 * math.log(c) - math.log(abs(chi)) + beta * energy + alpha * log_z
    index = (np.angle(chi) - alpha * float(p @ np.angle(safe)) + mu * chi.imag) / np.pi
    index_limit = alpha * float(p[(1.0 + chi.real * D) < 0].sum())
    logdet = float((-mu * chi - np.log(chi) - 1.0).real + alpha * float(p @ np.log(np.abs(safe))))
    return _CritAverages(energy, mu, float(r.real), r_im, r_c, sigma, float(index), index_limit, logdet,
                         float(p[rim].sum()), ncross, p, u, y, D)


def _crit_law_summary(a: _CritAverages) -> dict:
    p, u, y, D = a.p, a.u, a.y, a.D
    return {"mean_abs_yhat": float(p @ np.abs(u)), "mean_yhat2": float(p @ u**2), "mean_D": float(p @ D),
            "P_D_negative": float(p[D < 0].sum()), "P_abs_yhat_below_abs_y": float(p[np.abs(u) < y].sum()),
            "normalisation": float(p.sum()), "crossing_cells": a.crossings}


def _crit_point(g, loss, alpha, chi, c, beta, fx, evals, energy_target=None, notes=()) -> CriticalPoint:
    a = _crit_averages(g, alpha, chi, c, beta)
    residual = float(np.max(np.abs(fx)))
    residuals = {"lambda_re": a.r_re, "lambda_im_over_im_chi": a.r_im, "c": a.r_c, "rim_mass": a.tail}
    if energy_target is not None:
        residuals["energy"] = a.energy / energy_target - 1.0
    msgs = list(notes)
    converged = residual < SOLVER_TOL and a.tail < 1e-9 and math.isfinite(a.complexity) and chi.imag > 0
    if residual >= SOLVER_TOL:
        msgs.append(f"critical points: residual {residual:.2e} >= {SOLVER_TOL:g} (alpha={alpha:g}, beta={beta:g})")
    if a.tail >= 1e-9:
        msgs.append(f"law reaches the grid rim (mass {a.tail:.1e}): enlarge u_max / y_max")
    if not chi.imag > 0:
        msgs.append("Im chi <= 0: not the bulk branch")
    if converged:
        msgs.append("converged (critical points, 0 inside the bulk)")
    keep = a.p > 0
    return CriticalPoint(alpha=alpha, loss=loss.name, energy=a.energy, beta=float(beta), complexity=a.complexity,
                         chi=complex(chi), c=float(c), mu=a.mu, index=a.index, index_limit=a.index_limit,
                         log_abs_det=a.log_abs_det, law=_crit_law_summary(a), residuals=residuals,
                         converged=bool(converged), iterations=int(evals), residual=residual,
                         message="; ".join(msgs),
                         atoms={"yhat": a.u[keep], "y": a.y[keep], "D": a.D[keep], "weights": a.p[keep]})


def _crit_default_guess(alpha: float) -> tuple[float, float, float]:
    chi, _, c = _default_guess(alpha)
    return (chi, 0.05 * chi, c)


def solve_critical_points(alpha: float, beta: float = 0.0, *, energy: float | None = None,
                          loss: Loss | str | None = None, quad: KacRiceQuadrature = KacRiceQuadrature(),
                          guess: tuple[float, ...] | None = None, strict: bool = True) -> CriticalPoint:
    """Critical points of any index counted by annealed Kac-Rice (docs/theory.md eqs. 8.12-8.17).

    Solves eqs. 8.15 for (Re chi, Im chi, c) at fixed ``beta`` (default 0: the most numerous
    critical points), or, with ``energy``, for (Re chi, Im chi, c, beta) at that energy.

    Parameters
    ----------
    alpha : float
        M/N > 0.
    beta : float
        Lagrange multiplier of the energy (ignored when ``energy`` is given).
    energy : float, optional
        Target energy e = L/N > 0.
    loss : Loss or str, optional
        Even in yhat and y (default quartic).
    quad : KacRiceQuadrature
        Base grid; cells crossed by 1 + Re(chi) D = 0 are refined (:data:`CRIT_LOCAL_NODES`).
    guess : (chi_re, chi_im, c) or (chi_re, chi_im, c, beta), optional
        Warm start (Im chi > 0, c > 0). Solved in (Re chi, log Im chi, log c[, beta]).
    strict : bool
        Raise ConvergenceError (the point attached) instead of returning a failed point.
    """
    alpha = _check_alpha(alpha)
    beta = float(beta)
    if not math.isfinite(beta):
        raise InputError(f"beta must be finite, got {beta!r}")
    if energy is not None:
        energy = float(energy)
        if not (math.isfinite(energy) and energy > 0):
            raise InputError(f"energy must be a finite number > 0, got {energy!r}")
    loss = kac_rice_loss(loss)
    g = _row_grid(loss, quad)
    gs = list(guess) if guess is not None else list(_crit_default_guess(alpha))
    if len(gs) not in (3, 4) or not (math.isfinite(gs[0]) and gs[1] > 0 and gs[2] > 0):
        raise InputError(f"guess must be (chi_re, chi_im > 0, c > 0[, beta]), got {guess!r}")
    evals = [0]
    fixed_e = energy is not None

    def unpack(x):
        b = float(x[3]) if fixed_e else beta
        return complex(x[0], math.exp(x[1])), math.exp(x[2]), b

    def f(x):
        evals[0] += 1
        if np.any(np.abs(x[1:3]) > 60):
            return np.full(x.size, 1e6)
        chi, c, b = unpack(x)
        a = _crit_averages(g, alpha, chi, c, b)
        r = [a.r_re, a.r_im, a.r_c] + ([a.energy / energy - 1.0] if fixed_e else [])
        r = np.array(r)
        return np.where(np.isfinite(r), r, 1e6)

    x0 = [float(gs[0]), math.log(gs[1]), math.log(gs[2])]
    if fixed_e:
        x0.append(gs[3] if len(gs) == 4 else beta)
    sol = root(f, np.array(x0), method="hybr", options={"xtol": 1e-13})
    x, fx, n = _newton_polish(f, sol.x, SOLVER_TOL)
    chi, c, b = unpack(x)
    pt = _crit_point(g, loss, alpha, chi, c, b, fx, evals[0] + n, energy)
    return raise_if_failed(pt, strict)


def _crit_guess(pt: CriticalPoint) -> tuple[float, float, float, float]:
    return (pt.chi.real, pt.chi.imag, pt.c, pt.beta)


def _crit_start(alpha: float, energy: float, loss: Loss, quad: KacRiceQuadrature,
                minima: KacRicePoint | None = None) -> CriticalPoint:
    """First point of the saddle branch at ``energy``: warm starts built from the minima at
    beta = 0 (their chi and c), tried in turn; the last attempt is returned if all fail."""
    if minima is None:
        minima = solve_kac_rice(alpha, 0.0, loss=loss, quad=quad, strict=False)
    chi, c = (minima.chi, minima.c) if minima.converged else _default_guess(alpha)[::2]
    pt = None
    for g in ((0.8 * chi, 0.95 * chi, 2.5 * c, 0.12), (chi, 0.5 * chi, 1.5 * c, 0.05),
              (0.6 * chi, 1.2 * chi, 3.5 * c, 0.2), (chi, 0.2 * chi, c, 0.0)):
        pt = solve_critical_points(alpha, energy=energy, loss=loss, quad=quad, guess=g, strict=False)
        if pt.converged:
            return pt
    return pt


def critical_curve(alpha: float, energies: ArrayLike, *, loss: Loss | str | None = None,
                   quad: KacRiceQuadrature = KacRiceQuadrature(), start: CriticalPoint | None = None,
                   ) -> list[CriticalPoint]:
    """Sigma_tot(e) and the index of the typical critical points (docs/theory.md §8.8-8.9) at
    each energy (non-strict points), by continuation: from ``start`` (or a start at the
    energy closest to the minima's e_typical) outward in both directions, warm-starting each
    point from the previous one; an energy that fails is retried from a midpoint."""
    alpha = _check_alpha(alpha)
    loss = kac_rice_loss(loss)
    es = np.asarray(energies, float).ravel()
    if es.size == 0 or not np.all(np.isfinite(es)) or np.any(es <= 0):
        raise InputError("energies must be finite numbers > 0")
    if start is None:
        minima = solve_kac_rice(alpha, 0.0, loss=loss, quad=quad, strict=False)
        e0 = minima.energy if minima.converged else float(np.median(es))
        start = _crit_start(alpha, e0, loss, quad, minima)
    out: list = [None] * es.size
    if not start.converged:
        return [replace(start, converged=False, message=f"no start: {start.message}") for _ in es]
    for side in (np.nonzero(es >= start.energy)[0], np.nonzero(es < start.energy)[0][::-1]):
        order = sorted(side, key=lambda k: abs(es[k] - start.energy))
        cur = start
        for k in order:
            pt = solve_critical_points(alpha, energy=float(es[k]), loss=loss, quad=quad,
                                       guess=_crit_guess(cur), strict=False)
            tries = 0
            while not pt.converged and tries < 4:   # bisect toward the last converged energy
                mid = 0.5 * (cur.energy + float(es[k]))
                mp = solve_critical_points(alpha, energy=mid, loss=loss, quad=quad, guess=_crit_guess(cur),
                                           strict=False)
                if mp.converged:
                    cur = mp
                pt = solve_critical_points(alpha, energy=float(es[k]), loss=loss, quad=quad,
                                           guess=_crit_guess(cur), strict=False)
                tries += 1
            out[k] = pt
            if pt.converged:
                cur = pt
    return out


#: index densities at which the crossover energy of the typical critical points is reported (§8.9)
INDEX_LEVELS = LANDSCAPE_DEFAULTS.index_levels


def critical_landscape(alpha: float, *, loss: Loss | str | None = None,
                       quad: KacRiceQuadrature | None = None, index_levels: tuple[float, ...] | None = None,
                       e_min_fraction: float | None = None) -> dict:
    """Critical points of any index at ``alpha`` (docs/theory.md §8.9).

    Returns a dict: the point at the minima's e_typical (Sigma_tot, index, Sigma_tot - Sigma_min);
    e_low_critical (Sigma_tot = 0, Brent on the energy) with its index; for each level in
    ``index_levels`` the energy where the index of the typical critical points equals it and
    Sigma_tot there; ``e_threshold_kr``: the energy below which the typical critical points are
    minima (index 0), None when the index stays > 0 down to ``e_min_fraction`` e_typical (what
    the quartic loss gives, §8.9); ``curve`` (energy, Sigma_tot, index, beta) of the walk down;
    converged, residual, message.
    """
    alpha = _check_alpha(alpha)
    loss = kac_rice_loss(loss if loss is not None else LANDSCAPE_DEFAULTS.loss)
    quad = quad if quad is not None else LANDSCAPE_DEFAULTS.quad
    index_levels = LANDSCAPE_DEFAULTS.index_levels if index_levels is None else index_levels
    e_min_fraction = LANDSCAPE_DEFAULTS.critical_e_min_fraction if e_min_fraction is None else float(e_min_fraction)
    if not index_levels or not all(0 < float(v) < 1 for v in index_levels):
        raise InputError(f"index_levels must be numbers in (0, 1), got {index_levels!r}")
    if not 0 < e_min_fraction < 1:
        raise InputError(f"e_min_fraction must be in (0, 1), got {e_min_fraction!r}")
    minima = solve_kac_rice(alpha, 0.0, loss=loss, quad=quad, strict=False)
    msgs = []
    if not minima.converged:
        return {"alpha": alpha, "converged": False, "message": f"minima at beta = 0: {minima.message}"}
    start = _crit_start(alpha, minima.energy, loss, quad, minima)
    if not start.converged:
        return {"alpha": alpha, "converged": False, "message": f"saddle branch start: {start.message}"}
    pts = [start]
    cur = start
    step = 0.08 * start.energy
    levels = sorted(float(v) for v in index_levels)
    while cur.energy > e_min_fraction * start.energy and (cur.index > 0.5 * levels[0] or cur.complexity > 0):
        e_next = cur.energy - step
        if e_next <= e_min_fraction * start.energy:
            break
        nxt = solve_critical_points(alpha, energy=e_next, loss=loss, quad=quad, guess=_crit_guess(cur), strict=False)
        if not nxt.converged:
            if step < 0.004 * start.energy:
                msgs.append(f"saddle branch not continued below e = {cur.energy:.6g}: {nxt.message}")
                break
            step /= 2
            continue
        pts.append(nxt)
        cur = nxt
    cache = {}

    def near(e):
        return min(pts + list(cache.values()), key=lambda p: abs(p.energy - e))

    def solve(e):
        key = round(e, 13)
        if key not in cache:
            pt = solve_critical_points(alpha, energy=e, loss=loss, quad=quad, guess=_crit_guess(near(e)), strict=False)
            if not pt.converged:
                raise ConvergenceError(pt.message, pt)
            cache[key] = pt
        return cache[key]

    def crossing(fun):
        vals = [fun(p) for p in pts]
        for k in range(1, len(pts)):
            if np.sign(vals[k]) != np.sign(vals[k - 1]):
                try:
                    e = brentq(lambda x: fun(solve(x)), pts[k].energy, pts[k - 1].energy, xtol=1e-10, rtol=1e-12)
                    return solve(e)
                except ConvergenceError as exc:
                    msgs.append(str(exc))
                    return None
        return None

    low = crossing(lambda p: p.complexity)
    at_levels = []
    for lv in levels:
        pt = crossing(lambda p, lv=lv: math.log(max(p.index, 1e-300)) - math.log(lv))
        at_levels.append({"index": lv, "energy": None if pt is None else pt.energy,
                          "sigma_tot": None if pt is None else pt.complexity,
                          "beta": None if pt is None else pt.beta})
    lowest = min(pts, key=lambda p: p.energy)
    threshold = None   # index 0 reached at finite energy on the branch: not seen for the quartic
    if lowest.index <= 0:
        threshold = lowest.energy
    else:
        msgs.append(f"index of the typical critical points > 0 down to e = {lowest.energy:.6g} "
                    f"(index {lowest.index:.3g}, Sigma_tot {lowest.complexity:.4g}): no e_threshold_kr")
    used = [start] + ([low] if low else []) + [p for p in cache.values()]
    residual = max(p.residual for p in used)
    return {"alpha": alpha, "loss": loss.name,
            "e_typical_minima": minima.energy, "sigma_min_typical": minima.complexity,
            "sigma_tot_at_e_typical": start.complexity, "index_at_e_typical": start.index,
            "beta_tot_at_e_typical": start.beta,
            "e_low_critical": None if low is None else low.energy,
            "index_at_e_low_critical": None if low is None else low.index,
            "beta_at_e_low_critical": None if low is None else low.beta,
            "index_levels": at_levels, "e_threshold_kr": threshold,
            "lowest_energy_solved": lowest.energy, "index_at_lowest": lowest.index,
            "sigma_tot_at_lowest": lowest.complexity,
            "curve": [{"energy": p.energy, "sigma_tot": p.complexity, "index": p.index,
                       "index_limit": p.index_limit, "beta": p.beta, "chi_re": p.chi.real, "chi_im": p.chi.imag,
                       "c": p.c, "mu": p.mu, "log_abs_det": p.log_abs_det} for p in sorted(pts, key=lambda p: p.energy)],
            "converged": bool(all(p.converged for p in used)), "residual": float(residual),
            "message": "; ".join(msgs) if msgs else "converged"}


def critical_maximum(alpha: float, start: CriticalPoint, *, loss: Loss | str | None = None,
                     quad: KacRiceQuadrature | None = None, max_steps: int = 40) -> tuple[CriticalPoint | None, list, str]:
    """The most numerous critical points (beta = dSigma_tot/de = 0, the maximum of Sigma_tot;
    docs/theory.md §8.9): walk up in energy from ``start`` (beta > 0) until beta < 0, then solve
    eqs. 8.15 at beta = 0 warm-started from the nearer side. Returns (point or None, the points of
    the walk, message)."""
    alpha = _check_alpha(alpha)
    loss = kac_rice_loss(loss if loss is not None else LANDSCAPE_DEFAULTS.loss)
    quad = quad if quad is not None else LANDSCAPE_DEFAULTS.quad
    if not (start.converged and start.beta > 0):
        return None, [], "critical_maximum needs a converged start with beta > 0"
    cur, walk, step = start, [], 0.1 * start.energy
    for _ in range(max_steps):
        nxt = solve_critical_points(alpha, energy=cur.energy + step, loss=loss, quad=quad, guess=_crit_guess(cur),
                                    strict=False)
        if not nxt.converged:
            if step < 0.005 * start.energy:
                return None, walk, f"saddle branch not continued above e = {cur.energy:.6g}: {nxt.message}"
            step /= 2
            continue
        walk.append(nxt)
        if nxt.beta <= 0:
            near = min((cur, nxt), key=lambda p: abs(p.beta))
            top = solve_critical_points(alpha, 0.0, loss=loss, quad=quad, guess=_crit_guess(near)[:3], strict=False)
            if top.converged and min(cur.energy, nxt.energy) <= top.energy <= max(cur.energy, nxt.energy):
                return top, walk, "converged"
            return None, walk, f"beta = 0 between e = {cur.energy:.6g} and {nxt.energy:.6g} not solved: {top.message}"
        cur, step = nxt, step * 1.3
    return None, walk, f"beta > 0 up to e = {cur.energy:.6g}"


def overlap_curvature(alpha: float, energy: float, *, loss: Loss | str | None = None,
                      quad: KacRiceQuadrature = KacRiceQuadrature(), restricted: bool = False,
                      h: float = 0.02) -> dict:
    """d^2 Sigma / dq^2 at q = 0 and fixed energy (docs/theory.md §8.10): negative when the minima
    at overlap 0 are the most numerous ones at that energy.

    By symmetry dSigma/dq (eq. 8.23 or 8.25) is odd in q, so D(h) = dSigma/dq(h) / h tends to the
    curvature with an O(h^2) error; returned: ``value`` = (4 D(h) - D(2h)) / 3 (Richardson),
    ``residual`` = |D(h) - D(2h)| / 3 (the size of the removed h^2 term), ``converged``, ``message``.
    """
    alpha = _check_alpha(alpha)
    if not (0 < h < 0.25):
        raise InputError(f"h must be in (0, 0.25), got {h!r}")
    pts = [solve_at_energy(alpha, energy, loss=loss, quad=quad, overlap=x, restricted=restricted, strict=False)
           for x in (h, 2 * h)]
    ok = all(p.converged for p in pts)
    d1, d2 = (p.dsigma_doverlap / x for p, x in zip(pts, (h, 2 * h)))
    return {"alpha": alpha, "energy": float(energy), "restricted": bool(restricted), "h": h,
            "value": float((4 * d1 - d2) / 3) if ok else None, "residual": float(abs(d1 - d2) / 3) if ok else None,
            "beta": pts[0].beta, "converged": ok,
            "message": "converged" if ok else "; ".join(p.message for p in pts if not p.converged)}

