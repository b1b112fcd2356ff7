"""Kac-Rice landscape of the minima (docs/theory.md §8) against trapped gradient-flow states.

A thin script over ``experiments.landscape`` (the science lives there). Stages, each
reproducible and writing one result file (atomic, provenance attached):

    window   energies of the counted minima per alpha (e_low, e_typical, e_high with --high)
             next to e_th (1RSB) and the simulated stopping energies -> results/kac_rice/window.json
    bbp      the alpha where the typical minima get a spike toward the signal -> results/kac_rice/bbp.json
    phase    Sigma, energy, region on an (alpha, beta) grid -> results/kac_rice/phase_diagram.nc
             and figures/kac_rice_phase_diagram.png, figures/kac_rice_sigma.png (plot: figures only)
    simulate trapped states, orthogonal protocol, N = 1000 -> results/kac_rice/states/ (resumable)
    compare  laws and spectra of those states against Kac-Rice and 1RSB -> results/kac_rice/compare.json
             and figures/kac_rice_density.png
    critical critical points of any index (predictions only: e_low_critical, index levels,
             e_threshold_kr) -> results/kac_rice/critical_points.json
    critical-upper  the most numerous critical points (maximum of Sigma_tot, beta = 0), walked up
             from the committed walk -> results/kac_rice/critical_upper.json
    critical-compare  Sigma_tot, index and Sigma_min at the flow's stopping energies, next to the
             predictions -> results/kac_rice/critical_compare.json and figures/kac_rice_critical.png
    overlap-predict  minima at teacher overlap q (§8.10), on the sub-sphere of overlap q and on the
             whole sphere -> results/kac_rice/overlap_predictions.json (commit before simulating)
    overlap-simulate  gradient flow held at overlap q, one record per (N, alpha, q)
             -> results/kac_rice/overlap_runs.json (resumable: done points are skipped)
    overlap-compare  the runs against the predictions -> results/kac_rice/overlap_compare.json
             and figures/kac_rice_overlap.png
    count    a direct count of the minima at q = 0 for N = 16-48 (many starts + Newton) against
             exp(N Sigma(e_typical)) -> results/kac_rice/minima_count.json (resumable)

    OPENBLAS_NUM_THREADS=1 python benchmarks/validate_kac_rice.py window
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from experiments.landscape import (compare_states, critical_compare, critical_table, critical_upper_table,
                                   format_rows, phase_diagram_dataset, plot_critical, plot_phase_diagram,
                                   plot_sigma_curves,
                                   simulate_states, window_table)
from theory.io import atomic_write_text, json_ready, provenance, write_netcdf

OUT = Path("results/kac_rice")


def _write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(json_ready(payload), indent=1))
    print(f"wrote {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("window")
    w.add_argument("--alphas", type=float, nargs="+", default=[3.0, 4.0, 5.0, 6.0, 7.0])
    w.add_argument("--high", action="store_true", help="also search e_high (slow)")
    b = sub.add_parser("bbp")
    b.add_argument("--range", type=float, nargs=2, default=(4.0, 24.0))
    b.add_argument("--betas", type=float, nargs="+", default=[0.0],
                   help="beta = dSigma/de of the minima followed in alpha (the first is the headline)")
    p = sub.add_parser("phase")
    p.add_argument("--alphas", type=float, nargs="+", default=[2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 18])
    p.add_argument("--betas", type=float, nargs="+",
                   default=[-0.05, -0.04, -0.03, -0.02, -0.01, 0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2])
    sub.add_parser("plot", help="figures from results/kac_rice/phase_diagram.nc")
    s = sub.add_parser("simulate")
    s.add_argument("--alphas", type=float, nargs="+", default=[3.0, 4.0, 5.0, 6.0, 7.0])
    s.add_argument("--n", type=int, default=1000)
    s.add_argument("--reps", type=int, default=4)
    c = sub.add_parser("compare")
    c.add_argument("--states", type=Path, default=OUT / "states")
    k = sub.add_parser("critical")
    k.add_argument("--alphas", type=float, nargs="+", default=[3.0, 4.0, 5.0, 6.0, 7.0])
    sub.add_parser("critical-compare")
    sub.add_parser("critical-upper")
    op = sub.add_parser("overlap-predict")
    op.add_argument("--alphas", type=float, nargs="+", default=[3.0, 4.0, 5.0, 6.0, 7.0])
    op.add_argument("--overlaps", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6])
    osim = sub.add_parser("overlap-simulate")
    osim.add_argument("--alphas", type=float, nargs="+", default=[3.0, 4.0, 5.0, 6.0, 7.0])
    osim.add_argument("--overlaps", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6])
    osim.add_argument("--n", type=int, nargs="+", default=[1000, 2000])
    osim.add_argument("--reps", type=int, default=8)
    sub.add_parser("overlap-compare")
    cnt = sub.add_parser("count")
    cnt.add_argument("--sizes", type=int, nargs="+", default=[16, 24, 32, 40, 48])
    cnt.add_argument("--alpha", type=float, default=4.0)
    cnt.add_argument("--data-sets", type=int, default=4)
    cnt.add_argument("--starts-per-n", type=int, default=100, help="random starts per data set = this x N")
    args = ap.parse_args(argv)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.cmd == "window":
        rows = window_table(args.alphas, high=args.high, log=log)
        _write_json(OUT / "window.json", {"provenance": provenance(alphas=args.alphas, high=args.high), "rows": rows})
        print(format_rows(rows, ["alpha", "e_low", "e_typical", "e_high", "sigma_typical", "mu_typical", "e_th",
                                 "e_sim_N4000", "rel_typical_vs_sim"]))
    elif args.cmd == "bbp":
        from theory.kac_rice import bbp_alpha

        curve = []
        for beta in args.betas:
            curve.append(bbp_alpha(beta=beta, alpha_range=tuple(args.range), strict=False))
            log(json.dumps(json_ready(curve[-1])))
        res = {**curve[0], "curve": curve}
        _write_json(OUT / "bbp.json", {"provenance": provenance(alpha_range=list(args.range), betas=args.betas), **res})
        print(json.dumps(json_ready(res)))
    elif args.cmd in ("phase", "plot"):
        if args.cmd == "phase":
            ds = phase_diagram_dataset(args.alphas, args.betas, log=log)
            write_netcdf(ds, OUT / "phase_diagram.nc")
        else:
            from theory.io import load_netcdf

            ds = load_netcdf(OUT / "phase_diagram.nc")
        plot_sigma_curves(ds, "figures/kac_rice_sigma.png")
        bbp = None
        if (OUT / "bbp.json").exists():
            bbp = json.loads((OUT / "bbp.json").read_text())
        plot_phase_diagram(ds, "figures/kac_rice_phase_diagram.png", bbp)
        print(f"wrote {OUT / 'phase_diagram.nc'} and figures/kac_rice_phase_diagram.png", file=sys.stderr)
    elif args.cmd == "critical":
        rows = critical_table(args.alphas, log=log)
        _write_json(OUT / "critical_points.json", {"provenance": provenance(alphas=args.alphas, stage="critical"),
                                                   "rows": rows})
        print(format_rows(rows, ["alpha", "e_typical_minima", "sigma_tot_at_e_typical", "index_at_e_typical",
                                 "e_low_critical", "index_at_e_low_critical", "e_threshold_kr"]))
    elif args.cmd == "critical-upper":
        pred = json.loads((OUT / "critical_points.json").read_text())
        rows = critical_upper_table(pred["rows"], log=log)
        _write_json(OUT / "critical_upper.json",
                    {"provenance": provenance(stage="critical-upper", start="critical_points.json"), "rows": rows})
        print(format_rows(rows, ["alpha", "e_typical_critical", "sigma_tot_max", "index_at_max", "mu_at_max",
                                 "converged", "residual"]))
    elif args.cmd == "critical-compare":
        pred = json.loads((OUT / "critical_points.json").read_text())
        rows = critical_compare(pred["rows"], log=log)
        _write_json(OUT / "critical_compare.json",
                    {"provenance": provenance(stage="critical-compare", predictions="critical_points.json",
                                              predictions_created=pred["provenance"]["created"]), "rows": rows})
        phase = None
        if (OUT / "phase_diagram.nc").exists():
            from theory.io import load_netcdf

            phase = load_netcdf(OUT / "phase_diagram.nc")
        plot_critical(pred["rows"], "figures/kac_rice_critical.png", phase)
        print(format_rows(rows, [k for k in rows[0] if k not in ("message",)]))
    elif args.cmd == "overlap-predict":
        from experiments.overlap import overlap_predictions

        rows = overlap_predictions(args.alphas, args.overlaps, log=log)
        _write_json(OUT / "overlap_predictions.json",
                    {"provenance": provenance(stage="overlap-predict", alphas=args.alphas, overlaps=args.overlaps),
                     "rows": rows})
        print(format_rows(rows, ["alpha", "overlap", "e_restricted", "sigma_restricted", "mu_restricted",
                                 "dsigma_dq_restricted", "e_sphere", "sigma_sphere", "dsigma_dq_sphere"]))
    elif args.cmd == "overlap-simulate":
        from experiments.overlap import simulate_fixed_overlap

        path = OUT / "overlap_runs.json"
        runs = json.loads(path.read_text())["runs"] if path.exists() else []
        done = {(r["n"], r["alpha"], r["overlap"]) for r in runs}
        for n in args.n:
            for a in args.alphas:
                for q in args.overlaps:
                    if (n, a, q) in done:
                        continue
                    runs.append(simulate_fixed_overlap(n, a, q, args.reps))
                    r = runs[-1]
                    log(f"N={n} alpha={a:g} q={q:g}: {r['status'].count('trapped')}/{args.reps} trapped, "
                        f"e={np.round(r['energy'], 4).tolist()} ({r['wall_seconds']:.0f} s)")
                    _write_json(path, {"provenance": provenance(stage="overlap-simulate", reps=args.reps,
                                                                experiment="experiments.overlap.simulate_fixed_overlap"),
                                       "runs": runs})
    elif args.cmd == "overlap-compare":
        from experiments.overlap import overlap_compare, plot_overlap

        pred = json.loads((OUT / "overlap_predictions.json").read_text())
        runs = json.loads((OUT / "overlap_runs.json").read_text())["runs"]
        rows = []
        for n in sorted({r["n"] for r in runs}):
            for row in overlap_compare(pred["rows"], [r for r in runs if r["n"] == n]):
                rows.append({"n": n, **row})
        _write_json(OUT / "overlap_compare.json",
                    {"provenance": provenance(stage="overlap-compare", predictions="overlap_predictions.json",
                                              predictions_created=pred["provenance"]["created"]), "rows": rows})
        plot_overlap(rows, "figures/kac_rice_overlap.png", pred["rows"])
        print(format_rows(rows, ["n", "alpha", "overlap", "trapped", "e_sim", "e_sim_se", "e_kr", "shift_e_sim",
                                 "shift_e_kr", "mu_sim", "mu_kr", "shift_mu_sim", "shift_mu_kr"]))
    elif args.cmd == "count":
        from experiments.minima_count import count_table, run_counts
        from theory.kac_rice import solve_kac_rice

        path = OUT / "minima_count.json"
        done = json.loads(path.read_text())["records"] if path.exists() else []
        prov = provenance(stage="count", alpha=args.alpha, data_sets=args.data_sets, starts_per_n=args.starts_per_n,
                          experiment="experiments.minima_count.count_minima")

        def save(records):
            _write_json(path, {"provenance": prov, "records": records})

        records = done
        for n in args.sizes:
            records = run_counts([n], args.alpha, args.data_sets, args.starts_per_n * n, records, save, log=log)
        sigma = solve_kac_rice(args.alpha).complexity
        rows = count_table([r for r in records if r["alpha"] == args.alpha], sigma_typical=sigma)
        _write_json(path, {"provenance": prov, "records": records, "table": rows})
        print(format_rows(rows, ["n", "data_sets", "starts", "mean_count", "se_count", "log_mean_over_n",
                                 "mean_log_over_n", "slope_annealed", "slope_quenched", "e_over_minima",
                                 "e_over_starts", "ratio_starts_to_minima", "ratio_se", "new_in_last_half",
                                 "sigma_typical"]))
    elif args.cmd == "simulate":
        simulate_states(OUT / "states", args.alphas, args.n, args.reps, log=log)
    else:
        from experiments.threshold import load_points

        points = load_points(args.states)
        if not points:
            print(f"no point files in {args.states}", file=sys.stderr)
            return 2
        rows = compare_states(points, figure="figures/kac_rice_density.png", log=log)
        _write_json(OUT / "compare.json", {"provenance": provenance(states=str(args.states)), "rows": rows})
        keys = ["alpha", "n", "states", "e_states", "e_typical", "e_th", "mu_states", "mu_typical", "mu_th"]
        keys += [k for k in rows[0] if k.startswith("ks_")]
        print(format_rows(rows, keys))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
