"""The per-measurement loss and its derivatives, derived once with sympy.

Conventions (docs/theory.md §1):

    L(W) = 1/2 sum_m l(yhat_m, y_m) = sum_m V(yhat_m, y_m),   V = l / 2,

and every derivative below is taken with respect to the prediction ``yhat``.
The default is the quartic loss of both papers, l = (yhat^2 - y^2)^2, for which

    V'(yhat)  = 2 yhat (yhat^2 - y^2),
    V''(yhat) = 6 yhat^2 - 2 y^2.

Another loss is plugged in by its formula: ``make_loss("name", "sympy expr in yhat, y")``;
the simulator and the random-matrix core both read ``V``, ``dV`` and ``d2V`` from here
and nowhere else.

Two proximal maps of V are what the threshold states (docs/theory.md §3) and the DMFT
(§5) need beyond the derivatives::

    prox(z, y, tau)              = argmin_u [ (u - z)^2 / (2 tau) + V(u, y) ]   (eq. 3.1)
    prox_step(r, y, tau, h_prev) = the stable root of h + tau V'(h, y) = r nearest
                                   to h_prev (the backward-Euler step, eq. 5.14)

They exist in closed form for the quartic loss (a cubic); a loss built from a formula
has none, and :meth:`Loss.require_prox` says so in one line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike

from .errors import InputError

YHAT, Y = sp.symbols("yhat y", real=True)

__all__ = ["Loss", "make_loss", "get_loss", "LOSSES", "QUARTIC", "YHAT", "Y", "quartic_prox",
           "quartic_prox_step"]


def _compile(expr: sp.Expr) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Compile ``expr(yhat, y)`` to a numpy function that broadcasts like its inputs."""
    f = sp.lambdify((YHAT, Y), expr, modules="numpy")
    if expr.free_symbols:
        return f

    def constant(yhat, y, _c=float(expr)):  # sympy returns a bare scalar for constants
        yhat = np.asarray(yhat)
        return np.full(np.broadcast(yhat, y).shape, _c, dtype=np.result_type(yhat, np.float32))

    return constant


@dataclass(frozen=True)
class Loss:
    """A loss l(yhat, y) with V = l/2 and its first three yhat-derivatives, numpy-compiled.

    Attributes
    ----------
    name : str
        Registry name (``"quartic"`` for the papers' loss).
    l_expr : sympy.Expr
        The formula of l in the symbols ``yhat`` and ``y``.
    V, dV, d2V, d3V : callable
        ``f(yhat, y) -> ndarray``: V = l/2 and dV/dyhat, d2V/dyhat2, d3V/dyhat3.
    prox : callable or None
        ``prox(z, y, tau)``: global minimiser of (u - z)^2 / (2 tau) + V(u, y) for z >= 0
        (odd in z for losses even in yhat), eq. 3.1; None when no closed form is known.
    prox_step : callable or None
        ``prox_step(r, y, tau, h_prev)``: the stable root of h + tau V'(h, y) = r nearest to
        h_prev (the continuation of the flow), eq. 5.14; None when no closed form is known.
    """

    name: str
    l_expr: sp.Expr
    V: Callable = field(repr=False)
    dV: Callable = field(repr=False)
    d2V: Callable = field(repr=False)
    d3V: Callable = field(repr=False)
    prox: Callable | None = field(default=None, repr=False)
    prox_step: Callable | None = field(default=None, repr=False)

    def require_prox(self, what: str) -> "Loss":
        """Return self if both proximal maps exist; else raise InputError naming ``what``."""
        if self.prox is None or self.prox_step is None:
            raise InputError(f"{what} needs the proximal map of the loss in closed form; loss "
                             f"{self.name!r} has none (known: "
                             f"{', '.join(k for k, v in LOSSES.items() if v.prox is not None)})")
        return self

    @property
    def V_expr(self) -> sp.Expr:
        return self.l_expr / 2

    def derivative_expr(self, order: int) -> sp.Expr:
        """d^order V / d yhat^order as a sympy expression."""
        return sp.simplify(sp.diff(self.V_expr, YHAT, order))


def make_loss(name: str, l_expr: sp.Expr | str, *, prox: Callable | None = None,
              prox_step: Callable | None = None) -> Loss:
    """Build a :class:`Loss` from the formula of l(yhat, y).

    Parameters
    ----------
    name : str
        Label of the loss.
    l_expr : sympy expression or str
        l as a function of the symbols ``yhat`` and ``y`` (for example
        ``"(yhat**2 - y**2)**2"``). V = l/2 and its derivatives are derived symbolically.
    prox, prox_step : callable, optional
        Closed-form proximal maps of V (see :class:`Loss`), when known.
    """
    if isinstance(l_expr, str):
        try:
            l_expr = sp.sympify(l_expr, locals={"yhat": YHAT, "y": Y})
        except (sp.SympifyError, SyntaxError, TypeError) as exc:
            raise InputError(f"cannot parse loss formula {l_expr!r}: {exc}") from None
    unknown = l_expr.free_symbols - {YHAT, Y}
    if unknown:
        raise InputError(f"loss formula may only use yhat and y, found {sorted(map(str, unknown))}")
    V = l_expr / 2
    derivs = [sp.simplify(sp.diff(V, YHAT, k)) for k in (1, 2, 3)]
    return Loss(name, l_expr, _compile(V), *(_compile(d) for d in derivs), prox=prox, prox_step=prox_step)


