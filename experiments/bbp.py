"""alpha_BBP(t) and the growth exponent of the overlap from laws along simulated
trajectories (docs/theory.md §4.3-4.4, docs/validation.md).

For each N and alpha, trajectories (fresh data and start each, float32 flow, rtol 1e-3)
are tracked theory-only (no Lanczos, :func:`experiments.tracking.track`) at a log grid of
times: the empirical law of (yhat, y, s) with its extreme atoms split off (§4.2) gives
lambda_iso(t), overlap2(t) and the BBP residual (eq. 2.9) at each time
(:func:`run_point`). From those per-(N, alpha) arrays :func:`bbp_report` builds

* the (alpha, t) diagram: the fraction of uninformed trajectories (|q| < Q_INFORMED) whose
  law has an isolated eigenvalue toward e, and alpha_BBP(t) where the mean BBP residual
  crosses 0 (eq. 4.4, linear interpolation in alpha);
* Lambda_N(alpha) = int_0^T r(t) dt, r(t) = mean over uninformed trajectories of
  max(0, -lambda_iso(t)) (eq. 4.6, :func:`growth_rate`, theory.escape.integrated_growth),
  the mechanism prediction of the success probability (eq. 4.7) and of alpha_c(N)
  (eq. 4.8, theory.escape.mechanism_target).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from simulation.data import make_problem, random_starts
from simulation.flow import Integrator
from theory.escape import Q_INFORMED, check_times, integrated_growth, mechanism_probability, mechanism_target
from theory.io import atomic_savez, provenance
from theory.spectrum import bbp_threshold

from .tracking import track

__all__ = ["TIMES", "ALPHAS", "ROWS", "trajectory_seed", "run_point", "point_path", "save_point", "load_points",
           "growth_rate", "crossing_alpha", "bbp_report", "plot_alpha_bbp_diagram", "plot_alpha_bbp_t"]

#: Recording times of the trajectories.
TIMES = (0.0, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)
#: Default grid of alpha.
ALPHAS = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0)
#: Arrays of a point, each (starts, times): q, split-law lambda_iso (NaN below BBP), its
#: overlap^2, BBP residual and bulk edge, energy, number of split atoms, full-law lambda_iso.
ROWS = ("q", "iso", "ov2", "bbp", "edge", "energy", "nsplit", "iso_raw")


def trajectory_seed(n: int, alpha: float, j: int) -> int:
    """Seed of data and start of trajectory j at (N, alpha)."""
    return 9_000_000 + 10_000 * n + 100 * int(alpha * 10) + j


def run_point(n: int, alpha: float, starts: int, times: ArrayLike = TIMES) -> dict[str, np.ndarray]:
    """Track ``starts`` trajectories theory-only (float32 flow, rtol 1e-3, atol 1e-4) and
    return the arrays of :data:`ROWS`, each of shape (starts, len(times))."""
    times = check_times(times)
    rows = {k: [] for k in ROWS}
    nan = lambda v: np.nan if v is None else v  # noqa: E731
    for j in range(starts):
        seed = trajectory_seed(n, alpha, j)
        p = make_problem(n, alpha, seed, "float32")
        w0 = random_starts(n, 1, seed, "float32")[:, 0]
        tr = track(p, w0, times, lanczos=False, integrator=Integrator(rtol=1e-3, atol=1e-4))
        rows["q"].append([pt.q for pt in tr.points])
        rows["iso"].append([nan(pt.iso_theory_split) for pt in tr.points])
        rows["iso_raw"].append([nan(pt.iso_theory) for pt in tr.points])
        rows["ov2"].append([pt.overlap2_theory_split for pt in tr.points])
        rows["bbp"].append([pt.bbp_residual_split for pt in tr.points])
        rows["edge"].append([pt.edge_theory_split for pt in tr.points])
        rows["energy"].append([pt.energy for pt in tr.points])
        rows["nsplit"].append([pt.n_split for pt in tr.points])
    return {k: np.array(v, dtype=float) for k, v in rows.items()}


def point_path(out: Path, n: int, alpha: float) -> Path:
    """File of the point (N, alpha) in the results folder ``out``."""
    return Path(out) / f"n{n}_a{alpha:g}.npz"


def save_point(out: Path, n: int, alpha: float, rows: dict[str, np.ndarray], times: ArrayLike = TIMES) -> Path:
    """Write a point's arrays atomically, with its times and provenance (a JSON string)."""
    starts = int(np.asarray(rows["q"]).shape[0])
    prov = provenance(experiment="experiments.bbp.run_point", n=n, alpha=alpha, starts=starts,
                      seeds=[trajectory_seed(n, alpha, j) for j in range(starts)], dtype="float32",
                      rtol=1e-3, atol=1e-4)
    return atomic_savez(point_path(out, n, alpha), n=np.int64(n), alpha=np.float64(alpha),
                        t=np.asarray(times, dtype=np.float64), provenance=np.str_(json.dumps(prov)), **rows)


