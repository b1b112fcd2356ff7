"""Finite-N success curves of gradient flow (docs/theory.md §4, docs/validation.md).

The runs are sweeps (``simulation.sweep``), one file per N in ``--out``
(``sweep_n{N}.nc``, resumable, written after every chunk), with the study's protocol
(``experiments.finite_n.study_config``): every start has FRESH data and a fresh start
from the seed point_seed(N, alpha) + j; float32 flow, rtol 1e-2, atol 1e-3, recording
only t = 0, stopped at |q| >= 0.9 (success), at the trapped rule (rms gradient <= 1e-4)
or at t_max = 100. Timeouts are failures, counted separately; ``ambiguous`` counts
timeouts with 0.5 <= |q| < 0.9. The science (success table, alpha_c(N), the mechanism,
the extrapolations, figures) is ``experiments.finite_n``.

Any start is rerun alone by a one-start sweep with its seed, e.g.
``python -m simulation sweep --n 128 --alpha 5 --starts 1 --seeds 1280500003 --t-max 100
--success-overlap 0.9 --rtol 1e-2 --atol 1e-3 --dtype float32 --time-grid none``.

Why these settings (``--check N ALPHA``, same seeds, docs/validation.md): at N = 512,
alpha = 4 and 5 (16 runs each) the float32 rtol-1e-2 flow run to t = 400 classifies
every run exactly as a float64 rtol-1e-6 flow (grad_tol 1e-8) run to t = 400, at ~1/40
of the cost. ``--horizon N ALPHA`` reruns a point's first timeouts to t = 400 (a sweep
over their seeds, ``horizon_n{N}_a{alpha}.nc``).

    OPENBLAS_NUM_THREADS=1 python benchmarks/finite_n_success.py --out results/finite_n_t100 --n 128
    python benchmarks/finite_n_success.py --out results/finite_n_t100 --summary
    python benchmarks/finite_n_success.py --out results/finite_n_t100 --report

Batched (``--batched CLUSTERS PER_CLUSTER``, ``simulation.batched``): PER_CLUSTER starts on
each of CLUSTERS data sets run as one matrix-matrix flow; P(success) is the mean over all
starts with the cluster-robust error (starts on one data set are correlated). Checked
against the stored fresh-data points in ``benchmarks/bench_finite_n.py compare``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from experiments import finite_n as study
from simulation.sweep import read_sweep, run_sweep
from theory.io import atomic_savez


def run_study(out: Path, ns, starts: int, alphas=None, workers: int | None = None) -> None:
    """The study's sweep of every N in ``ns`` (resumes the files in ``out``)."""
    for n in ns:
        config = study.study_config(n, starts, alphas)
        rep = run_sweep(config, study.sweep_path(out, n), workers=workers, progress=True)
        for a, p in zip(config.alpha, rep.success_fraction[:, 0]):
            print(f"N={n} alpha={a:g}: P(success)={p:.3f} over {starts} starts", flush=True)


def horizon(out: Path, n: int, alpha: float, runs: int, workers: int | None = None) -> Path:
    """Rerun the first ``runs`` timeouts of a stored point to t = 400 (same seeds and flow)."""
    ds = read_sweep(study.sweep_path(out, n))
    config = study.horizon_config(ds, alpha, runs)
    path = study.horizon_path(out, n, alpha)
    run_sweep(config, path, workers=workers, progress=True)
    back = read_sweep(path)
    for s, status, q, t in zip(back["cell_seed"].values[0, 0], back["status"].values[0, 0],
                               back["final_overlap"].values[0, 0], back["stop_time"].values[0, 0]):
        print(f"horizon N={n} alpha={alpha:g} seed {s}: |q| {abs(q):.2f} ({status}, t = {t:.0f})")
    return path


def check_settings(out: Path, n: int, alpha: float, starts: int, t_long: float = 400.0,
                   workers: int | None = None) -> dict:
    """Justify the cheap settings: the first ``starts`` runs of the point (same seeds) as
    sweeps under (a) the protocol, (b) the same float32 flow to ``t_long``, (c) a float64
    flow with the default tight tolerances to ``t_long``; success = |q| >= 0.9."""
    settings = {"sweep": {}, "f32_long": dict(t_max=t_long),
                "f64_tight_long": dict(t_max=t_long, dtype="float64", rtol=None, atol=None)}
    res = {}
    for name, overrides in settings.items():
        config = study.study_config(n, starts, (alpha,), **overrides)
        path = out / f"check_n{n}_a{alpha:g}_{name}.nc"
        run_sweep(config, path, workers=workers)
        ds = read_sweep(path)
        q = np.abs(ds["final_overlap"].values[0, 0])
        res[name] = dict(success=q >= study.SUCCESS_OVERLAP, q=q, stop_time=ds["stop_time"].values[0, 0],
                         wall=float(np.nansum(ds["wall_seconds"].values)))
        print(f"check N={n} alpha={alpha:g} {name}: P={np.mean(res[name]['success']):.3f}", flush=True)
    ref = res["f64_tight_long"]["success"]
    for name in ("sweep", "f32_long"):
        agree = int(np.sum(res[name]["success"] == ref))
        print(f"check N={n} alpha={alpha:g}: {name} agrees with f64_tight_long on {agree}/{starts} runs")
    return res


