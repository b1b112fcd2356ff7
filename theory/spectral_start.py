"""Spectral starts: the top eigenvector of (1/M) sum_m T(y_m) a_m a_m^T (docs/theory.md §6).

What practitioners run on this loss is Wirtinger flow: a spectral initialisation followed
by gradient descent. The spectral estimator with preprocessing T is the top eigenvector of

    S = (1/M) sum_m T(y_m) a_m a_m^T,    a_m = sqrt(N) x_m ~ N(0, I_N),          (eq. 6.1)

and S = -H for the matrix H of the random-matrix core (docs/theory.md §2.1) with the law

    D = -T(y) / alpha,   s = y,   mu = 0                                         (eq. 6.2)

(``H = (1/N) sum D a a^T = -(1/(alpha N)) sum T a a^T = -S``). The top eigenvalue of S is
minus the lowest eigenvalue of H, the top of the bulk of S is minus the bulk lower edge,
and the squared overlap of the top eigenvector with the signal is eq. 2.8 at the root
of eq. 2.6. The law of y ~ N(0, 1) is a composite Gauss-Legendre quadrature (panels split
at the kinks, jumps and poles of T found by sympy), so a truncation such as Chen-Candes'
converges exponentially rather than through a jump.

Preprocessings are given by name (:data:`PREPROCESSINGS`) or by a formula in ``y`` (and
optionally ``alpha``), parsed with sympy as :func:`theory.loss.make_loss` does. A T that
is unbounded above (``plain``, T = y^2) has no N -> infinity spike (docs/theory.md §6.4, eq. 6.8); pass the
number of measurements ``m`` to get the finite-M cutoff law (labels cut at the typical
largest |y|, eq. 4.1).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import sympy as sp
from numpy.polynomial.legendre import leggauss
from scipy.optimize import brentq


from .errors import ConvergenceError, InputError, raise_if_failed
from .finite_m import label_cutoff
from .io import json_ready
from .measure import CurvatureLaw
from .spectrum import (
    bbp_residual,
    bbp_threshold,
    bulk_lower_edge,
    eigenvector_overlap2,
    isolated_eigenvalue,
)

__all__ = [
    "DEFAULT_PREPROCESSING",
    "LAL_CLIP",
    "PREPROCESSINGS",
    "TRIM_TAU",
    "Preprocessing",
    "SpectralPrediction",
    "WeakRecoveryThreshold",
    "get_preprocessing",
    "label_cutoff",
    "overlap2",
    "spectral_law",
    "spectral_prediction",
    "weak_recovery_threshold",
]

Y_SYM, ALPHA_SYM = sp.symbols("y alpha", real=True)

#: Chen & Candes (2015, "Solving random quadratic systems of equations is nearly as easy as
#: solving linear systems", arXiv:1505.05114, Algorithm 1): keep y^2 <= alpha_y^2 lambda_0^2,
#: lambda_0^2 the mean of y^2, with alpha_y = 3 (also PhasePack's initSpectral default).
TRIM_TAU = 3.0
#: Lower clip of the Luo-Alghamdi-Lu preprocessing 1 - 1/y^2 (unbounded below at y = 0).
#: Without a clip the spectrum of S reaches down to ~ -1/min y^2 ~ -M^2 and Lanczos needs
#: thousands of products; with -10, ~10^2 at N = 2000. The theory uses the same clip; its
#: cost in overlap^2 against the unclipped T is 5e-4, 4e-3, 0.019, 0.020 at alpha = 0.8,
#: 1.5, 3, 6 (docs/theory.md §6.3); 'Max(1 - 1/y**2, -100)' costs < 2e-3 at 2.5x the products.
LAL_CLIP = 10.0
#: Half-width of the quadrature in y (phi(12) ~ 5e-32).
Y_MAX = 12.0
_PANEL = 0.5
_NODES = 24


#: the preprocessing of a spectral start when none is named (``run --init spectral``, the sweep)
DEFAULT_PREPROCESSING = "mondelli-montanari"


@dataclass(frozen=True)
class Preprocessing:
    """A preprocessing T(y) (possibly depending on alpha), compiled from a sympy formula.

    Attributes
    ----------
    name : str
        Registry name or the formula text.
    expr : sympy.Expr
        T in the symbols ``y`` and ``alpha``.
    description : str
        One line: what it is and where it comes from.
    """

    name: str
    expr: sp.Expr
    description: str = ""

    def __call__(self, y, alpha: float) -> np.ndarray:
        """T(y) at sample ratio ``alpha`` (float64 array shaped like ``y``)."""
        y = np.asarray(y, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(self._compiled(y, float(alpha)), dtype=np.float64)
        return np.broadcast_to(out, y.shape).copy()

    @property
    def _compiled(self) -> Callable:
        f = self.__dict__.get("_f")
        if f is None:
            f = sp.lambdify((Y_SYM, ALPHA_SYM), self.expr, modules="numpy")
            object.__setattr__(self, "_f", f)
        return f

    def bounded_above(self, alpha: float) -> bool:
        """Whether sup_y T(y) is finite, judged numerically: T at |y| = 1e3 and 1e6 must be
        finite and agree to 1% (y^2 or log(1 + y^2) fail, a bounded or saturating T passes)."""
        t3, t6 = (self(np.array([v, -v]), alpha) for v in (1e3, 1e6))
        if not (np.isfinite(t3).all() and np.isfinite(t6).all()):
            return bool(np.all(np.nan_to_num(t6, nan=0.0, posinf=np.inf, neginf=0.0) < np.inf))
        return bool(np.all((t6 <= t3) | (np.abs(t6 - t3) <= 1e-2 * (1.0 + np.abs(t3)))))

    @property
    def _breakpoint_roots(self) -> list:
        roots = self.__dict__.get("_roots")
        if roots is None:
            roots = _breakpoint_roots(self.expr)
            object.__setattr__(self, "_roots", roots)
        return roots

    def breakpoints(self, alpha: float) -> list[float]:
        """Real points in (-Y_MAX, Y_MAX) where T may jump, kink or blow up, plus 0.

        Candidates are the zeros in y (sympy) of the denominator of T and of the arguments
        of Heaviside, sign, Abs, Max/Min (pairwise differences) and Piecewise conditions.
        """
        points = {0.0}
        for r in self._breakpoint_roots:
            try:
                z = complex(sp.N(r.subs(ALPHA_SYM, alpha)))
            except (TypeError, ValueError):
                continue
            if abs(z.imag) < 1e-12 and abs(z.real) < Y_MAX:
                points.add(float(z.real))
        return sorted(points)


def _breakpoint_roots(expr: sp.Expr) -> list:
    """Zeros in y (as sympy expressions in alpha) of the terms where T may be non-smooth."""
    candidates = [sp.denom(sp.together(expr))]
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Heaviside, sp.sign, sp.Abs)):
            candidates.append(node.args[0])
        elif isinstance(node, (sp.Max, sp.Min)):
            a = node.args
            candidates.extend(a[i] - a[j] for i in range(len(a)) for j in range(i + 1, len(a)))
        elif isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sp.core.relational.Relational):
                    candidates.append(cond.lhs - cond.rhs)
    roots = []
    y_any = sp.Symbol("y_any")  # solve without the real assumption, filter numerically later
    for c in candidates:
        if not c.has(Y_SYM):
            continue
        try:
            roots.extend(sp.solve(c.subs(Y_SYM, y_any), y_any))
        except Exception:  # noqa: BLE001 - unsolvable term: no breakpoint from it
            continue
    return roots


def _parse_formula(text: str) -> sp.Expr:
    try:
        expr = sp.sympify(text, locals={"y": Y_SYM, "alpha": ALPHA_SYM})
    except (sp.SympifyError, SyntaxError, TypeError, AttributeError, ValueError):
        raise InputError(f"cannot parse preprocessing formula {text!r} (not a sympy expression in y)") from None
    if not isinstance(expr, sp.Expr):
        raise InputError(f"preprocessing formula {text!r} is not an expression in y")
    unknown = expr.free_symbols - {Y_SYM, ALPHA_SYM}
    if unknown:
        raise InputError(f"preprocessing formula may only use y and alpha, found {sorted(map(str, unknown))}")
    return expr


def _mondelli_montanari(d) -> sp.Expr:
    return (Y_SYM**2 - 1) / (Y_SYM**2 + sp.sqrt(2 * d) - 1)


#: Named preprocessings (y is the signed label, y^2 the intensity; E y^2 = 1, docs §1).
PREPROCESSINGS: dict[str, Preprocessing] = {
    "plain": Preprocessing("plain", Y_SYM**2, "T = y^2 (Candes, Li & Soltanolkotabi 2015, Wirtinger flow)"),
    "trimmed": Preprocessing(
        "trimmed", Y_SYM**2 * sp.Heaviside(TRIM_TAU**2 - Y_SYM**2, 0),
        f"T = y^2 1{{y^2 <= tau^2 E y^2}}, tau = {TRIM_TAU:g} (Chen & Candes 2015, arXiv:1505.05114, Alg. 1)"),
    "mondelli-montanari": Preprocessing(
        "mondelli-montanari", _mondelli_montanari(ALPHA_SYM),
        "T_d = (y^2 - 1)/(y^2 + sqrt(2 d) - 1), d = alpha (Mondelli & Montanari 2019, arXiv:1708.05932, real "
        "case; alpha_w = 1/2 in closed form, docs/theory.md eq. 6.7); "
        "'mondelli-montanari:D' fixes d = D > 1/2"),
    "luo-alghamdi-lu": Preprocessing(
        "luo-alghamdi-lu", sp.Max(1 - 1 / Y_SYM**2, -LAL_CLIP),
        f"T = max(1 - 1/y^2, -{LAL_CLIP:g}) (Luo, Alghamdi & Lu 2019, arXiv:1811.04420; clipped below)"),
}


def get_preprocessing(spec: str | Preprocessing) -> Preprocessing:
    """A :class:`Preprocessing` from a registry name, ``mondelli-montanari:D``, or a formula.

    Raises
    ------
    InputError
        Unknown name, unparsable formula, symbols other than y and alpha, or d <= 1/2.
    """
    if isinstance(spec, Preprocessing):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"preprocessing must be a name or a formula in y, got {spec!r}")
    spec = spec.strip()
    if spec in PREPROCESSINGS:
        return PREPROCESSINGS[spec]
    if spec.startswith("mondelli-montanari:"):
        try:
            d = float(spec.split(":", 1)[1])
        except ValueError:
            raise InputError(f"mondelli-montanari:D needs a number D, got {spec!r}") from None
        if not (math.isfinite(d) and d > 0.5):
            raise InputError(f"mondelli-montanari:D needs D > 1/2 (else T has a pole at real y), got {d:g}")
        return Preprocessing(spec, _mondelli_montanari(sp.Float(d)), f"Mondelli-Montanari T_d at d = {d:g}")
    if spec.replace("-", "").replace("_", "").isalpha() and spec not in ("y",):
        raise InputError(f"unknown preprocessing {spec!r}; known: {', '.join(PREPROCESSINGS)} or a formula in y")
    expr = _parse_formula(spec)
    if not expr.has(Y_SYM):
        raise InputError(f"preprocessing formula {spec!r} does not depend on y")
    return Preprocessing(spec, expr, "formula")


def _y_quadrature(breaks: list[float], y_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes/weights for y ~ N(0, 1) restricted to [-y_max, y_max]."""
    edges = sorted({-y_max, y_max, *(b for b in breaks if -y_max < b < y_max)})
    x, w = leggauss(_NODES)
    ys, ws = [], []
    for a, b in itertools.pairwise(edges):
        k = max(1, math.ceil((b - a) / _PANEL))
        cuts = np.linspace(a, b, k + 1)
        for lo, hi in itertools.pairwise(cuts):
            half = 0.5 * (hi - lo)
            ys.append(lo + half * (x + 1.0))
            ws.append(half * w)
    y = np.concatenate(ys)
    wt = np.concatenate(ws) * np.exp(-0.5 * np.concatenate(ys) ** 2)
    return y, wt / wt.sum()