def load_points(out: Path) -> dict[tuple[int, float], dict[str, np.ndarray]]:
    """{(N, alpha): arrays} of every point file in ``out``."""
    data = {}
    for path in sorted(Path(out).glob("n*_a*.npz")):
        with np.load(path) as d:
            data[(int(d["n"]), float(d["alpha"]))] = {k: d[k] for k in d.files}
    return data


def growth_rate(d: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """r(t): mean over uninformed trajectories (|q| < Q_INFORMED) of max(0, -lambda_iso(t))
    (the integrand of eq. 4.6; no isolated eigenvalue counts 0), NaN where none is left;
    and the count of uninformed trajectories at each time."""
    unin = np.abs(d["q"]) < Q_INFORMED
    rate = np.where(np.isnan(d["iso"]), 0.0, np.maximum(0.0, -d["iso"]))
    cnt = unin.sum(axis=0)
    r = np.where(cnt > 0, (rate * unin).sum(axis=0) / np.maximum(cnt, 1), np.nan)
    return r, cnt


def crossing_alpha(alphas: Sequence[float] | np.ndarray, lam: Sequence[float] | np.ndarray, target: float) -> float:
    """alpha where Lambda_N(alpha) reaches ``target`` (eq. 4.8), by linear interpolation on
    the last grid interval with lam[i] <= target < lam[i+1]; NaN if none."""
    ac = np.nan
    for i in range(len(alphas) - 1):
        if lam[i] <= target < lam[i + 1]:
            ac = alphas[i] + (alphas[i + 1] - alphas[i]) * (target - lam[i]) / (lam[i + 1] - lam[i])
    return ac


def _alpha_bbp(alphas, mean_bbp: np.ndarray) -> list[float]:
    """alpha_BBP(t) per time column (eq. 4.4): the crossing, -inf when every residual is
    positive (below the grid), NaN when there is no crossing inside the grid."""
    out = []
    for k in range(mean_bbp.shape[1]):
        col = mean_bbp[:, k]
        cross = bbp_threshold(alphas, col)
        if cross is not None:
            out.append(cross)
        elif np.all(col[np.isfinite(col)] > 0):
            out.append(-np.inf)  # below the grid
        else:
            out.append(np.nan)   # no crossing inside the grid
    return out


def bbp_report(data: dict[tuple[int, float], dict[str, np.ndarray]], times: ArrayLike = TIMES, q_star: float = 1.0) -> dict:
    """alpha_BBP(t), Lambda_N(alpha) and the mechanism predictions from the points ``data``
    (:func:`load_points`). Returns {"times", "q_star", "by_n": {N: {...}}} with, per N:
    alphas, Lambda (eq. 4.6), p_pred (eq. 4.7), alpha_c_pred (eq. 4.8), alpha_bbp_t (None
    where not finite), frac_iso, mean_bbp (alpha x time) and starts."""
    t = check_times(times)
    ns = sorted({n for n, _ in data})
    res = {"times": list(times), "q_star": q_star, "by_n": {}}
    for n in ns:
        alphas = sorted(a for m, a in data if m == n)
        frac, mbbp, lam = [], [], []
        for a in alphas:
            d = data[(n, a)]
            unin = np.abs(d["q"]) < Q_INFORMED
            has = np.isfinite(d["iso"]) & unin
            frac.append(np.where(unin.sum(0) > 0, has.sum(0) / np.maximum(unin.sum(0), 1), np.nan))
            mbbp.append(np.array([np.mean(d["bbp"][unin[:, k], k]) if unin[:, k].any() else np.nan
                                  for k in range(t.size)]))
            r, _ = growth_rate(d)
            lam.append(integrated_growth(t, r))
        frac, mbbp = np.array(frac), np.array(mbbp)
        a_bbp = _alpha_bbp(alphas, mbbp)
        p_pred = [float(mechanism_probability(L, n, q_star)) for L in lam]
        ac = crossing_alpha(alphas, lam, mechanism_target(n, q_star))
        res["by_n"][n] = dict(alphas=alphas, Lambda=lam, p_pred=p_pred, alpha_c_pred=ac,
                              alpha_bbp_t=[None if not np.isfinite(x) else float(x) for x in a_bbp],
                              frac_iso=frac.tolist(), mean_bbp=mbbp.tolist(),
                              starts=[int(data[(n, a)]["q"].shape[0]) for a in alphas])
    return res


def _t_plot(t: np.ndarray) -> np.ndarray:
    """Times for a log axis: t = 0 drawn at half the first positive time."""
    return np.where(t > 0, t, t[1] / 2)


def plot_alpha_bbp_diagram(res: dict, n: int, path: str | os.PathLike) -> None:
    """PNG of the (alpha, t) diagram at N: fraction of uninformed states with an isolated
    eigenvalue, and alpha_BBP(t)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = res["by_n"][n]
    tp = _t_plot(np.array(res["times"]))
    fig, ax = plt.subplots(figsize=(7, 4.6))
    mesh = ax.pcolormesh(tp, r["alphas"], np.array(r["frac_iso"]), shading="nearest", cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(mesh, ax=ax, label="fraction with an isolated eigenvalue")
    ab = np.array([np.nan if x is None else x for x in r["alpha_bbp_t"]], dtype=float)
    ax.plot(tp[np.isfinite(ab)], ab[np.isfinite(ab)], "w-o", lw=2, label=r"$\alpha_{BBP}(t)$ (mean BBP residual = 0)")
    ax.set_xscale("log")
    ax.set_xlabel(f"flow time t (t = 0 drawn at {tp[0]:.2g})")
    ax.set_ylabel("alpha = M / N")
    ax.set_title(f"BBP in time, N={n}: states with |q| < {Q_INFORMED:g} (white: none left)", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_alpha_bbp_t(res: dict, path: str | os.PathLike) -> None:
    """PNG of alpha_BBP(t), one curve per N."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tp = _t_plot(np.array(res["times"]))
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for i, (n, r) in enumerate(sorted(res["by_n"].items())):
        ab = np.array([np.nan if x is None else x for x in r["alpha_bbp_t"]], dtype=float)
        ax.plot(tp, ab, "o-", color=f"C{i}", label=f"N={n} ({min(r['starts'])}+ trajectories per alpha)")
    ax.set_xscale("log")
    ax.set_xlabel(f"flow time t (t = 0 drawn at {tp[0]:.2g})")
    ax.set_ylabel(r"$\alpha_{BBP}(t)$")
    ax.set_title("alpha above which the Hessian at time t has a spike toward the signal", fontsize=10)
    ax.text(0.02, 0.97, "above a curve: isolated eigenvalue (informative)\nbelow: spike merged in the bulk",
            transform=ax.transAxes, va="top", fontsize=8)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
