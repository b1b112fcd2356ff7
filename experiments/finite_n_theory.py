"""Finite-N success from the DMFT (docs/theory.md §7) against the finite-N sweeps.

- :func:`compute_critical_table`: q0_c(alpha; T) by the nonlinear DMFT
  (:func:`theory.dmft.critical.critical_start`) for several alphas and seeds, cached in the
  q0_c table (:mod:`theory.success`; resumable: every solve is written as it finishes);
- :func:`simulated_success`: P(success by T) per (N, alpha) from the stored sweeps
  (results/finite_n_t100), success with stop_time <= T;
- :func:`compare`: predicted (7.13) against simulated counts: chi^2, p-value, largest
  deviation in binomial standard errors, alpha_c(N) from both;
- :func:`prediction_rows`: the prediction for N values not simulated (committed before the
  simulation, e.g. N = 8192).
"""
from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from simulation.sweep import read_sweep
from theory.dmft.critical import CriticalStartConfig, EscapeRun, critical_start
from theory.statistics import binomial_standard_error, fit_logistic
from theory.success import (SuccessConfig, alpha_c, entry_key, load_table, store_entry, store_run,
                            success_probability)

__all__ = ["compute_critical_table", "simulated_success", "compare", "prediction_rows", "SWEEP_DIR"]

#: the finite-N sweeps (experiments.finite_n protocol: success |q| >= 0.9 by t = 100)
SWEEP_DIR = Path(__file__).resolve().parents[1] / "results" / "finite_n_t100"


def compute_critical_table(alphas: Sequence[float], t_max: float, seeds: Sequence[int], table: str | Path,
                           search: CriticalStartConfig | None = None, progress: bool = True) -> list[dict]:
    """q0_c(alpha; t_max) for every alpha and seed, stored in ``table`` (resumable)."""
    base = CriticalStartConfig() if search is None else search
    out = []
    for seed in seeds:
        cfg = dataclasses.replace(base, seed=int(seed))
        for alpha in alphas:
            key = entry_key(alpha, t_max, cfg.samples, cfg.seed, cfg.dt_max, cfg.level, cfg.t_linear)
            tab = load_table(table)
            if key in tab["entries"]:
                out.append(tab["entries"][key])
                continue
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


def simulated_success(horizon: float, sweep_dir: str | Path = SWEEP_DIR) -> list[dict]:
    """Per (N, alpha) of the stored sweeps: starts, successes by ``horizon`` (success and
    stop_time <= horizon), the fraction and its binomial standard error."""
    rows = []
    for path in sorted(Path(sweep_dir).glob("sweep_n*.nc"), key=lambda p: int(p.stem[7:])):
        ds = read_sweep(path)
        for n in ds["n"].values:
            for a in ds["alpha"].values:
                sel = ds.sel(alpha=a, n=n)
                ok = np.asarray(sel["success"].values, bool)
                st = np.asarray(sel["stop_time"].values, float)
                m = int(ok.size)
                k = int(np.sum(ok & (st <= horizon)))
                rows.append({"n": int(n), "alpha": float(a), "starts": m, "successes": k, "p": k / m,
                             "stderr": binomial_standard_error(k, m)})
    return rows


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
        m, p = r["starts"], pr.success_probability
        var = max(p * (1 - p), 1.0 / (4 * m)) / m
        z = (r["p"] - p) / math.sqrt(var)
        chi2 += z * z
        rows.append({**r, "predicted": p, "predicted_low": pr.low, "predicted_high": pr.high, "z": z})
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
        ac.append({"n": n, "simulated": fit[0], "simulated_se": fit[1], "predicted": pred})
    out["alpha_c"] = ac
    return out


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