def _check_alpha(alpha) -> float:
    if not (isinstance(alpha, (int, float, np.floating, np.integer)) and math.isfinite(alpha) and alpha > 0):
        raise InputError(f"alpha must be a positive number, got {alpha!r}")
    return float(alpha)


def spectral_law(preprocess: str | Preprocessing, alpha: float, m: int | None = None) -> CurvatureLaw:
    """The law (D, s) = (-T(y)/alpha, y), mu = 0 of the spectral matrix, docs/theory.md eq. (6.2).

    y ~ N(0, 1) on a composite Gauss-Legendre rule over |y| <= 12 (or, with ``m``, over
    |y| <= y_c(m), eq. 4.1: the finite-M cutoff law), split at the breakpoints of T.
    """
    pre = get_preprocessing(preprocess)
    alpha = _check_alpha(alpha)
    y_max = Y_MAX if m is None else min(Y_MAX, label_cutoff(m))
    y, w = _y_quadrature(pre.breakpoints(alpha), y_max)
    T = pre(y, alpha)
    bad = ~np.isfinite(T)
    if bad.any():
        raise InputError(f"preprocessing {pre.name!r} is not finite at y = {y[bad][0]:.6g} (alpha = {alpha:g})")
    return CurvatureLaw(D=-T / alpha, s=y, weights=w, alpha=alpha, mu=0.0)


