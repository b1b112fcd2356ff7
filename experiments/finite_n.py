"""The finite-N success study: alpha_c(N) of gradient flow against the escape mechanism.

docs/theory.md §4, docs/validation.md ("Finite-N success probability and alpha_c(N)").
The runs are sweeps (:mod:`simulation.sweep`), one file per N (its own alpha grid), with
the study's protocol (:func:`study_config`): float32 flow, rtol 1e-2, atol 1e-3, success
|q| >= 0.9, trapped at the float32 gradient tolerance, timeout t = 100, recording only
t = 0, and fresh data per start from the explicit seed point_seed(N, alpha) + j.

This module holds the study's science, read from those files:

- :func:`success_rows`: successes, timeouts and undecided timeouts per (N, alpha);
- :func:`alpha_c_fit`: logistic alpha_c(N) (:func:`theory.statistics.fit_logistic`) and the
  bracket that counts every timeout as a success (the finite horizon);
- :func:`fit_q_star`, :func:`mechanism_alpha_c`: the mechanism's prediction, eqs. 4.6-4.8
  (:func:`theory.escape.mechanism_probability`, :func:`theory.escape.mechanism_target`)
  with the growth exponent Lambda_N(alpha) of benchmarks/bbp_in_time.py's report;
- :func:`extrapolations`: alpha_c = alpha_inf - c / log N and alpha_c = a + b log N;
- :func:`report`: all of it as one JSON-ready dict, and the two figures.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from simulation.flow import StopRules
from simulation.sweep import SweepConfig, decided_mask, read_sweep
from theory.escape import mechanism_probability, mechanism_target
from theory.errors import InputError
from theory.io import atomic_write_text
from theory.statistics import binomial_standard_error, fit_logistic

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    from simulation.decide import EarlyRules
    import matplotlib.figure
    import xarray as xr

__all__ = ["GRID", "T_MAX", "SUCCESS_OVERLAP", "RTOL", "ATOL", "DTYPE", "TIME_GRID", "AMBIGUOUS_Q",
           "HORIZON_T_MAX", "point_seed", "study_config", "sweep_path", "horizon_path", "horizon_config",
           "success_rows", "growth_exponents", "fit_q_star", "alpha_c_fit", "mechanism_alpha_c",
           "extrapolations", "threshold_theory", "report", "success_curves_figure", "alpha_c_figure",
           "BATCH_SEED_OFFSET", "Q_LEVELS", "TRAP_CURVATURES", "LANCZOS_STEPS", "cluster_seeds", "protocol_rules",
           "validation_runs", "early_rule_table", "choose_early_rules", "adopted_early_rules", "batched_path",
           "run_batched", "compare_with_stored", "todays_runner"]

#: The study's grid: alphas per N around each alpha_c(N).
GRID = {128: (3.0, 4.0, 5.0, 6.0, 7.0), 256: (3.0, 4.0, 5.0, 6.0, 7.0),
        512: (4.0, 5.0, 6.0, 7.0), 1024: (4.0, 5.0, 6.0, 7.0),
        2048: (5.0, 6.0, 7.0), 4096: (5.0, 6.0, 7.0)}
#: Protocol (docs/validation.md: checked against float64 rtol 1e-6 to t = 400 on 32 runs).
T_MAX = 100.0
SUCCESS_OVERLAP = 0.9
RTOL, ATOL = 1e-2, 1e-3
DTYPE = "float32"
TIME_GRID = "none"
#: Timeouts with AMBIGUOUS_Q <= |q| < SUCCESS_OVERLAP might still succeed later.
AMBIGUOUS_Q = 0.5
#: Horizon of the reruns of timeouts (``horizon_config``).
HORIZON_T_MAX = 400.0


def point_seed(n: int, alpha: float) -> int:
    """Base seed of a point; start j uses point_seed + j (j < 10^4), distinct over the grid."""
    return (int(n) * 1000 + int(round(alpha * 10))) * 10_000


def study_config(n: int, starts: int, alphas: Sequence[float] | None = None, **overrides) -> SweepConfig:
    """The sweep of one N with the study's protocol and seeds point_seed(N, alpha) + j.

    ``overrides`` replace protocol fields (e.g. ``t_max``, ``dtype`` for the settings check).
    """
    alphas = tuple(sorted(float(a) for a in (GRID[n] if alphas is None else alphas)))
    if starts >= 10_000:
        raise InputError("the study's seeds allow at most 9999 starts per point")
    seeds = [[[point_seed(n, a) + j for j in range(starts)]] for a in alphas]
    params = {**dict(t_max=T_MAX, success_overlap=SUCCESS_OVERLAP, rtol=RTOL, atol=ATOL, dtype=DTYPE,
                     time_grid=TIME_GRID), **overrides}
    return SweepConfig(n=(int(n),), alpha=alphas, starts=int(starts), seeds=seeds, **params)


def sweep_path(folder: str | os.PathLike, n: int) -> Path:
    return Path(folder) / f"sweep_n{int(n)}.nc"


def horizon_path(folder: str | os.PathLike, n: int, alpha: float) -> Path:
    return Path(folder) / f"horizon_n{int(n)}_a{alpha:g}.nc"


def horizon_config(ds: xr.Dataset, alpha: float, runs: int, t_max: float = HORIZON_T_MAX) -> SweepConfig:
    """Rerun the first ``runs`` timeouts of point ``alpha`` of a study sweep ``ds`` (same
    seeds, same flow) to ``t_max``: do the runs undecided at t = T_MAX succeed later?"""
    point = ds.sel(alpha=alpha)
    if point.sizes["n"] != 1:
        raise InputError("a study sweep holds one N")
    status = np.asarray(point["status"].values[0]).astype(str)
    seeds = np.asarray(point["cell_seed"].values[0])[status == "timeout"][:runs]
    if seeds.size == 0:
        raise InputError(f"no timeout at alpha = {alpha:g}")
    attrs = ds.attrs
    return SweepConfig(n=(int(point["n"].values[0]),), alpha=(float(alpha),), starts=int(seeds.size),
                       seeds=[[[int(s) for s in seeds]]], t_max=t_max,
                       success_overlap=float(attrs["success_overlap"]), rtol=float(attrs["rtol"]),
                       atol=float(attrs["atol"]), dtype=str(attrs["dtype"]), time_grid=str(attrs["time_grid"]))


# ---------------------------------------------------------------------------- success table
def success_rows(paths: Sequence[str | os.PathLike]) -> list[dict]:
    """One row per (N, alpha) of the sweep files: starts decided, successes, P and its
    standard error, timeouts, ambiguous timeouts (|q| >= AMBIGUOUS_Q), timeouts with
    |q| >= the success overlap (0 under the stop rules; kept as a check) and wall seconds.

    Raises InputError if a cell has undecided starts (pending or error): a study's
    numbers need every start.
    """
    rows = []
    for path in paths:
        ds = read_sweep(path)
        q_success = float(ds.attrs.get("success_overlap", StopRules().success_overlap))
        decided = decided_mask(ds)
        for i, alpha in enumerate(ds["alpha"].values):
            for j, n in enumerate(ds["n"].values):
                if not decided[i, j].all():
                    raise InputError(f"{str(path)!r}: N={n} alpha={alpha:g} has {int((~decided[i, j]).sum())} "
                                     "undecided starts (pending or error)")
                status = np.asarray(ds["status"].values[i, j]).astype(str)
                q = np.abs(np.asarray(ds["final_overlap"].values[i, j], float))
                succ = np.asarray(ds["success"].values[i, j], bool)
                timeouts = status == "timeout"
                k, m = int(succ.sum()), succ.size
                rows.append(dict(n=int(n), alpha=float(alpha), starts=m, successes=k, p=k / m,
                                 stderr=binomial_standard_error(k, m), timeouts=int(timeouts.sum()),
                                 ambiguous=int((timeouts & (q >= AMBIGUOUS_Q) & ~succ).sum()),
                                 timeouts_successful=int((timeouts & (q >= q_success)).sum()),
                                 wall=float(np.nansum(ds["wall_seconds"].values[i, j]))))
    rows.sort(key=lambda r: (r["n"], r["alpha"]))
    return rows


# ---------------------------------------------------------------------------- mechanism
def growth_exponents(bbp_report: str | os.PathLike) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Lambda_N(alpha) (eq. 4.6, mean over trajectories) per tracked N from the report of
    benchmarks/bbp_in_time.py, made non-decreasing in alpha (few trajectories per point)."""
    bb = json.loads(Path(bbp_report).read_text())
    return {int(n): (np.array(v["alphas"], float), np.maximum.accumulate(np.array(v["Lambda"], float)))
            for n, v in bb["by_n"].items()}


