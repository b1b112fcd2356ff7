"""Random-matrix core of the tangent Hessian: bulk, lower edge, isolated eigenvalue, overlap.

All equations are in docs/theory.md §2. The Hessian is

    H = (1/N) sum_m D_m a_m a_m^T - mu I,   a_m ~ N(0, I_N),  M = alpha N,

where the first coordinate of a_m (along the teacher direction e) is s_m and D_m may
depend on s_m. Every function takes a :class:`theory.measure.Measure` or a
:class:`theory.measure.CurvatureLaw` (anything with ``curvature_law()``); only the law of
(D, s), alpha and mu matter.

Convention: rho(lambda) = lim (1/N) tr (lambda - H)^(-1); below the bulk rho < 0 and
rho -> 0^- as lambda -> -infinity (eq. 2.2). The lower edge rho_e is the unique root of
eq. 2.4 in the allowed interval (eq. 2.5); the isolated eigenvalue the unique root of
eq. 2.6 in (rho_e, 0).

Numerics. The root searches run on a logarithmic coordinate: log(-rho) away from the
pole 1/D_min, and log(delta), delta = 1 - D_min rho, near it, where ``1 - D rho`` is
evaluated as ``((D_min - D) + D delta) / D_min`` with no cancellation. This keeps full
relative precision when the edge sits within 1e-12 (or 1e-100) of the pole, which
happens for quadrature laws whose lowest atom has a tiny weight; see docs/theory.md §2.6.
Each evaluation is a handful of vectorised passes over the atoms (no Python loop over
samples), so a law of 10^6 atoms is solved in a fraction of a second.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq

from .errors import ConvergenceError, InputError, raise_if_failed
from .io import json_ready
from .measure import CurvatureLaw, Measure

__all__ = [
    "bbp_threshold",
    "EdgeResult",
    "IsolatedResult",
    "StieltjesResult",
    "DensityResult",
    "SpectrumSummary",
    "inverse_stieltjes",
    "stieltjes",
    "bulk_density",
    "bulk_lower_edge",
    "isolated_eigenvalue",
    "eigenvector_overlap2",
    "bbp_residual",
    "spectrum_summary",
    "spectrum_support_bounds",
]

#: Smallest gap 1 - D_min rho explored near the pole; below it the edge is declared hard.
MIN_POLE_GAP = 1e-150
#: Largest log(-rho) explored when D >= 0 (no pole on the negative side).
MAX_LOG_RHO = 300.0
#: Gap at which the root searches switch between the two coordinates.
_SWITCH_GAP = 0.5
_XTOL = 1e-13
_RTOL = 1e-14


# ============================================================================ results
@dataclass(frozen=True)
class EdgeResult:
    """Lower edge of the bulk (eqs. 2.4-2.5).

    Attributes
    ----------
    rho_edge : float
        rho_e < 0; ``-inf`` when D >= 0 and alpha P(D > 0) <= 1 (the edge is then the
        atom of zero modes at -mu).
    bulk_edge : float
        lambda(rho_e), eq. 2.3.
    residual : float
        alpha E[(D rho_e / (1 - D rho_e))^2] - 1 (eq. 2.4 times rho_e^2; 0 at a soft edge,
        <= 0 at a hard edge); NaN when the search failed.
    converged : bool
        brentq's own verdict on the final search (True at a hard edge, where no search is
        needed); False when the bracketing or brentq failed, with NaN values.
    hard_edge : bool
        True when eq. 2.4 has no root in the allowed interval: rho_e = 1/D_min (eq. 2.5),
        or rho_e = -inf when D >= 0 and alpha P(D > 0) <= 1.
    set_by_lowest_atom : bool
        True when the root of eq. 2.4 exists only because of the point mass at D_min
        (without it the left-hand side stays below 1 up to the pole). For an empirical or
        quadrature law approximating a continuous one this signals a hard edge in the
        continuum, or an edge controlled by extreme samples (§2.7). Also True for a hard edge.
    pole_gap : float or None
        1 - D_min rho_e to full relative precision (None when D_min >= 0).
    bracket : tuple of float
        Bracket of the final search, in rho.
    iterations : int
        brentq iterations (0 when no search was needed).
    message : str
        One line: how the edge was found (soft, hard) or why the search failed.
    """

    rho_edge: float
    bulk_edge: float
    residual: float
    converged: bool
    hard_edge: bool
    set_by_lowest_atom: bool
    pole_gap: float | None
    bracket: tuple[float, float]
    iterations: int
    message: str


@dataclass(frozen=True)
class IsolatedResult:
    """Isolated eigenvalue below the bulk toward e (eqs. 2.6-2.8).

    Attributes
    ----------
    rho_iso : float or None
        Root rho* of eq. 2.6 in (rho_e, 0); None below the BBP transition (no root).
    isolated_eigenvalue : float or None
        lambda(rho*) (eq. 2.7); None when there is no isolated eigenvalue.
    overlap2 : float
        Squared overlap of its eigenvector with e (eq. 2.8); 0.0 when there is none (the
        N -> infinity overlap of the lowest eigenvector with e vanishes below BBP).
    residual : float
        alpha E[(s^2 - 1) D rho* / (1 - D rho*)] - 1 at the root (eq. 2.6 times -rho*);
        0.0 when there is no root.
    converged : bool
        brentq's own verdict (True below BBP, where no search is needed); False when the
        search failed or the lower edge it starts from did, with NaN values (not None:
        the existence of a spike is then unknown).
    bbp_residual : float
        Same function at rho_e (eq. 2.9): > 0 iff an isolated eigenvalue exists.
    bracket : tuple of float or None
    iterations : int
    message : str
        One line: root found, no spike below BBP, or why the search failed.
    """

    rho_iso: float | None
    isolated_eigenvalue: float | None
    overlap2: float
    residual: float
    converged: bool
    bbp_residual: float
    bracket: tuple[float, float] | None
    iterations: int
    message: str


@dataclass(frozen=True)
class Residuals:
    """Residuals of the three scalar equations (dimensionless, see the result classes)."""

    edge: float
    isolated: float
    bbp: float


@dataclass(frozen=True)
class SpectrumSummary:
    """Edge, isolated eigenvalue and overlap of a law (docs/theory.md §2).

    ``isolated_eigenvalue`` and ``rho_iso`` are None below the BBP transition (NaN when a
    search failed). Status: ``converged`` (edge and isolated searches both converged),
    ``iterations`` (their brentq iterations, summed), ``residual`` (the largest |residual|
    of the equations actually solved: eq. 2.4 at a soft edge, eq. 2.6 when a spike exists;
    0.0 when neither needed a search; NaN on failure), ``message`` (both searches, one line).
    """

    alpha: float
    mu: float
    bulk_edge: float
    isolated_eigenvalue: float | None
    overlap2: float
    rho_edge: float
    rho_iso: float | None
    converged: bool
    hard_edge: bool
    set_by_lowest_atom: bool
    residuals: Residuals
    iterations: int
    residual: float
    message: str

    def to_dict(self) -> dict:
        """JSON-ready dict; non-finite floats (rho_edge = -inf) become None."""
        return json_ready(asdict(self))


@dataclass(frozen=True, eq=False)
class StieltjesResult:
    """g(z) = lim (1/N) tr (z - H)^(-1) solving eq. 2.1 at each z.

    Attributes
    ----------
    z, g : complex ndarray
    residual : ndarray
        |1 - g (z + mu) + alpha g E[D / (1 - D g)]| (eq. 2.1 times g).
    converged : bool ndarray
        Per point: residual <= tol after the final Newton/fixed-point stage.
    iterations : int
        Newton/fixed-point sweeps over all eta levels.
    message : str
        One line: how many points converged, the worst residual.
    """

    z: np.ndarray
    g: np.ndarray
    residual: np.ndarray
    converged: np.ndarray
    iterations: int
    message: str


@dataclass(frozen=True, eq=False)
class DensityResult:
    """Bulk density rho(x) = -Im g(x + i eta) / pi (eq. 2.10) on a grid of x.

    ``residual``, ``converged`` (per point), ``iterations`` and ``message`` are those of
    the underlying :class:`StieltjesResult`.
    """

    x: np.ndarray
    density: np.ndarray
    eta: float
    residual: np.ndarray
    converged: np.ndarray
    coarse_grained: bool
    iterations: int
    message: str


# ============================================================================ internals
def _as_law(measure) -> CurvatureLaw:
    if isinstance(measure, CurvatureLaw):
        return measure
    getter = getattr(measure, "curvature_law", None)
    if getter is None:
        raise InputError(f"expected a Measure or CurvatureLaw, got {type(measure).__name__}")
    return getter()


@dataclass(frozen=True, eq=False)
class _Point:
    """An evaluation point rho with x = D rho / (1 - D rho) for every atom."""

    rho: float
    x: np.ndarray


class _Kernel:
    """Precomputed arrays of a law; evaluates the scalar equations at accurate points."""

    def __init__(self, law: CurvatureLaw):
        keep = law.weights > 0
        self.law = law
        self.alpha = law.alpha
        self.mu = law.mu
        if keep.all():
            D, w, s = law.D, law.weights, law.s
        else:
            D, w, s = law.D[keep], law.weights[keep], law.s[keep]
        self.D, self.w = D, w
        s2 = s * s
        self.w_s2 = w * s2
        self.w_s2m1 = self.w_s2 - w
        self.D_min = float(D.min())
        self.D_max = float(D.max())
        self.has_pole = self.D_min < 0
        if self.has_pole:
            # 1 - D rho at rho = (1 - delta) / D_min equals c + r delta, c >= 0 exactly.
            self.r = D / self.D_min
            self.c = (self.D_min - D) / self.D_min
            self.at_lowest = self.c == 0

    # -- points ----------------------------------------------------------------
    def at_rho(self, rho: float) -> _Point:
        Drho = self.D * rho
        q = np.subtract(1.0, Drho)
        return _Point(rho, np.divide(Drho, q, out=q))

    def at_gap(self, delta: float) -> _Point:
        """Point rho = (1 - delta) / D_min, accurate for tiny delta (requires a pole)."""
        q = self.r * delta
        q += self.c
        x = np.divide(self.r, q, out=q)
        x *= 1.0 - delta
        return _Point((1.0 - delta) / self.D_min, x)

    # -- equations -------------------------------------------------------------
    def edge_fn(self, p: _Point) -> float:
        """Eq. 2.4 as alpha E[x^2] - 1 (= rho^2 lambda'(rho))."""
        return self.alpha * float(np.dot(self.w, p.x * p.x)) - 1.0

    def spike_fn(self, p: _Point) -> float:
        """Eq. 2.6 as alpha E[(s^2 - 1) x] - 1 (same sign as the Schur function)."""
        return self.alpha * float(np.dot(self.w_s2m1, p.x)) - 1.0

    def lam(self, p: _Point) -> float:
        """Eq. 2.3: 1/rho - mu + alpha E[D / (1 - D rho)], with D/(1 - D rho) = x / rho."""
        return 1.0 / p.rho + self.alpha * float(np.dot(self.w, p.x)) / p.rho - self.mu

    def overlap2(self, p: _Point) -> float:
        """Eq. 2.8 in the form |rho^2 lambda'| / (|rho^2 lambda'| + alpha E[s^2 x^2])."""
        slope = abs(self.edge_fn(p))
        return slope / (slope + self.alpha * float(np.dot(self.w_s2, p.x * p.x)))

    def describe(self) -> str:
        return (f"alpha={self.alpha:g}, mu={self.mu:g}, {self.D.size} atoms, "
                f"D in [{self.D_min:.6g}, {self.D_max:.6g}]")


def _bracket_walk(f, t0: float, step: float, t_limit: float, target_positive: bool):
    """Walk t from t0 by growing steps toward t_limit until sign(f) matches the target.

    Returns (t_prev, f_prev, t_new, f_new, found).
    """
    t_prev, f_prev = t0, f(t0)
    if (f_prev > 0) == target_positive:
        return t_prev, f_prev, t_prev, f_prev, True
    while True:
        t_new = t_prev + step
        if (step > 0 and t_new >= t_limit) or (step < 0 and t_new <= t_limit):
            t_new = t_limit
        f_new = f(t_new)
        if (f_new > 0) == target_positive:
            return t_prev, f_prev, t_new, f_new, True
        if t_new == t_limit:
            return t_prev, f_prev, t_new, f_new, False
        t_prev, f_prev = t_new, f_new
        step *= 2.0


@dataclass(frozen=True)
class _Root:
    """One brentq search: the root ``t`` (NaN when the search raised), brentq's verdict,
    its iteration count and a one-line message."""

    t: float
    converged: bool
    iterations: int
    message: str


def _solve(f, a: float, b: float, what: str, kernel: _Kernel) -> _Root:
    """brentq on the bracket {a, b}; a failure is returned as a value, never raised."""
    a, b = min(a, b), max(a, b)
    if a == b:  # root at the bracket end (e.g. exactly at BBP)
        return _Root(a, True, 0, f"{what}: root at the bracket end")
    try:
        t, info = brentq(f, a, b, xtol=_XTOL, rtol=_RTOL, maxiter=200, full_output=True, disp=False)
    except (ValueError, RuntimeError) as exc:
        return _Root(math.nan, False, 0, f"{what}: brentq failed on [{a:.6g}, {b:.6g}] ({exc}); {kernel.describe()}")
    if not info.converged:
        return _Root(t, False, int(info.iterations),
                     f"{what}: brentq did not converge after {info.iterations} iterations "
                     f"on [{a:.6g}, {b:.6g}] ({info.flag}); {kernel.describe()}")
    return _Root(t, True, int(info.iterations), f"{what}: brentq converged in {info.iterations} iterations")


def _failed_edge(message: str, iterations: int = 0,
                 bracket: tuple[float, float] = (math.nan, math.nan)) -> EdgeResult:
    return EdgeResult(rho_edge=math.nan, bulk_edge=math.nan, residual=math.nan, converged=False, hard_edge=False,
                      set_by_lowest_atom=False, pole_gap=None, bracket=bracket, iterations=iterations,
                      message=message)


def _edge_location(k: _Kernel) -> tuple[EdgeResult, _Point | None]:
    """Solve eq. 2.4 in (1/D_min, 0) or (-inf, 0). Returns (EdgeResult, point); on failure
    the result has ``converged`` False and NaN values, and the point is None."""
    h_of_rho_log = lambda t: k.edge_fn(k.at_rho(-math.exp(t)))  # noqa: E731  (h increases with t)
    if k.has_pole:
        t_switch = math.log(_SWITCH_GAP / -k.D_min)  # log(-rho) at delta = 1/2
        if k.edge_fn(k.at_gap(_SWITCH_GAP)) > 0:
            # Root with delta in (1/2, 1): rho in (rho_switch, 0); h -> -1 as rho -> 0.
            lo, _, hi, _, found = _bracket_walk(h_of_rho_log, t_switch, -2.0, -700.0, False)
            if not found:
                return _failed_edge(f"lower edge: no sign change of eq. 2.4 near rho = 0; {k.describe()}"), None
            bracket = (-math.exp(lo), -math.exp(hi))
            root = _solve(h_of_rho_log, hi, lo, "lower edge", k)
            if math.isnan(root.t):
                return _failed_edge(root.message, root.iterations, tuple(sorted(bracket))), None
            p = k.at_rho(-math.exp(root.t))
            gap = 1.0 - k.D_min * p.rho
        else:
            h_of_gap_log = lambda u: k.edge_fn(k.at_gap(math.exp(u)))  # noqa: E731  (decreases with u)
            u_lo_limit = math.log(MIN_POLE_GAP)
            hi, _, lo, f_lo, found = _bracket_walk(h_of_gap_log, math.log(_SWITCH_GAP), -2.0, u_lo_limit, True)
            if not found:
                # Hard edge: eq. 2.4 has no root before the pole; rho_e = 1/D_min (eq. 2.5).
                p = k.at_gap(MIN_POLE_GAP)
                result = EdgeResult(rho_edge=1.0 / k.D_min, bulk_edge=k.lam(p), residual=f_lo, converged=True,
                                    hard_edge=True, set_by_lowest_atom=True, pole_gap=0.0,
                                    bracket=(1.0 / k.D_min, 1.0 / k.D_min), iterations=0,
                                    message="lower edge: hard, eq. 2.4 has no root before the pole "
                                            "(rho_e = 1/D_min, eq. 2.5)")
                return result, p
            bracket = ((1 - math.exp(lo)) / k.D_min, (1 - math.exp(hi)) / k.D_min)
            root = _solve(h_of_gap_log, lo, hi, "lower edge", k)
            if math.isnan(root.t):
                return _failed_edge(root.message, root.iterations, tuple(sorted(bracket))), None
            gap = math.exp(root.t)
            p = k.at_gap(gap)
        # Is the root carried by the atom(s) at D_min alone? (eq. 2.4 without them at the pole)
        x_rest = np.divide(k.r, k.c, out=np.zeros_like(k.r), where=~k.at_lowest)
        hard = k.alpha * float(np.dot(k.w, x_rest * x_rest)) - 1.0 <= 0
        result = EdgeResult(rho_edge=p.rho, bulk_edge=k.lam(p), residual=k.edge_fn(p), converged=root.converged,
                            hard_edge=False, set_by_lowest_atom=bool(hard), pole_gap=gap,
                            bracket=tuple(sorted(bracket)), iterations=root.iterations, message=root.message)
        return result, p
    # D >= 0: no pole for rho < 0; h increases from -1 (rho = 0^-) to alpha P(D > 0) - 1 (rho -> -inf).
    if k.D_max == 0:
        t0 = 0.0
    else:
        t0 = -math.log(k.D_max)
    lo, _, hi, f_hi, found = _bracket_walk(h_of_rho_log, t0, 2.0, MAX_LOG_RHO, True)
    if not found:
        # alpha P(D > 0) <= 1: the lowest eigenvalue is the atom of zero modes at -mu.
        result = EdgeResult(rho_edge=-math.inf, bulk_edge=-k.mu, residual=f_hi, converged=True, hard_edge=True,
                            set_by_lowest_atom=False, pole_gap=None, bracket=(-math.inf, -math.inf), iterations=0,
                            message="lower edge: hard, alpha P(D > 0) <= 1 (the atom of zero modes at -mu)")
        return result, k.at_rho(-math.exp(MAX_LOG_RHO))
    if lo == hi:  # h already > 0 at t0: walk toward rho = 0
        hi, _, lo, _, found = _bracket_walk(h_of_rho_log, t0, -2.0, -700.0, False)
        if not found:
            return _failed_edge(f"lower edge: no sign change of eq. 2.4 near rho = 0; {k.describe()}"), None
    bracket = tuple(sorted((-math.exp(lo), -math.exp(hi))))
    root = _solve(h_of_rho_log, lo, hi, "lower edge", k)
    if math.isnan(root.t):
        return _failed_edge(root.message, root.iterations, bracket), None
    p = k.at_rho(-math.exp(root.t))
    result = EdgeResult(rho_edge=p.rho, bulk_edge=k.lam(p), residual=k.edge_fn(p), converged=root.converged,
                        hard_edge=False, set_by_lowest_atom=False, pole_gap=None, bracket=bracket,
                        iterations=root.iterations, message=root.message)
    return result, p


def _edge_point(k: _Kernel, edge: EdgeResult) -> _Point:
    if k.has_pole and edge.pole_gap is not None and edge.pole_gap < _SWITCH_GAP:
        return k.at_gap(max(edge.pole_gap, MIN_POLE_GAP))
    if not math.isfinite(edge.rho_edge):
        return k.at_rho(-math.exp(MAX_LOG_RHO))
    return k.at_rho(edge.rho_edge)


def _failed_isolated(message: str, bbp: float = math.nan, iterations: int = 0,
                     bracket: tuple[float, float] | None = None) -> IsolatedResult:
    return IsolatedResult(rho_iso=math.nan, isolated_eigenvalue=math.nan, overlap2=math.nan, residual=math.nan,
                          converged=False, bbp_residual=bbp, bracket=bracket, iterations=iterations,
                          message=message)


def _isolated(k: _Kernel, edge: EdgeResult) -> IsolatedResult:
    """Solve eq. 2.6 in (rho_e, 0); see :func:`isolated_eigenvalue`. Failures (also of
    ``edge``) are returned as values with ``converged`` False."""
    if math.isnan(edge.rho_edge):
        return _failed_isolated(f"isolated eigenvalue: not attempted, {edge.message}")
    p_edge = _edge_point(k, edge)
    bbp = k.spike_fn(p_edge)
    if not bbp > 0:
        return IsolatedResult(rho_iso=None, isolated_eigenvalue=None, overlap2=0.0, residual=0.0, converged=True,
                              bbp_residual=bbp, bracket=None, iterations=0,
                              message="isolated eigenvalue: none (BBP residual <= 0)")
    T_of_rho_log = lambda t: k.spike_fn(k.at_rho(-math.exp(t)))  # noqa: E731
    in_gap_mode = k.has_pole and edge.pole_gap is not None and edge.pole_gap < _SWITCH_GAP
    if in_gap_mode and k.spike_fn(k.at_gap(_SWITCH_GAP)) <= 0:
        # Root between the edge and delta = 1/2: gap coordinate.
        T_of_gap_log = lambda u: k.spike_fn(k.at_gap(math.exp(u)))  # noqa: E731
        u_edge = math.log(max(edge.pole_gap, MIN_POLE_GAP))
        bracket = tuple(sorted((edge.rho_edge, (1 - _SWITCH_GAP) / k.D_min)))
        root = _solve(T_of_gap_log, u_edge, math.log(_SWITCH_GAP), "isolated eigenvalue", k)
        if math.isnan(root.t):
            return _failed_isolated(root.message, bbp, root.iterations, bracket)
        p = k.at_gap(math.exp(root.t))
    else:
        if in_gap_mode:
            t_start = math.log(_SWITCH_GAP / -k.D_min)
        elif math.isfinite(edge.rho_edge):
            t_start = math.log(-edge.rho_edge)
        else:
            t_start = MAX_LOG_RHO
        hi, _, lo, _, found = _bracket_walk(T_of_rho_log, t_start, -2.0, -700.0, False)
        if not found:
            return _failed_isolated(f"isolated eigenvalue: no sign change of eq. 2.6 near rho = 0; {k.describe()}",
                                    bbp)
        bracket = tuple(sorted((-math.exp(hi), -math.exp(lo))))
        root = _solve(T_of_rho_log, lo, hi, "isolated eigenvalue", k)
        if math.isnan(root.t):
            return _failed_isolated(root.message, bbp, root.iterations, bracket)
        p = k.at_rho(-math.exp(root.t))
    return IsolatedResult(rho_iso=p.rho, isolated_eigenvalue=k.lam(p), overlap2=k.overlap2(p),
                          residual=k.spike_fn(p), converged=root.converged, bbp_residual=bbp, bracket=bracket,
                          iterations=root.iterations, message=root.message)


# ============================================================================ public API
def inverse_stieltjes(rho: complex | ArrayLike,
                      measure: Measure | CurvatureLaw) -> float | complex | np.ndarray:
    """Inverse Stieltjes map lambda(rho), docs/theory.md eq. (2.3).

    ``lambda(rho) = 1/rho - mu + alpha E[D / (1 - D rho)]``.

    Parameters
    ----------
    rho : float, complex or array
        Nonzero; for the lower edge the meaningful range is eq. (2.5), 1 - D rho > 0 on
        the support of D.
    measure : Measure or CurvatureLaw

    Returns
    -------
    float or ndarray (complex if rho is)
    """
    law = _as_law(measure)
    rho_arr = np.asarray(rho)
    if np.any(rho_arr == 0):
        raise InputError("inverse_stieltjes needs rho != 0")
    flat = rho_arr.reshape(-1)
    out = np.empty(flat.shape, dtype=np.result_type(flat, np.float64))
    wD = law.weights * law.D
    chunk = max(1, 4_000_000 // law.D.size)
    for i in range(0, flat.size, chunk):
        r = flat[i:i + chunk, None]
        out[i:i + chunk] = 1.0 / flat[i:i + chunk] - law.mu + law.alpha * ((1.0 / (1.0 - law.D[None, :] * r)) @ wD)
    out = out.reshape(rho_arr.shape)
    return out.item() if out.ndim == 0 else out


def bulk_lower_edge(measure: Measure | CurvatureLaw, *, strict: bool = True) -> EdgeResult:
    """Lower edge of the bulk, docs/theory.md eqs. (2.4)-(2.5).

    rho_e is the root of ``lambda'(rho) = 0``, i.e. ``alpha E[(D rho / (1 - D rho))^2] = 1``,
    in the allowed interval ``1/D_min < rho < 0`` (or ``rho < 0`` when D >= 0); the left
    side is monotone there so the root is unique. Without a root the edge is hard,
    rho_e = 1/D_min. The edge eigenvalue is ``lambda(rho_e)`` (eq. 2.3).

    Parameters
    ----------
    measure : Measure or CurvatureLaw
    strict : bool
        Raise on failure (default); False returns the failed result (``converged``
        False, NaN values, ``message`` saying why).

    Raises
    ------
    ConvergenceError
        ``strict`` and the bracketing or brentq failed (message names alpha, mu and the
        range of D; the failed result is attached as ``result``).
    """
    return raise_if_failed(_edge_location(_Kernel(_as_law(measure)))[0], strict)


def bbp_residual(measure: Measure | CurvatureLaw, edge: EdgeResult | None = None) -> float:
    """BBP indicator, docs/theory.md eq. (2.9): ``alpha E[(s^2 - 1) D rho_e / (1 - D rho_e)] - 1``.

    Positive iff an isolated eigenvalue exists below the bulk; zero at the BBP transition.

    Raises
    ------
    ConvergenceError
        The lower edge (computed, or given as ``edge``) did not converge.
    """
    k = _Kernel(_as_law(measure))
    edge = raise_if_failed(edge if edge is not None else _edge_location(k)[0], True)
    return k.spike_fn(_edge_point(k, edge))


def bbp_threshold(alphas: ArrayLike, residuals: ArrayLike) -> float | None:
    """alpha of the BBP transition from BBP residuals (eq. 2.9) computed on a grid of alpha.

    The first crossing from residual <= 0 to > 0 in increasing alpha, by linear
    interpolation; None when there is none on the grid (non-finite residuals are skipped as
    crossing ends). Used for alpha_BBP(t) (docs/theory.md eqs. 4.4, 5.26).
    """
    pairs = sorted(zip(np.asarray(alphas, float), np.asarray(residuals, float)))
    for (a0, r0), (a1, r1) in zip(pairs, pairs[1:]):
        if np.isfinite(r0) and np.isfinite(r1) and r0 <= 0 < r1:
            return float(a0 + (a1 - a0) * (0.0 - r0) / (r1 - r0))
    return None


def isolated_eigenvalue(measure: Measure | CurvatureLaw, edge: EdgeResult | None = None, *,
                        strict: bool = True) -> IsolatedResult:
    """Isolated eigenvalue toward e, docs/theory.md eqs. (2.6)-(2.8).

    rho* in (rho_e, 0) solves ``1/rho* = alpha E[D (s^2 - 1) / (1 - D rho*)]`` (eq. 2.6,
    unique root); ``lambda_iso = lambda(rho*)`` (eq. 2.7) and the squared overlap of its
    eigenvector with e is eq. (2.8). Below the BBP transition (``bbp_residual <= 0``)
    there is no root: ``rho_iso`` and ``isolated_eigenvalue`` are None and ``overlap2``
    is 0.0.

    Parameters
    ----------
    measure : Measure or CurvatureLaw
    edge : EdgeResult, optional
        The lower edge of the same law (computed when omitted).
    strict : bool
        Raise on failure (default); False returns the failed result (NaN values).

    Raises
    ------
    ConvergenceError
        ``strict`` and the edge or the spike search failed (message names alpha, mu and
        the range of D; the failed result is attached as ``result``).
    """
    k = _Kernel(_as_law(measure))
    edge = edge if edge is not None else _edge_location(k)[0]
    return raise_if_failed(_isolated(k, edge), strict)


def eigenvector_overlap2(rho: float, measure: Measure | CurvatureLaw) -> float:
    """Squared overlap with e of the eigenvector at rho, docs/theory.md eq. (2.8).

    ``|lambda'(rho)| / (|lambda'(rho)| + alpha E[D^2 s^2 / (1 - D rho)^2])``, meaningful at
    the root rho* of eq. (2.6).
    """
    if not (isinstance(rho, (int, float, np.floating)) and math.isfinite(rho) and rho != 0):
        raise InputError(f"rho must be a finite nonzero real number, got {rho!r}")
    k = _Kernel(_as_law(measure))
    return k.overlap2(k.at_rho(float(rho)))


def _solved_residual(edge: EdgeResult, iso: IsolatedResult) -> float:
    """Largest |residual| of the equations solved by a root search (eq. 2.4 at a soft
    edge, eq. 2.6 when a spike exists); 0.0 when none was; NaN after a failure."""
    if not (edge.converged and iso.converged):
        return math.nan
    solved = ([abs(edge.residual)] if not edge.hard_edge else []) + \
        ([abs(iso.residual)] if iso.rho_iso is not None else [])
    return float(max(solved, default=0.0))


def spectrum_summary(measure: Measure | CurvatureLaw, *, strict: bool = True) -> SpectrumSummary:
    """Lower edge, isolated eigenvalue and its overlap with e (docs/theory.md §2).

    Parameters
    ----------
    measure : Measure or CurvatureLaw
    strict : bool
        Raise on failure (default); False returns the failed summary (``converged``
        False, NaN values, ``message`` naming the search that failed).

    Raises
    ------
    ConvergenceError
        ``strict`` and the edge or the spike search failed (the summary attached).
    """
    k = _Kernel(_as_law(measure))
    edge, _ = _edge_location(k)
    iso = _isolated(k, edge)
    converged = edge.converged and iso.converged
    summary = SpectrumSummary(alpha=k.alpha, mu=k.mu, bulk_edge=edge.bulk_edge,
                              isolated_eigenvalue=iso.isolated_eigenvalue, overlap2=iso.overlap2,
                              rho_edge=edge.rho_edge, rho_iso=iso.rho_iso,
                              converged=converged, hard_edge=edge.hard_edge,
                              set_by_lowest_atom=edge.set_by_lowest_atom,
                              residuals=Residuals(edge=edge.residual, isolated=iso.residual, bbp=iso.bbp_residual),
                              iterations=edge.iterations + iso.iterations, residual=_solved_residual(edge, iso),
                              message=iso.message if math.isnan(edge.rho_edge) else f"{edge.message}; {iso.message}")
    return raise_if_failed(summary, strict)


# ---------------------------------------------------------------------------- Stieltjes
def _coarse_grain(D: np.ndarray, w: np.ndarray, max_atoms: int | None):
    """Merge atoms of equal D; if more than ``max_atoms`` remain, keep the 256 lowest and
    highest atoms and merge the others into equal-weight bins at their mean D."""
    order = np.argsort(D, kind="stable")
    D, w = D[order], w[order]
    uniq, start = np.unique(D, return_index=True)
    if uniq.size < D.size:
        w = np.add.reduceat(w, start)
        D = uniq
    if max_atoms is None or D.size <= max_atoms:
        return D, w, False
    keep = 256
    mid_D, mid_w = D[keep:-keep], w[keep:-keep]
    n_bins = max_atoms - 2 * keep
    edges = np.searchsorted(np.cumsum(mid_w), np.linspace(0, mid_w.sum(), n_bins + 1)[1:-1])
    starts = np.unique(np.concatenate([[0], edges]))
    wb = np.add.reduceat(mid_w, starts)
    Db = np.add.reduceat(mid_w * mid_D, starts) / wb
    return np.concatenate([D[:keep], Db, D[-keep:]]), np.concatenate([w[:keep], wb, w[-keep:]]), True


def _resolvent_terms(g: np.ndarray, D: np.ndarray, wD: np.ndarray, wD2: np.ndarray):
    """E[D/(1 - D g)] and E[D^2/(1 - D g)^2] for each g (chunked over g)."""
    e1 = np.empty_like(g)
    e2 = np.empty_like(g)
    chunk = max(1, 2_000_000 // D.size)
    for i in range(0, g.size, chunk):
        u = 1.0 / (1.0 - D[None, :] * g[i:i + chunk, None])
        e1[i:i + chunk] = u @ wD
        u *= u
        e2[i:i + chunk] = u @ wD2
    return e1, e2


def _solve_stieltjes_upper(z, D, w, alpha, mu, tol, max_iter):
    """Solve eq. 2.1 for Im z > 0 by damped Newton along a ladder of eta (continuation
    from large Im z, where g ~ 1/z), with a fixed-point fallback that keeps Im g < 0."""
    wD, wD2 = w * D, w * D * D
    mean_D = float(np.sum(wD))
    scale = 1.0 + abs(mu) + (1.0 + alpha) * float(np.max(np.abs(D)))
    x, eta = z.real, z.imag
    eta0 = np.maximum(eta, 4.0 * scale)
    g = 1.0 / (x + 1j * eta0 + mu - alpha * mean_D)
    n_levels = int(np.ceil(np.log(np.max(eta0 / eta)) / np.log(4.0))) + 1
    iterations = 0

    def residual_and_step(gv, zv):
        e1, e2 = _resolvent_terms(gv, D, wD, wD2)
        F = 1.0 / gv - (zv + mu) + alpha * e1
        dF = -1.0 / gv**2 + alpha * e2
        return F, dF, np.abs(F * gv), e1

    for level in range(n_levels + 1):
        zl = x + 1j * np.maximum(eta, eta0 * 0.25 ** level)
        final = level == n_levels
        F, dF, res, e1 = residual_and_step(g, zl)
        steps = max_iter if final else 6
        for _ in range(steps):
            active = res > (tol if final else 1e-6)
            if not active.any():
                break
            iterations += 1
            ga, za = g[active], zl[active]
            newton = ga - F[active] / dF[active]
            fixed = 1.0 / (za + mu - alpha * e1[active])
            ok = np.isfinite(newton) & (newton.imag <= 0)
            cand = np.where(ok, newton, fixed)
            Fc, dFc, rc, e1c = residual_and_step(cand, za)
            worse = ~(rc < res[active]) & ok
            if worse.any():  # Newton overshot: take the contracting fixed-point step instead
                fc = fixed[worse]
                Ff, dFf, rf, e1f = residual_and_step(fc, za[worse])
                cand[worse], Fc[worse], dFc[worse], rc[worse], e1c[worse] = fc, Ff, dFf, rf, e1f
            g[active], F[active], dF[active], res[active], e1[active] = cand, Fc, dFc, rc, e1c
    return g, res, res <= tol, iterations


def stieltjes(z: complex | ArrayLike, measure: Measure | CurvatureLaw, *, tol: float = 1e-10, max_iter: int = 400, max_atoms: int | None = None,
              strict: bool = True) -> StieltjesResult:
    """Limiting Stieltjes transform g(z) = lim (1/N) tr (z - H)^(-1), docs/theory.md eq. (2.1).

    Solves ``z = 1/g - mu + alpha E[D / (1 - D g)]`` on the physical branch
    (Im g < 0 for Im z > 0; g(conj z) = conj g(z)), vectorised over z.

    Parameters
    ----------
    z : complex or array
        Points off the real axis (Im z != 0).
    measure : Measure or CurvatureLaw
    tol : float
        Target for ``|g F(g)|``, F the equation above.
    max_iter : int
        Newton/fixed-point iterations at the final eta.
    max_atoms : int or None
        If set and the law has more distinct values of D, coarse-grain it (see
        :func:`bulk_density`); None = exact.
    strict : bool
        Raise :class:`ConvergenceError` (the result attached) if any point fails to
        converge; False returns the result, ``converged`` marking the points that did.
    """
    law = _as_law(measure)
    z = np.asarray(z, dtype=np.complex128)
    shape = z.shape
    z = z.reshape(-1)
    if not np.isfinite(z).all():
        raise InputError("stieltjes needs finite z")
    if np.any(z.imag == 0):
        raise InputError("stieltjes needs Im z != 0; use bulk_density on the real axis")
    keep = law.weights > 0
    D, w, coarse = _coarse_grain(law.D[keep], law.weights[keep], max_atoms)
    lower = z.imag < 0
    zu = np.where(lower, np.conj(z), z)
    g, res, conv, its = _solve_stieltjes_upper(zu, D, w, law.alpha, law.mu, tol, max_iter)
    g = np.where(lower, np.conj(g), g)
    if conv.all():
        message = (f"stieltjes: {z.size} points converged in {its} iterations "
                   f"(largest residual {float(res.max(initial=0.0)):.3g} <= {tol:g})")
    else:
        bad = int(np.argmax(~conv))
        message = (f"stieltjes: {int((~conv).sum())} of {z.size} points did not converge "
                   f"(first z={z[bad]:.6g}, residual {res[bad]:.3g}); alpha={law.alpha:g}, mu={law.mu:g}")
    result = StieltjesResult(z=z.reshape(shape), g=g.reshape(shape), residual=res.reshape(shape),
                             converged=conv.reshape(shape), iterations=its, message=message)
    if strict and not conv.all():
        raise ConvergenceError(message, result)
    return result


def bulk_density(x: ArrayLike, measure: Measure | CurvatureLaw, *, eta: float = 1e-9, max_atoms: int | None = 20000, tol: float = 1e-10,
                 strict: bool = True) -> DensityResult:
    """Bulk eigenvalue density rho(x) = -Im g(x + i eta) / pi, docs/theory.md eq. (2.10).

    Parameters
    ----------
    x : array
        Real points.
    measure : Measure or CurvatureLaw
    eta : float
        Small imaginary part, in units of the spectral scale 1 + |mu| + (1 + alpha) max|D|.
    max_atoms : int or None
        Laws with more distinct D values are coarse-grained (the 256 lowest and highest
        atoms kept, the rest merged into equal-weight bins at their mean D; error second
        order in the bin width). None = exact (cost grows like len(x) * atoms).
    tol : float
        Target residual of eq. 2.1 (see :func:`stieltjes`).
    strict : bool
        Raise :class:`ConvergenceError` (the density attached) if any point fails to
        converge; False returns the density with ``converged`` per point.
    """
    law = _as_law(measure)
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise InputError("bulk_density needs finite x")
    scale = 1.0 + abs(law.mu) + (1.0 + law.alpha) * float(np.max(np.abs(law.D)))
    res = stieltjes(x + 1j * eta * scale, law, tol=tol, max_atoms=max_atoms, strict=False)
    keep = law.weights > 0
    coarse = max_atoms is not None and np.unique(law.D[keep]).size > max_atoms
    density = np.maximum(-res.g.imag / np.pi, 0.0)
    result = DensityResult(x=x, density=density, eta=eta * scale, residual=res.residual, converged=res.converged,
                           coarse_grained=coarse, iterations=res.iterations, message=res.message)
    if strict and not res.converged.all():
        raise ConvergenceError(res.message, result)
    return result


def spectrum_support_bounds(measure: Measure | CurvatureLaw) -> tuple[float, float]:
    """Crude bounds containing the limiting spectrum: -mu + min(D_min, 0) (1 + sqrt(alpha))^2
    and -mu + max(D_max, 0) (1 + sqrt(alpha))^2 (norm bound of the Wishart part)."""
    law = _as_law(measure)
    keep = law.weights > 0
    factor = (1.0 + math.sqrt(law.alpha)) ** 2
    return (-law.mu + min(float(law.D[keep].min()), 0.0) * factor,
            -law.mu + max(float(law.D[keep].max()), 0.0) * factor)