@dataclass(frozen=True)
class SpectralPrediction:
    """Top of the spectrum of S (eq. 6.1) and the overlap of its top eigenvector (eqs. 6.3-6.5).

    Attributes
    ----------
    preprocess : str
    alpha : float
    m : int or None
        Number of measurements of the finite-M cutoff law (None: N -> infinity).
    top_eigenvalue : float or None
        Isolated top eigenvalue of S, -lambda_iso of the core; None when there is none.
    bulk_edge : float or None
        Top of the bulk of S, -(bulk lower edge of the core); None when T is unbounded
        above and ``m`` is None (the bulk then has no top as N -> infinity).
    overlap2 : float
        Squared overlap of the top eigenvector with the signal, <v, e>^2 (eq. 2.8); 0.0
        without an isolated eigenvalue.
    bbp_residual : float or None
        Eq. 2.9: > 0 iff the isolated eigenvalue exists.
    rho_edge, rho_iso : float or None
        Core variables; the Mondelli-Montanari variable is lambda = -alpha / rho (§6.2).
    set_by_lowest_atom : bool
        The core's flag (§2.3): the edge exists because of the largest T atom (a hard edge).
    converged : bool
    iterations : int
        brentq iterations of the isolated-eigenvalue search.
    residual : float
        Residual of eq. 2.6 at the root (0.0 without root).
    message : str
    """

    preprocess: str
    alpha: float
    m: int | None
    top_eigenvalue: float | None
    bulk_edge: float | None
    overlap2: float
    bbp_residual: float | None
    rho_edge: float | None
    rho_iso: float | None
    set_by_lowest_atom: bool
    converged: bool
    iterations: int
    residual: float
    message: str

    def to_dict(self) -> dict:
        return json_ready(asdict(self))