def stored_sweeps(out: Path) -> list[Path]:
    return sorted(out.glob("sweep_n*.nc"), key=lambda p: int(p.stem.removeprefix("sweep_n")))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/finite_n_t100", help="folder of the study's sweep files")
    ap.add_argument("--starts", type=int, default=64)
    ap.add_argument("--n", type=int, nargs="*", default=[128, 256, 512, 1024])
    ap.add_argument("--alpha", type=float, nargs="*", default=None,
                    help="alphas to run (default: the study's grid for each N)")
    ap.add_argument("--workers", type=int, default=None, help="local worker processes (0: in this process)")
    ap.add_argument("--summary", action="store_true", help="print the table of the stored points and exit")
    ap.add_argument("--check", type=float, nargs=2, metavar=("N", "ALPHA"), default=None,
                    help="compare the protocol with long float32 and tight float64 runs on the same seeds")
    ap.add_argument("--check-starts", type=int, default=16)
    ap.add_argument("--horizon", nargs=2, metavar=("N", "ALPHA"),
                    help="rerun the point's timeouts to t = 400: do undecided runs succeed later?")
    ap.add_argument("--horizon-runs", type=int, default=8)
    ap.add_argument("--report", action="store_true",
                    help="fit alpha_c(N), the mechanism prediction and the extrapolation; write figures")
    ap.add_argument("--report-json", default=None, help="where to write the report (default OUT/report.json)")
    ap.add_argument("--bbp-report", default="results/bbp_t/report.json",
                    help="report.json of benchmarks/bbp_in_time.py (Lambda_N(alpha))")
    ap.add_argument("--figures", default="figures")
    ap.add_argument("--batched", type=int, nargs=2, metavar=("CLUSTERS", "PER_CLUSTER"), default=None,
                    help="run the points as batches: CLUSTERS data sets of PER_CLUSTER starts each (seeds "
                         "point_seed + 5000 + c; files batched_n{N}_a{alpha}.nc; P with cluster-robust errors)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.batched:
        clusters, per = args.batched
        for n in args.n:
            for a in (args.alpha or study.GRID[n]):
                r = study.run_batched(out, n, a, clusters, per)
                print(f"N={n} alpha={a:g}: P(success) = {r['p']:.3f} +- {r['se']:.3f} (cluster-robust; "
                      f"{r['successes']}/{r['starts']} over {r['clusters']} data sets, {r['timeouts']} timeouts)",
                      flush=True)
        return 0
    if args.report:
        res = study.report(stored_sweeps(out), args.bbp_report, args.figures,
                           args.report_json or out / "report.json")
        for n, r in res["by_n"].items():
            print(f"N={n}: alpha_c = {r['alpha_c']:.2f} +- {r['alpha_c_se']:.2f} (width {r['width']:.2f}); "
                  f"mechanism {r['alpha_c_pred']:.2f} (q*={res['q_star']:.3g}), {r['alpha_c_pred_qstar1']:.2f} (q*=1)"
                  + ("; width fixed from smaller N" if r["width_fixed"] else "")
                  + f"; timeouts {100 * r['timeout_fraction']:.0f}%, alpha_c {r['alpha_c_if_timeouts_succeed']:.2f}"
                    " if they all succeeded later")
        print(json.dumps({k: res[k] for k in ("q_star", "extrapolation", "linear_in_log_n", "alpha_threshold_theory")}))
        return 0
    if args.horizon:
        horizon(out, int(args.horizon[0]), float(args.horizon[1]), args.horizon_runs, args.workers)
        return 0
    if args.check:
        n, alpha = int(args.check[0]), float(args.check[1])
        res = check_settings(out, n, alpha, args.check_starts, workers=args.workers)
        atomic_savez(out / f"check_n{n}_a{alpha:g}.npz",
                     **{f"{k}_{f}": v[f] for k, v in res.items() for f in ("success", "q", "stop_time")},
                     **{f"{k}_wall": np.float64(v["wall"]) for k, v in res.items()})
        return 0
    if args.summary:
        for r in study.success_rows(stored_sweeps(out)):
            print(f"N={r['n']:5d} alpha={r['alpha']:4g} P(success)={r['p']:.3f} +- {r['stderr']:.3f} "
                  f"({r['successes']}/{r['starts']}; timeouts {r['timeouts']}, ambiguous {r['ambiguous']}; "
                  f"{r['wall']:.0f} s)")
        return 0
    run_study(out, args.n, args.starts, args.alpha, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
