"""Finite-N success from the DMFT (docs/theory.md §7) against the finite-N sweeps.

- :func:`compute_critical_table`: q0_c(alpha; T) by the nonlinear DMFT
  (:func:`theory.dmft.critical.critical_start`) for several alphas and seeds, cached in the
  q0_c table (:mod:`theory.success`; resumable: every solve is written as it finishes);
- :func:`simulated_success`: P(success by T) per (N, alpha) from the stored sweeps
  (results/finite_n_t100), success with stop_time <= T;
- :func:`compare`: predicted (7.13) against simulated counts: chi^2, p-value, largest
  deviation in binomial standard errors, alpha_c(N) from both;
- :func:`prediction_rows`: the prediction for N values not simulated (committed before the
  simulation, e.g. N = 8192);
- :func:`fixed_start_prediction`, :func:`run_fixed_start`: the law for starts of fixed overlap
  (q0_c and the source r without the start law) and the simulation that tests it.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats
from typing import TYPE_CHECKING

from simulation.sweep import read_sweep
from theory.dmft.critical import CriticalStartConfig, EscapeRun, critical_start
from theory.errors import InputError
from theory.statistics import binomial_standard_error, fit_logistic
from theory.success import (SuccessConfig, alpha_c, entry_key, load_table, store_entry, store_run,
                            success_probability)

if TYPE_CHECKING:  # annotations only
    import matplotlib.figure

__all__ = ["compute_critical_table", "simulated_success", "compare", "prediction_rows", "implied_q0c", "markdown_rows", "success_figure",
           "alpha_c_figure", "fixed_start_prediction", "run_fixed_start", "compare_fixed_start", "deviation", "prediction_standard_error",
           "SWEEP_DIR", "ALPHA_C_INFINITY"]

#: the N = infinity threshold-state critical alpha (docs/theory.md 3.5; python -m theory alpha-c)
ALPHA_C_INFINITY = 13.80

#: the finite-N sweeps (experiments.finite_n protocol: success |q| >= 0.9 by t = 100)
SWEEP_DIR = Path(__file__).resolve().parents[1] / "results" / "finite_n_t100"


def compute_critical_table(alphas: Sequence[float], t_max: float, seeds: Sequence[int], table: str | Path,
                           search: CriticalStartConfig | None = None, progress: bool = True) -> list[dict]:
    """q0_c(alpha; t_max) for every alpha and seed, stored in ``table`` (resumable; an entry whose
    bracket is wider than ``search.width`` is refined from its stored solves)."""
    base = CriticalStartConfig() if search is None else search
    out = []
    for seed in seeds:
        cfg = dataclasses.replace(base, seed=int(seed))
        for alpha in alphas:
            key = entry_key(alpha, t_max, cfg.samples, cfg.seed, cfg.dt_max, cfg.level, cfg.t_linear)
            tab = load_table(table)
            cached = tab["entries"].get(key)
            if cached is not None and cached.get("converged") and cached.get("residual", math.inf) <= cfg.width:
                out.append(cached)
                continue
            # absent, failed or bracketed more coarsely than cfg.width: (re)run the bisection,
            # reusing every stored solve, so a narrower width only adds the solves it needs
            known = [EscapeRun(**r) for r in tab["runs"].get(key, [])]
            res = critical_start(alpha, t_max, cfg, strict=False, progress=progress, known_runs=known,
                                 on_run=lambda r, key=key: store_run(table, key, dataclasses.asdict(r)))
            entry = res.as_dict()
            store_entry(table, key, entry)
            if progress:
                print(f"q0_c(alpha={alpha:g}; T={t_max:g}, seed {seed}) = {res.q0_critical:.4g} "
                      f"[{res.lower:.4g}, {res.upper:.4g}] shift {res.shift:+.4f} r {res.ratio:.3f} "
                      f"{res.message}", file=sys.stderr, flush=True)
            out.append(entry)
    return out


@functools.lru_cache(maxsize=4)
def _sweep_arrays(sweep_dir: str) -> tuple[tuple[int, float, np.ndarray, np.ndarray], ...]:
    """(N, alpha, success, stop_time) of every point of the sweeps in ``sweep_dir``, read once."""
    out = []
    for path in sorted(Path(sweep_dir).glob("sweep_n*.nc"), key=lambda p: int(p.stem[7:])):
        ds = read_sweep(path)
        for n in ds["n"].values:
            for a in ds["alpha"].values:
                sel = ds.sel(alpha=a, n=n)
                out.append((int(n), float(a), np.asarray(sel["success"].values, bool),
                            np.asarray(sel["stop_time"].values, float)))
    return tuple(out)


def simulated_success(horizon: float, sweep_dir: str | Path = SWEEP_DIR) -> list[dict]:
    """Per (N, alpha) of the stored sweeps: starts, successes by ``horizon`` (success and
    stop_time <= horizon), the fraction and its binomial standard error."""
    rows = []
    for n, a, ok, st in _sweep_arrays(str(sweep_dir)):
        m = int(ok.size)
        k = int(np.sum(ok & (st <= horizon)))
        rows.append({"n": n, "alpha": a, "starts": m, "successes": k, "p": k / m,
                     "stderr": binomial_standard_error(k, m)})
    return rows


def prediction_standard_error(m: int, p: float) -> float:
    """s.e. sqrt(p (1 - p) / m) of a count of m trials predicted to succeed with probability p,
    p (1 - p) floored at 1/(4 m) so that a prediction of 0 or 1 stays finite."""
    return math.sqrt(max(p * (1 - p), 1.0 / (4 * m)) / m)


def deviation(k: int, m: int, p: float) -> float:
    """z = (k/m - p) / s.e., the s.e. of the predicted binomial (:func:`prediction_standard_error`)."""
    return (k / m - p) / prediction_standard_error(m, p)


def compare(config: SuccessConfig, sweep_dir: str | Path = SWEEP_DIR) -> dict:
    """Predicted against simulated P(success by T = config.t_max) at every stored point whose
    alpha lies in the tabulated range; chi^2 with the predicted binomial variance (floored at
    one success in 4 m to keep p = 0, 1 finite), p-value, largest |deviation| / s.e."""
    sim = simulated_success(config.t_max, sweep_dir)
    rows, chi2 = [], 0.0
    for r in sim:
        try:
            pr = success_probability(r["alpha"], r["n"], config)
        except Exception as exc:  # outside the tabulated alpha range
            rows.append({**r, "predicted": None, "reason": str(exc)})
            continue
        p = pr.success_probability
        z = deviation(r["successes"], r["starts"], p)
        chi2 += z * z
        rows.append({**r, "predicted": p, "predicted_low": pr.low, "predicted_high": pr.high, "z": z,
                     "q0_critical": pr.q0_critical, "q0c_implied": implied_q0c(r["p"], r["n"], pr.ratio)})
    used = [r for r in rows if r.get("predicted") is not None]
    dof = len(used)
    out = {"t_max": config.t_max, "with_source": config.with_source, "rows": rows, "points": dof, "chi2": chi2,
           "p_value": float(stats.chi2.sf(chi2, dof)) if dof else math.nan,
           "max_abs_z": max((abs(r["z"]) for r in used), default=math.nan)}
    ac = []
    for n in sorted({r["n"] for r in sim}):
        pts = [r for r in sim if r["n"] == n]
        a = np.array([r["alpha"] for r in pts])
        k = np.array([r["successes"] for r in pts])
        mm = np.array([r["starts"] for r in pts])
        try:
            fit = fit_logistic(a, k, mm)
        except Exception as exc:
            fit = (math.nan, math.nan, str(exc))
        try:
            pred = alpha_c(n, config)
        except Exception as exc:
            pred = {"alpha_c": math.nan, "message": str(exc)}
        ac.append({"n": n, "simulated": fit[0], "simulated_se": fit[2], "predicted": pred})
    out["alpha_c"] = ac
    return out


def markdown_rows(with_source: dict, start_only: dict) -> str:
    """The comparison as a markdown table: per point simulated k/m, predicted with and without
    the source (and the deviation in standard errors), the implied q0_c (diagnostic)."""
    lines = ["| N | alpha | sim k/m | P sim | (7.13) with r | z | start only | z | q0_c DMFT | q0_c implied |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    so = {(r["n"], r["alpha"]): r for r in start_only["rows"]}
    for r in with_source["rows"]:
        if r.get("predicted") is None:
            continue
        o = so[(r["n"], r["alpha"])]
        lines.append(f"| {r['n']} | {r['alpha']:g} | {r['successes']}/{r['starts']} | {r['p']:.3f} | "
                     f"{r['predicted']:.3f} [{r['predicted_low']:.3f}, {r['predicted_high']:.3f}] | {r['z']:+.1f} | "
                     f"{o['predicted']:.3f} | {o['z']:+.1f} | {r['q0_critical']:.4f} | {r['q0c_implied']:.4f} |")
    return "\n".join(lines)


def implied_q0c(p: float, n: int, ratio: float) -> float:
    """Diagnostic (never used in a prediction): the q0_c for which (7.13) gives the simulated
    fraction p at N; nan for p = 0 or 1."""
    from scipy.optimize import brentq

    from theory.success import success_probability_from

    if not (0 < p < 1):
        return math.nan
    return float(brentq(lambda q: success_probability_from(q, n, ratio) - p, 1e-6, 0.999))


def prediction_rows(ns: Sequence[int], alphas: Sequence[float], config: SuccessConfig) -> list[dict]:
    """The prediction (7.13) at (N, alpha) not simulated: plain numbers with the uncertainty."""
    rows = []
    for n in ns:
        for a in alphas:
            pr = success_probability(a, n, config)
            rows.append({"n": int(n), "alpha": float(a), "t_max": config.t_max,
                         "success_probability": pr.success_probability, "low": pr.low, "high": pr.high,
                         "q0_critical": pr.q0_critical, "ratio": pr.ratio})
    return rows


def success_figure(comparison: dict, config: SuccessConfig) -> matplotlib.figure.Figure:
    """P(success by T) against alpha per N: simulation dots (+- 1 binomial s.e.) over the
    predicted curves (7.13) with their uncertainty band."""
    from matplotlib.figure import Figure

    rows = comparison["rows"]
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    tab_alphas = [a for a in _tabulated(config)]
    ag = np.linspace(min(tab_alphas), max(tab_alphas), 41)
    for i, n in enumerate(sorted({r["n"] for r in rows})):
        rr = [r for r in rows if r["n"] == n]
        ax.errorbar([r["alpha"] for r in rr], [r["p"] for r in rr], yerr=[r["stderr"] for r in rr], fmt="o",
                    color=f"C{i}", ms=4, label=f"N={n} simulated (64 starts)")
        pr = [success_probability(a, n, config) for a in ag]
        ax.plot(ag, [p.success_probability for p in pr], "-", color=f"C{i}", lw=1)
        ax.fill_between(ag, [p.low for p in pr], [p.high for p in pr], color=f"C{i}", alpha=0.15, lw=0)
    ax.plot([], [], "k-", lw=1, label="DMFT prediction, eq. 7.13 (band: q0_c bracket, seed spread)")
    ax.set_xlabel("alpha = M / N")
    ax.set_ylabel(f"P(|q| >= 0.9 by t = {config.t_max:g})")
    src = "with the finite-N source r" if config.with_source else "start overlap only"
    ax.set_title(f"Finite-N success by t = {config.t_max:g}: simulation vs DMFT ({src}; no fitted constant)",
                 fontsize=9)
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _tabulated(config: SuccessConfig) -> list[float]:
    from theory.success import _alpha_table

    return sorted(_alpha_table(config))


def alpha_c_figure(comparison: dict, config: SuccessConfig, t100: Sequence[tuple[int, float, float]] = (),
                   ns_pred: Sequence[int] = ()) -> matplotlib.figure.Figure:
    """alpha_c(N) against log N: simulation at the horizon T (logistic fit), the DMFT
    prediction (7.13) at T, the stored t = 100 simulation and the N = infinity value 13.80."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    ac = comparison["alpha_c"]
    ok = [r for r in ac if np.isfinite(r["simulated"]) and r["simulated_se"] < 3]
    ax.errorbar([math.log(r["n"]) for r in ok], [r["simulated"] for r in ok], [r["simulated_se"] for r in ok],
                fmt="ko", label=f"simulation, success by t = {config.t_max:g} (logistic fit)")
    pts = []
    for n in sorted({r["n"] for r in ac} | set(ns_pred)):
        try:
            a = alpha_c(n, config)
        except Exception:
            continue
        if a["converged"]:
            pts.append((math.log(n), a["alpha_c"], a["lower"], a["upper"]))
    if pts:
        x, y, lo, up = (np.array(v) for v in zip(*pts))
        ax.plot(x, y, "C1s-", mfc="none", label=f"DMFT prediction, eq. 7.13, T = {config.t_max:g}")
        ax.fill_between(x, lo, up, color="C1", alpha=0.2, lw=0)
    if t100:
        ax.errorbar([math.log(n) for n, _, _ in t100], [a for _, a, _ in t100], [e for _, _, e in t100],
                    fmt="C2^", mfc="none", label="simulation, success by t = 100 (docs/validation.md)")
    ax.axhline(ALPHA_C_INFINITY, color="C3", ls=":", label="N = infinity threshold states, 13.80")
    ax.set_xlabel("log N")
    ax.set_ylabel("alpha_c(N)")
    ax.set_title("Finite-N critical alpha (P_success = 1/2)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ starts of fixed overlap
#: seed offset of the fixed-overlap clusters (the random-start batches use 5000)
FIXED_START_SEED_OFFSET = 7000


def fixed_start_prediction(alphas: Sequence[float], n: int, multiples: Sequence[float],
                           config: SuccessConfig | None = None) -> list[dict]:
    """(7.13) for starts of fixed overlap q0 = m q0_c(alpha; T), m in ``multiples``: the DMFT's
    q0_c and the finite-N source r alone decide (no start law), so a simulation from such
    starts tests them apart from the start law. One row per (alpha, q0)."""
    cfg = SuccessConfig() if config is None else config
    rows = []
    for alpha in alphas:
        base = success_probability(alpha, n, cfg)
        for m in multiples:
            q0 = float(m * base.q0_critical)
            pr = success_probability(alpha, n, cfg, q0=q0)
            rows.append({"n": int(n), "alpha": float(alpha), "multiple": float(m), "q0": q0, "t_max": cfg.t_max,
                         "success_probability": pr.success_probability, "low": pr.low, "high": pr.high,
                         "q0_critical": pr.q0_critical, "ratio": pr.ratio})
    return rows


def run_fixed_start(out: str | Path, n: int, alpha: float, q0: float, clusters: int, per_cluster: int,
                    t_max: float = 2.0, progress: bool = True) -> dict:
    """Gradient flow from ``per_cluster`` starts of overlap exactly q0 (simulation.cli.run_starts:
    warm starts of seeds s + b) on each of ``clusters`` data sets (seeds point_seed(N, alpha) +
    FIXED_START_SEED_OFFSET + c), the finite-N protocol's rules stopped at ``t_max``,
    independent batching. Resumable: the JSON ``out`` holds every finished cluster (atomic
    writes, provenance). Returns the file's content with the pooled success count."""
    import json

    from experiments.finite_n import point_seed, protocol_rules, DTYPE
    from simulation.cli import run_starts
    from simulation.data import make_problem
    from simulation.flow import run_dynamics
    from theory.io import atomic_write_text, json_ready, provenance

    out = Path(out)
    params = dict(n=int(n), alpha=float(alpha), q0=float(q0), per_cluster=int(per_cluster), t_max=float(t_max),
                  dtype=DTYPE)
    data = json.loads(out.read_text()) if out.exists() else {"params": params, "clusters": {}}
    if data["params"] != params:
        raise InputError(f"{out} was made with {data['params']}, not {params}")
    stop, integ = protocol_rules(t_max)
    for c in range(clusters):
        seed = point_seed(n, alpha) + FIXED_START_SEED_OFFSET + c
        if str(seed) in data["clusters"]:
            continue
        problem = make_problem(n, alpha, seed, DTYPE)
        W0 = run_starts(problem, per_cluster, seed, q0)
        res = run_dynamics(problem, W0, stop, integ, times=np.array([0.0]), batching="independent")
        data["clusters"][str(seed)] = {"status": res.status.astype(str).tolist(), "q": np.asarray(res.q).tolist(),
                                       "stop_time": np.asarray(res.stop_time).tolist(),
                                       "evaluations": int(res.gradient_evaluations)}
        data["provenance"] = provenance(**params, clusters=clusters)
        atomic_write_text(out, json.dumps(json_ready(data), indent=1))
        if progress:
            k = int(np.sum(res.status == "success"))
            print(f"N={n} alpha={alpha:g} q0={q0:.4f} cluster {c + 1}/{clusters}: {k}/{per_cluster} by t = {t_max:g}",
                  file=sys.stderr, flush=True)
    status = np.concatenate([np.asarray(v["status"]) for v in data["clusters"].values()])
    data.update(successes=int(np.sum(status == "success")), starts=int(status.size))
    return data


def compare_fixed_start(prediction: Sequence[dict], folder: str | Path, clusters: int, per_cluster: int,
                        progress: bool = True) -> dict:
    """Run (or resume, :func:`run_fixed_start`, one file per (alpha, multiple) in ``folder``)
    the starts of each row of :func:`fixed_start_prediction` and compare: per row the count,
    z (:func:`deviation`; the starts of one data set share it, which the binomial s.e.
    ignores), and chi^2 with its p-value over the rows."""
    rows, chi2 = [], 0.0
    for r in prediction:
        run = run_fixed_start(Path(folder) / f"run_a{r['alpha']:g}_m{r['multiple']:g}.json", r["n"], r["alpha"],
                              r["q0"], clusters, per_cluster, r["t_max"], progress)
        k, m = run["successes"], run["starts"]
        z = deviation(k, m, r["success_probability"])
        chi2 += z * z
        rows.append({**r, "successes": k, "starts": m, "measured": k / m, "z": z})
    return {"rows": rows, "chi2": chi2, "points": len(rows),
            "p_value": float(stats.chi2.sf(chi2, len(rows))) if rows else math.nan}
