"""Time-dependent Hessian along a gradient-flow trajectory (issue 5, docs/theory.md §4).

At recorded times t_i the state W(t_i) gives an empirical law of (yhat, y, s)
(:func:`simulation.probes.state_measure`), which is fed to the random-matrix core
(:func:`theory.spectrum.spectrum_summary`: bulk edge, isolated eigenvalue lambda_iso(t),
its squared overlap with e, BBP residual; docs/theory.md eqs. 2.3-2.9) and compared with
Lanczos at the same state (:func:`simulation.probes.lowest_eigenpairs`).

States at the recording times come from :func:`simulation.flow.run_dynamics` run segment
by segment (segment i runs from t_i to t_{i+1}; the stop rules are disabled inside a
segment, so every state is the flow at exactly t_i). Restarting the integrator costs a
few gradient evaluations per segment (a fresh step size and spectral radius), nothing else.

Command: ``python -m simulation track --n N --alpha A --seed S [--times ...] [--k K] [--json]``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from scipy.special import erfcinv

from theory.errors import ConvergenceError, InputError
from theory.io import integer_arg, number_arg
from theory.loss import Loss, get_loss
from theory.measure import CurvatureLaw, Measure
from theory.spectrum import SpectrumSummary, bulk_lower_edge, inverse_stieltjes, spectrum_summary

from .data import Problem, make_problem, random_starts, resolve_dtype
from .flow import Integrator, StopRules, run_dynamics
from .landscape import evaluate
from .probes import lowest_eigenpairs, state_measure

__all__ = ["TrackPoint", "Track", "SplitTheory", "T0Prediction", "DEFAULT_TIMES", "check_times",
           "law_at_state", "theory_at_state", "split_extreme_atoms", "outlier_eigenvalues", "split_theory",
           "states_at_times", "track", "growth_exponent", "spike_of", "t0_label_cutoff", "t0_cutoff_law",
           "t0_prediction", "plot_track", "add_track_parser", "cmd_track"]

#: Default recording times (flow time): t = 0 and a roughly logarithmic grid.
DEFAULT_TIMES = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
#: A Lanczos eigenvector counts as the spike when its squared overlap with e exceeds this.
SPIKE_OVERLAP2 = 0.05
#: Above this |q| the state is informed: the growth exponent (eq. 4.6) stops there.
Q_INFORMED = 0.3


@dataclass(frozen=True)
class TrackPoint:
    """Theory (empirical law -> random-matrix core) and Lanczos at one time of a trajectory.

    Attributes
    ----------
    t, energy, q, mu, grad_norm : float
        Flow time, e = L/N, teacher overlap, Lagrange multiplier (eq. 1.3), rms Riemannian gradient.
    edge_theory : float
        Bulk lower edge lambda(rho_e) of the state's full empirical law (eqs. 2.3-2.5).
    edge_set_by_lowest_atom : bool
        True when that edge exists only because of the lowest atom (extreme measurement, §4.2).
    iso_theory : float or None
        Isolated eigenvalue lambda_iso of the full empirical law (eqs. 2.6-2.7); None below BBP.
    overlap2_theory : float
        Squared overlap of its eigenvector with e (eq. 2.8); 0.0 below BBP.
    bbp_residual : float
        Eq. 2.9 for the full law (> 0 iff an isolated eigenvalue exists).
    theory_converged : bool
    n_split : int
        Extreme atoms split off the law (:func:`split_extreme_atoms`, docs/theory.md §4.2).
    edge_theory_split, iso_theory_split, overlap2_theory_split, bbp_residual_split
        The same for the law without the split atoms (eq. 4.3).
    outliers_theory : tuple of float
        Eigenvalues carried by the split atoms (eq. 4.2), ascending.
    lanczos_lowest, lanczos_overlap2 : tuple of float
        The k lowest tangent-Hessian eigenvalues and their squared overlaps with e
        (empty tuples when Lanczos was not run).
    lanczos_residual : float or None
        Largest |H v - lambda v| of the Lanczos pairs.
    lanczos_spike, lanczos_spike_overlap2 : float or None
        Among the k lowest, the eigenvalue whose eigenvector has the largest overlap with e,
        if that overlap2 exceeds ``SPIKE_OVERLAP2`` (else None).
    """

    t: float
    energy: float
    q: float
    mu: float
    grad_norm: float
    edge_theory: float
    edge_set_by_lowest_atom: bool
    iso_theory: float | None
    overlap2_theory: float
    bbp_residual: float
    theory_converged: bool
    n_split: int = 0
    edge_theory_split: float | None = None
    iso_theory_split: float | None = None
    overlap2_theory_split: float = 0.0
    bbp_residual_split: float | None = None
    outliers_theory: tuple = ()
    lanczos_lowest: tuple = ()
    lanczos_overlap2: tuple = ()
    lanczos_residual: float | None = None
    lanczos_spike: float | None = None
    lanczos_spike_overlap2: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists; non-finite numbers raise ConvergenceError)."""
        d = asdict(self)
        for key in ("outliers_theory", "lanczos_lowest", "lanczos_overlap2"):
            d[key] = list(d[key])
        for key, value in d.items():
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise ConvergenceError(f"non-finite {key} = {value} at t = {self.t:g}")
        return d


