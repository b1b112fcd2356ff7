"""Gradient flow on the sphere (error-controlled) and plain projected gradient descent,
for a batch of B replicas sharing one data set.

Flow, eq. (1.5): dW/dt = -g(W), g = grad L - mu W. The flow is stiff: the top Hessian
eigenvalue is ~ max_m V''(yhat_m) ~ 6 max yhat^2 ~ 10^2 while trapping takes t ~ 10^2-10^3,
and the Jacobian -H is symmetric (real spectrum). We therefore integrate with the
second-order Runge-Kutta-Chebyshev method (RKC; Sommeijer, Shampine & Verwer, J. Comput.
Appl. Math. 88 (1997) 315), whose s-stage stability interval grows like 0.65 s^2, with
its embedded error estimate and a step-size controller (docs/theory.md §6). Each replica
has its own step size; the stage count is shared by the active replicas so that every
stage is one matrix-matrix product. After every step the states are put back on the
sphere (|W|^2 = N to rounding).

Stop rules, per replica: success when |q| >= success_overlap or e <= energy_tol;
trapped when the rms Riemannian gradient |g|/sqrt(N) <= grad_tol; timeout at t_max;
diverged when the energy, the gradient or the state is not finite, or the energy exceeds
DIVERGENCE_FACTOR times its start value (the flow never raises the energy, and projected
GD with a small enough learning rate does not either), or when the flow is so stiff that
it would need more than MAX_STEPS steps (badly scaled data). Without the teacher (user data
without W*) q is NaN and only the energy, gradient and time rules apply.

Bad starts (not finite, zero norm) raise InputError; a replica that becomes non-finite
stops as "diverged" while the others go on, so the dynamics always ends. Ctrl-C raises
:class:`RunInterrupted`, a KeyboardInterrupt carrying the result so far (the running
replicas marked "interrupted").

Protocols (simulation.protocols): ``free``, the flow above; ``orthogonal``, the same flow
restricted exactly to the sphere of W orthogonal to W* (q = 0), run on the reduced problem
of dimension N-1 and lifted back.

One driver per method (``_run_rkc``, ``_run_gd``) does its (N, B) arithmetic through an
``_Arrays`` object: NumPy and simulation.landscape here (the bits of every stored run), or
an array-API library (simulation.backend.run_flow, e.g. a GPU); the per-replica control is
NumPy in both.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from theory.errors import InputError
from theory.loss import Loss, get_loss

from .data import Problem
from .landscape import LandscapePoint, evaluate, hessian_vector_product, project_sphere, teacher_overlap
from .protocols import PROTOCOLS, OrthogonalComplement, check_protocol

__all__ = ["StopRules", "Integrator", "Trajectory", "FlowResult", "RunInterrupted", "run_dynamics",
           "log_time_grid", "describe_replicas", "Decider", "STATUS_RUNNING", "STATUS_SUCCESS",
           "STATUS_TRAPPED", "PROTOCOLS", "STATUS_NAMES", "DIVERGENCE_FACTOR"]

STATUS_RUNNING, STATUS_SUCCESS, STATUS_TRAPPED, STATUS_TIMEOUT, STATUS_DIVERGED, STATUS_INTERRUPTED = range(6)
STATUS_NAMES = {STATUS_RUNNING: "running", STATUS_SUCCESS: "success",
                STATUS_TRAPPED: "trapped", STATUS_TIMEOUT: "timeout",
                STATUS_DIVERGED: "diverged", STATUS_INTERRUPTED: "interrupted"}

#: a replica whose energy exceeds this factor times its start energy has diverged. GD with
#: --lr 1 at N = 100, alpha = 6 raises e/N from 12.7 to 26.7 in one step and then plateaus
#: near 6x (a factor 10 would miss it); the flow and stable GD only lower the energy.
DIVERGENCE_FACTOR = 2.0

#: consecutive RKC steps whose trial state is not finite (each one shrinking the step ten
#: times) after which a replica is declared diverged instead of retried
NONFINITE_RETRIES = 30

#: a replica whose remaining time t_max - t needs more than this many RKC steps of the
#: largest stable size (max_stages stages, spectral radius rho) is declared diverged: the
#: data are so badly scaled (X times 1e10 gives rho ~ 1e40) that the flow would crawl
#: forever. Well-scaled runs need tens to thousands of steps (rho ~ 1e2-1e3).
MAX_STEPS = 1e7

#: An early-decision hook of :func:`run_dynamics` (see its ``decide`` parameter).
Decider = Callable[..., "tuple[np.ndarray, int]"]


@dataclass(frozen=True)
class StopRules:
    """When a replica stops (checked after every accepted step).

    Attributes
    ----------
    t_max : float
        Timeout, finite and > 0.
    success_overlap : float
        Success when |q| >= success_overlap, in (0, 1] ...
    energy_tol : float
        ... or when e = L/N <= energy_tol (>= 0).
    grad_tol : float or None
        Trapped when |g|/sqrt(N) <= grad_tol (>= 0; None: 1e-8 in float64, 1e-4 in float32).

    Out-of-range values raise InputError (one line), for ``run`` and ``sweep`` alike.
    """

    t_max: float = 2000.0
    success_overlap: float = 0.999
    energy_tol: float = 1e-10
    grad_tol: float | None = None

    def __post_init__(self):
        if not (0 < self.t_max < np.inf):
            raise InputError(f"t_max must be a finite number > 0, got {self.t_max!r}")
        if not (0 < self.success_overlap <= 1):
            raise InputError(f"success_overlap must be in (0, 1], got {self.success_overlap!r}")
        if not (0 <= self.energy_tol < np.inf):
            raise InputError(f"energy_tol must be a finite number >= 0, got {self.energy_tol!r}")
        if self.grad_tol is not None and not (0 <= self.grad_tol < np.inf):
            raise InputError(f"grad_tol must be a finite number >= 0, got {self.grad_tol!r}")

    def gradient_tolerance(self, dtype: np.dtype | str) -> float:
        """grad_tol, or its default for ``dtype``."""
        if self.grad_tol is not None:
            return self.grad_tol
        return 1e-8 if np.dtype(dtype) == np.float64 else 1e-4


@dataclass(frozen=True)
class Integrator:
    """How the dynamics is discretised.

    Attributes
    ----------
    method : {"flow", "gd"}
        "flow": adaptive RKC gradient flow (time is the flow time);
        "gd": projected gradient descent W <- (W - lr grad L) rescaled to the sphere
        (time = steps x lr), as practitioners run it.
    rtol, atol : float
        Local error tolerances of the flow, per component of W (components are O(1)).
        None: 1e-6 / 1e-8 in float64, 1e-4 / 1e-5 in float32.
    lr : float
        Learning rate of "gd" (finite, > 0).
    max_stages : int
        Largest RKC stage count (bounds round-off growth), >= 2.

    Out-of-range values raise InputError (one line), for ``run`` and ``sweep`` alike.
    """

    method: str = "flow"
    rtol: float | None = None
    atol: float | None = None
    lr: float = 0.01
    max_stages: int = 256

    def __post_init__(self):
        if self.method not in ("flow", "gd"):
            raise InputError(f"unknown method {self.method!r}; use 'flow' or 'gd'")
        if not (0 < self.lr < np.inf):
            raise InputError(f"learning rate must be a finite number > 0, got {self.lr!r}")
        if not (isinstance(self.max_stages, (int, np.integer)) and self.max_stages >= 2):
            raise InputError(f"max_stages must be an integer >= 2, got {self.max_stages!r}")
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if v is not None and not (0 < v < 1):
                raise InputError(f"{name} must be in (0, 1), got {v!r}")

    def tolerances(self, dtype: np.dtype | str) -> tuple[float, float]:
        """(rtol, atol), or their defaults for ``dtype``."""
        f64 = np.dtype(dtype) == np.float64
        rtol = self.rtol if self.rtol is not None else (1e-6 if f64 else 1e-4)
        atol = self.atol if self.atol is not None else (1e-8 if f64 else 1e-5)
        return rtol, atol


def log_time_grid(t_max: float, points: int = 60, t_min: float = 1e-2) -> np.ndarray:
    """0 followed by ``points`` log-spaced times from t_min to t_max."""
    return np.concatenate([[0.0], np.geomspace(t_min, t_max, points)])


@dataclass(frozen=True)
class Trajectory:
    """Observables on a time grid; entry [k, b] is replica b at time t[k].

    Entries after a replica stopped are NaN and ``recorded[k, b]`` is False.
    """

    t: np.ndarray
    energy: np.ndarray
    q: np.ndarray
    mu: np.ndarray
    grad_norm: np.ndarray
    recorded: np.ndarray


@dataclass(frozen=True)
class FlowResult:
    """Outcome of a batch of replicas.

    Attributes
    ----------
    W : (N, B) final states on the sphere (float64 under the orthogonal protocol)
    status : (B,) array of str, "success" | "trapped" | "timeout" | "diverged", each
        replica's own ("interrupted" in the result of :class:`RunInterrupted`)
    stop_time, energy, q, mu, grad_norm : (B,) at the final states (q NaN without the teacher)
    trajectory : Trajectory
    gradient_evaluations : int
        Matrix-matrix gradient evaluations (each covers all active replicas).
    steps, rejected_steps : int
    wall_seconds : float
    method : "flow" or "gd"
    extra : dict
        Diagnostics (``step_log`` of the flow; under the orthogonal protocol also
        ``full_grad_norm``, the rms Riemannian gradient including its W* component).
    protocol : "free" or "orthogonal"
    """

    W: np.ndarray
    status: np.ndarray
    stop_time: np.ndarray
    energy: np.ndarray
    q: np.ndarray
    mu: np.ndarray
    grad_norm: np.ndarray
    trajectory: Trajectory
    gradient_evaluations: int
    steps: int
    rejected_steps: int
    wall_seconds: float
    method: str = "flow"
    extra: dict = field(default_factory=dict)
    protocol: str = "free"

    @property
    def success_fraction(self) -> float:
        return float(np.mean(self.status == "success"))


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_dynamics`: ``result`` is the FlowResult so far, the replicas
    that had stopped with their status, the others "interrupted" at their last accepted
    state (stop_time is the time reached)."""

    def __init__(self, result: FlowResult):
        super().__init__("interrupted")
        self.result = result