def _lambda_source(lam: dict, n: int) -> int:
    """N whose Lambda is used at N: itself if tracked, else the largest tracked N
    (Lambda is nearly N-independent over the tracked range)."""
    return n if n in lam else max(lam)


def _lambda_at(lam: dict, n: int, alpha: float) -> float:
    a, L = lam[_lambda_source(lam, n)]
    return float(np.interp(alpha, a, L))


def fit_q_star(rows: Sequence[dict], lam: dict) -> float:
    """Maximum-likelihood q* of eq. 4.7 over the points whose N is tracked in ``lam``."""
    from scipy.optimize import minimize_scalar

    pts = [r for r in rows if r["n"] in lam]

    def nll(log_q):
        tot = 0.0
        for r in pts:
            p = np.clip(mechanism_probability(_lambda_at(lam, r["n"], r["alpha"]), r["n"], np.exp(log_q)),
                        1e-9, 1 - 1e-9)
            tot -= r["successes"] * np.log(p) + (r["starts"] - r["successes"]) * np.log(1 - p)
        return tot

    return float(np.exp(minimize_scalar(nll, bounds=(-6, 1), method="bounded").x))


def mechanism_alpha_c(lam: dict, n: int, q_star: float) -> float:
    """alpha_c(N) of eq. 4.8: Lambda_N(alpha_c) = mechanism_target(N, q*), inverted on the
    tabulated Lambda (NaN outside its range)."""
    aa, LL = lam[_lambda_source(lam, n)]
    target = mechanism_target(n, q_star)
    return float(np.interp(target, LL, aa)) if LL[0] <= target <= LL[-1] else float("nan")


