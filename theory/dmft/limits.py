"""Exact short-time limits of the DMFT at t = 0 (docs/theory.md 5.6, eqs. 5.20-5.22)."""
from __future__ import annotations

import math

import numpy as np

from ..loss import get_loss

__all__ = ["t0_limits"]


def t0_limits(alpha: float, q0: float = 0.0, n_nodes: int = 40, loss: str = "quartic") -> dict:
    """Exact t = 0 values (eqs. 5.20-5.22) by Gauss-Hermite quadrature.

    At t = 0, (yhat, y) is a centred Gaussian pair of unit variances and correlation q0.
    Returns energy per N = alpha E[V], mu = alpha E[V' yhat], b = alpha E[V' y],
    dq/dt = mu q0 - b and de/dt = -(alpha E[V'^2] + (mu, b) G^-1 (mu, b)^T - mu^2) with
    G = [[1, q0], [q0, 1]] (quartic loss at q0 = 0: 2 alpha, 4 alpha, 0, 0, -48 alpha).
    """
    from numpy.polynomial.hermite_e import hermegauss

    law = get_loss(loss)
    x, w = hermegauss(n_nodes)
    w = w / w.sum()
    z1, z2 = np.meshgrid(x, x, indexing="ij")
    W = np.outer(w, w)
    h = z1
    y = q0 * z1 + math.sqrt(1.0 - q0 * q0) * z2
    V, dV = law.V(h, y), law.dV(h, y)
    E = lambda f: float(np.sum(W * f))  # noqa: E731
    mu = alpha * E(dV * h)
    b = alpha * E(dV * y)
    G = np.array([[1.0, q0], [q0, 1.0]])
    v = np.array([mu, b])
    grad2 = alpha * E(dV * dV) + float(v @ np.linalg.solve(G, v)) - mu * mu
    return {"energy": alpha * E(V), "mu": mu, "b": b, "dq_dt": mu * q0 - b, "de_dt": -grad2}