@dataclass(frozen=True)
class Track:
    """A tracked trajectory: the points in time order plus what was run.

    Attributes
    ----------
    n, alpha, seed : problem parameters (seed None for user data)
    dtype : flow precision
    points : tuple of TrackPoint
    growth_exponent : float
        Lambda = integral of max(0, -lambda_iso(t)) dt (eq. 4.6) with lambda_iso of the
        split law, over the recorded times while |q| < ``Q_INFORMED`` (trapezoid rule;
        intervals without an isolated eigenvalue count 0).
    growth_exponent_raw : float
        The same with lambda_iso of the full empirical law.
    log_q_growth : float
        log(|q(t_end)| / |q(0)|) over the same stretch, the measured counterpart.
    t_end : float
        End of that stretch (last recorded time with |q| < Q_INFORMED).
    wall_seconds : float
    """

    n: int
    alpha: float
    seed: int | None
    dtype: str
    points: tuple
    growth_exponent: float
    growth_exponent_raw: float
    log_q_growth: float
    t_end: float
    wall_seconds: float

    def to_dict(self) -> dict:
        return dict(n=self.n, alpha=self.alpha, seed=self.seed, dtype=self.dtype,
                    growth_exponent=self.growth_exponent, growth_exponent_raw=self.growth_exponent_raw,
                    log_q_growth=self.log_q_growth, t_end=self.t_end,
                    wall_seconds=round(self.wall_seconds, 3), points=[p.to_dict() for p in self.points])


def check_times(times) -> np.ndarray:
    """Recording times as a float array: finite, >= 0, strictly increasing, at least one.

    Raises InputError otherwise.
    """
    try:
        arr = np.asarray(times, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"times must be numbers, got {times!r}") from None
    if arr.size == 0:
        raise InputError("times is empty")
    if not np.all(np.isfinite(arr)):
        raise InputError("times must be finite")
    if arr[0] < 0:
        raise InputError(f"times must be >= 0, got {arr[0]:g}")
    if np.any(np.diff(arr) <= 0):
        raise InputError("times must be strictly increasing")
    return arr


def law_at_state(problem: Problem, w, loss: Loss | str | None = None) -> Measure:
    """Empirical law of (yhat, y, s) at the state w (docs/theory.md §2.1), with its alpha and mu."""
    sm = state_measure(problem, w, loss)
    return Measure.empirical(sm.yhat, sm.y, sm.s, alpha=sm.alpha, mu=sm.mu, loss=sm.loss)


@dataclass(frozen=True)
class SplitTheory:
    """Random-matrix prediction for a finite-M empirical law, extreme atoms split off.

    Attributes
    ----------
    summary : SpectrumSummary
        Edge, isolated eigenvalue and overlap^2 of the law without the split atoms
        (docs/theory.md eqs. 2.3-2.9; eq. 4.3).
    outliers : tuple of float
        Predicted eigenvalues carried by the split atoms, eq. (4.2): lambda_rest(1/D_j)
        for each split atom j whose 1/D_j lies above the rest's rho_e (ascending).
    outlier_D : tuple of float
        The curvatures D_j of the split atoms (ascending).
    """

    summary: SpectrumSummary
    outliers: tuple
    outlier_D: tuple

    @property
    def n_split(self) -> int:
        return len(self.outlier_D)


