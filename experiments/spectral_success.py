"""Success of gradient flow from a spectral start: prediction and simulation (issue 18).

docs/theory.md §6.7, docs/validation.md ("Spectral starts (§6)").

*Prediction* (:func:`theory_prediction`, made and stored before the simulations): the
N -> infinity start overlap q0_spec(alpha; T) = sqrt(overlap2) of the random-matrix core
(:func:`theory.spectral_start.spectral_prediction`, eqs. 6.3-6.5), and the DMFT of the flow
(:func:`theory.dmft.solve_dmft`, §5) from q(0) = q0_spec(alpha): success at N = infinity when
q(t) reaches the success overlap by the DMFT's horizon. The algorithmic threshold
alpha_spec(T) (eq. 6.12) is bracketed between the largest failing and the smallest succeeding
alpha, refined by bisection. Approximation: the DMFT starts from a start independent of the
data given q0 (eq. 6.10); the spectral start is a function of the data.

*Simulation*: sweeps (:mod:`simulation.sweep`, ``init="spectral"``) with the finite-N
study's protocol (:mod:`experiments.finite_n`: float32, rtol 1e-2, atol 1e-3, success
|q| >= 0.9 by t = 100, recording only t = 0), fresh data per start from the seed
point_seed(N, alpha) + j: the same data sets as the random-start study where the alphas
coincide. One file per (preprocessing, N): :func:`sweep_path`.

*Comparison* (:func:`report`): P_success with Wilson intervals, the measured start overlap
against q0_spec, the measured transition against alpha_spec, and the figure
(:func:`success_figure`).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulation.sweep import SweepConfig, decided_mask, read_sweep
from theory.errors import InputError
from theory.io import atomic_write_text, provenance
from theory.spectral_start import spectral_prediction, weak_recovery_threshold
from theory.statistics import fit_logistic, wilson_interval

from . import finite_n

if TYPE_CHECKING:  # annotations only
    import matplotlib.figure

__all__ = ["PREPROCESSINGS", "GRID", "STARTS", "DMFT_ALPHAS", "DMFT_T_MAX", "DMFT_SAMPLES", "RANDOM_ALPHA_INF",
           "Q0C_ALPHAS", "EXTRA_GRID", "q0_spec", "study_config", "sweep_path", "extra_path", "theory_path", "dmft_run", "theory_prediction",
           "critical_q0_table", "q0_c_at", "paired_warm_starts",
           "alpha_spec_bracket", "success_rows", "transition", "report", "success_figure", "format_report"]

#: The two preprocessings of the study: the optimal one (weak recovery at alpha = 1/2) and
#: truncated Wirtinger flow's (a hard edge, alpha_w = 1.63; the plain y^2 of Wirtinger flow
#: has no N -> infinity limit, docs/theory.md §6.4).
PREPROCESSINGS = ("mondelli-montanari", "trimmed")
#: alphas per (preprocessing, N), around the predicted transition (N = 4096: chosen after the
#: N = 256 and 1024 points, around their transition).
GRID = {"mondelli-montanari": {256: (0.75, 1.0, 1.25, 1.5, 2.0, 3.0), 1024: (1.0, 1.25, 1.5, 2.0),
                               4096: (1.5, 1.75)},
        "trimmed": {256: (1.5, 2.0, 2.5, 3.0, 4.0), 1024: (1.5, 2.0, 2.5, 3.0, 4.0), 4096: (2.5, 2.75)}}
#: alphas added after the main grid, in their own files (extra_path): the N = 256 points
#: showed the mondelli-montanari transition between 1.5 and 2 (N = 4096: 0 of 8 at 1.75).
EXTRA_GRID = {"mondelli-montanari": {256: (1.75,), 1024: (1.75,), 4096: (2.0,)}}
#: starts per point (fewer at large N: ~5 s per trapped start at N = 1024, 25-85 s at 4096).
STARTS = {256: 32, 1024: 16, 4096: 8}
#: DMFT grid of the prediction (refined by bisection around the transition).
DMFT_ALPHAS = {"mondelli-montanari": (1.0, 1.5, 2.0), "trimmed": (2.0, 2.5, 3.0)}
DMFT_T_MAX = 3.0
DMFT_SAMPLES = 2000
#: alphas of the q0_c(alpha) curve (eq. 6.11, the finite-N prediction).
Q0C_ALPHAS = (1.0, 1.5, 2.0, 2.5, 3.0)
#: N = infinity algorithmic threshold from a random start (threshold-state theory, §3).
RANDOM_ALPHA_INF = 13.80


def q0_spec(preprocess: str, alpha: float) -> float:
    """N -> infinity overlap of the spectral start, sqrt(overlap2) of eqs. 6.3-6.5 (0 below alpha_w)."""
    return math.sqrt(max(spectral_prediction(preprocess, alpha).overlap2, 0.0))


def study_config(preprocess: str, n: int, starts: int, alphas: Sequence[float] | None = None) -> SweepConfig:
    """The sweep of one (preprocessing, N): the finite-N study's protocol and seeds
    (:func:`experiments.finite_n.study_config`) with ``init="spectral"``."""
    alphas = GRID[preprocess][n] if alphas is None else alphas
    return finite_n.study_config(n, starts, alphas, init="spectral", preprocess=preprocess)


def sweep_path(folder: str | os.PathLike, preprocess: str, n: int) -> Path:
    return Path(folder) / f"sweep_{preprocess}_n{int(n)}.nc"


def extra_path(folder: str | os.PathLike, preprocess: str, n: int) -> Path:
    """Further alphas of (preprocessing, N) added after the main grid (:data:`EXTRA_GRID`)."""
    return Path(folder) / f"sweep_{preprocess}_n{int(n)}_extra.nc"


def theory_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / "theory.json"


# ---------------------------------------------------------------------------- prediction
def dmft_run(alpha: float, q0: float, t_max: float = DMFT_T_MAX, samples: int = DMFT_SAMPLES, seed: int = 0,
             success_overlap: float = finite_n.SUCCESS_OVERLAP, progress: bool = False) -> dict:
    """One DMFT solution from q(0) = q0 (validated estimator, one seed): q(t) on its grid
    summarised as the first time q reaches ``success_overlap`` (None if never), q at the
    horizon, the largest q, and the solver's status (a failed solve keeps its partial rows)."""
    from theory.dmft import solve_dmft

    res = solve_dmft(float(alpha), float(t_max), q0=float(q0), n_samples=int(samples), seed=int(seed),
                     strict=False, progress=progress)
    q = np.asarray(res.q, float)
    t = np.asarray(res.t, float)
    hit = np.nonzero(q >= success_overlap)[0]
    t_hit = float(t[hit[0]]) if hit.size else None
    return dict(alpha=float(alpha), q0=float(q0), t_max=float(t_max), samples=int(samples), seed=int(seed),
                t_reached=float(t[-1]), q_end=float(q[-1]), q_max=float(q.max()), t_success=t_hit,
                success=t_hit is not None, converged=bool(res.converged), message=res.message,
                wall_seconds=float(res.wall_seconds),
                q_path=[[float(a), float(b)] for a, b in zip(t[::4], q[::4])] + [[float(t[-1]), float(q[-1])]])