# ---------------------------------------------------------------------------- quartic prox
def quartic_prox(z: ArrayLike, y: ArrayLike, chi: float) -> np.ndarray:
    """Global minimiser u*(z, y) of (u - z)^2/(2 chi) + (u^2 - y^2)^2/2 for z >= 0 (docs/theory.md eq. 3.1).

    Stationarity is the cubic 2 chi u^3 + (1 - 2 chi y^2) u - z = 0; for z >= 0 the global
    minimiser is its largest real root (the linear term favours u > 0 and V is even in u).
    Cardano's formula (trigonometric form when there are three real roots), then two Newton
    steps to restore full relative precision where the closed form cancels. For z < 0 use
    u*(-z, y) = -u*(z, y).
    """
    z = np.asarray(z, dtype=float)
    y = np.asarray(y, dtype=float)
    p = (1.0 - 2.0 * chi * y * y) / (2.0 * chi)
    q = -z / (2.0 * chi)
    disc = (q / 2) ** 2 + (p / 3) ** 3
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.sqrt(np.maximum(disc, 0.0))
        one_root = np.cbrt(-q / 2 + sq) + np.cbrt(-q / 2 - sq)
        r = np.sqrt(np.maximum(-p / 3, 0.0))
        arg = np.clip(np.where(r > 0, (-q / 2) / np.where(r > 0, r, 1.0) ** 3, 0.0), -1.0, 1.0)
        three_roots = 2 * r * np.cos(np.arccos(arg) / 3)
    u = np.where(disc > 0, one_root, three_roots)
    b = 1.0 - 2.0 * chi * y * y
    for _ in range(2):
        dp = 6.0 * chi * u * u + b
        safe = np.abs(dp) > 1e-300
        u = u - np.where(safe, (2.0 * chi * u**3 + b * u - z) / np.where(safe, dp, 1.0), 0.0)
    return u


def quartic_prox_step(rhs: np.ndarray, y: np.ndarray, b: float, h_prev: np.ndarray) -> np.ndarray:
    """Backward-Euler measurement step (docs/theory.md eq. 5.14): solve h + b V'(h, y) = rhs.

    For the quartic loss this is the cubic ``2 b h^3 + (1 - 2 b y^2) h - rhs = 0``.
    With three real roots the middle one is unstable (1 + b V''(h) < 0); the stable root
    nearest to ``h_prev`` (the value at the previous step) is taken, i.e. the continuation
    of the flow. Vectorised over samples; two Newton polishing steps.

    Parameters
    ----------
    rhs, y, h_prev : ndarray (S,)
    b : float or ndarray, > 0 (b = dt_k R(t_k, t_k))
    """
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), rhs.shape)
    p = (1.0 - 2.0 * b * y * y) / (2.0 * b)           # depressed cubic h^3 + p h + Q = 0
    Q = -rhs / (2.0 * b)
    disc = (Q / 2.0) ** 2 + (p / 3.0) ** 3
    h = np.empty_like(rhs)
    one = disc > 0
    if one.any():
        Qo, po, d = Q[one], p[one], np.sqrt(disc[one])
        A = -np.sign(Qo) * np.cbrt(np.abs(Qo) / 2.0 + d)
        A = np.where(A == 0.0, 1e-300, A)
        h[one] = A - po / (3.0 * A)
    three = ~one
    if three.any():
        pt, Qt = p[three], Q[three]
        m = 2.0 * np.sqrt(-pt / 3.0)
        arg = np.clip(3.0 * Qt / (pt * m), -1.0, 1.0)
        theta = np.arccos(arg) / 3.0
        big = m * np.cos(theta)                            # largest root
        small = m * np.cos(theta - 4.0 * np.pi / 3.0)      # smallest root
        hp = h_prev[three]
        h[three] = np.where(np.abs(big - hp) <= np.abs(small - hp), big, small)
    for _ in range(2):
        f = 2.0 * b * h ** 3 + (1.0 - 2.0 * b * y * y) * h - rhs
        fp = 6.0 * b * h * h + 1.0 - 2.0 * b * y * y
        safe = np.abs(fp) > 1e-12
        h = np.where(safe, h - f / np.where(safe, fp, 1.0), h)
    return h


QUARTIC = make_loss("quartic", (YHAT**2 - Y**2) ** 2, prox=quartic_prox, prox_step=quartic_prox_step)

#: Registry of named losses. ``amplitude`` is the amplitude loss (|yhat| - |y|)^2 smoothed
#: at scale 0.1 so that its curvature exists everywhere.
LOSSES: dict[str, Loss] = {
    "quartic": QUARTIC,
    "amplitude": make_loss(
        "amplitude",
        (sp.sqrt(YHAT**2 + sp.Rational(1, 100)) - sp.sqrt(Y**2 + sp.Rational(1, 100))) ** 2,
    ),
}


def get_loss(loss: str | Loss | None = None) -> Loss:
    """Return a :class:`Loss` by registry name (default ``"quartic"``), or pass one through."""
    if loss is None:
        return QUARTIC
    if isinstance(loss, Loss):
        return loss
    try:
        return LOSSES[loss]
    except KeyError:
        raise InputError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}") from None