@lru_cache(maxsize=None)
def rkc_coefficients(s: int) -> tuple[np.ndarray, ...]:
    """Coefficients of the damped (eps = 2/13) second-order s-stage RKC method.

    Returns arrays over stages j = 1..s: mu, nu, mu_tilde, gamma_tilde, with
    Y_j = (1 - mu_j - nu_j) Y_0 + mu_j Y_{j-1} + nu_j Y_{j-2} + h mu~_j F(Y_{j-1}) + h gamma~_j F(Y_0)
    (j = 1 uses only mu~_1). Chebyshev recurrences as in Sommeijer et al. (1997).
    """
    if s < 2:
        raise ValueError("RKC needs s >= 2")
    w0 = 1.0 + 2.0 / (13.0 * s * s)
    t1 = w0 * w0 - 1.0
    t2 = np.sqrt(t1)
    arg = s * np.log(w0 + t2)
    w1 = np.sinh(arg) * t1 / (np.cosh(arg) * s * t2 - w0 * np.sinh(arg))
    mu = np.zeros(s + 1)
    nu = np.zeros(s + 1)
    mut = np.zeros(s + 1)
    gat = np.zeros(s + 1)
    b_jm1 = b_jm2 = 1.0 / (2.0 * w0) ** 2
    mut[1] = w1 * b_jm1
    z_jm1, z_jm2, dz_jm1, dz_jm2, d2z_jm1, d2z_jm2 = w0, 1.0, 1.0, 0.0, 0.0, 0.0
    for j in range(2, s + 1):
        z_j = 2 * w0 * z_jm1 - z_jm2
        dz_j = 2 * w0 * dz_jm1 - dz_jm2 + 2 * z_jm1
        d2z_j = 2 * w0 * d2z_jm1 - d2z_jm2 + 4 * dz_jm1
        b_j = d2z_j / dz_j**2
        a_jm1 = 1.0 - z_jm1 * b_jm1
        mu[j] = 2 * w0 * b_j / b_jm1
        nu[j] = -b_j / b_jm2
        mut[j] = mu[j] * w1 / w0
        gat[j] = -a_jm1 * mut[j]
        z_jm2, z_jm1 = z_jm1, z_j
        dz_jm2, dz_jm1 = dz_jm1, dz_j
        d2z_jm2, d2z_jm1 = d2z_jm1, d2z_j
        b_jm2, b_jm1 = b_jm1, b_j
    return mu, nu, mut, gat


