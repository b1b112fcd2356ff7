"""Early decisions of a start: stop a replica as soon as its outcome under the study's
protocol (success = |q| >= 0.9 by t = 100, else failure) is settled, and the log of full
trajectories that such rules are validated on.

Two rules, both hooks of :func:`simulation.flow.run_dynamics` (its ``decide`` parameter):

- **early success**: |q| >= ``success_overlap`` (below the protocol's 0.9) at a time
  t <= ``success_by``: once the overlap has grown this far the flow has left the
  uninformative region and runs into the signal minimum (docs/theory.md §4);
- **early trap**: the rms Riemannian gradient |g|/sqrt(N) has fallen to ``trap_grad``
  (above the protocol's 1e-4) and the lowest Ritz value of the tangent Hessian (eq. 1.6),
  from ``lanczos_steps`` steps of Lanczos (:func:`lowest_ritz`), is >= ``trap_curvature``
  > 0: the state is near a local minimum, which gradient flow does not leave. The check
  is repeated at each level trap_grad / recheck_factor^k that the gradient falls below.

The thresholds are not derived here: the validation (``experiments.finite_n``,
``benchmarks/bench_finite_n.py runs | validate``) logs full trajectories with
:class:`TrajectoryLog`, chooses thresholds on half of the starts and checks them on the
other half. Result (docs/numerics.md, "Early decisions"): every candidate that saves more
than ~10% made wrong decisions, so no rule is on by default anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import eigh_tridiagonal

from theory.errors import InputError
from theory.loss import Loss

from .data import Problem
from .flow import STATUS_RUNNING, STATUS_SUCCESS, STATUS_TRAPPED
from .landscape import LandscapePoint, hessian_vector_product, project_tangent

__all__ = ["EarlyRules", "EarlyDecider", "TrajectoryLog", "lowest_ritz", "GRAD_LEVELS"]

#: Gradient levels (rms) at which :class:`TrajectoryLog` probes the lowest Hessian
#: eigenvalue: 1e-2 / 2^k, k = 0..6 (the trap rule's re-check levels with factor 2).
GRAD_LEVELS = tuple(1e-2 / 2.0**k for k in range(7))


def lowest_ritz(problem: Problem, W: np.ndarray, point: LandscapePoint, loss: Loss, steps: int = 20,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lowest Ritz value of the tangent Hessian (eq. 1.6) at each column of W, by ``steps``
    steps of block-diagonal Lanczos (one Hessian-vector product per step covers all columns;
    full reorthogonalisation, in the problem's dtype).

    Returns (theta (B,), residual (B,)): the lowest Ritz value (an upper bound on the lowest
    eigenvalue) and |beta_k s_k|, its residual norm.
    """
    n, B = W.shape
    rng = np.random.default_rng(seed)
    V = project_tangent(W, rng.standard_normal((n, B)).astype(W.dtype))
    V /= np.linalg.norm(V, axis=0)
    Q = np.empty((steps, n, B), W.dtype)  # the Lanczos vectors of every column
    Q[0] = V
    a = np.zeros((steps, B))
    b = np.zeros((steps, B))
    k_done = steps
    for k in range(steps):
        HV = hessian_vector_product(problem, W, Q[k], loss, point)
        a[k] = np.sum(Q[k] * HV, axis=0)
        R = HV
        for _ in range(2):  # full reorthogonalisation, twice (float32)
            c = np.einsum("knb,nb->kb", Q[:k + 1], R)
            R = R - np.einsum("knb,kb->nb", Q[:k + 1], c)
        R = project_tangent(W, R)
        b[k] = np.linalg.norm(R, axis=0)
        if k == steps - 1 or np.any(b[k] <= 1e-12 * np.maximum(np.abs(a[k]), 1.0)):
            k_done = k + 1
            break
        Q[k + 1] = R / b[k]
    theta = np.empty(B)
    res = np.empty(B)
    for j in range(B):
        lam, S = eigh_tridiagonal(a[:k_done, j], b[:k_done - 1, j], select="i", select_range=(0, 0))
        theta[j] = lam[0]
        res[j] = abs(b[k_done - 1, j] * S[-1, 0])
    return theta, res


@dataclass(frozen=True)
class EarlyRules:
    """Thresholds of the early decisions (None: that rule is off).

    Attributes
    ----------
    success_overlap : float or None
        Success when |q| >= this, in (0, 1] ...
    success_by : float
        ... at a flow time t <= this (the protocol's horizon minus a margin).
    trap_grad : float or None
        Probe the curvature when |g|/sqrt(N) <= this (> 0) ...
    trap_curvature : float
        ... and stop as trapped when the lowest Ritz value is >= this (> 0).
    lanczos_steps : int
        Lanczos steps of a probe (each one Hessian-vector product, counted as one evaluation).
    recheck_factor : float
        Probe again at each level trap_grad / recheck_factor^k (> 1) the gradient falls below
        (the levels of :class:`TrajectoryLog` with trap_grad in GRAD_LEVELS and factor 2).
    """

    success_overlap: float | None = None
    success_by: float = np.inf
    trap_grad: float | None = None
    trap_curvature: float = 0.05
    lanczos_steps: int = 20
    recheck_factor: float = 2.0

    def __post_init__(self):
        if self.success_overlap is not None and not (0 < self.success_overlap <= 1):
            raise InputError(f"success_overlap must be in (0, 1], got {self.success_overlap!r}")
        if not self.success_by > 0:
            raise InputError(f"success_by must be > 0, got {self.success_by!r}")
        if self.trap_grad is not None and not (0 < self.trap_grad < np.inf):
            raise InputError(f"trap_grad must be a finite number > 0, got {self.trap_grad!r}")
        if not (0 < self.trap_curvature < np.inf):
            raise InputError(f"trap_curvature must be a finite number > 0, got {self.trap_curvature!r}")
        if not (isinstance(self.lanczos_steps, (int, np.integer)) and self.lanczos_steps >= 2):
            raise InputError(f"lanczos_steps must be an integer >= 2, got {self.lanczos_steps!r}")
        if not (1 < self.recheck_factor < np.inf):
            raise InputError(f"recheck_factor must be a finite number > 1, got {self.recheck_factor!r}")

    @property
    def active(self) -> bool:
        return self.success_overlap is not None or self.trap_grad is not None


