"""The per-measurement loss and its derivatives, derived once with sympy.

Conventions (docs/theory.md section 1, physics.md section 1):

    L(W) = 1/2 sum_m l(yhat_m, y_m) = sum_m V(yhat_m, y_m),   V = l / 2,

and every derivative below is taken with respect to the prediction ``yhat``.
The default is the quartic loss of both papers, l = (yhat^2 - y^2)^2, for which

    V'(yhat)  = 2 yhat (yhat^2 - y^2),
    V''(yhat) = 6 yhat^2 - 2 y^2.

Another loss is plugged in by its formula: ``make_loss("name", "sympy expr in yhat, y")``;
the simulator and the random-matrix core both read ``V``, ``dV`` and ``d2V`` from here
and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp

from .errors import InputError

YHAT, Y = sp.symbols("yhat y", real=True)

__all__ = ["Loss", "make_loss", "get_loss", "LOSSES", "QUARTIC", "YHAT", "Y"]


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
    """

    name: str
    l_expr: sp.Expr
    V: Callable = field(repr=False)
    dV: Callable = field(repr=False)
    d2V: Callable = field(repr=False)
    d3V: Callable = field(repr=False)

    @property
    def V_expr(self) -> sp.Expr:
        return self.l_expr / 2

    def derivative_expr(self, order: int) -> sp.Expr:
        """d^order V / d yhat^order as a sympy expression."""
        return sp.simplify(sp.diff(self.V_expr, YHAT, order))


def make_loss(name: str, l_expr: sp.Expr | str) -> Loss:
    """Build a :class:`Loss` from the formula of l(yhat, y).

    Parameters
    ----------
    name : str
        Label of the loss.
    l_expr : sympy expression or str
        l as a function of the symbols ``yhat`` and ``y`` (for example
        ``"(yhat**2 - y**2)**2"``). V = l/2 and its derivatives are derived symbolically.
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
    return Loss(name, l_expr, _compile(V), *(_compile(d) for d in derivs))


QUARTIC = make_loss("quartic", (YHAT**2 - Y**2) ** 2)

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