def rkc_stages(h_rho: float | np.ndarray, max_stages: int) -> int | np.ndarray:
    """Stage count whose stability interval (~0.653 s^2) covers h * spectral radius; for an
    array of h * rho (one per replica, independent batching) the counts elementwise."""
    s = np.minimum(max_stages, np.maximum(2, 1 + np.ceil(np.sqrt(1.0 + 1.54 * np.asarray(h_rho, float)))))
    return int(s) if s.ndim == 0 else s.astype(int)


def rkc_max_step(s: int, rho: np.ndarray) -> np.ndarray:
    """Largest h with h rho inside the s-stage stability interval (inverse of rkc_stages)."""
    return ((s - 1) ** 2 - 1.0) / (1.54 * rho)


class _Arrays:
    """Where the driver's (N, B) and (M, B) arrays live and how the landscape is evaluated
    on them: NumPy and :mod:`simulation.landscape` (this class: the arithmetic of every
    stored run), or an array-API library (:class:`simulation.backend.BackendArrays`). The
    (B,) control arrays of the drivers (times, step sizes, errors, statuses, the stop rules'
    energy, mu, gradient norm and q) are NumPy arrays in both: ``host`` brings a (B,) or
    (N, B) array of the library to NumPy, ``asarray`` sends a NumPy array to the library
    (here both are the identity). A point returned by ``evaluate`` has NumPy ``energy``,
    ``mu``, ``grad_norm`` and the library's ``grad``, ``rgrad``.

    ``xt``: the contiguous X.T of :func:`~simulation.landscape.evaluate` (independent
    batching), used by every evaluation.
    """

    xp = np

    def __init__(self, problem: Problem, loss: Loss, xt: np.ndarray | None = None):
        self.problem, self.loss, self.xt = problem, loss, xt
        self.dtype = np.dtype(problem.dtype)

    def evaluate(self, W):
        return evaluate(self.problem, W, self.loss, self.xt)

    def hessian_vector_product(self, W, V, point):
        return hessian_vector_product(self.problem, W, V, self.loss, point, self.xt)

    def norm(self, V):
        """Column norms, on the library."""
        return np.linalg.norm(V, axis=0)

    def sphere(self, W):
        return project_sphere(W)

    def overlap(self, W) -> np.ndarray:
        """q per column, NumPy (NaN without the teacher)."""
        return teacher_overlap(self.problem, W)

    def cast(self, W0):
        """A copy of the starts in the problem's dtype."""
        return W0.astype(self.dtype, copy=True)

    def host(self, a) -> np.ndarray:
        return a

    def asarray(self, a: np.ndarray):
        return a

    def columns(self, a, sel):
        """Columns ``sel`` (boolean mask or indices) of a (K, B) array."""
        return a[:, sel]

    def put_columns(self, a, sel, values):
        """A copy of ``a`` with columns ``sel`` replaced by ``values``."""
        a = a.copy()
        a[:, sel] = values
        return a

    def hstack(self, a, b):
        return np.hstack([a, b])

    def where(self, mask: np.ndarray, a, b):
        """Column b of ``a`` where mask[b], else of ``b``."""
        return np.where(mask, a, b)

    def subset(self, point: LandscapePoint, sel) -> LandscapePoint:
        return LandscapePoint(point.yhat[:, sel], point.energy[sel], point.grad[:, sel],
                              point.mu[sel], point.rgrad[:, sel])

    def concat(self, a: LandscapePoint, b: LandscapePoint) -> LandscapePoint:
        return LandscapePoint(np.hstack([a.yhat, b.yhat]), np.concatenate([a.energy, b.energy]),
                              np.hstack([a.grad, b.grad]), np.concatenate([a.mu, b.mu]),
                              np.hstack([a.rgrad, b.rgrad]))

    def merge(self, old: LandscapePoint, new: LandscapePoint, take_new: np.ndarray) -> LandscapePoint:
        if take_new.all():
            return new
        return LandscapePoint(*(np.where(take_new, b, a) for a, b in
                                ((old.yhat, new.yhat), (old.energy, new.energy), (old.grad, new.grad),
                                 (old.mu, new.mu), (old.rgrad, new.rgrad))))