def alpha_spec_bracket(runs: Sequence[dict]) -> tuple[float | None, float | None]:
    """(largest failing alpha below the smallest succeeding one, smallest succeeding alpha)
    of DMFT runs; None where there is none."""
    ok = sorted(r["alpha"] for r in runs if r["success"])
    if not ok:
        return (max((r["alpha"] for r in runs), default=None), None)
    lo = [r["alpha"] for r in runs if not r["success"] and r["alpha"] < ok[0]]
    return (max(lo) if lo else None, ok[0])


def theory_prediction(out: str | os.PathLike, preprocessings: Sequence[str] = PREPROCESSINGS,
                      alphas: dict | None = None, refine: int = 1, t_max: float = DMFT_T_MAX,
                      samples: int = DMFT_SAMPLES, seed: int = 0, progress: bool = True) -> dict:
    """The prediction file: q0_spec on a fine alpha grid, alpha_w, and DMFT runs from
    q0_spec(alpha) on ``alphas`` (default :data:`DMFT_ALPHAS`) plus ``refine`` bisection
    steps of the bracket of alpha_spec per preprocessing. Resumable: runs stored in ``out``
    (same t_max, samples, seed) are kept; the file is rewritten atomically after each run."""
    out = Path(out)
    alphas = DMFT_ALPHAS if alphas is None else alphas
    old = json.loads(out.read_text()) if out.exists() else {}
    res = dict(old)  # keeps the q0_c section of :func:`critical_q0_table`
    res.update(provenance=provenance(command="experiments.spectral_success.theory_prediction", t_max=t_max,
                                     samples=samples, seed=seed, refine=refine),
               success_overlap=finite_n.SUCCESS_OVERLAP, dmft=dict(t_max=t_max, samples=samples, seed=seed),
               preprocessings={})
    fine = [round(float(a), 4) for a in np.arange(0.5, 6.01, 0.05)]

    def save():
        atomic_write_text(out, json.dumps(res, indent=1))

    for pre in preprocessings:
        prev = old.get("preprocessings", {}).get(pre, {})
        done = {r["alpha"]: r for r in prev.get("dmft_runs", [])
                if (r["t_max"], r["samples"], r["seed"]) == (t_max, samples, seed)}
        aw = weak_recovery_threshold(pre, strict=False).alpha_w
        entry = dict(alpha_w=aw, q0_table=[[a, q0_spec(pre, a)] for a in fine], dmft_runs=[])
        res["preprocessings"][pre] = entry

        def run(a):
            a = round(float(a), 4)
            if a not in done:
                q0 = q0_spec(pre, a)
                if q0 <= 0:
                    done[a] = dict(alpha=a, q0=0.0, t_max=t_max, samples=samples, seed=seed, success=False,
                                   converged=True, message="below alpha_w: uninformative start (random-start DMFT)",
                                   t_reached=None, q_end=None, q_max=None, t_success=None, wall_seconds=0.0,
                                   q_path=[])
                else:
                    t0 = time.perf_counter()
                    done[a] = dmft_run(a, q0, t_max, samples, seed)
                    if progress:
                        r = done[a]
                        print(f"{pre} alpha={a:g} q0={q0:.4f}: q({r['t_reached']:.3g})={r['q_end']:.4f} "
                              f"success={r['success']} t_success={r['t_success']} "
                              f"({time.perf_counter() - t0:.0f} s) {r['message']}", file=sys.stderr, flush=True)
            entry["dmft_runs"] = sorted(done.values(), key=lambda r: r["alpha"])
            entry["alpha_spec_bracket"] = list(alpha_spec_bracket(entry["dmft_runs"]))
            save()

        for a in alphas.get(pre, ()):
            run(a)
        for _ in range(refine):
            lo, hi = entry["alpha_spec_bracket"]
            if lo is None or hi is None:
                break
            run(0.5 * (lo + hi))
        lo, hi = entry["alpha_spec_bracket"]
        entry["alpha_spec"] = None if lo is None or hi is None else 0.5 * (lo + hi)
        entry["q0_at_alpha_spec_bracket"] = [None if a is None else q0_spec(pre, a) for a in (lo, hi)]
        save()
    return res