def spectral_prediction(preprocess: str | Preprocessing, alpha: float, m: int | None = None, *,
                        strict: bool = True) -> SpectralPrediction:
    """Top eigenvalue, bulk edge and overlap^2 of the spectral estimator, docs/theory.md §6.

    Parameters
    ----------
    preprocess : str or Preprocessing
        Name in :data:`PREPROCESSINGS`, ``mondelli-montanari:D`` or a formula in y (and alpha).
    alpha : float
        M / N > 0.
    m : int, optional
        Number of measurements: use the finite-M cutoff law (eq. 4.1). Required for a
        prediction at finite M when T is unbounded above (§6.4).
    strict : bool
        Raise :class:`ConvergenceError` when the core's root search fails; otherwise return
        the failed result (converged False, NaN fields) as a value.
    """
    pre = get_preprocessing(preprocess)
    alpha = _check_alpha(alpha)
    if m is None and not pre.bounded_above(alpha):
        return SpectralPrediction(pre.name, alpha, None, None, None, 0.0, None, None, None, True, True, 0, 0.0,
                                  "T is unbounded above: as M -> infinity at fixed alpha the top of the spectrum is "
                                  "set by the largest labels and the overlap vanishes (docs/theory.md §6.4); "
                                  "pass m for the finite-M cutoff law")
    law = spectral_law(pre, alpha, m)
    try:
        edge = bulk_lower_edge(law)
        iso = isolated_eigenvalue(law, edge)
    except ConvergenceError as exc:
        failed = SpectralPrediction(pre.name, alpha, m, None, None, float("nan"), None, None, None, False, False, 0,
                                    float("nan"), str(exc))
        return raise_if_failed(failed, strict)
    lam_iso = iso.isolated_eigenvalue
    message = ("isolated top eigenvalue (above the BBP transition)" if lam_iso is not None
               else "no isolated top eigenvalue (below the BBP transition): overlap 0 as N -> infinity")
    return SpectralPrediction(
        preprocess=pre.name, alpha=alpha, m=m,
        top_eigenvalue=None if lam_iso is None else -float(lam_iso),
        bulk_edge=-float(edge.bulk_edge), overlap2=float(iso.overlap2), bbp_residual=float(iso.bbp_residual),
        rho_edge=float(edge.rho_edge), rho_iso=iso.rho_iso, set_by_lowest_atom=bool(edge.set_by_lowest_atom),
        converged=bool(edge.converged and iso.converged), iterations=int(iso.iterations),
        residual=float(iso.residual), message=message)