def spectral_radius(problem: Problem, W: np.ndarray, point: LandscapePoint, loss: Loss,
                    V0: np.ndarray | None = None, iterations: int = 8,
                    xt: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Largest |eigenvalue| of the tangent Hessian per replica, by batched power iteration
    on the Hessian-vector product (one HVP per iteration covers all replicas).

    Returns (estimate with a 20% safety margin, last iterate for warm starts). ``xt``: the
    contiguous X.T of :func:`~simulation.landscape.evaluate`.
    """
    V = V0 if V0 is not None else _power_start(W.shape, W.dtype)
    return _power_iteration(_Arrays(problem, loss, xt), W, point, V, iterations)


def _power_start(shape: tuple[int, int], dtype) -> np.ndarray:
    """The power iteration's start vectors (seed 0), NumPy."""
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def _power_iteration(arrays: _Arrays, W, point, V, iterations: int):
    """:func:`spectral_radius` on ``arrays``: (estimate, NumPy (B,); last iterate, the library's)."""
    lam = np.zeros(W.shape[1])
    for _ in range(iterations):
        V = V / arrays.norm(V)
        HV = arrays.hessian_vector_product(W, V, point)
        lam = arrays.norm(HV)
        V = HV
    lam = arrays.host(lam)
    lam = np.where(np.isfinite(lam), lam, 0.0)  # a non-finite replica stops as diverged
    return 1.2 * lam + 1.0, V


class _Recorder:
    """Fills the Trajectory arrays at the grid times each replica reaches."""

    def __init__(self, grid: np.ndarray, B: int):
        self.t = grid
        shape = (len(grid), B)
        self.energy, self.q, self.mu, self.gn = (np.full(shape, np.nan) for _ in range(4))
        self.recorded = np.zeros(shape, bool)
        self.next = np.zeros(B, dtype=int)  # index of the next grid time per replica

    def next_time(self, idx: np.ndarray) -> np.ndarray:
        k = self.next[idx]
        return np.where(k < len(self.t), self.t[np.minimum(k, len(self.t) - 1)], np.inf)

    def record(self, idx, t, energy, q, mu, gn, exact: bool):
        """Record replicas idx at time t (exact: flow steps land on grid times;
        inexact (gd): record the first state at or after each grid time)."""
        for j, b in enumerate(idx):
            while self.next[b] < len(self.t) and (
                t[j] >= self.t[self.next[b]] * (1 - 1e-12) - 1e-300
            ):
                k = self.next[b]
                self.energy[k, b], self.q[k, b], self.mu[k, b], self.gn[k, b] = energy[j], q[j], mu[j], gn[j]
                self.recorded[k, b] = True
                self.next[b] += 1

    def trajectory(self) -> Trajectory:
        return Trajectory(self.t, self.energy, self.q, self.mu, self.gn, self.recorded)


def run_dynamics(
    problem: Problem,
    W0: np.ndarray,
    stop: StopRules = StopRules(),
    integrator: Integrator = Integrator(),
    loss: Loss | str | None = None,
    times: np.ndarray | None = None,
    progress: bool = False,
    protocol: str = "free",
    decide: Decider | None = None,
    batching: str = "shared",
    width: int | None = None,
) -> FlowResult:
    """Run B replicas (columns of W0) of gradient flow or projected GD to their stop rule.

    Parameters
    ----------
    problem : Problem
        The shared data set (its dtype sets the arithmetic precision). Without the teacher
        (``problem.w_star`` None) q is NaN and success is by energy only.
    W0 : (N, B) starts (rescaled to the sphere); every column finite and nonzero.
    stop, integrator : StopRules, Integrator
    loss : loss name or Loss (default quartic)
    times : grid of recording times (default ``log_time_grid(stop.t_max)``)
    progress : show a tqdm bar on stderr (only if the run lasts more than ~2 s)
    protocol : {"free", "orthogonal"}
        "orthogonal": the flow restricted to W orthogonal to W* (needs the teacher), see
        :func:`_run_orthogonal`.
    decide : callable, optional
        Extra stop rule (e.g. :class:`simulation.decide.EarlyDecider`), called before every
        step with the running replicas: ``decide(problem, loss, idx, t, W, point, q, n_eval)``
        returns ``(codes, evaluations)``, a status code per replica (``STATUS_RUNNING``, or
        ``STATUS_SUCCESS`` / ``STATUS_TRAPPED`` to stop it now) and the gradient-sized
        evaluations it spent (added to ``gradient_evaluations``). The flow's own rules
        (divergence above all) take precedence. Replicas it stopped are marked in
        ``extra["decided_early"]``. Not with the orthogonal protocol.
    batching : {"shared", "independent"}
        How a batch of replicas is integrated. "shared" (default, every stored run): one
        RKC stage count per step for the batch, set by its stiffest replica (max h rho),
        so a replica's steps depend on its batch mates. "independent": each replica its
        own stage count, step size and power-iteration start, so that each follows (to
        rounding) the run it would make alone; a stage's products cover only the replicas
        still in their stages, taken on a contiguous copy of X.T (:func:`evaluate` with
        ``xt``: one more M x N array in memory). ``gradient_evaluations`` counts the
        batch's products (its largest stage count per step), ``extra["replica_evaluations"]``
        each replica's own. RKC flow and free protocol only.
    width : int, optional
        Independent batching only: at most ``width`` replicas run at once; the others wait
        and enter (in column order, in groups of at least width/4) as running ones stop,
        so the products stay wide until the last starts (each replica's steps do not
        depend on when it entered). Default: all B at once.

    Returns
    -------
    FlowResult
        A replica whose energy, gradient or state becomes non-finite, or whose energy
        exceeds DIVERGENCE_FACTOR times its start energy, has status "diverged"; the
        others run on, so the call always ends.

    Raises
    ------
    InputError
        Bad shape, or a start that is not finite or has zero norm (naming the replicas).
    RunInterrupted
        On Ctrl-C, with the result so far.
    """
    check_protocol(protocol)
    _check_options(integrator, protocol, decide, batching, width)
    loss = get_loss(loss)
    W0 = np.asarray(W0)
    if protocol == "orthogonal":
        _check_start_shape(W0, problem.n)
        _check_starts(W0.astype(problem.dtype))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _run_orthogonal(problem, W0, stop, integrator, loss, times, progress)
    xt = np.ascontiguousarray(problem.X.T) if batching == "independent" else None
    return _run(_Arrays(problem, loss, xt), W0, stop, integrator, times, progress, decide, batching, width)


def _check_options(integrator: Integrator, protocol: str, decide, batching: str, width) -> None:
    """InputError for a combination of run_dynamics' options that does not exist."""
    if batching not in ("shared", "independent"):
        raise InputError(f"unknown batching {batching!r}; use 'shared' or 'independent'")
    if batching != "shared" and (protocol != "free" or integrator.method != "flow"):
        raise InputError("batching='independent' needs the RKC flow (method 'flow') and the free protocol")
    if width is not None and (batching != "independent" or not (isinstance(width, (int, np.integer)) and width >= 1)):
        raise InputError(f"width needs batching='independent' and an integer >= 1, got {width!r}")
    if decide is not None and protocol != "free":
        raise InputError("an early-decision rule (decide) needs the free protocol")


def _check_start_shape(W0, n: int) -> None:
    if len(W0.shape) != 2 or W0.shape[0] != n:
        raise InputError(f"starts must have shape (N={n}, B), got {tuple(W0.shape)}")


def _run(arrays: _Arrays, W0, stop: StopRules, integrator: Integrator, times, progress: bool,
         decide: Decider | None, batching: str, width: int | None) -> FlowResult:
    """The free protocol of :func:`run_dynamics` on ``arrays`` (NumPy, or an array-API
    library: :func:`simulation.backend.run_flow`), options already checked."""
    _check_start_shape(W0, arrays.problem.n)
    _check_starts(arrays.host(W0).astype(arrays.dtype))
    # overflow and 0/0 are detected (status "diverged"), not warned about at every step
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        times = log_time_grid(stop.t_max) if times is None else np.sort(np.asarray(times, float))
        times = times[times <= stop.t_max]
        W = arrays.sphere(arrays.cast(W0))
        if integrator.method == "flow":
            return _run_rkc(arrays, W, stop, integrator, times, progress, decide, batching, width)
        return _run_gd(arrays, W, stop, integrator, times, progress, decide)


def describe_replicas(indices: Sequence[int] | np.ndarray) -> str:
    """'replica 3' or 'replicas 0, 2, 5' (at most 10 listed) for messages."""
    indices = [int(b) for b in np.asarray(indices).ravel()]
    shown = ", ".join(map(str, indices[:10])) + (f", ... ({len(indices)} in all)" if len(indices) > 10 else "")
    return f"replica{'s' if len(indices) != 1 else ''} {shown}"


def _check_starts(W0: np.ndarray) -> None:
    """InputError naming the replicas whose start is not finite or cannot be put on the sphere."""
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.all(np.isfinite(W0), axis=0)
        if not finite.all():
            raise InputError(f"the start of {describe_replicas(np.flatnonzero(~finite))} is not finite")
        norm = np.linalg.norm(W0, axis=0)
    bad = ~((norm > 0) & np.isfinite(norm))
    if bad.any():
        raise InputError(f"the start of {describe_replicas(np.flatnonzero(bad))} has zero norm (or one too "
                         "large for its dtype): it cannot be put on the sphere")


def _stop_status(point: LandscapePoint, q, timed_out, stop: StopRules, grad_tol: float, e0,
                 stuck=False) -> np.ndarray:
    """Status codes of the replicas at ``point``; success beats the energy-growth rule,
    a non-finite point (or ``stuck``: a step that cannot be made) beats everything."""
    status = np.full(q.shape, STATUS_RUNNING)
    status[timed_out] = STATUS_TIMEOUT
    status[point.grad_norm <= grad_tol] = STATUS_TRAPPED
    status[point.energy > DIVERGENCE_FACTOR * e0] = STATUS_DIVERGED
    status[(np.abs(q) >= stop.success_overlap) | (point.energy <= stop.energy_tol)] = STATUS_SUCCESS
    finite = np.isfinite(point.energy) & np.isfinite(point.grad_norm) & np.isfinite(point.mu)
    status[~finite | stuck] = STATUS_DIVERGED
    return status


def _apply_decider(decide, status, problem, loss, idx, t, W, point, q, n_eval, early) -> tuple[np.ndarray, int]:
    """Status after the early-decision hook (the flow's own rules first); marks ``early``."""
    if decide is None:
        return status, 0
    running = status == STATUS_RUNNING
    if not running.any():
        return status, 0
    codes, spent = decide(problem, loss, idx, t, W, point, q, n_eval)
    codes = np.asarray(codes)
    take = running & ((codes == STATUS_SUCCESS) | (codes == STATUS_TRAPPED))
    early[idx[take]] = True
    return np.where(take, codes, status), int(spent)


def _progress_bar(progress: bool, B: int, method: str):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=B, desc=f"{method}: replicas stopped", unit="rep", delay=2.0, leave=False)


