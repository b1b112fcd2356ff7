"""The DMFT driver: march the time steps of :mod:`theory.dmft.step` over the grid and
collect a :class:`~theory.dmft.result.DMFTResult` (docs/theory.md 5.5).

Stepper and driver are apart, as in scipy.integrate: :func:`theory.dmft.step.step`
computes one row from the state, the driver stores it, watches the status and builds the
result, including a partial one when a step fails.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from ..errors import raise_if_failed
from ..loss import Loss, get_loss
from .config import DMFTConfig
from .result import DMFTResult
from .state import DMFTSamples, DMFTState, initial_state
from .step import step

__all__ = ["solve_dmft", "dmft_loss"]


def dmft_loss(config: DMFTConfig) -> Loss:
    """The loss of ``config`` from the registry; the DMFT needs its backward-Euler step
    (eq. 5.14) in closed form, else InputError."""
    return get_loss(config.loss).require_prox("the DMFT")


def solve_dmft(config: DMFTConfig | float | None = None, t_max: float | None = None, q0: float | None = None, *,
               strict: bool = True, progress: bool = False, draws: DMFTSamples | None = None,
               stop_overlap: float | None = None, **options) -> DMFTResult:
    """Solve the DMFT of gradient flow (docs/theory.md §5) from q(0) = q0 up to t_max.

    Called either with a :class:`DMFTConfig` or, as before, with
    ``solve_dmft(alpha, t_max, q0=0, n_samples=..., grid=..., seed=..., dtype=...,
    y_scale=..., stein_rcond=..., loss=..., ...)``: the keywords are the fields of
    :class:`DMFTConfig` (``n_samples`` for ``samples``), whose defaults apply to those not
    given (the validated estimator: see :class:`DMFTConfig` and :func:`default_y_scale`).

    Parameters
    ----------
    config : DMFTConfig, or alpha (float > 0, also as keyword ``alpha``) with t_max and the options
    strict : bool
        True (default): a failed step (inner fixed point or memory row not converging,
        multiplier runaway, no root of the norm equation) raises ConvergenceError with the
        partial result attached (``exc.result``). False: the failed result is returned,
        ``converged`` False, its arrays cut at the last good step.
    progress : print progress to stderr
    draws : DMFTSamples or None
        Common random numbers to use instead of those drawn from the seed (for example
        :func:`theory.dmft.state.draw_flip_symmetric_samples`, docs/theory.md 7.7); None: drawn.
    stop_overlap : float or None
        Stop after the first step with |q| >= stop_overlap (the flow has escaped toward the
        signal: what the q0_c search, docs/theory.md 7.8, needs to know); the result then
        ends there, converged, with t[-1] < t_max. None: solve to t_max.

    Raises
    ------
    InputError on bad parameters or a loss without closed-form prox; ConvergenceError
    (strict only) when a step fails.
    """
    if isinstance(config, DMFTConfig):
        if t_max is not None or q0 is not None or options:
            raise TypeError("solve_dmft(config) takes no further problem arguments")
    else:
        if config is None:                 # solve_dmft(alpha=..., t_max=..., ...)
            config = options.pop("alpha", None)
        if config is None or t_max is None:
            raise TypeError("solve_dmft(alpha, t_max, ...) needs alpha and t_max")
        if "n_samples" in options:
            options["samples"] = options.pop("n_samples")
        if q0 is not None:
            options["q0"] = q0
        config = DMFTConfig(config, t_max, **options)
    loss = dmft_loss(config)
    state = initial_state(config, loss, draws)
    t_start = time.perf_counter()
    last_report = t_start
    message = ""
    last_residual = 0.0
    for k in range(1, state.n_steps + 1):
        row = step(state, loss)
        if not row.converged:
            message = row.message
            last_residual = row.residual
            state.iterations += row.iterations
            break
        state.store(row)
        escaped = stop_overlap is not None and abs(row.q) >= stop_overlap
        now = time.perf_counter()
        if progress and (now - last_report > 2.0 or k == state.n_steps):
            e_k = config.alpha * state.samples.mean(loss.V(row.h, state.samples.y))
            print(f"dmft {config.label}, steps={state.n_steps}: t = {state.t[k]:.4g} ({k}/{state.n_steps}), "
                  f"q = {row.q:.4f}, e = {e_k:.4f}, {now - t_start:.1f} s", file=sys.stderr, flush=True)
            last_report = now
        if escaped:
            break
    result = collect_result(state, loss, message=message, residual=max(state.residual, last_residual),
                            wall_seconds=time.perf_counter() - t_start)
    return raise_if_failed(result, strict)


def collect_result(state: DMFTState, loss: Loss, *, message: str, residual: float,
                   wall_seconds: float) -> DMFTResult:
    """The :class:`DMFTResult` of rows 0..state.k: observables (5.23), (5.24) and their
    standard errors from the weighted samples, C = C_perp + q q^T."""
    cfg, s = state.config, state.samples
    m = state.k + 1
    S = s.size
    wt, y = s.weights, s.y
    h, dV, q = state.h[:, :m], state.dV[:, :m], state.q[:m]
    C_perp = state.C[:m, :m]
    Vall = wt[:, None] * loss.V(h, y[:, None])
    energy = cfg.alpha * Vall.mean(axis=0)
    energy_se = cfg.alpha * Vall.std(axis=0) / math.sqrt(S)
    muv = wt[:, None] * dV * h
    mu = cfg.alpha * muv.mean(axis=0)
    mu_se = cfg.alpha * muv.std(axis=0) / math.sqrt(S)
    return DMFTResult(config=cfg, t=state.t[:m], energy=energy, mu=mu, mu_multiplier=state.mu_multiplier[:m],
                      q=q, C=C_perp + np.outer(q, q), C_perp=C_perp, R=state.R[:m, :m], K=state.K[:m, :m],
                      M_C=state.M_C[:m, :m], h=h, g=state.g[:, :m], y=y,
                      weights=None if cfg.y_scale == 1.0 else wt / S, energy_se=energy_se, mu_se=mu_se,
                      converged=not message, iterations=int(state.iterations), residual=float(residual),
                      message=message, multiplier_gap=float(state.multiplier_gap),
                      norm_error=float(np.max(np.abs(np.diag(C_perp) + q * q - 1.0))),
                      wall_seconds=wall_seconds, memory_bytes=int(state.B.nbytes),
                      Kq=None if state.Kq is None else state.Kq[:m, :m].copy(),
                      Kq_raw=None if state.Kq_raw is None else state.Kq_raw[:m, :m].copy())