def critical_q0_table(out: str | os.PathLike, alphas: Sequence[float] = Q0C_ALPHAS, steps: int = 3,
                      t_max: float = DMFT_T_MAX, samples: int = DMFT_SAMPLES, seed: int = 0,
                      progress: bool = True) -> dict:
    """q0_c(alpha) (eq. 6.11): the start overlap above which the DMFT from q(0) = q0 succeeds
    by t_max, bracketed by bisection in q0 from [0, success overlap] (q0 = 0 stays at 0; the
    success overlap succeeds at t = 0), using the spectral-start runs of the file at the same
    alpha as first points, then ``steps`` bisections. Stored under ``q0_c`` of ``out``
    (resumable, rewritten atomically after each run). The DMFT depends on (alpha, q0) only,
    so q0_c is one curve for every preprocessing."""
    out = Path(out)
    res = json.loads(out.read_text()) if out.exists() else {}
    table = res.setdefault("q0_c", {})
    res["q0_c_provenance"] = provenance(command="experiments.spectral_success.critical_q0_table", steps=steps,
                                        t_max=t_max, samples=samples, seed=seed)
    key = (t_max, samples, seed)
    for a in alphas:
        a = round(float(a), 4)
        entry = table.setdefault(f"{a:g}", dict(alpha=a, runs=[]))
        own = [r for r in entry["runs"] if (r["t_max"], r["samples"], r["seed"]) == key]
        spectral = [r for e in res.get("preprocessings", {}).values() for r in e.get("dmft_runs", [])
                    if r["alpha"] == a and r["q0"] > 0 and (r["t_max"], r["samples"], r["seed"]) == key]

        def settle():
            runs = own + spectral
            lo = max([0.0] + [r["q0"] for r in runs if not r["success"]])
            hi = min([finite_n.SUCCESS_OVERLAP] + [r["q0"] for r in runs if r["success"] and r["q0"] > lo])
            entry.update(runs=sorted(own, key=lambda r: r["q0"]), spectral_runs_used=[r["q0"] for r in spectral],
                         bracket=[lo, hi], q0_c=0.5 * (lo + hi))
            atomic_write_text(out, json.dumps(res, indent=1))
            return lo, hi

        lo, hi = settle()
        while len(own) < steps:
            q0 = round(0.5 * (lo + hi), 4)
            t0 = time.perf_counter()
            own.append(dmft_run(a, q0, t_max, samples, seed))
            r = own[-1]
            if progress:
                print(f"q0_c: alpha={a:g} q0={q0:.4f}: q({r['t_reached']:.3g})={r['q_end']:.4f} "
                      f"success={r['success']} ({time.perf_counter() - t0:.0f} s) {r['message']}",
                      file=sys.stderr, flush=True)
            lo, hi = settle()
    return table