class _Finals:
    """Final per-replica values (NumPy), written when a replica stops."""

    def __init__(self, arrays: _Arrays, W):
        self.arrays = arrays
        self.W = arrays.host(W).copy()
        B = self.W.shape[1]
        self.status = np.full(B, STATUS_RUNNING)
        self.time, self.energy, self.q, self.mu, self.gn = (np.full(B, np.nan) for _ in range(5))

    def store(self, idx, W, status, t, point, q):
        self.W[:, idx] = self.arrays.host(W)
        self.status[idx] = status
        self.time[idx], self.energy[idx], self.q[idx] = t, point.energy, q
        self.mu[idx], self.gn[idx] = point.mu, point.grad_norm

    def stop(self, idx, W, status, t, point, q, sel):
        """Store the replicas ``sel`` (a mask over the running replicas idx)."""
        a = self.arrays
        self.store(idx[sel], a.columns(W, sel), status[sel] if np.ndim(status) else status, t[sel],
                   a.subset(point, sel), q[sel])


def _result(finals: _Finals, rec: _Recorder, n_eval, steps, rejected, t0, method, **extra) -> FlowResult:
    names = np.array([STATUS_NAMES[s] for s in finals.status])
    return FlowResult(finals.W, names, finals.time, finals.energy, finals.q, finals.mu, finals.gn,
                      rec.trajectory(), n_eval, steps, rejected, time.perf_counter() - t0, method, extra)