# ---------------------------------------------------------------------------- alpha_c(N)
def alpha_c_fit(rows: Sequence[dict], width: float = float("nan")) -> dict:
    """alpha_c, width, s.e. of one N's rows (logistic MLE), and alpha_c if every timeout
    had succeeded later (the bracket of the finite horizon).

    With one alpha only the width is ``width`` (from another N, flagged ``width_fixed``)
    and the s.e. comes from the binomial error by the delta method.
    """
    a = [r["alpha"] for r in rows]
    k = [r["successes"] for r in rows]
    m = [r["starts"] for r in rows]
    width_fixed = len(rows) < 2
    if not width_fixed:
        ac, w, se = fit_logistic(a, k, m)
    else:
        p_hat = min(max(k[0] / m[0], 0.5 / m[0]), 1 - 0.5 / m[0])
        w = width
        ac = a[0] - w * np.log(p_hat / (1 - p_hat))
        se = w * np.sqrt(1 / (m[0] * p_hat * (1 - p_hat)))
    k_up = [r["successes"] + r["timeouts"] - r["timeouts_successful"] for r in rows]
    ac_up = fit_logistic(a, k_up, m)[0] if len(rows) >= 2 else float("nan")
    return dict(alpha_c=ac, width=w, alpha_c_se=se, alpha_c_if_timeouts_succeed=ac_up,
                timeout_fraction=sum(r["timeouts"] for r in rows) / sum(m), width_fixed=width_fixed)


def extrapolations(by_n: dict) -> tuple[dict, dict]:
    """Weighted least-squares fits of the measured alpha_c(N) (weights 1 / s.e.):
    alpha_c = alpha_inf - c / log N, and alpha_c = a + b log N."""
    good = [n for n in sorted(by_n) if np.isfinite(by_n[n]["alpha_c"]) and by_n[n]["alpha_c_se"] > 0]
    x = np.array([1 / np.log(n) for n in good])
    y = np.array([by_n[n]["alpha_c"] for n in good])
    sw = np.array([1 / by_n[n]["alpha_c_se"] for n in good])
    A = np.vstack([np.ones_like(x), x]).T * sw[:, None]
    coef, *_ = np.linalg.lstsq(A, y * sw, rcond=None)
    cov = np.linalg.inv(A.T @ A)
    inverse_log = dict(model="alpha_c = alpha_inf - c / log N", alpha_inf=float(coef[0]),
                       alpha_inf_se=float(np.sqrt(cov[0, 0])), c=float(-coef[1]), ns=good)
    A2 = np.vstack([np.ones_like(x), 1 / x]).T * sw[:, None]
    coef2, *_ = np.linalg.lstsq(A2, y * sw, rcond=None)
    cov2 = np.linalg.inv(A2.T @ A2)
    linear_log = dict(a=float(coef2[0]), b=float(coef2[1]), b_se=float(np.sqrt(cov2[1, 1])))
    return inverse_log, linear_log