# ---------------------------------------------------------------------------- measurement
def _q0_c_curve(theory: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(alphas, q0_c) of the theory file's q0_c section, sorted; None without it."""
    table = theory.get("q0_c") or {}
    pts = sorted((e["alpha"], e["q0_c"]) for e in table.values() if e.get("q0_c") is not None)
    return (np.array([p[0] for p in pts]), np.array([p[1] for p in pts])) if pts else None


def q0_c_at(theory: dict, alpha: float) -> float | None:
    """q0_c(alpha) (eq. 6.11) linearly interpolated on the theory file's table; None outside it."""
    curve = _q0_c_curve(theory)
    if curve is None or not (curve[0][0] - 1e-9 <= alpha <= curve[0][-1] + 1e-9):
        return None
    return float(np.interp(alpha, *curve))


def success_rows(paths: Sequence[str | os.PathLike], theory: dict | None = None) -> list[dict]:
    """One row per complete (start kind, N, alpha) of sweep files (random or spectral):
    starts, successes, P with its Wilson interval (z = 1), timeouts, and the start overlaps
    |q(0)| (mean, standard deviation, standard error; NaN where the file predates them)
    against the core's q0_spec (spectral starts). With a ``theory`` file holding q0_c
    (eq. 6.11): the finite-N prediction p_pred = fraction of starts with |q(0)| >= q0_c(alpha)
    (eq. 6.13) and how many starts it classifies correctly. Points with undecided starts
    (pending or error) are skipped (a partial file reads as its complete points)."""
    rows = []
    for path in paths:
        ds = read_sweep(path)
        kind = ds.attrs.get("preprocess", "random") if ds.attrs.get("init", "random") == "spectral" else "random"
        decided = decided_mask(ds)
        for i, alpha in enumerate(ds["alpha"].values):
            for j, n in enumerate(ds["n"].values):
                if not decided[i, j].all():
                    continue
                alpha = float(alpha)
                succ = np.asarray(ds["success"].values[i, j], bool)
                status = np.asarray(ds["status"].values[i, j]).astype(str)
                q0 = np.abs(np.asarray(ds["initial_overlap"].values[i, j], float))
                k, m = int(succ.sum()), succ.size
                lo, hi = wilson_interval(k, m)
                row = dict(kind=kind, n=int(n), alpha=alpha, starts=m, successes=k, p=k / m, p_lo=float(lo),
                           p_hi=float(hi), timeouts=int((status == "timeout").sum()),
                           q0_mean=float(np.mean(q0)), q0_sd=float(np.std(q0, ddof=1)) if m > 1 else float("nan"),
                           q0_se=float(np.std(q0, ddof=1) / np.sqrt(m)) if m > 1 else float("nan"),
                           q0_spec=q0_spec(kind, alpha) if kind != "random" else None,
                           wall=float(np.nansum(ds["wall_seconds"].values[i, j])))
                qc = None if theory is None else q0_c_at(theory, alpha)
                if qc is not None and np.isfinite(q0).all():
                    pred = q0 >= qc
                    row.update(q0_c=qc, p_pred=float(pred.mean()), classified=int((pred == succ).sum()))
                else:
                    row.update(q0_c=qc, p_pred=None, classified=None)
                rows.append(row)
    rows.sort(key=lambda r: (r["kind"], r["n"], r["alpha"]))
    return rows


def transition(rows: Sequence[dict]) -> dict:
    """Measured transition of one (kind, N): alpha where P crosses 1/2 by linear
    interpolation between grid points (None if it does not cross), and the logistic MLE
    (:func:`theory.statistics.fit_logistic`) when the points have both outcomes."""
    rr = sorted(rows, key=lambda r: r["alpha"])
    a = [r["alpha"] for r in rr]
    p = [r["p"] for r in rr]
    cross = None
    for (a0, p0), (a1, p1) in zip(zip(a, p), zip(a[1:], p[1:])):
        if p0 < 0.5 <= p1:
            cross = a0 + (0.5 - p0) * (a1 - a0) / (p1 - p0)
            break
    fit = dict(alpha_half=cross, alpha_c_logistic=None, width=None, alpha_c_se=None)
    k = [r["successes"] for r in rr]
    m = [r["starts"] for r in rr]
    if len(rr) >= 2 and 0 < sum(k) < sum(m):
        try:
            with np.errstate(over="ignore"):
                ac, w, se = fit_logistic(a, k, m)
            if np.isfinite(ac) and a[0] - 1 <= ac <= a[-1] + 1:
                fit.update(alpha_c_logistic=float(ac), width=float(w), alpha_c_se=float(se))
        except Exception:  # a degenerate fit (separable data) leaves the interpolated value
            pass
    return fit


def report(folder: str | os.PathLike, random_folder: str | os.PathLike | None = None,
           ns: Sequence[int] = (256, 1024, 4096), fig_path: str | os.PathLike | None = None,
           out_json: str | os.PathLike | None = None) -> dict:
    """The comparison from stored files only: the theory file and the spectral sweeps of
    ``folder`` (plus its ``random_n*.nc`` low-alpha random-start points), the random-start
    study sweeps ``random_folder/sweep_n{N}.nc`` (default results/finite_n_t100), the
    transitions, and (with ``fig_path``) the figure; written atomically to ``out_json``."""
    folder = Path(folder)
    tpath = theory_path(folder)
    if not tpath.exists():
        raise InputError(f"no prediction file {str(tpath)!r} (benchmarks/spectral_success.py --theory)")
    theory = json.loads(tpath.read_text())
    random_folder = Path("results/finite_n_t100") if random_folder is None else Path(random_folder)
    paths = [p for pre in PREPROCESSINGS for n in ns for p in (sweep_path(folder, pre, n), extra_path(folder, pre, n))]
    paths = [p for p in paths if p.exists()] + sorted(folder.glob("random_n*.nc"))
    paths += [p for p in (finite_n.sweep_path(random_folder, n) for n in ns) if p.exists()]
    rows = success_rows(paths, theory)
    res = dict(theory_file=str(tpath), random_alpha_inf=RANDOM_ALPHA_INF, points=rows, transitions={},
               alpha_spec={}, alpha_w={})
    for pre, e in theory.get("preprocessings", {}).items():
        res["alpha_spec"][pre] = dict(alpha_spec=e.get("alpha_spec"), bracket=e.get("alpha_spec_bracket"))
        res["alpha_w"][pre] = e.get("alpha_w")
    for kind in sorted({r["kind"] for r in rows}):
        for n in sorted({r["n"] for r in rows if r["kind"] == kind}):
            rr = [r for r in rows if r["kind"] == kind and r["n"] == n]
            tr = transition(rr)
            pp = [r for r in rr if r["p_pred"] is not None]
            if len(pp) >= 2:
                tr["alpha_half_pred"] = transition([dict(r, p=r["p_pred"]) for r in pp])["alpha_half"]
            res["transitions"][f"{kind}:{n}"] = dict(kind=kind, n=n, **tr)
    res["dmft_checks"] = [json.loads(p.read_text()) for p in sorted(folder.glob("dmft_check_*.json"))]
    for c in res["dmft_checks"]:
        c.pop("q_path", None)
    res = _plain(res)
    if fig_path is not None:
        success_figure(res, theory).savefig(fig_path, dpi=120)
        res["figure"] = str(fig_path)
    if out_json is not None:
        atomic_write_text(out_json, json.dumps(res, indent=1))
    return res


def _plain(value):
    """JSON-ready copy: numpy scalars as Python numbers, non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------- figure, text
_MARKERS = {"random": "o", "mondelli-montanari": "s", "trimmed": "^"}
_COLOURS = {256: "C0", 1024: "C1", 4096: "C2"}


def success_figure(res: dict, theory: dict) -> matplotlib.figure.Figure:
    """P_success against alpha: random-start and spectral-start points (Wilson intervals)
    per N, the N = infinity steps at alpha_spec (DMFT from q0_spec), the finite-N prediction
    (eq. 6.13) per spectral point, and the random start's N = infinity threshold (off scale)."""
    from matplotlib.figure import Figure

    rows = res["points"]
    fig = Figure(figsize=(12, 6.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, pre in zip(axes, PREPROCESSINGS):
        for kind, style in (("random", dict(mfc="none", alpha=0.6)), (pre, {})):
            for n in sorted({r["n"] for r in rows if r["kind"] == kind}):
                rr = [r for r in rows if r["kind"] == kind and r["n"] == n]
                a = np.array([r["alpha"] for r in rr])
                p = np.array([r["p"] for r in rr])
                err = np.array([[r["p"] - r["p_lo"] for r in rr], [r["p_hi"] - r["p"] for r in rr]])
                ax.errorbar(a, p, yerr=err, fmt=_MARKERS[kind] + ("-" if kind != "random" else ":"),
                            color=_COLOURS.get(n, "k"), ms=5, lw=1, capsize=2,
                            label=f"{'random' if kind == 'random' else 'spectral'}, N={n} "
                                  f"({min(r['starts'] for r in rr)}+ starts)", **style)
                pr = [(r["alpha"], r["p_pred"]) for r in rr if r.get("p_pred") is not None and kind != "random"]
                if pr:
                    ax.plot(*zip(*pr), "x--", color=_COLOURS.get(n, "k"), lw=0.8, ms=6,
                            label=f"rule 6.13, N={n}: P(|q(0)| >= q0_c)")
        spec = res["alpha_spec"].get(pre, {})
        if spec.get("alpha_spec") is not None:
            a_s = spec["alpha_spec"]
            lo, hi = spec["bracket"]
            ax.step([0, a_s, 20], [0, 1, 1], where="post", color="k", lw=1.5,
                    label=f"N = inf, DMFT (S = 2000): alpha_spec in [{lo:g}, {hi:g}]")
            ax.axvspan(lo, hi, color="k", alpha=0.08)
        checks = [c for c in res.get("dmft_checks", [])
                  if pre == "mondelli-montanari" and abs(c["q0"] - q0_spec(pre, c["alpha"])) < 1e-3]
        for c in checks:
            ax.plot([c["alpha"]], [1.0 if c["success"] else 0.0], "D", color="C3", mfc="none", ms=9,
                    label=f"DMFT S = {c['samples']} (after the sims): alpha = {c['alpha']:g} "
                          f"{'succeeds' if c['success'] else 'fails'}")
        aw = res["alpha_w"].get(pre)
        if aw is not None:
            ax.axvline(aw, color="C3", ls=":", lw=1, label=f"alpha_w = {aw:.3g}")
        ax.annotate(f"random start, N = inf:\nalpha = {RANDOM_ALPHA_INF:.2f} ->", xy=(7.9, 0.5), ha="right",
                    fontsize=7, color="0.3")
        ax.set_xlim(0.4, 8)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("alpha = M / N")
        ax.set_title(f"spectral start: {pre}", fontsize=10)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    axes[0].set_ylabel(f"P(|q| >= {finite_n.SUCCESS_OVERLAP:g} by t = {finite_n.T_MAX:g})")
    fig.suptitle("Gradient flow from spectral vs random starts: simulation and theory", fontsize=11)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.92, bottom=0.30, wspace=0.06)
    return fig


def _f(x, spec=".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def format_report(res: dict) -> list[str]:
    """The report as text lines: the points table and the transitions."""
    from .cli import format_table

    header = ("start", "N", "alpha", "succ/starts", "P", "Wilson", "P_pred", "classified", "|q0| mean",
              "sd", "q0_spec", "q0_c")
    rows = [(r["kind"], str(r["n"]), f"{r['alpha']:g}", f"{r['successes']}/{r['starts']}", f"{r['p']:.2f}",
             f"[{r['p_lo']:.2f}, {r['p_hi']:.2f}]", _f(r.get("p_pred"), ".2f"),
             "-" if r.get("classified") is None else f"{r['classified']}/{r['starts']}",
             _f(r["q0_mean"]), _f(r["q0_sd"]), _f(r["q0_spec"]), _f(r.get("q0_c")))
            for r in res["points"]]
    lines = format_table(header, rows, left=("start",))
    lines.append("")
    for pre, s in res["alpha_spec"].items():
        lines.append(f"{pre}: alpha_w = {_f(res['alpha_w'].get(pre), '.4g')}, alpha_spec (N = inf, DMFT from q0_spec) "
                     f"= {_f(s['alpha_spec'], '.3g')} in {s['bracket']}")
    for t in res["transitions"].values():
        lines.append(f"{t['kind']} N={t['n']}: P = 1/2 at alpha = {_f(t['alpha_half'])} (interpolated), "
                     f"logistic {_f(t['alpha_c_logistic'])} +- {_f(t['alpha_c_se'])}"
                     + (f"; predicted (eq. 6.13) {_f(t['alpha_half_pred'])}" if "alpha_half_pred" in t else ""))
    return lines


# ---------------------------------------------------------------------------- the approximation
def paired_warm_starts(preprocess: str, n: int, alpha: float, starts: int, progress: bool = False) -> list[dict]:
    """Test of the approximation of eq. 6.10 on the study's data sets (seeds point_seed + j):
    from each spectral start W0_spec, and from a start independent of the data given the same
    overlap (:func:`simulation.data.warm_start` at q0 = <W0_spec, W*>/N, its random part from
    the same seed), run the study's flow. Per pair: q0, the start energies e(0) = L/N of
    both, the independent-start model's e(0) = alpha E[V(q0 y + sqrt(1 - q0^2) g, y)]
    (Gauss-Hermite), and both outcomes (status, final |q|)."""
    from numpy.polynomial.hermite_e import hermegauss

    from simulation.data import make_problem, warm_start
    from simulation.flow import run_dynamics
    from simulation.spectral_start import spectral_start
    from theory.loss import get_loss

    config = study_config(preprocess, n, starts, (alpha,))
    loss = get_loss(config.loss)
    x, w = hermegauss(40)
    w = w / w.sum()
    out = []
    for j in range(starts):
        seed = config.start_seed(n, alpha, j)
        problem = make_problem(n, alpha, seed, config.dtype)
        ws = problem.w_star.astype(np.float64)
        spec = spectral_start(problem, config.preprocess, 1, seed=seed).W0
        q0 = float(spec[:, 0].astype(np.float64) @ ws / n)
        warm = warm_start(problem, q0, seed).astype(problem.dtype)
        y = problem.y.astype(np.float64)

        def energy(W):
            return float(np.sum(loss.V(problem.X.astype(np.float64) @ W[:, 0].astype(np.float64), y)) / n)

        h = q0 * x[:, None] + math.sqrt(1 - q0 * q0) * x[None, :]
        e_model = float(alpha * np.sum(w[:, None] * w[None, :] * loss.V(h, x[:, None])))
        row = dict(seed=int(seed), q0=q0, e0_spectral=energy(spec), e0_warm=energy(warm), e0_model=e_model)
        for name, W0 in (("spectral", spec), ("warm", warm)):
            res = run_dynamics(problem, W0, config.stop_rules(), config.integrator(), config.loss,
                               times=config.recording_times())
            row[f"{name}_status"] = str(res.status[0])
            row[f"{name}_q"] = float(abs(res.q[0]))
            row[f"{name}_t"] = float(res.stop_time[0])
        out.append(row)
        if progress:
            print(f"paired {preprocess} N={n} alpha={alpha:g} seed {seed}: q0={q0:.3f} e0 spec/warm/model "
                  f"{row['e0_spectral']:.3f}/{row['e0_warm']:.3f}/{e_model:.3f}; spectral {row['spectral_status']} "
                  f"|q|={row['spectral_q']:.3f}, warm {row['warm_status']} |q|={row['warm_q']:.3f}",
                  file=sys.stderr, flush=True)
    return out