def split_extreme_atoms(law: CurvatureLaw, max_split: int | None = None) -> tuple[CurvatureLaw, np.ndarray]:
    """Remove the lowest-D atoms of an equal-weight law while they alone set the edge.

    The empirical law of M atoms has a lower tail of D controlled by a few extreme
    measurements (at t = 0, D_min ~ -4 log M). While the root of eq. 2.4 exists only
    because of the lowest atom (``set_by_lowest_atom``), that atom is an outlier, not part
    of the bulk: it is removed and the test repeated (docs/theory.md §4.2).

    Parameters
    ----------
    law : CurvatureLaw with equal weights (an empirical law)
    max_split : int or None
        At most this many atoms are removed (default: ceil(sqrt(M))).

    Returns
    -------
    (rest, D_split): the law of the remaining atoms, with alpha scaled by
    (M - k)/M (same N) and the same mu, and the removed curvatures (ascending).
    """
    D, s = np.asarray(law.D), np.asarray(law.s)
    m = D.size
    if not np.allclose(law.weights, 1.0 / m, rtol=1e-9, atol=0):
        raise InputError("split_extreme_atoms needs an empirical (equal-weight) law")
    cap = int(math.ceil(math.sqrt(m))) if max_split is None else int(max_split)
    order = np.argsort(D, kind="stable")
    k = 0
    rest = law
    while k < min(cap, m - 2):
        edge = bulk_lower_edge(rest)
        if not (edge.set_by_lowest_atom and rest.D.min() < 0):
            break
        k += 1
        keep = order[k:]
        rest = CurvatureLaw.from_samples(D[keep], s[keep], alpha=law.alpha * (m - k) / m, mu=law.mu)
    return rest, np.sort(D[order[:k]])


def outlier_eigenvalues(rest, D_split) -> np.ndarray:
    """Eigenvalues carried by split atoms, eq. (4.2): lambda = lambda_rest(rho = 1/D_j).

    A rank-one term (D_j / N) a_j a_j^T added to the rest gives an eigenvalue below the
    rest's spectrum where g_rest(lambda) = 1/D_j, i.e. lambda = inverse_stieltjes(1/D_j)
    of the rest (eq. 2.3); it exists iff rho_e(rest) < 1/D_j < 0. Returns those
    eigenvalues, ascending (atoms absorbed in the bulk are dropped).
    """
    D_split = np.asarray(D_split, dtype=np.float64)
    if D_split.size == 0:
        return np.empty(0)
    edge = bulk_lower_edge(rest)
    rho = 1.0 / D_split[D_split < 0]
    rho = rho[rho > edge.rho_edge]
    if rho.size == 0:
        return np.empty(0)
    return np.sort(np.atleast_1d(inverse_stieltjes(rho, rest)))


def split_theory(measure, max_split: int | None = None) -> SplitTheory:
    """Edge / isolated eigenvalue / overlap^2 of the law without its extreme atoms, plus
    the outliers those atoms carry (docs/theory.md §4.2, eqs. 4.2-4.3)."""
    law = measure.curvature_law()
    rest, D_split = split_extreme_atoms(law, max_split)
    return SplitTheory(summary=spectrum_summary(rest), outliers=tuple(float(x) for x in outlier_eigenvalues(rest, D_split)),
                       outlier_D=tuple(float(x) for x in D_split))


def theory_at_state(problem: Problem, w, loss: Loss | str | None = None) -> SpectrumSummary:
    """Random-matrix prediction (eqs. 2.3-2.9) for the Hessian at w from its empirical law."""
    return spectrum_summary(law_at_state(problem, w, loss))


def spike_of(eigenvalues, overlap2, threshold: float = SPIKE_OVERLAP2) -> tuple[float | None, float | None]:
    """(eigenvalue, overlap2) of the eigenvector most aligned with e, if overlap2 > threshold."""
    ov = np.asarray(overlap2, dtype=np.float64)
    if ov.size == 0:
        return None, None
    i = int(np.argmax(ov))
    if not ov[i] > threshold:
        return None, None
    return float(np.asarray(eigenvalues)[i]), float(ov[i])