def threshold_theory() -> dict:
    """The N = infinity critical alpha of the threshold-state theory (theory.threshold)."""
    try:
        from theory.threshold import critical_alpha

        return dict(alpha_threshold_theory=float(critical_alpha().alpha_c))
    except Exception as exc:  # keep the report when the theory side fails; say why
        return dict(alpha_threshold_theory=None, alpha_threshold_error=f"{type(exc).__name__}: {exc}")


def report(paths: Sequence[str | os.PathLike], bbp_report: str | os.PathLike, fig_dir: str | os.PathLike | None = None,
           out_json: str | os.PathLike | None = None, theory: dict | None = None) -> dict:
    """Success curves, measured alpha_c(N), the mechanism prediction (eqs. 4.6-4.8) with one
    fitted constant q*, the extrapolations, and (with ``fig_dir``) two figures; written
    atomically to ``out_json`` if given. ``theory``: the threshold-theory entry
    (default :func:`threshold_theory`)."""
    rows = success_rows(paths)
    lam = growth_exponents(bbp_report)
    q_star = fit_q_star(rows, lam)
    res = dict(q_star=q_star, points=rows, by_n={})
    last_w = float("nan")
    for n in sorted({r["n"] for r in rows}):
        fit = alpha_c_fit([r for r in rows if r["n"] == n], last_w)
        if not fit["width_fixed"]:
            last_w = fit["width"]
        res["by_n"][n] = dict(alpha_c=fit["alpha_c"], width=fit["width"], alpha_c_se=fit["alpha_c_se"],
                              alpha_c_pred=mechanism_alpha_c(lam, n, q_star),
                              alpha_c_pred_qstar1=mechanism_alpha_c(lam, n, 1.0),
                              alpha_c_if_timeouts_succeed=fit["alpha_c_if_timeouts_succeed"],
                              timeout_fraction=fit["timeout_fraction"], lambda_from_n=_lambda_source(lam, n),
                              width_fixed=fit["width_fixed"])
    res["extrapolation"], res["linear_in_log_n"] = extrapolations(res["by_n"])
    res.update(threshold_theory() if theory is None else theory)
    if fig_dir is not None:
        fig_dir = Path(fig_dir)
        success_curves_figure(res, lam).savefig(fig_dir / "finite_n_success_curves.png", dpi=120)
        alpha_c_figure(res).savefig(fig_dir / "alpha_c_vs_log_n.png", dpi=120)
    if out_json is not None:
        atomic_write_text(out_json, json.dumps(res, indent=1, default=float))
    return res