def overlap2(preprocess: str | Preprocessing, alpha: float, m: int | None = None) -> float:
    """Squared overlap of the spectral estimator with the signal (eq. 2.8 on the law 6.2).

    Evaluated through :func:`theory.spectrum.eigenvector_overlap2` at the root rho* of
    eq. 2.6; 0.0 below the BBP transition (and for T unbounded above without ``m``).
    """
    pred = spectral_prediction(preprocess, alpha, m)
    if pred.rho_iso is None:
        return 0.0
    return float(eigenvector_overlap2(pred.rho_iso, spectral_law(preprocess, alpha, m)))


@dataclass(frozen=True)
class WeakRecoveryThreshold:
    """alpha_w(T): the sample ratio where the isolated top eigenvalue appears (§6.5).

    Attributes
    ----------
    preprocess : str
    alpha_w : float or None
        Root of the BBP residual (eq. 2.9) in alpha; None when none was found.
    n : float or None
        Dimension N held fixed along the search when a finite-M law was asked for
        (M = alpha N); None for N -> infinity.
    bracket : tuple of float or None
    converged : bool
    iterations : int
    residual : float
        BBP residual at alpha_w.
    message : str
    """

    preprocess: str
    alpha_w: float | None
    n: float | None
    bracket: tuple[float, float] | None
    converged: bool
    iterations: int
    residual: float
    message: str

    def to_dict(self) -> dict:
        return json_ready(asdict(self))


def weak_recovery_threshold(preprocess: str | Preprocessing, *, n: float | None = None,
                            alpha_range: tuple[float, float] = (0.05, 200.0), grid: int = 48,
                            xtol: float = 1e-12, strict: bool = True) -> WeakRecoveryThreshold:
    """alpha_w(T), docs/theory.md §6.5: the first alpha where eq. 2.9 turns positive.

    The BBP residual of the law (6.2) is evaluated on a geometric grid of alpha;
    :func:`theory.spectrum.bbp_threshold` locates the first crossing and brentq refines it.
    With ``n`` the finite-M cutoff law at M = round(alpha n) is used at each alpha.

    Parameters
    ----------
    strict : bool
        Raise :class:`ConvergenceError` when no crossing is found or brentq fails;
        otherwise return the failed result as a value.
    """
    pre = get_preprocessing(preprocess)
    lo, hi = (float(a) for a in alpha_range)
    if not (0 < lo < hi and math.isfinite(hi)):
        raise InputError(f"alpha_range must satisfy 0 < lo < hi, got {alpha_range!r}")
    if n is not None and not (math.isfinite(n) and n >= 2):
        raise InputError(f"n must be a number >= 2, got {n!r}")
    if n is None and not pre.bounded_above(1.0):
        return raise_if_failed(WeakRecoveryThreshold(
            pre.name, None, None, None, False, 0, float("nan"),
            "T is unbounded above: no isolated top eigenvalue as N -> infinity at any fixed alpha "
            "(alpha_w = infinity, docs/theory.md §6.4); pass n for a finite-N threshold"), strict)

    def residual(alpha: float) -> float:
        m = None if n is None else max(2, round(alpha * n))
        law = spectral_law(pre, alpha, m)
        try:
            return float(bbp_residual(law))
        except ConvergenceError:
            return float("nan")

    alphas = np.geomspace(lo, hi, grid)
    values = np.array([residual(a) for a in alphas])
    crossing = bbp_threshold(alphas, values)
    if crossing is None:
        return raise_if_failed(WeakRecoveryThreshold(
            pre.name, None, n, None, False, 0, float("nan"),
            f"no sign change of the BBP residual (eq. 2.9) for alpha in [{lo:g}, {hi:g}]"), strict)
    i = int(np.searchsorted(alphas, crossing))
    a0, a1 = float(alphas[max(i - 1, 0)]), float(alphas[min(i, grid - 1)])
    try:
        root, info = brentq(residual, a0, a1, xtol=xtol, rtol=4 * np.finfo(float).eps, maxiter=200,
                            full_output=True, disp=False)
    except (ValueError, RuntimeError) as exc:
        return raise_if_failed(WeakRecoveryThreshold(pre.name, crossing, n, (a0, a1), False, 0, float("nan"),
                                                     f"brentq failed on [{a0:g}, {a1:g}]: {exc}"), strict)
    res = residual(root)
    return raise_if_failed(WeakRecoveryThreshold(
        pre.name, float(root), n, (a0, a1), bool(info.converged), int(info.iterations), res,
        "converged" if info.converged else f"brentq stopped after {info.iterations} iterations"), strict)
