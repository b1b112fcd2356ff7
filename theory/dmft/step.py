"""One time step of the DMFT: row k of every kernel from rows < k (docs/theory.md 5.4-5.5).

Pure functions of a :class:`~theory.dmft.state.DMFTState` whose rows < k are final:

* :func:`weight_row` - the weight side, eqs. 5.15', 5.18: rows k of R, C_perp, q_k and the
  norm multiplier c_k (a monotone scalar root);
* :func:`measurement_row` - the measurement side, eqs. 5.14, 5.17: cavity field g_k, the
  backward-Euler (proximal) step for h_k, and the averages M_C, alpha E[V' y], K_kk, xi_k;
* :func:`inner_fixed_point` - the iteration (5.19) of the two with the memory row frozen;
* :func:`memory_row` - K[k, :k] from the per-sample responses (eq. 5.16);
* :func:`stein_projection` - its min-norm correction enforcing the Stein identity (5.28);
* :func:`overlap_kernel_row` - the y^2-weighted kernel Kq[k, :k+1] (eq. 7.5), raw and
  projected on the y^2-weighted Stein identity (7.8), for the linear response of §7;
* :func:`step` - all of it: returns a :class:`StepRow` (converged or not, with a message),
  never raises for a failed step; the driver stores the row or stops.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConvergenceError
from ..loss import Loss
from .state import DMFTState

__all__ = ["InnerUnknowns", "InnerSolution", "StepRow", "weight_row", "measurement_row",
           "inner_fixed_point", "memory_row", "stein_projection", "overlap_kernel_row", "step"]


@dataclass(frozen=True, eq=False)
class InnerUnknowns:
    """The unknowns of the inner fixed point (5.19) at step k.

    M_C_row : (k+1,) alpha E[V'_k V'_j], j <= k;  b : alpha E[V'(h_k) y];
    K_kk : equal-time memory kernel alpha E[D_k J_kk];  xi : (S,) noise paths at t_k (eq. 5.12)
    """

    M_C_row: np.ndarray
    b: float
    K_kk: float
    xi: np.ndarray


@dataclass(frozen=True, eq=False)
class InnerSolution:
    """Row k at the inner fixed point, for a frozen memory row."""

    unknowns: InnerUnknowns
    c: float
    mu_multiplier: float
    q: float
    R_row: np.ndarray
    C_row: np.ndarray
    g: np.ndarray
    h: np.ndarray
    dV: np.ndarray
    D: np.ndarray
    J_kk: np.ndarray
    iterations: int
    change: float
    converged: bool


@dataclass(frozen=True, eq=False)
class StepRow:
    """Row k of the DMFT solution, as :meth:`DMFTState.store` takes it.

    K_row : (k,) memory row K[k, :k]; K_kk, M_C_row (k+1,), R_row (k+1,), C_row (k+1,) (C_perp);
    q, mu_multiplier; xi, h, g, dV, D = V''(h_k), J_kk (S,); J (S, k) = J[k, :k] (eq. 5.16);
    residual: largest last change of the inner and memory loops; multiplier_gap:
    |mu_multiplier - alpha E[V'h]|; iterations: inner iterations; converged, message.
    """

    k: int
    K_row: np.ndarray
    K_kk: float
    M_C_row: np.ndarray
    R_row: np.ndarray
    C_row: np.ndarray
    q: float
    mu_multiplier: float
    xi: np.ndarray
    h: np.ndarray
    g: np.ndarray
    dV: np.ndarray
    D: np.ndarray
    J: np.ndarray
    J_kk: np.ndarray
    Kq_row: np.ndarray
    Kq_raw_row: np.ndarray
    residual: float
    multiplier_gap: float
    iterations: int
    converged: bool
    message: str


# ---------------------------------------------------------------------------- weight side
def weight_row(state: DMFTState, k: int, a_mem: np.ndarray, K_kk: float, M_C_row: np.ndarray, b: float,
               X_col: np.ndarray) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """Row k of the weight-side recursions (eqs. 5.15', 5.18).

    Parameters
    ----------
    a_mem : (k,) coefficients of w_j (j < k) in the numerator: e_{k-1} - dt K[k, :k]
    K_kk : equal-time memory kernel
    M_C_row : (k+1,) alpha E[V'_k V'_j], j <= k
    b : alpha E[V'(h_k) y]
    X_col : (k,) E[w_j xi_k] = sum_{l <= j} R[j, l] dt_l M_C[l, k]

    Returns
    -------
    c, mu_k, q_k, R_row (k+1,), Cperp_row (k+1,)

    Raises
    ------
    ConvergenceError when the norm equation C_perp,kk + q_k^2 = 1 has no root.
    """
    dt = state.dts[k]
    C, R = state.C, state.R
    Ck = C[:k, :k]
    num2 = float(a_mem @ Ck @ a_mem + 2.0 * dt * (a_mem @ X_col) + dt * dt * M_C_row[k])
    Nq = state.q[k - 1] - dt * b
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
    R_row = np.empty(k + 1)
    R_row[:k] = (a_mem @ R[:k, :k]) / c
    R_row[k] = 1.0 / c
    C_row = np.empty(k + 1)
    C_row[:k] = (a_mem @ Ck + dt * X_col) / c
    C_row[k] = num2 / (c * c)
    return c, mu_k, Nq / (c - dK), R_row, C_row


# ---------------------------------------------------------------------------- measurement side
def measurement_row(state: DMFTState, k: int, loss: Loss, R_row: np.ndarray, q_k: float, xi_k: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The effective measurement process at step k (eqs. 5.14, 5.17) given rows k of R and q.

    Returns g_k = R (e_0 sqrt(1 - q0^2) z0 + dt xi) (5.17), h_k the stable root of
    h + dt R_kk V'(h, y) = q_k y + g_k - sum_{j<k} dt_j R_kj V'(h_j, y) (5.14, ``loss.prox_step``),
    V'(h_k), D_k = V''(h_k) and J_kk = 1 / (1 + dt R_kk D_k).
    """
    s, dts, xi, dV = state.samples, state.dts, state.xi, state.dV
    dt, q0 = dts[k], state.config.q0
    g_k = R_row[0] * math.sqrt(1.0 - q0 * q0) * s.z0 + xi[:, 1:k] @ (dts[1:k] * R_row[1:k]) \
        + dt * R_row[k] * xi_k
    mem_past = dV[:, 1:k] @ (dts[1:k] * R_row[1:k]) if k > 1 else np.zeros(s.size)
    rhs = q_k * s.y + g_k - mem_past
    hk = loss.prox_step(rhs, s.y, dt * R_row[k], state.h[:, k - 1])
    Vk = loss.dV(hk, s.y)
    Dk = loss.d2V(hk, s.y)
    Jkk = 1.0 / (1.0 + dt * R_row[k] * Dk)
    return g_k, hk, Vk, Dk, Jkk


def _relative_change(new, old) -> float:
    return np.max(np.abs(new - old)) / (1.0 + np.max(np.abs(new)))


def inner_fixed_point(state: DMFTState, k: int, loss: Loss, K_row: np.ndarray,
                      guess: InnerUnknowns, tol: float | None = None) -> InnerSolution:
    """The inner fixed point (5.19) with the memory row K[k, :k] = ``K_row`` frozen:

        (M_C,k., alpha E[V'_k y], K_kk, xi_k) -> (c_k, q_k, R_k., C_k.) -> g_k -> h_k -> (M_C,k., ...)

    iterated (Picard) until the relative change is below ``tol`` (default
    ``config.inner_tol``), at most ``config.inner_max_iter`` times. At q0 = 0 the law is symmetric under y -> -y, so
    alpha E[V' y] = 0 and q stays 0 exactly (Monte Carlo noise would otherwise seed q
    like a finite system of size ~S).
    """
    cfg, s = state.config, state.samples
    alpha, dt, dts = cfg.alpha, state.dts[k], state.dts
    M_C_row, b_k, K_kk, xi_k = guess.M_C_row, guess.b, guess.K_kk, guess.xi
    tol = cfg.inner_tol if tol is None else tol
    iterations = 0
    converged = False
    for _ in range(cfg.inner_max_iter):
        iterations += 1
        X_col = state.R[:k, :k] @ (dts[:k] * M_C_row[:k])
        a_mem = -dt * K_row
        a_mem[k - 1] += 1.0
        c, mu_k, q_k, R_row, C_row = weight_row(state, k, a_mem, K_kk, M_C_row, b_k, X_col)
        g_k, hk, Vk, Dk, Jkk = measurement_row(state, k, loss, R_row, q_k, xi_k)
        new_xi = s.noise(Vk)
        new_Mc = alpha * ((s.weights * Vk) @ np.concatenate([state.dV[:, :k], Vk[:, None]], axis=1)) / s.size
        new_b = 0.0 if cfg.q0 == 0.0 else alpha * s.mean(Vk * s.y)
        new_Kkk = alpha * s.mean(Dk * Jkk)
        change = max(_relative_change(new_Mc, M_C_row), _relative_change(new_xi, xi_k),
                     abs(new_b - b_k) / (1.0 + abs(new_b)), abs(new_Kkk - K_kk) / (1.0 + abs(new_Kkk)))
        M_C_row, b_k, K_kk, xi_k = new_Mc, new_b, new_Kkk, new_xi
        if change < tol:
            converged = True
            break
    return InnerSolution(unknowns=InnerUnknowns(M_C_row, b_k, K_kk, xi_k), c=c, mu_multiplier=mu_k, q=q_k,
                         R_row=R_row, C_row=C_row, g=g_k, h=hk, dV=Vk, D=Dk, J_kk=Jkk, iterations=iterations,
                         change=float(change), converged=converged)


# ---------------------------------------------------------------------------- memory row
def memory_row(state: DMFTState, k: int, sol: InnerSolution) -> tuple[np.ndarray, np.ndarray]:
    """The memory row K[k, :k] = alpha E[D_k J_kj] from the per-sample response

        (1 + dt_k R_kk D_k) J_kl = -sum_{j<k} R_kj (dt_j D_j J_jl),   l < k,          (5.16)

    Returns (K_row (k,), J (S, k))."""
    s, S = state.samples, state.samples.size
    Y = state.B.contract(sol.R_row[:k])                                           # (S, k)
    Jk = -Y * sol.J_kk[:, None]                                                   # J[k, :k]
    return state.config.alpha * ((s.weights * sol.D) @ Jk) / S, Jk


def stein_projection(state: DMFTState, k: int, sol: InnerSolution, K_row: np.ndarray,
                     C_pinv: np.ndarray) -> np.ndarray:
    """Min-norm correction of the memory row enforcing the Stein identity

        sum_{j=1..k} K_kj C_perp,jl = alpha E[V'_k g_l],   l < k,                       (5.28)

    in the singular directions of C_perp[1:k, :k] kept by ``C_pinv`` (its truncated
    pseudo-inverse, docs/theory.md 5.9). Returns the corrected row (a new array)."""
    s = state.samples
    Cm = state.C[1:k, :k]
    lhs = state.config.alpha * ((s.weights * sol.dV) @ state.g[:, :k]) / s.size
    r_st = lhs - K_row[1:k] @ Cm - sol.unknowns.K_kk * sol.C_row[:k]
    out = K_row.copy()
    out[1:k] += r_st @ C_pinv
    return out


def overlap_kernel_row(state: DMFTState, k: int, sol: InnerSolution, Jk: np.ndarray,
                       C_pinv: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Row k of the y^2-weighted memory kernel of the linear overlap response (docs/theory.md 7.2):

        Kq_kl = alpha E[D_k J_kl y^2] (l < k),   Kq_kk = alpha E[D_k J_kk y^2],          (7.5)

    from the per-sample response J[k, :k] = ``Jk`` (eq. 5.16), and its min-norm correction
    enforcing the y^2-weighted Stein identity

        alpha E[y^2 V'(h_k) g_l] = sum_{j=1..k} Kq_kj C_perp,jl,   l < k,               (7.8)

    with the same truncated pseudo-inverse ``C_pinv`` of C_perp[1:k, :k] as the projection of
    K (5.28); ``C_pinv`` None leaves it raw. Kq is the first-order coefficient of
    b = alpha E[V' y] in q around the q = 0 solution: meaningful at q0 = 0 only. Pure
    post-processing of the step (nothing of the solution depends on it).

    Returns (projected (k+1,), raw (k+1,)); Kq[k, 0] = 0 (J_k0 = 0)."""
    s, S = state.samples, state.samples.size
    alpha = state.config.alpha
    wy2 = s.weights * s.y * s.y
    raw = np.empty(k + 1)
    raw[:k] = alpha * ((wy2 * sol.D) @ Jk) / S
    raw[k] = alpha * float(np.mean(wy2 * sol.D * sol.J_kk))
    out = raw.copy()
    if C_pinv is not None:
        lhs = alpha * ((wy2 * sol.dV) @ state.g[:, :k]) / S
        r_st = lhs - raw[1:k] @ state.C[1:k, :k] - raw[k] * sol.C_row[:k]
        out[1:k] += r_st @ C_pinv
    return out, raw


def _initial_guess(state: DMFTState, k: int, loss: Loss) -> tuple[np.ndarray, InnerUnknowns]:
    """Previous row, shifted: the start of the iterations at step k."""
    cfg, s = state.config, state.samples
    K_row = state.K[k - 1, :k].copy()
    M_C_row = np.zeros(k + 1)
    M_C_row[:k] = state.M_C[k - 1, :k]
    M_C_row[k] = state.M_C[k - 1, k - 1]
    b = 0.0 if cfg.q0 == 0.0 else cfg.alpha * s.mean(state.dV[:, k - 1] * s.y)
    K_kk = state.K[k - 1, k - 1] if k > 1 else cfg.alpha * s.mean(loss.d2V(state.h[:, 0], s.y))
    return K_row, InnerUnknowns(M_C_row, b, K_kk, state.xi[:, k - 1].copy())


# ---------------------------------------------------------------------------- the step
def step(state: DMFTState, loss: Loss) -> StepRow:
    """Row k = state.k + 1: the inner fixed point (5.19) alternated with the memory row
    (5.16, projected by 5.28 when ``config.stein_rcond`` is set) until the memory row
    changes by less than ``config.memory_tol``; then the runaway guard (norm multiplier
    against alpha E[V'h]). Does not modify ``state``; a failure is a row with
    converged False and the message."""
    cfg, s = state.config, state.samples
    k = state.k + 1
    t_k = state.t[k]
    where = f"t={t_k:.4g} ({cfg.label}, steps={state.n_steps})"
    K_row, unknowns = _initial_guess(state, k, loss)
    # Stein projection (5.28): rows < k of C_perp are final, so the truncated
    # pseudo-inverse of C_perp[1:k, :k] is fixed for the whole step
    C_pinv = (np.linalg.pinv(state.C[1:k, :k], rcond=cfg.stein_rcond)
              if cfg.stein_rcond is not None and k > 1 else None)
    iterations = 0
    message = ""
    sol = None
    changeK = math.inf
    try:
        for _ in range(cfg.inner_max_iter):
            # inexact inner solves while the memory row still moves: to 1/100 of its last
            # change, never looser than 1e-3; the step ends on a solve at config.inner_tol
            tol = max(cfg.inner_tol, min(1e-3, 0.01 * changeK))
            sol = inner_fixed_point(state, k, loss, K_row, unknowns, tol)
            iterations += sol.iterations
            unknowns = sol.unknowns
            if not sol.converged:
                message = (f"inner fixed point did not converge at {where}; last change {sol.change:.2e}; "
                           f"a smaller dt_max helps where q grows fast (docs/theory.md 5.5)")
                break
            new_K, Jk = memory_row(state, k, sol)
            if C_pinv is not None:
                new_K = stein_projection(state, k, sol, new_K, C_pinv)
            changeK = _relative_change(new_K, K_row)
            K_row = new_K
            if changeK < cfg.memory_tol and tol <= cfg.inner_tol:
                break
        else:
            message = f"memory kernel did not converge at {where}; last change {changeK:.2e}"
    except ConvergenceError as exc:          # no root of the norm equation
        message = f"{exc} ({where})"
    if sol is None:
        return _failed_row(k, message, iterations)
    gap = math.inf
    if not message:
        if not np.all(np.isfinite(sol.h)):
            message = f"non-finite effective process at {where}"
        else:
            mu_obs = cfg.alpha * s.mean(sol.dV * sol.h)
            gap = abs(sol.mu_multiplier - mu_obs)
            if gap > cfg.mult_tol_abs + cfg.mult_tol_rel * abs(mu_obs):
                message = (f"runaway at {where}: norm multiplier {sol.mu_multiplier:.3g} vs "
                           f"alpha E[V'h] = {mu_obs:.3g}; more samples or another seed")
    residual = max(sol.change, changeK) if not message else math.inf
    empty = np.empty(0)
    Kq_row, Kq_raw_row = overlap_kernel_row(state, k, sol, Jk, C_pinv) if not message else (empty, empty)
    return StepRow(k=k, K_row=K_row, K_kk=sol.unknowns.K_kk, M_C_row=sol.unknowns.M_C_row, R_row=sol.R_row,
                   C_row=sol.C_row, q=sol.q, mu_multiplier=sol.mu_multiplier, xi=sol.unknowns.xi, h=sol.h,
                   g=sol.g, dV=sol.dV, D=sol.D, J=Jk if not message else np.empty((0, 0)), J_kk=sol.J_kk,
                   Kq_row=Kq_row, Kq_raw_row=Kq_raw_row, residual=float(residual), multiplier_gap=float(gap), iterations=iterations,
                   converged=not message, message=message)


def _failed_row(k: int, message: str, iterations: int) -> StepRow:
    empty = np.empty(0)
    return StepRow(k=k, K_row=empty, K_kk=math.nan, M_C_row=empty, R_row=empty, C_row=empty, q=math.nan,
                   mu_multiplier=math.nan, xi=empty, h=empty, g=empty, dV=empty, D=empty, J=np.empty((0, 0)),
                   J_kk=empty, Kq_row=empty, Kq_raw_row=empty, residual=math.inf, multiplier_gap=math.inf, iterations=iterations,
                   converged=False, message=message)