def _interrupted(finals: _Finals, snapshot, result) -> RunInterrupted:
    """The RunInterrupted of a loop stopped by Ctrl-C: the replicas still running in
    ``snapshot`` = (idx, W, t, point, q), the loop's last consistent state, are stored as
    "interrupted"; ``result()`` builds the FlowResult."""
    idx, W, t, point, q = snapshot
    running = finals.status[idx] == STATUS_RUNNING
    if running.any():
        finals.stop(idx, W, STATUS_INTERRUPTED, t, point, q, running)
    return RunInterrupted(result())


def _rkc_step_own(arrays: _Arrays, W, F0, hs: np.ndarray, S: np.ndarray):
    """One RKC step in which replica b takes its own S[b] stages (its own coefficients).

    Stage j evaluates only the replicas with S[b] >= j: the columns are ordered by stage
    count (descending) so that these are a prefix, and each replica's arithmetic is that
    of an s = S[b] step alone (docs/numerics.md, issue 17). ``hs``, ``S``: NumPy (B,).
    Returns the unprojected final stages (N, B) and the evaluations of the batch (max S).
    """
    B = W.shape[1]
    order = np.argsort(-S, kind="stable")
    inverse = np.empty(B, int)
    inverse[order] = np.arange(B)
    S_o = S[order]
    s_max = int(S_o[0])
    coef = np.zeros((4, s_max + 1, B))
    for s in np.unique(S_o):
        cols = S_o == s
        for k, c in enumerate(rkc_coefficients(int(s))):
            coef[k, : s + 1, cols] = c
    coef = arrays.asarray(coef.astype(arrays.dtype))
    mu_c, nu_c, mut_c, gat_c = (coef[k, ...] for k in range(4))
    W_o, F0_o, hs_o = arrays.columns(W, order), arrays.columns(F0, order), arrays.asarray(hs[order])
    final = arrays.xp.empty_like(W_o)
    Y_jm2 = W_o
    Y_jm1 = W_o + (mut_c[1, :] * hs_o) * F0_o
    k = B
    for j in range(2, s_max + 1):
        k_j = int(np.count_nonzero(S_o >= j))
        if k_j < k:  # replicas k_j..k finished at stage j - 1
            final[:, k_j:k] = Y_jm1[:, k_j:k]
            k = k_j
            Y_jm1, Y_jm2 = Y_jm1[:, :k], Y_jm2[:, :k]
        c = slice(0, k)
        F_jm1 = -arrays.evaluate(Y_jm1).rgrad
        Y_j = ((1 - mu_c[j, c] - nu_c[j, c]) * W_o[:, c] + mu_c[j, c] * Y_jm1 + nu_c[j, c] * Y_jm2
               + hs_o[c] * (mut_c[j, c] * F_jm1 + gat_c[j, c] * F0_o[:, c]))
        Y_jm2, Y_jm1 = Y_jm1, Y_j
    final[:, :k] = Y_jm1
    return arrays.columns(final, inverse), s_max


def _rkc_step_shared(arrays: _Arrays, W, F0, hs: np.ndarray, s: int):
    """One s-stage RKC step of the batch (every replica the same stages). Kept apart from
    :func:`_rkc_step_own`: run through it (the same arithmetic on reordered copies) the
    stored runs change in the last bits. Returns the unprojected final stage (N, B)."""
    # stages in the problem's precision (float64 coefficients would upcast float32); the
    # coefficients as Python floats (exact) so that any library takes them
    mu_c, nu_c, mut_c, gat_c = (c.astype(arrays.dtype) for c in rkc_coefficients(s))
    hs = arrays.asarray(hs)
    Y_jm2 = W
    Y_jm1 = W + (float(mut_c[1]) * hs) * F0
    for j in range(2, s + 1):
        F_jm1 = -arrays.evaluate(Y_jm1).rgrad
        Y_j = (float(1 - mu_c[j] - nu_c[j]) * W + float(mu_c[j]) * Y_jm1 + float(nu_c[j]) * Y_jm2
               + hs * (float(mut_c[j]) * F_jm1 + float(gat_c[j]) * F0))
        Y_jm2, Y_jm1 = Y_jm1, Y_j
    return Y_jm1


