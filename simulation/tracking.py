"""The bridge from a flow to the theory: states at exact times, and the law of a state.

docs/theory.md §4 (introduction). States at the recording times come from
:func:`simulation.flow.run_dynamics` run segment by segment (segment i runs from t_i to
t_{i+1}; the stop rules are disabled inside a segment, so every state is the flow at
exactly t_i). Restarting the integrator costs a few gradient evaluations per segment (a
fresh step size and spectral radius), nothing else. A state's empirical law of
(yhat, y, s) with its own mu (eq. 1.3) is the input of the random-matrix core
(theory.spectrum, theory.finite_m); the comparison of the two lives in experiments.tracking.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
from numpy.typing import ArrayLike

from theory.escape import check_times
from theory.loss import Loss
from theory.measure import Measure

from .data import Problem
from .flow import Integrator, StopRules, run_dynamics
from .probes import state_measure

__all__ = ["law_at_state", "states_at_times"]


def law_at_state(problem: Problem, w: ArrayLike, loss: Loss | str | None = None) -> Measure:
    """Empirical law of (yhat, y, s) at the state w (docs/theory.md §2.1), with its alpha and mu."""
    sm = state_measure(problem, w, loss)
    return Measure.empirical(sm.yhat, sm.y, sm.s, alpha=sm.alpha, mu=sm.mu, loss=sm.loss)


def states_at_times(problem: Problem, w0: ArrayLike, times: ArrayLike, loss: Loss | str | None = None,
                    integrator: Integrator = Integrator()) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (t_i, W(t_i)) along the flow from w0 (N,) or (N, B) at each recording time.

    The flow runs segment by segment with :func:`simulation.flow.run_dynamics`
    (t_max = t_{i+1} - t_i, success/trapping rules disabled), so the yielded state is the
    flow at exactly t_i. ``times`` must pass :func:`theory.escape.check_times`; t = 0
    yields w0 itself (rescaled to the sphere).
    """
    times = check_times(times)
    W = np.asarray(w0, dtype=problem.dtype)
    squeeze = W.ndim == 1
    W = W.reshape(problem.n, -1)
    W = W * (np.sqrt(problem.n) / np.linalg.norm(W.astype(np.float64), axis=0)).astype(problem.dtype)
    t_now = 0.0
    for t in times:
        if t > t_now:
            stop = StopRules(t_max=float(t - t_now), success_overlap=1.0, energy_tol=0.0, grad_tol=0.0)
            res = run_dynamics(problem, W, stop, integrator, loss, times=np.array([0.0]))
            W = res.W
            t_now = float(t)
        yield float(t), (W[:, 0] if squeeze else W)
