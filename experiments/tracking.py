"""Theory versus Lanczos along a gradient-flow trajectory (docs/theory.md §4).

At recorded times t_i the state W(t_i) (:func:`simulation.tracking.states_at_times`, the
flow at exactly t_i) gives an empirical law of (yhat, y, s)
(:func:`simulation.tracking.law_at_state`), which is fed to the random-matrix core
(:func:`theory.spectrum.spectrum_summary`: bulk edge, isolated eigenvalue lambda_iso(t),
its squared overlap with e, BBP residual; docs/theory.md eqs. 2.3-2.9), also with its
extreme atoms split off (:func:`theory.finite_m.split_theory`, §4.2), and compared with
Lanczos at the same state (:func:`simulation.probes.lowest_eigenpairs`). At t = 0 the
lowest eigenvalue is also compared with the finite-M cutoff law (§4.1,
:func:`theory.finite_m.t0_prediction`).

Command: ``python -m experiments track --n N --alpha A --seed S [--times ...] [--k K] [--json]``.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike

from simulation.data import Problem, make_problem, random_starts
from simulation.flow import Integrator
from simulation.landscape import evaluate
from simulation.probes import lowest_eigenpairs
from simulation.tracking import law_at_state, states_at_times
from theory.errors import ConvergenceError, InputError
from theory.escape import check_times, growth_exponent
from theory.finite_m import split_theory, t0_prediction
from theory.loss import Loss, get_loss
from theory.spectrum import SpectrumSummary, spectrum_summary
from theory.statistics import standard_error

__all__ = ["TrackPoint", "Track", "DEFAULT_TIMES", "SPIKE_OVERLAP2", "THEORY_SPIKE_MIN_1MQ2", "theory_at_state", "spike_of", "track",
           "plot_track", "t0_lowest_eigenvalue", "plot_t0_lowest_eigenvalue"]

#: Default recording times (flow time): t = 0 and a roughly logarithmic grid.
DEFAULT_TIMES = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
#: A Lanczos eigenvector counts as the spike when its squared overlap with e exceeds this.
SPIKE_OVERLAP2 = 0.05
#: The spike columns of the theory (lambda_iso, overlap^2, BBP residual; full and split
#: law) are derived for a direction e = (W* - q W) / |W* - q W| that is generic given the
#: law (docs/theory.md §2); near the signal it is the flow's small residual, set by the
#: landscape, and the prediction is void. Below this 1 - q^2 they are None, with
#: ``theory_invalid_reason``. Measured (N = 400, alpha = 8, seed 1, start 2): at
#: 1 - q^2 = 0.24 theory and Lanczos agree (lambda_iso -13.5 vs -10.2, overlap^2 0.59 vs
#: 0.64); from 1 - q^2 = 0.018 down to 1e-8 the theory puts an isolated eigenvalue 6.0-6.5,
#: 0.7-1.9 below the lowest Lanczos eigenvalue (7.2-7.8), with overlap^2 0.54-0.81 where
#: no Lanczos eigenvector has more than 0.23 (and none at all after convergence, q = -1).
#: The threshold 0.05 lies between (|q| > 0.975); the bulk edge and the split-off outliers
#: depend on the law of (yhat, y) only and stay.
THEORY_SPIKE_MIN_1MQ2 = 0.05


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
        Isolated eigenvalue lambda_iso of the full empirical law (eqs. 2.6-2.7); None below
        BBP, and None when the spike columns are invalid (``theory_invalid_reason``).
    overlap2_theory : float or None
        Squared overlap of its eigenvector with e (eq. 2.8); 0.0 below BBP; None when invalid.
    bbp_residual : float or None
        Eq. 2.9 for the full law (> 0 iff an isolated eigenvalue exists); None when invalid.
    theory_converged : bool
    n_split : int
        Extreme atoms split off the law (:func:`theory.finite_m.split_extreme_atoms`, §4.2).
    edge_theory_split, iso_theory_split, overlap2_theory_split, bbp_residual_split
        The same for the law without the split atoms (§4.2); the last three None when invalid.
    theory_invalid_reason : str or None
        Why the spike columns of the theory are None (1 - q^2 below
        ``THEORY_SPIKE_MIN_1MQ2``: the direction e is the flow's residual), else None.
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
    overlap2_theory: float | None
    bbp_residual: float | None
    theory_converged: bool
    n_split: int = 0
    edge_theory_split: float | None = None
    iso_theory_split: float | None = None
    overlap2_theory_split: float | None = 0.0
    bbp_residual_split: float | None = None
    theory_invalid_reason: str | None = None
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
        split law, over the recorded times while |q| < ``theory.escape.Q_INFORMED``
        (:func:`theory.escape.growth_exponent`: trapezoid rule; intervals without an
        isolated eigenvalue count 0).
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


def theory_at_state(problem: Problem, w: ArrayLike, loss: Loss | str | None = None) -> SpectrumSummary:
    """Random-matrix prediction (eqs. 2.3-2.9) for the Hessian at w from its empirical law."""
    return spectrum_summary(law_at_state(problem, w, loss))


def spike_of(eigenvalues: ArrayLike, overlap2: ArrayLike, threshold: float = SPIKE_OVERLAP2) -> tuple[float | None, float | None]:
    """(eigenvalue, overlap2) of the eigenvector most aligned with e, if overlap2 > threshold."""
    ov = np.asarray(overlap2, dtype=np.float64)
    if ov.size == 0:
        return None, None
    i = int(np.argmax(ov))
    if not ov[i] > threshold:
        return None, None
    return float(np.asarray(eigenvalues)[i]), float(ov[i])


def _spike_columns(full: SpectrumSummary, split: SpectrumSummary, q: float) -> dict:
    """The spike columns of a TrackPoint (full and split law), all None with the reason
    when 1 - q^2 < ``THEORY_SPIKE_MIN_1MQ2`` (the direction e is not generic there)."""
    one_minus_q2 = 1.0 - q * q
    if one_minus_q2 < THEORY_SPIKE_MIN_1MQ2:
        reason = (f"1 - q^2 = {one_minus_q2:.2g} < {THEORY_SPIKE_MIN_1MQ2:g}: the teacher direction e "
                  "orthogonal to W is the flow's residual there, not generic; the spike prediction "
                  "(docs/theory.md §2) does not apply")
        return dict(iso_theory=None, overlap2_theory=None, bbp_residual=None, iso_theory_split=None,
                    overlap2_theory_split=None, bbp_residual_split=None, theory_invalid_reason=reason)
    return dict(iso_theory=full.isolated_eigenvalue, overlap2_theory=float(full.overlap2),
                bbp_residual=float(full.residuals.bbp), iso_theory_split=split.isolated_eigenvalue,
                overlap2_theory_split=float(split.overlap2), bbp_residual_split=float(split.residuals.bbp))


def track(problem: Problem, w0: ArrayLike, times: ArrayLike = DEFAULT_TIMES, *, k: int = 4,
          loss: Loss | str | None = None,
          integrator: Integrator = Integrator(), lanczos: bool = True, lanczos_tol: float = 1e-8,
          seed: int | None = None, progress: Callable[[int], object] | None = None) -> Track:
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
        q = float(p64.w_star @ w / problem.n)
        spike_theory = _spike_columns(summ, split.summary, q)
        points.append(TrackPoint(
            t=t, energy=float(pt.energy[0]), q=q, mu=float(pt.mu[0]),
            grad_norm=float(pt.grad_norm[0]), edge_theory=float(summ.bulk_edge),
            edge_set_by_lowest_atom=bool(summ.set_by_lowest_atom),
            theory_converged=bool(summ.converged and split.summary.converged), n_split=split.n_split,
            edge_theory_split=float(split.summary.bulk_edge), outliers_theory=split.outliers, **spike_theory, **lz))
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


def plot_track(tr: Track, path: str | os.PathLike) -> None:
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


# ---------------------------------------------------------------------------- t = 0 (§4.1)
def t0_lowest_eigenvalue(n: int, alpha: float, seeds: int) -> dict:
    """Lowest tangent-Hessian eigenvalue at t = 0 over ``seeds`` fresh data sets and starts
    (seed 7_000_000 + 1000 N + j): Lanczos (eigenvalue and overlap^2 of its eigenvector with
    e), the core on each sample's own empirical law (min of edge and lambda_iso, eqs.
    2.3-2.7), and the cutoff law of M = alpha N measurements (eqs. 4.1-4.3)."""
    low, ov, emp = [], [], []
    for seed in range(seeds):
        p = make_problem(n, alpha, 7_000_000 + 1000 * n + seed)
        w = random_starts(n, 1, 7_000_000 + 1000 * n + seed)[:, 0]
        pr = lowest_eigenpairs(p, w, 2, tol=1e-8)
        low.append(float(pr.eigenvalues[0]))
        ov.append(float(pr.overlap2[0]))
        s = theory_at_state(p, w)
        emp.append(s.bulk_edge if s.isolated_eigenvalue is None else min(s.bulk_edge, s.isolated_eigenvalue))
    pred = t0_prediction(alpha, int(round(alpha * n)))
    return dict(n=n, alpha=alpha, m=int(round(alpha * n)), seeds=seeds, lanczos_mean=float(np.mean(low)),
                lanczos_sem=float(standard_error(low)), lanczos_overlap2_mean=float(np.mean(ov)),
                empirical_law_mean=float(np.mean(emp)), cutoff_edge=pred.edge, cutoff_iso=pred.iso,
                cutoff_overlap2=pred.overlap2, cutoff_lowest=pred.lowest, y_cut2=pred.y_cut2)


def plot_t0_lowest_eigenvalue(rows: list[dict], path: str | os.PathLike) -> None:
    """PNG of the rows of :func:`t0_lowest_eigenvalue` against log M, with the cutoff-law
    curve continued to M = 10^8 and its expansion -(2 y_c^2 + 96 alpha / (2 y_c^2)) (eq. 4.3)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.6))
    for i, alpha in enumerate(sorted({r["alpha"] for r in rows})):
        rr = [r for r in rows if r["alpha"] == alpha]
        m = np.array([r["m"] for r in rr])
        ax.errorbar(np.log(m), [r["lanczos_mean"] for r in rr], yerr=[2 * r["lanczos_sem"] for r in rr], fmt="o",
                    color=f"C{i}", label=f"Lanczos, alpha={alpha:g} (mean +- 2 s.e.)")
        ax.plot(np.log(m), [r["empirical_law_mean"] for r in rr], "x", color=f"C{i}", ms=8,
                label=f"core on each sample's law, alpha={alpha:g}")
        mm = np.unique(np.geomspace(max(8, m.min() / 2), 1e8, 40).astype(int))
        preds = [t0_prediction(alpha, int(x)) for x in mm]
        ax.plot(np.log(mm), [p.lowest for p in preds], "-", color=f"C{i}", label=f"cutoff law (eq. 4.3), alpha={alpha:g}")
        ax.plot(np.log(mm), [-2 * p.y_cut2 - (4 * alpha * 24 / (2 * p.y_cut2)) for p in preds], ":", color=f"C{i}",
                label=f"-2 y_c^2 - 96 alpha / (2 y_c^2), alpha={alpha:g}")
    ax.set_xlabel("log M  (M = alpha N measurements)")
    ax.set_ylabel("lowest tangent-Hessian eigenvalue at t = 0")
    ax.set_title("t = 0: lowest eigenvalue vs the finite-M cutoff of the labels")
    ax.legend(fontsize=7, ncol=1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