def _run_rkc(arrays: _Arrays, W, stop, integrator, times, progress, decide=None, batching="shared",
             width=None) -> FlowResult:
    """The adaptive RKC driver, on ``arrays`` (see :class:`_Arrays`): the (N, B) states,
    stages and gradients on its library, the per-replica control in NumPy."""
    t_start = time.perf_counter()
    B = W.shape[1]
    dtype = arrays.dtype
    rtol, atol = integrator.tolerances(dtype)
    grad_tol = stop.gradient_tolerance(dtype)
    rec, finals = _Recorder(times, B), _Finals(arrays, W)
    bar = _progress_bar(progress, B, "flow")

    own = batching == "independent"
    width = B if width is None else min(int(width), B)
    W_all, queue = W, np.arange(width, B)  # queue: starts not yet admitted (independent batching)
    admit_min = max(1, width // 4)  # admitted in groups of at least this many (fewer, wider products)
    idx = np.arange(width)  # replicas still running; W, F, t, h below are restricted to them
    W = arrays.columns(W_all, idx)
    t = np.zeros(width)
    point = arrays.evaluate(W)
    e0 = np.full(B, np.nan)  # start energies of all B replicas (the growth rule)
    e0[idx] = point.energy
    q = arrays.overlap(W)
    n_eval, steps, rejected = 1, 0, 0
    rec.record(idx, t, point.energy, q, point.mu, point.grad_norm, exact=True)
    if own:  # every replica starts as it would alone: same power-iteration start, own step
        V0 = _power_start((W.shape[0], 1), dtype)
        rho, V_power = _power_iteration(arrays, W, point, arrays.asarray(np.repeat(V0, width, axis=1)), 8)
        h = np.minimum(1e-3, 1.0 / rho)
        since_own = np.zeros(width, int)  # steps since each replica's last spectral radius
    else:
        rho, V_power = _power_iteration(arrays, W, point, arrays.asarray(_power_start(W.shape, dtype)), 8)
        h = np.full(B, min(1e-3, 1.0 / rho.max()))
    n_eval += 8
    failures = np.zeros(width, dtype=int)  # consecutive steps whose trial state was not finite
    since_rho = 0
    step_log = []  # (earliest active time, median step, stages, active replicas) per step
    early = np.zeros(B, bool)
    own_evals = np.full(B, n_eval)  # evaluations each replica took part in

    def result():
        return _result(finals, rec, n_eval, steps, rejected, t_start, "flow",
                       step_log=np.array(step_log).reshape(-1, 4), decided_early=early,
                       replica_evaluations=own_evals)

    snapshot = (idx, W, t, point, q)
    try:
        while idx.size or queue.size:
            if queue.size and (not idx.size or width - idx.size >= admit_min):
                # refill: new starts enter as they would start alone (own evaluation, power
                # iteration, step size), then run with the others
                new, queue = queue[:width - idx.size], queue[width - idx.size:]
                Wn = arrays.columns(W_all, new)
                pn = arrays.evaluate(Wn)
                e0[new] = pn.energy
                qn = arrays.overlap(Wn)
                rec.record(new, np.zeros(new.size), pn.energy, qn, pn.mu, pn.grad_norm, exact=True)
                rho_n, V_n = _power_iteration(arrays, Wn, pn, arrays.asarray(np.repeat(V0, new.size, axis=1)), 8)
                n_eval += 9
                idx, W, t = np.concatenate([idx, new]), arrays.hstack(W, Wn), np.concatenate([t, np.zeros(new.size)])
                h = np.concatenate([h, np.minimum(1e-3, 1.0 / rho_n)])
                q, rho, V_power = np.concatenate([q, qn]), np.concatenate([rho, rho_n]), arrays.hstack(V_power, V_n)
                failures = np.concatenate([failures, np.zeros(new.size, int)])
                since_own = np.concatenate([since_own, np.zeros(new.size, int)])
                point = arrays.concat(point, pn)
            snapshot = (idx, W, t, point, q)
            stuck = ((failures >= NONFINITE_RETRIES) | ~(t + h > t)  # the step underflowed or is NaN
                     | (stop.t_max - t > MAX_STEPS * rkc_max_step(integrator.max_stages, rho)))
            status = _stop_status(point, q, t >= stop.t_max * (1 - 1e-12), stop, grad_tol, e0[idx], stuck)
            status, spent = _apply_decider(decide, status, arrays.problem, arrays.loss, idx, t, W, point, q,
                                           n_eval, early)
            n_eval += spent
            own_evals[idx] += spent
            done = status != STATUS_RUNNING
            if done.any():
                finals.stop(idx, W, status, t, point, q, done)
                # stopped replicas are removed (columns taken by index on other libraries)
                keep = ~done
                idx, t, h, q, rho = idx[keep], t[keep], h[keep], q[keep], rho[keep]
                W, V_power = arrays.columns(W, keep), arrays.columns(V_power, keep)
                failures = failures[keep]
                if own:
                    since_own = since_own[keep]
                point = arrays.subset(point, keep)
                if bar is not None:
                    bar.update(int(done.sum()))
                if not idx.size:
                    continue  # ends, or admits the next starts
            if own:  # each replica re-estimates after 25 of its own steps, as alone
                due = since_own >= 25
                if due.all():
                    rho, V_power = _power_iteration(arrays, W, point, V_power, 4)
                elif due.any():
                    rho_due, V_due = _power_iteration(arrays, arrays.columns(W, due), arrays.subset(point, due),
                                                      arrays.columns(V_power, due), 4)
                    rho = rho.copy()
                    rho[due] = rho_due
                    V_power = arrays.put_columns(V_power, due, V_due)
                if due.any():
                    n_eval += 4
                    own_evals[idx[due]] += 4
                    since_own[due] = 0
            elif since_rho >= 25:
                rho, V_power = _power_iteration(arrays, W, point, V_power, 4)
                n_eval += 4
                own_evals[idx] += 4
                since_rho = 0

            # step, truncated to land on the next recording time and on t_max
            t_target = np.minimum(rec.next_time(idx), stop.t_max)
            h_step = np.minimum(h, t_target - t)
            F0 = -point.rgrad
            if own:  # each replica its own stage count (a stiff one no longer sets everyone's)
                S = rkc_stages(h_step * rho, integrator.max_stages)
                h_step = np.minimum(h_step, rkc_max_step(S, rho))
                Y_final, s = _rkc_step_own(arrays, W, F0, h_step.astype(dtype), S)
            else:
                S = s = rkc_stages(float(np.max(h_step * rho)), integrator.max_stages)
                h_step = np.minimum(h_step, rkc_max_step(s, rho))
                Y_final = _rkc_step_shared(arrays, W, F0, h_step.astype(dtype), s)
            W_new = arrays.sphere(Y_final)
            new_point = arrays.evaluate(W_new)
            n_eval += s
            own_evals[idx] += S
            steps += 1
            since_rho += 1
            if own:
                since_own += 1
            step_log.append((float(np.min(t)), float(np.median(h_step)), s, idx.size))

            # embedded error estimate in float64 (h_step is), rms over the components
            xp = arrays.xp
            est = 0.8 * (W - W_new) + 0.4 * arrays.asarray(h_step) * (F0 - new_point.rgrad)
            scale = atol + rtol * xp.maximum(xp.abs(W), xp.abs(W_new))
            err = np.sqrt(arrays.host(xp.mean((est / scale) ** 2, axis=0)))
            finite = np.isfinite(err)  # a non-finite trial state: rejected, the step cut tenfold
            err = np.where(finite, err, np.inf)
            failures = np.where(finite, 0, failures + 1)
            accept = err <= 1.0
            rejected += int((~accept).sum())
            fac = np.clip(0.8 * np.maximum(err, 1e-10) ** (-1.0 / 3.0), 0.1, 5.0)
            truncated = h_step < h
            h = np.where(accept & truncated, np.maximum(h, h_step * fac), h_step * fac)

            W = arrays.where(accept, W_new, W)
            t = np.where(accept, t + h_step, t)
            point = arrays.merge(point, new_point, accept)
            q = arrays.overlap(W)
            if accept.any():
                a = np.flatnonzero(accept)
                rec.record(idx[a], t[a], point.energy[a], q[a], point.mu[a], point.grad_norm[a], exact=True)
    except KeyboardInterrupt:
        finals.status[queue] = STATUS_INTERRUPTED  # never admitted: stop_time NaN
        raise _interrupted(finals, snapshot, result) from None
    finally:
        if bar is not None:
            bar.close()
    return result()


def _run_gd(arrays: _Arrays, W, stop, integrator, times, progress, decide=None) -> FlowResult:
    t_start = time.perf_counter()
    B = W.shape[1]
    lr = integrator.lr
    lr_w = float(arrays.dtype.type(lr))  # the learning rate in the states' precision
    grad_tol = stop.gradient_tolerance(arrays.dtype)
    rec, finals = _Recorder(times, B), _Finals(arrays, W)
    bar = _progress_bar(progress, B, "gd")
    idx = np.arange(B)
    k = 0
    point = arrays.evaluate(W)
    e0 = point.energy  # start energies of all B replicas (the growth rule)
    n_eval = 1
    early = np.zeros(B, bool)
    snapshot = (idx, W, np.zeros(B), point, arrays.overlap(W))
    try:
        while True:
            # time k lr, never past t_max (k lr can exceed it by rounding)
            t = np.full(idx.size, min(k * lr, stop.t_max))
            q = arrays.overlap(W)
            snapshot = (idx, W, t, point, q)
            rec.record(idx, t, point.energy, q, point.mu, point.grad_norm, exact=False)
            # timeout at the last step whose time stays within t_max
            timed_out = np.full(idx.size, (k + 1) * lr > stop.t_max * (1 + 1e-12))
            status = _stop_status(point, q, timed_out, stop, grad_tol, e0[idx])
            status, spent = _apply_decider(decide, status, arrays.problem, arrays.loss, idx, t, W, point, q,
                                           n_eval, early)
            n_eval += spent
            done = status != STATUS_RUNNING
            if done.any():
                finals.stop(idx, W, status, t, point, q, done)
                idx, W = idx[~done], arrays.columns(W, ~done)
                point = arrays.subset(point, ~done)
                if bar is not None:
                    bar.update(int(done.sum()))
            if not idx.size:
                break
            W = arrays.sphere(W - lr_w * point.grad)
            point = arrays.evaluate(W)
            n_eval += 1
            k += 1
    except KeyboardInterrupt:
        raise _interrupted(finals, snapshot, lambda: _result(finals, rec, n_eval, k, 0, t_start, "gd",
                                                             decided_early=early)) from None
    finally:
        if bar is not None:
            bar.close()
    return _result(finals, rec, n_eval, k, 0, t_start, "gd", decided_early=early)


def _run_orthogonal(problem, W0, stop, integrator, loss, times, progress) -> FlowResult:
    """The flow restricted to W orthogonal to W* (simulation.protocols), lifted back.

    The starts are projected on the complement of W* and put on the sphere; the reduced
    flow runs with the stop rules given except the overlap rule (q = 0 here). Returned:
    the lifted states (float64, q = 0 to rounding); final energy, mu and q evaluated in
    float64 on the original problem; grad_norm the rms of the gradient's component in the
    complement, |P_u g|/sqrt(N), which the trapped rule tested (through the reduced
    problem: equal up to the factor N/(N-1)); the full |g|/sqrt(N) in
    ``extra["full_grad_norm"]``. Times are the reduced flow's (t'' = t (N-1)/N of the
    projected flow); the trajectory's energy, mu and grad_norm are rescaled to the
    original problem and its q is 0 wherever recorded. A start parallel to W* (no
    component in the complement) is an InputError.
    """
    comp = OrthogonalComplement.of(problem)
    W0r = comp.reduce(W0)
    parallel = ~np.all(np.isfinite(W0r), axis=0)
    if parallel.any():
        raise InputError(f"the start of {describe_replicas(np.flatnonzero(parallel))} is parallel to W*: "
                         "it has no component orthogonal to the teacher")
    try:
        reduced = run_dynamics(comp.problem, W0r, replace(stop, success_overlap=1.0), integrator,
                               loss, times, progress)
    except RunInterrupted as exc:
        raise RunInterrupted(_lift(problem, comp, exc.result, loss)) from None
    return _lift(problem, comp, reduced, loss)


def _lift(problem: Problem, comp: OrthogonalComplement, reduced: FlowResult, loss: Loss) -> FlowResult:
    """The result of the reduced orthogonal flow on the original problem (see _run_orthogonal)."""
    W = comp.lift(reduced.W)
    final = evaluate(problem.astype("float64"), W, loss)
    n = problem.n
    complement_grad_norm = np.linalg.norm(comp.complement_component(final.rgrad), axis=0) / np.sqrt(n)
    tr, scale = reduced.trajectory, comp.scale
    trajectory = Trajectory(tr.t, tr.energy * scale, np.where(tr.recorded, 0.0, np.nan), tr.mu * scale,
                            tr.grad_norm * scale, tr.recorded)
    extra = dict(reduced.extra, full_grad_norm=final.grad_norm)
    return replace(reduced, W=W, energy=final.energy, q=teacher_overlap(problem.astype("float64"), W),
                   mu=final.mu, grad_norm=complement_grad_norm, trajectory=trajectory, extra=extra,
                   protocol="orthogonal")