# ---------------------------------------------------------------------------- figures
def success_curves_figure(res: dict, lam: dict) -> matplotlib.figure.Figure:
    """P(success) against alpha per N with the mechanism's eq. 4.7 (fitted q*)."""
    from matplotlib.figure import Figure

    rows, q_star = res["points"], res["q_star"]
    fig = Figure(figsize=(7, 4.6))
    ax = fig.add_subplot()
    for i, n in enumerate(sorted(res["by_n"])):
        rr = [r for r in rows if r["n"] == n]
        ax.errorbar([r["alpha"] for r in rr], [r["p"] for r in rr], yerr=[r["stderr"] for r in rr], fmt="o",
                    color=f"C{i}", label=f"N={n} simulated ({min(r['starts'] for r in rr)}+ starts)")
        ag = np.linspace(2, 10, 200)
        key = _lambda_source(lam, n)
        ax.plot(ag, mechanism_probability([_lambda_at(lam, n, x) for x in ag], n, q_star), "-", color=f"C{i}",
                lw=1, label=f"N={n} mechanism, eq. 4.7" + ("" if key == n else f" (Lambda from N={key})"))
    ax.set_xlabel("alpha = M / N")
    ax.set_ylabel(f"success probability (|q| >= {SUCCESS_OVERLAP:g} by t = {T_MAX:g})")
    ax.set_title(f"Finite-N success: simulation vs overlap-growth mechanism (q* = {q_star:.3g} fitted)")
    ax.set_xlim(2, 10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def alpha_c_figure(res: dict) -> matplotlib.figure.Figure:
    """alpha_c(N) against log N: measured, the timeout bracket, the mechanism, the fits."""
    from matplotlib.figure import Figure

    by_n = res["by_n"]
    good = res["extrapolation"]["ns"]
    fig = Figure(figsize=(7, 4.6))
    ax = fig.add_subplot()
    ax.errorbar(np.log(good), [by_n[n]["alpha_c"] for n in good], yerr=[by_n[n]["alpha_c_se"] for n in good],
                fmt="ko", label="simulation (logistic fit, +- 1 s.e.)")
    up = [(np.log(n), v["alpha_c_if_timeouts_succeed"]) for n, v in by_n.items()
          if np.isfinite(v["alpha_c_if_timeouts_succeed"])]
    if up:
        ax.plot(*zip(*up), "kv", mfc="none", label=f"same, timeouts at t = {T_MAX:g} counted as successes")
    pr = [(np.log(n), v["alpha_c_pred"]) for n, v in by_n.items() if np.isfinite(v["alpha_c_pred"])]
    if pr:
        ax.plot(*zip(*pr), "C1s--", mfc="none", label=f"mechanism, eq. 4.8 (q* = {res['q_star']:.2g})")
    lg = np.linspace(np.log(100), np.log(1e7), 100)
    e, lin = res["extrapolation"], res["linear_in_log_n"]
    ax.plot(lg, e["alpha_inf"] - e["c"] / lg, "C0-",
            label=f"fit alpha_inf - c/log N: alpha_inf = {e['alpha_inf']:.1f} +- {e['alpha_inf_se']:.1f}")
    ax.plot(lg, lin["a"] + lin["b"] * lg, "C2:", label=f"fit a + b log N (b = {lin['b']:.2f})")
    if res.get("alpha_threshold_theory") is not None:
        ax.axhline(res["alpha_threshold_theory"], color="C3", ls="-.",
                   label=f"threshold-state theory, N = inf: {res['alpha_threshold_theory']:.2f}")
    ax.set_xlabel("log N")
    ax.set_ylabel("alpha_c(N)  (success probability 1/2)")
    ax.set_title("Critical alpha of gradient flow at finite N")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- early decisions, batched starts
#: Offset of the batched runs' cluster seeds: cluster c of a point uses point_seed + BATCH_SEED_OFFSET + c,
#: apart from the study's fresh-data seeds point_seed + j (j < 64 stored).
BATCH_SEED_OFFSET = 5000
#: Overlap levels whose first crossing the validation log keeps (candidate early-success thresholds).
Q_LEVELS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def cluster_seeds(n: int, alpha: float, clusters: int, first: int = 0) -> list[int]:
    """Seeds of the batched runs' data sets: point_seed(N, alpha) + BATCH_SEED_OFFSET + c."""
    if first + clusters > 10_000 - BATCH_SEED_OFFSET:
        raise InputError("too many clusters for the point's seed range")
    return [point_seed(n, alpha) + BATCH_SEED_OFFSET + c for c in range(first, first + clusters)]


def protocol_rules(t_max: float = T_MAX) -> tuple:
    """(StopRules, Integrator) of the study's protocol; ``t_max`` below T_MAX stops the same
    flow earlier (e.g. at the horizon of a finite-N prediction, t = 2)."""
    from simulation.flow import Integrator

    if not 0 < t_max <= T_MAX:
        raise InputError(f"t_max must be in (0, {T_MAX:g}], got {t_max}")
    return (StopRules(t_max=float(t_max), success_overlap=SUCCESS_OVERLAP),
            Integrator(rtol=RTOL, atol=ATOL))


def validation_runs(points: Sequence[tuple[int, float, int]], per_cluster: int, out: str | os.PathLike,
                    progress: bool = True) -> dict:
    """Full protocol runs (to t = T_MAX) of batched clusters, logged for the early rules.

    ``points``: (N, alpha, clusters). Every cluster is ``per_cluster`` starts on one data set
    (:func:`cluster_seeds`), run with a :class:`simulation.decide.TrajectoryLog`. Stored per
    start (npz at ``out``, rewritten after each cluster, resumed): N, alpha, cluster seed,
    replica, final status, |q| and stop time, evaluations to the stop; the first time and
    evaluations at which |q| >= each of Q_LEVELS; and the log's curvature probes at each
    gradient level (time, evaluations, |q|, 20- and 60-step lowest Ritz values).
    """
    import sys

    from simulation.batched import run_cluster
    from simulation.decide import GRAD_LEVELS, TrajectoryLog
    from theory.io import atomic_savez

    out = Path(out)
    rec: dict[str, list] = {}
    if out.exists():
        with np.load(out) as f:
            rec = {k: list(f[k]) for k in f.files if k not in ("q_levels", "grad_levels")}
    done = {(int(n), float(a), int(s)) for n, a, s in zip(rec.get("n", []), rec.get("alpha", []),
                                                           rec.get("seed", []))}
    stop, integ = protocol_rules()
    nq, ng = len(Q_LEVELS), len(GRAD_LEVELS)
    for n, alpha, clusters in points:
        for seed in cluster_seeds(n, alpha, clusters):
            if (int(n), float(alpha), int(seed)) in done:
                continue
            log = TrajectoryLog()
            summary, res = run_cluster(n, alpha, seed, per_cluster, stop, integ, DTYPE, times=np.array([0.0]),
                                       decide=log)
            for b in range(per_cluster):
                h = log.history(b)
                tq = np.full(nq, np.nan)
                eq = np.full(nq, np.nan)
                for k, lv in enumerate(Q_LEVELS):
                    hit = np.flatnonzero(np.abs(h[:, 1]) >= lv)
                    if hit.size:
                        tq[k], eq[k] = h[hit[0], 0], h[hit[0], 4]
                probes = np.full((ng, 6), np.nan)  # t, evals, |q|, theta20, residual, theta60
                for row in log.probe_table(b):
                    k = GRAD_LEVELS.index(row[0])
                    probes[k] = (row[1], row[7], abs(row[6]), row[3], row[4], row[5])
                for key, v in (("n", n), ("alpha", alpha), ("seed", seed), ("replica", b),
                               ("status", str(summary.status[b])), ("q", abs(summary.q[b])),
                               ("stop_time", summary.stop_time[b]), ("evals", summary.replica_evaluations[b]),
                               ("q_time", tq), ("q_evals", eq), ("probes", probes),
                               ("batch_evals", summary.evaluations), ("wall", summary.wall_seconds)):
                    rec.setdefault(key, []).append(v)
            atomic_savez(out, **{k: np.array(v) for k, v in rec.items()},
                         q_levels=np.array(Q_LEVELS), grad_levels=np.array(GRAD_LEVELS))
            if progress:
                st = summary.status
                print(f"validation N={n} alpha={alpha:g} seed {seed}: {np.sum(st == 'success')} success, "
                      f"{np.sum(st == 'trapped')} trapped, {np.sum(st == 'timeout')} timeout; "
                      f"{summary.evaluations} evaluations, {summary.wall_seconds:.1f} s", file=sys.stderr, flush=True)
    return {k: np.array(v) for k, v in rec.items()}


#: Candidate thresholds of the early rules searched by :func:`choose_early_rules`.
TRAP_CURVATURES = (0.01, 0.02, 0.05, 0.1, 0.2)
#: Lanczos steps of a curvature probe (the validation log's rule probe).
LANCZOS_STEPS = 20


def _rule_outcome(rec: dict, i: int, q_success: float | None, trap_grad: float | None, trap_curv: float,
                  grad_levels: np.ndarray, q_levels: np.ndarray) -> tuple[str, float]:
    """What the early rules would make of logged start i: ("success" | "failure" | "none",
    evaluations to that decision including the curvature probes); "none": the rules never
    fire and the protocol decides."""
    best = (np.inf, "none", 0.0)  # (time, outcome, evaluations)
    if q_success is not None:
        k = int(np.flatnonzero(np.isclose(q_levels, q_success))[0])
        t = rec["q_time"][i][k]
        if np.isfinite(t) and t <= T_MAX:
            best = (t, "success", rec["q_evals"][i][k])
    probe_cost = 0.0
    if trap_grad is not None:
        for k, lv in enumerate(grad_levels):
            if lv > trap_grad * (1 + 1e-9):
                continue
            t, ev, _, theta = rec["probes"][i][k][:4]
            if not np.isfinite(t) or t > best[0]:
                break
            if k > 0 and rec["probes"][i][k - 1][0] == t and grad_levels[k - 1] <= trap_grad * (1 + 1e-9):
                continue  # same state as the level above: one probe
            probe_cost += LANCZOS_STEPS
            if theta >= trap_curv:
                best = (t, "failure", ev)
                break
    outcome, evals = best[1], best[2]
    return outcome, (evals if outcome != "none" else rec["evals"][i]) + probe_cost


def early_rule_table(rec: dict, mask: np.ndarray, q_success: float | None, trap_grad: float | None,
                     trap_curv: float) -> dict:
    """The early rules on the logged starts ``mask``: wrong decisions (false successes, false
    failures), decisions made early, evaluations with and without the rules."""
    truth = np.asarray(rec["status"]).astype(str) == "success"
    gl, ql = np.asarray(rec["grad_levels"]), np.asarray(rec["q_levels"])
    false_s = false_f = early = 0
    ev_rule = ev_full = 0.0
    for i in np.flatnonzero(mask):
        outcome, ev = _rule_outcome(rec, i, q_success, trap_grad, trap_curv, gl, ql)
        false_s += outcome == "success" and not truth[i]
        false_f += outcome == "failure" and truth[i]
        early += outcome != "none"
        ev_rule += ev
        ev_full += rec["evals"][i]
    m = int(mask.sum())
    return dict(starts=m, early=int(early), false_successes=int(false_s), false_failures=int(false_f),
                evaluations_full=float(ev_full / max(m, 1)), evaluations_rule=float(ev_rule / max(m, 1)),
                saving=float(ev_full / ev_rule) if ev_rule else float("nan"))


def choose_early_rules(rec: dict) -> dict:
    """Thresholds of the early rules chosen on one half of the logged starts (alternate
    clusters in (N, alpha, seed) order) and checked on the other.

    Success: the lowest level of Q_LEVELS above which no training start failed. Trap: among
    trap_grad in the log's gradient levels and trap_curvature in TRAP_CURVATURES, the pair with
    the fewest training evaluations among those with no false failure on the training half,
    with a margin (the pairs one level looser in gradient and in curvature have none either). The checks on
    the held-out half (and on all starts) are reported, with the wrong decisions counted.
    """
    keys = sorted({(int(n), float(a), int(s)) for n, a, s in zip(rec["n"], rec["alpha"], rec["seed"])})
    train_keys = set(keys[0::2])
    train = np.array([(int(n), float(a), int(s)) in train_keys for n, a, s in zip(rec["n"], rec["alpha"], rec["seed"])])
    ql = [float(v) for v in rec["q_levels"]]
    q_choice = None
    for lv in ql:
        if early_rule_table(rec, train, lv, None, 1.0)["false_successes"] == 0:
            q_choice = lv
            break
    grads = [float(v) for v in rec["grad_levels"]]
    safe = {(i, j): early_rule_table(rec, train, None, g, c)["false_failures"] == 0
            for i, g in enumerate(grads) for j, c in enumerate(TRAP_CURVATURES)}
    best = None
    for i, g in enumerate(grads):
        for j, c in enumerate(TRAP_CURVATURES):
            # a margin: the rule one level looser in the gradient and in the curvature is safe too
            if not (safe[i, j] and safe.get((i - 1, j), True) and safe.get((i, j - 1), True)):
                continue
            tab = early_rule_table(rec, train, q_choice, g, c)
            if best is None or tab["evaluations_rule"] < best[0]:
                best = (tab["evaluations_rule"], g, c)
    trap_grad, trap_curv = (best[1], best[2]) if best else (None, TRAP_CURVATURES[-1])
    return dict(success_overlap=q_choice, trap_grad=trap_grad, trap_curvature=trap_curv,
                lanczos_steps=LANCZOS_STEPS, train_clusters=len(train_keys), test_clusters=len(keys) - len(train_keys),
                train=early_rule_table(rec, train, q_choice, trap_grad, trap_curv),
                test=early_rule_table(rec, ~train, q_choice, trap_grad, trap_curv),
                all=early_rule_table(rec, np.ones_like(train), q_choice, trap_grad, trap_curv),
                success_only_test=early_rule_table(rec, ~train, q_choice, None, trap_curv),
                trap_only_test=early_rule_table(rec, ~train, None, trap_grad, trap_curv))


def batched_path(folder: str | os.PathLike, n: int, alpha: float, tag: str = "batched") -> Path:
    return Path(folder) / f"{tag}_n{int(n)}_a{alpha:g}.nc"


def run_batched(folder: str | os.PathLike, n: int, alpha: float, clusters: int, per_cluster: int,
                early: EarlyRules | None = None, tag: str = "batched", progress: bool = True,
                batching: str = "independent", first: int = 0, width: int | None = None,
                t_max: float = T_MAX) -> dict:
    """The study's protocol on ``clusters`` data sets of ``per_cluster`` starts each, run as
    batches (:func:`simulation.batched.run_point`, seeds :func:`cluster_seeds` from cluster
    ``first``), optionally with early rules; returns :func:`simulation.batched.point_success`
    plus cost. ``batching``: "independent" (each start its own stage counts, the default
    since issue 17's second round) or "shared" (the files stored before it); ``width``: at
    most that many starts of a data set run at once, the others refill (independent only);
    ``t_max``: the same flow stopped earlier (the file records it and refuses another)."""
    from simulation.batched import point_success, run_point

    stop, integ = protocol_rules(t_max)
    ds = run_point(batched_path(folder, n, alpha, tag), n, alpha, cluster_seeds(n, alpha, clusters, first),
                   per_cluster, stop, integ, DTYPE, early=early, progress=progress, batching=batching,
                   width=width)
    res = point_success(ds)
    res.update(n=int(n), alpha=float(alpha), wall=float(np.nansum(ds["wall_seconds"].values)),
               evaluations_per_start=float(np.nanmean(ds["replica_evaluations"].values)),
               batch_evaluations=int(np.sum(ds["evaluations"].values)))
    return res


def compare_with_stored(batched: dict, sweep_file: str | os.PathLike) -> dict:
    """Batched P(success) +- its cluster-robust error against the stored fresh-data point
    (binomial error): difference and z = diff / sqrt(se_b^2 + se_s^2)."""
    ds = read_sweep(sweep_file)
    point = ds.sel(alpha=batched["alpha"], n=batched["n"])
    status = np.asarray(point["status"].values).astype(str)
    k, m = int(np.sum(status == "success")), int(np.sum((status != "pending") & (status != "error")))
    p = k / m
    se = binomial_standard_error(k, m)
    diff = batched["p"] - p
    z = diff / np.hypot(batched["se"], se)
    return dict(stored_p=p, stored_se=float(se), stored_starts=m, diff=float(diff), z=float(z),
                stored_wall_per_start=float(np.nanmean(point["wall_seconds"].values)))


def todays_runner(n: int, alpha: float, starts: int, progress: bool = True) -> dict:
    """The study's runner as the stored sweeps ran it: one start per data set (seeds
    point_seed + j, j < ``starts``), each its own call of the flow, to the protocol's rules.
    Returns per-start status, |q|, evaluations and wall seconds (data drawn included)."""
    import sys
    import time

    from simulation.data import make_problem, random_starts
    from simulation.flow import run_dynamics

    config = study_config(n, starts, (alpha,))
    rows = dict(status=[], q=[], evaluations=[], wall=[], seed=[])
    for j in range(starts):
        t0 = time.perf_counter()
        seed = config.start_seed(n, alpha, j)
        problem = make_problem(n, alpha, seed, config.dtype)
        res = run_dynamics(problem, random_starts(n, 1, seed, config.dtype), config.stop_rules(),
                           config.integrator(), config.loss, times=config.recording_times())
        for k, v in (("status", str(res.status[0])), ("q", abs(float(res.q[0]))),
                     ("evaluations", res.gradient_evaluations), ("wall", time.perf_counter() - t0), ("seed", seed)):
            rows[k].append(v)
        if progress:
            print(f"today's runner N={n} alpha={alpha:g} start {j}: {res.status[0]}, |q| {abs(res.q[0]):.2f}, "
                  f"{res.gradient_evaluations} evaluations, {rows['wall'][-1]:.1f} s", file=sys.stderr, flush=True)
    return {k: np.array(v) for k, v in rows.items()}


def adopted_early_rules(choice: dict, rec: dict) -> dict:
    """The rules of :func:`choose_early_rules` that made no wrong decision on the held-out
    half (a rule with a wrong decision there is switched off), with their check on all
    logged starts."""
    q = choice["success_overlap"] if choice["success_only_test"]["false_successes"] == 0 else None
    g = choice["trap_grad"] if choice["trap_only_test"]["false_failures"] == 0 else None
    c = choice["trap_curvature"]
    return dict(success_overlap=q, trap_grad=g, trap_curvature=c, lanczos_steps=LANCZOS_STEPS,
                check_all=early_rule_table(rec, np.ones(len(rec["n"]), bool), q, g, c))