def states_at_times(problem: Problem, w0, times, loss: Loss | str | None = None,
                    integrator: Integrator = Integrator()):
    """Yield (t_i, W(t_i)) along the flow from w0 (N,) or (N, B) at each recording time.

    The flow runs segment by segment with :func:`simulation.flow.run_dynamics`
    (t_max = t_{i+1} - t_i, success/trapping rules disabled), so the yielded state is the
    flow at exactly t_i. ``times`` must pass :func:`check_times`; t = 0 yields w0 itself
    (rescaled to the sphere).
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


def growth_exponent(times, iso, q=None, q_informed: float = Q_INFORMED) -> tuple[float, float]:
    """Lambda = integral of max(0, -lambda_iso(t')) dt' (docs/theory.md eq. 4.6).

    Trapezoid rule on the recorded grid; a missing isolated eigenvalue (None, below BBP)
    counts as rate 0, so only the informative stretches contribute. With ``q`` given, the
    integral stops at the last recorded time before |q| first reaches ``q_informed`` (the
    linear growth regime of eq. 4.5 is over).

    Returns
    -------
    (Lambda, t_end)
    """
    t = check_times(times)
    if len(iso) != t.size:
        raise InputError(f"iso has {len(iso)} values but times has {t.size}")
    rate = np.array([0.0 if v is None else max(0.0, -float(v)) for v in iso])
    last = t.size - 1
    if q is not None:
        big = np.flatnonzero(np.abs(np.asarray(q, dtype=np.float64)) >= q_informed)
        if big.size:
            last = max(int(big[0]) - 1, 0)
    if last < 1:
        return 0.0, float(t[0])
    tt, rr = t[:last + 1], rate[:last + 1]
    return float(np.sum(0.5 * (rr[1:] + rr[:-1]) * np.diff(tt))), float(tt[-1])


def track(problem: Problem, w0, times=DEFAULT_TIMES, *, k: int = 4, loss: Loss | str | None = None,
          integrator: Integrator = Integrator(), lanczos: bool = True, lanczos_tol: float = 1e-8,
          seed: int | None = None, progress=None) -> Track:
    """Theory vs Lanczos along the flow from w0 at the recording times.

    Parameters
    ----------
    problem : Problem (with the teacher)
    w0 : (N,) start
    times : strictly increasing recording times >= 0
    k : number of lowest Lanczos eigenpairs (1 <= k < N-1)
    integrator : flow discretisation (its precision is the problem's dtype)
    lanczos : run Lanczos at each time (False: theory only, much cheaper at large N)
    lanczos_tol : ARPACK tolerance
    seed : recorded in the result (default: the problem's seed)
    progress : callable(i) called after each time (e.g. a tqdm update), or None

    Returns
    -------
    Track
    """
    if problem.w_star is None:
        raise InputError("tracking needs the teacher W* (overlaps and the direction e)")
    loss = get_loss(loss)
    times = check_times(times)
    if lanczos and not (isinstance(k, (int, np.integer)) and 1 <= k < problem.n - 1):
        raise InputError(f"k must be between 1 and N-2 = {problem.n - 2}, got {k!r}")
    t_start = time.perf_counter()
    p64 = problem.astype("float64")
    points = []
    for i, (t, w) in enumerate(states_at_times(problem, w0, times, loss, integrator)):
        w = np.asarray(w, dtype=np.float64)
        w = w * (np.sqrt(problem.n) / np.linalg.norm(w))
        pt = evaluate(p64, w[:, None], loss)
        law = law_at_state(p64, w, loss)
        summ = spectrum_summary(law)
        split = split_theory(law)
        lz = dict()
        if lanczos:
            probe = lowest_eigenpairs(p64, w, int(k), loss, tol=lanczos_tol)
            spike, spike_ov = spike_of(probe.eigenvalues, probe.overlap2)
            lz = dict(lanczos_lowest=tuple(float(x) for x in probe.eigenvalues),
                      lanczos_overlap2=tuple(float(x) for x in probe.overlap2),
                      lanczos_residual=float(np.max(probe.residuals)),
                      lanczos_spike=spike, lanczos_spike_overlap2=spike_ov)
        points.append(TrackPoint(
            t=t, energy=float(pt.energy[0]), q=float(p64.w_star @ w / problem.n), mu=float(pt.mu[0]),
            grad_norm=float(pt.grad_norm[0]), edge_theory=float(summ.bulk_edge),
            edge_set_by_lowest_atom=bool(summ.set_by_lowest_atom), iso_theory=summ.isolated_eigenvalue,
            overlap2_theory=float(summ.overlap2), bbp_residual=float(summ.residuals.bbp),
            theory_converged=bool(summ.converged and split.summary.converged), n_split=split.n_split,
            edge_theory_split=float(split.summary.bulk_edge), iso_theory_split=split.summary.isolated_eigenvalue,
            overlap2_theory_split=float(split.summary.overlap2),
            bbp_residual_split=float(split.summary.residuals.bbp), outliers_theory=split.outliers, **lz))
        if progress is not None:
            progress(i)
    q = [p.q for p in points]
    lam, t_end = growth_exponent(times, [p.iso_theory_split for p in points], q)
    lam_raw, _ = growth_exponent(times, [p.iso_theory for p in points], q)
    i_end = int(np.searchsorted(times, t_end))
    q0, q1 = abs(points[0].q), abs(points[i_end].q)
    log_growth = math.log(q1 / q0) if q0 > 0 and q1 > 0 else 0.0
    return Track(n=problem.n, alpha=problem.alpha, seed=seed if seed is not None else problem.seed,
                 dtype=problem.dtype.name, points=tuple(points), growth_exponent=lam,
                 growth_exponent_raw=lam_raw, log_q_growth=log_growth, t_end=t_end,
                 wall_seconds=time.perf_counter() - t_start)


# ---------------------------------------------------------------------------- t = 0
def t0_label_cutoff(m: int) -> float:
    """Finite-M cutoff of the labels at t = 0, docs/theory.md eq. (4.1): y_c with
    M P(|y| > y_c) = 1, i.e. y_c = sqrt(2) erfcinv(1/M); y_c^2 = 2 log M - log log M - log pi + o(1)."""
    if not (isinstance(m, (int, np.integer)) and m >= 2):
        raise InputError(f"M must be an integer >= 2, got {m!r}")
    return float(math.sqrt(2.0) * erfcinv(1.0 / m))


def t0_cutoff_law(alpha: float, m: int, n_nodes: int = 80, loss: Loss | str | None = None) -> Measure:
    """The t = 0 law with its finite-M cutoff, docs/theory.md eq. (4.2).

    yhat ~ N(0, 1) independent of y ~ N(0, 1) conditioned on |y| <= y_c(M)
    (:func:`t0_label_cutoff`), s = y (q = 0): a tensor quadrature of ``n_nodes``
    Gauss-Hermite nodes in yhat and ``n_nodes`` Gauss-Legendre nodes on [-y_c, y_c] in y
    (weights times the Gaussian density, normalised). mu is eq. 1.3 on this law
    (4 alpha + O(y_c e^{-y_c^2/2}) for the quartic loss).

    Without the cutoff, D = 6 yhat^2 - 2 y^2 is unbounded below and the lower edge of the
    N -> infinity spectrum is at -infinity; with it the edge and the lowest eigenvalues
    move like -c log M (eq. 4.3).
    """
    y_c = t0_label_cutoff(m)
    if not (isinstance(n_nodes, (int, np.integer)) and n_nodes >= 4):
        raise InputError(f"n_nodes must be an integer >= 4, got {n_nodes!r}")
    a, wa = hermegauss(int(n_nodes))
    x, wx = leggauss(int(n_nodes))
    y = y_c * x
    wy = wx * np.exp(-0.5 * y * y)
    yhat, yy = (v.ravel() for v in np.meshgrid(a, y, indexing="ij"))
    w = np.outer(wa / wa.sum(), wy / wy.sum()).ravel()
    return Measure.quadrature(yhat, yy, w / w.sum(), alpha=alpha, loss=loss)


@dataclass(frozen=True)
class T0Prediction:
    """Lowest tangent-Hessian eigenvalue at t = 0 from the cutoff law (eqs. 4.2-4.3).

    Attributes
    ----------
    m : int
        Number of measurements M.
    y_cut2 : float
        y_c^2 (~ 2 log M).
    edge : float
        Bulk lower edge of the cutoff law.
    iso : float or None
        Isolated eigenvalue toward e of the cutoff law (None below BBP).
    overlap2 : float
    lowest : float
        min(edge, iso): the predicted lowest eigenvalue.
    """

    m: int
    y_cut2: float
    edge: float
    iso: float | None
    overlap2: float
    lowest: float


def t0_prediction(alpha: float, m: int, n_nodes: int = 80) -> T0Prediction:
    """Edge, spike and lowest eigenvalue at t = 0 for M measurements (docs/theory.md eq. 4.3)."""
    law = t0_cutoff_law(alpha, m, n_nodes)
    s = spectrum_summary(law)
    lowest = s.bulk_edge if s.isolated_eigenvalue is None else min(s.bulk_edge, s.isolated_eigenvalue)
    return T0Prediction(m=int(m), y_cut2=t0_label_cutoff(m) ** 2, edge=float(s.bulk_edge),
                        iso=s.isolated_eigenvalue, overlap2=float(s.overlap2), lowest=float(lowest))


# ---------------------------------------------------------------------------- command line
def _float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise InputError(f"times must be numbers, got {text!r}") from None


def add_track_parser(sub) -> None:
    """Register ``track`` on the subparsers of ``python -m simulation``."""
    p = sub.add_parser("track", help="Hessian along one flow: empirical-law theory vs Lanczos at recorded times",
                       description="Run gradient flow from one random start and, at each recorded time, "
                                   "compare the random-matrix prediction from the state's empirical law of "
                                   "(yhat, y, s) (bulk edge, isolated eigenvalue, overlap^2; docs/theory.md "
                                   "§2, §4) with the lowest Lanczos eigenpairs of the tangent Hessian.")
    p.add_argument("--n", type=integer_arg("N"), default=512, help="dimension N (default 512)")
    p.add_argument("--alpha", type=number_arg, default=5.0, help="ratio M/N (default 5)")
    p.add_argument("--seed", type=integer_arg("seed"), default=0, help="seed of data and start (default 0)")
    p.add_argument("--times", nargs="+", default=None, metavar="T",
                   help="recording times, e.g. '0 0.1 1 10' (default: %s)" % " ".join(f"{t:g}" for t in DEFAULT_TIMES))
    p.add_argument("--k", type=integer_arg("k"), default=4, help="lowest Lanczos eigenpairs per time (default 4)")
    p.add_argument("--no-lanczos", action="store_true", help="theory only (no Lanczos)")
    p.add_argument("--dtype", default="float64", help="flow precision: float64 (default) or float32")
    p.add_argument("--rtol", type=number_arg, default=None, help="flow tolerance (default 1e-6; 1e-4 in float32)")
    p.add_argument("--loss", default="quartic", help="loss name (default quartic)")
    p.add_argument("--plot", default=None, help="write a PNG of lambda_iso(t), theory vs Lanczos")
    p.add_argument("--json", action="store_true", help="print JSON only")


def _fmt(x, spec=".4g", none="-"):
    return none if x is None else format(x, spec)


def plot_track(tr: Track, path) -> None:
    """PNG of lambda_iso(t) and the bulk edge from the empirical law vs the Lanczos eigenvalues."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([p.t for p in tr.points])
    tmin = np.min(t[t > 0]) / 3 if np.any(t > 0) else 1e-2
    tp = np.where(t > 0, t, tmin)
    none = lambda v: np.nan if v is None else v  # noqa: E731
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    ax.plot(tp, [p.edge_theory_split for p in tr.points], "k--", label="bulk edge, theory (split law)")
    ax.plot(tp, [none(p.iso_theory_split) for p in tr.points], "C0o-", label=r"$\lambda_{iso}$, theory (split law)")
    ax.plot(tp, [none(p.iso_theory) for p in tr.points], "C2^", mfc="none", label=r"$\lambda_{iso}$, theory (full law)")
    if tr.points[0].lanczos_lowest:
        low = np.array([p.lanczos_lowest for p in tr.points])
        for j in range(low.shape[1]):
            ax.plot(tp, low[:, j], "x", color="0.55", label="Lanczos lowest eigenvalues" if j == 0 else None)
        spike = np.array([none(p.lanczos_spike) for p in tr.points])
        ax.plot(tp, spike, "C3s", mfc="none", ms=9, label=f"Lanczos, largest overlap with e (> {SPIKE_OVERLAP2:g})")
    ax.set_xscale("log")
    ax.set_xlabel(f"flow time t  (t = 0 drawn at t = {tmin:.2g})")
    ax.set_ylabel("tangent-Hessian eigenvalue")
    ax.set_title(f"Hessian along the flow: N={tr.n}, alpha={tr.alpha:g}, seed={tr.seed}")
    ax.axhline(0.0, color="0.8", lw=0.8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cmd_track(args) -> int:
    """``python -m simulation track``: see :func:`add_track_parser`."""
    times = check_times(DEFAULT_TIMES if args.times is None
                        else [t for text in args.times for t in _float_list(text)])
    if args.plot is not None and not str(args.plot).lower().endswith(".png"):
        raise InputError(f"--plot must name a .png file, got {args.plot!r}")
    dtype = resolve_dtype(args.dtype)
    problem = make_problem(args.n, args.alpha, args.seed, dtype)
    if not args.no_lanczos and not (1 <= args.k < problem.n - 1):
        raise InputError(f"k must be between 1 and N-2 = {problem.n - 2}, got {args.k}")
    w0 = random_starts(problem.n, 1, args.seed, dtype)[:, 0]
    integ = Integrator(rtol=args.rtol)
    bar = None
    if not args.json:
        from tqdm import tqdm
        bar = tqdm(total=times.size, desc="track: times", unit="t", leave=False, delay=1.0)
    try:
        tr = track(problem, w0, times, k=args.k, loss=args.loss, integrator=integ,
                   lanczos=not args.no_lanczos, seed=args.seed,
                   progress=(lambda i: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    if args.plot:
        plot_track(tr, args.plot)
    if args.json:
        out = tr.to_dict()
        out["plot"] = args.plot
        print(json.dumps(out))
        return 0
    print(f"Hessian along gradient flow: N={tr.n} alpha={tr.alpha:g} seed={tr.seed} [{tr.dtype}]; theory = "
          f"random-matrix core on the state's empirical law, full / extreme atoms split off (docs/theory.md §4)")
    print(f"{'t':>6} {'energy':>8} {'q':>7} {'mu':>8} {'edge_th':>8} {'iso_th':>8} {'ov2_th':>6} "
          f"{'edge_sp':>8} {'iso_sp':>8} {'ov2_sp':>6}  {'lanczos_lowest':<22} {'lanczos_overlap2':<16}")
    for p in tr.points:
        low = " ".join(f"{x:.3g}" for x in p.lanczos_lowest[:3]) or "-"
        ov = " ".join(f"{x:.2f}" for x in p.lanczos_overlap2[:3]) or "-"
        print(f"{p.t:>6.3g} {p.energy:>8.4g} {p.q:>7.3f} {p.mu:>8.4g} {p.edge_theory:>8.4g} "
              f"{_fmt(p.iso_theory):>8} {p.overlap2_theory:>6.3f} {_fmt(p.edge_theory_split):>8} "
              f"{_fmt(p.iso_theory_split):>8} {p.overlap2_theory_split:>6.3f}  {low:<22} {ov:<16}")
    print(f"growth exponent int max(0,-lambda_iso) dt up to t={tr.t_end:g}: {tr.growth_exponent:.3g} (split law), "
          f"{tr.growth_exponent_raw:.3g} (full law); measured log|q(t)/q(0)| = {tr.log_q_growth:.3g}; "
          f"wall {tr.wall_seconds:.1f} s" + (f"; plot {args.plot}" if args.plot else ""))
    return 0