class EarlyDecider:
    """The ``decide`` hook of :func:`~simulation.flow.run_dynamics` for :class:`EarlyRules`.

    One object per call of ``run_dynamics`` (it keeps, per replica, the gradient level of
    its next curvature probe). ``probes`` counts the replicas probed, ``trapped_theta``
    the Ritz values that stopped replicas.
    """

    def __init__(self, rules: EarlyRules):
        self.rules = rules
        self.next_level: np.ndarray | None = None
        self.probes = 0
        self.trapped_theta: dict[int, float] = {}

    def __call__(self, problem: Problem, loss: Loss, idx: np.ndarray, t: np.ndarray, W: np.ndarray,
                 point: LandscapePoint, q: np.ndarray, n_eval: int) -> tuple[np.ndarray, int]:
        r = self.rules
        if self.next_level is None:
            self.next_level = np.full(int(idx.max()) + 1, np.inf if r.trap_grad is None else r.trap_grad)
        codes = np.full(idx.size, STATUS_RUNNING)
        if r.success_overlap is not None:
            codes[(np.abs(q) >= r.success_overlap) & (t <= r.success_by)] = STATUS_SUCCESS
        spent = 0
        if r.trap_grad is not None:
            gn = point.grad_norm
            probe = (codes == STATUS_RUNNING) & (gn <= self.next_level[idx])
            if probe.any():
                sel = np.flatnonzero(probe)
                sub = LandscapePoint(point.yhat[:, sel], point.energy[sel], point.grad[:, sel], point.mu[sel],
                                     point.rgrad[:, sel])
                theta, _ = lowest_ritz(problem, W[:, sel], sub, loss, r.lanczos_steps)
                # one Lanczos step per probed replica costs one HVP ~ one evaluation of that column
                spent = int(np.ceil(r.lanczos_steps * sel.size / idx.size))
                self.probes += sel.size
                trapped = theta >= r.trap_curvature
                codes[sel[trapped]] = STATUS_TRAPPED
                for j, th in zip(idx[sel[trapped]], theta[trapped]):
                    self.trapped_theta[int(j)] = float(th)
                # next probe at the next level trap_grad / f^k below the gradient probed
                f = r.recheck_factor
                k = np.floor(np.log(r.trap_grad / np.maximum(gn[sel], 1e-300)) / np.log(f) + 1e-9) + 1
                self.next_level[idx[sel]] = r.trap_grad / f ** np.maximum(k, 1)
        return codes, spent


@dataclass
class TrajectoryLog:
    """A ``decide`` hook that stops nothing and records, per replica, every state the flow
    passes (t, q, energy, rms gradient, the evaluations so far), and at the first time the
    gradient falls below each of ``levels`` the lowest Ritz value (``lanczos_steps`` steps, the
    rule's probe, and ``reference_steps`` steps, its check). The probes' evaluations are
    not counted (the log observes, it is not part of the run's cost).
    """

    levels: tuple[float, ...] = GRAD_LEVELS
    lanczos_steps: int = 20
    reference_steps: int = 60
    rows: dict[int, list] = field(default_factory=dict)
    probes: dict[int, list] = field(default_factory=dict)

    def __call__(self, problem, loss, idx, t, W, point, q, n_eval):
        gn = point.grad_norm
        for j, b in enumerate(idx):
            rows = self.rows.setdefault(int(b), [])
            if not rows or rows[-1][0] != t[j]:
                rows.append((float(t[j]), float(q[j]), float(point.energy[j]), float(gn[j]), int(n_eval)))
        for j, b in enumerate(idx):
            done = self.probes.setdefault(int(b), [])
            due = [lv for lv in self.levels[len(done):] if gn[j] <= lv]
            if not due:
                continue
            sub = LandscapePoint(point.yhat[:, [j]], point.energy[[j]], point.grad[:, [j]], point.mu[[j]],
                                 point.rgrad[:, [j]])
            theta, res = lowest_ritz(problem, W[:, [j]], sub, loss, self.lanczos_steps)
            ref, _ = lowest_ritz(problem, W[:, [j]], sub, loss, self.reference_steps, seed=1)
            for lv in due:  # levels skipped in one step share the probe
                done.append((lv, float(t[j]), float(gn[j]), float(theta[0]), float(res[0]), float(ref[0]),
                             float(q[j]), int(n_eval)))
        return np.full(idx.size, STATUS_RUNNING), 0

    def history(self, b: int) -> np.ndarray:
        """(steps, 5): t, q, energy, rms gradient, evaluations so far, of replica b."""
        return np.array(self.rows.get(b, []), float).reshape(-1, 5)

    def probe_table(self, b: int) -> np.ndarray:
        """(levels reached, 8): level, t, gradient, theta, residual, reference theta, q, evaluations."""
        return np.array(self.probes.get(b, []), float).reshape(-1, 8)
