"""Finite-N success from the DMFT (docs/theory.md §7): the q0_c table and the comparison.

    OPENBLAS_NUM_THREADS=1 python benchmarks/finite_n_prediction.py table --alphas 6 5 7 --t-max 2 --seeds 0
    python benchmarks/finite_n_prediction.py compare --t-max 2 --out results/finite_n_theory/compare_T2.json

``table`` computes q0_c(alpha; T) with the nonlinear DMFT (S = 8000, dt_max = 0.025, the
CriticalStartConfig defaults) into results/finite_n_theory/q0c_table_S8000.json, resumable;
``compare`` writes the prediction against the stored sweeps and the N = 8192 prediction;
``fixed`` tests q0_c and the source r apart from the start law, on starts of fixed overlap
(prediction written before the runs).
"""
from __future__ import annotations

import argparse
import dataclasses
import json

from experiments import finite_n_theory as study
from theory.dmft.critical import CriticalStartConfig
from theory.io import atomic_write_text, json_ready, provenance
from theory.success import SuccessConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table")
    t.add_argument("--alphas", type=float, nargs="+", required=True)
    t.add_argument("--t-max", type=float, default=SuccessConfig.t_max)
    t.add_argument("--seeds", type=int, nargs="+", default=[0])
    t.add_argument("--samples", type=int, default=CriticalStartConfig.samples)
    t.add_argument("--table", default=SuccessConfig.table)
    t.add_argument("--bracket", type=float, nargs=2, metavar=("LO", "HI"),
                   default=(CriticalStartConfig.lo, CriticalStartConfig.hi), help="initial bracket in q_eff")
    t.add_argument("--width", type=float, default=CriticalStartConfig.width)
    c = sub.add_parser("compare")
    c.add_argument("--t-max", type=float, default=SuccessConfig.t_max)
    c.add_argument("--table", default=SuccessConfig.table)
    c.add_argument("--samples", type=int, default=SuccessConfig.samples, help="the table entries' DMFT samples S")
    c.add_argument("--predict-n", type=int, nargs="*", default=[8192])
    c.add_argument("--predict-alphas", type=float, nargs="*", default=[5.0, 6.0, 7.0])
    c.add_argument("--out", required=True)
    c.add_argument("--figures", metavar="PREFIX", help="write PREFIX_success_T.png and PREFIX_alpha_c_T.png")
    f = sub.add_parser("fixed", help="starts of fixed overlap q0 = m q0_c: the prediction (written once, "
                                     "before any run, never rewritten), then the runs and the comparison")
    f.add_argument("--n", type=int, default=4096)
    f.add_argument("--alphas", type=float, nargs="+", default=[6.0, 7.0, 8.0])
    f.add_argument("--multiples", type=float, nargs="+", default=[0.5, 1.0, 1.5])
    f.add_argument("--clusters", type=int, default=2)
    f.add_argument("--per-cluster", type=int, default=16)
    f.add_argument("--t-max", type=float, default=SuccessConfig.t_max)
    f.add_argument("--table", default=SuccessConfig.table)
    f.add_argument("--out", default="results/finite_n_theory/fixed_start_n4096")
    f.add_argument("--predict-only", action="store_true", help="write the prediction, run nothing")
    args = p.parse_args()
    if args.cmd == "fixed":
        fixed(args)
        return
    if args.cmd == "table":
        search = dataclasses.replace(CriticalStartConfig(), samples=args.samples, lo=args.bracket[0],
                                     hi=args.bracket[1], width=args.width)
        study.compute_critical_table(args.alphas, args.t_max, args.seeds, args.table, search)
        return
    out = {}
    for with_source in (True, False):
        cfg = SuccessConfig(t_max=args.t_max, table=args.table, samples=args.samples, with_source=with_source)
        out["with_source" if with_source else "start_only"] = {
            "comparison": study.compare(cfg),
            "prediction": study.prediction_rows(args.predict_n, args.predict_alphas, cfg)}
    out["provenance"] = provenance(kind="finite_n_theory_compare", t_max=args.t_max, table=args.table,
                                   samples=args.samples)
    atomic_write_text(args.out, json.dumps(json_ready(out), indent=1))
    if args.figures:
        cfg = SuccessConfig(t_max=args.t_max, table=args.table, samples=args.samples)
        report = json.loads((study.SWEEP_DIR / "report.json").read_text())
        t100 = [(int(n), v["alpha_c"], v["alpha_c_se"]) for n, v in report["by_n"].items()]
        comp = out["with_source"]["comparison"]
        study.success_figure(comp, cfg).savefig(f"{args.figures}_success_T{args.t_max:g}.png", dpi=120)
        study.alpha_c_figure(comp, cfg, t100, args.predict_n).savefig(f"{args.figures}_alpha_c_T{args.t_max:g}.png",
                                                                     dpi=120)


def fixed(args) -> None:
    """The fixed-overlap test: prediction.json first (kept if present), then the runs and
    summary.json (:func:`experiments.finite_n_theory.compare_fixed_start`)."""
    from pathlib import Path

    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    pred_path = folder / "prediction.json"
    if not pred_path.exists():
        cfg = SuccessConfig(t_max=args.t_max, table=args.table)
        rows = study.fixed_start_prediction(args.alphas, args.n, args.multiples, cfg)
        atomic_write_text(pred_path, json.dumps(json_ready({"prediction": rows, "provenance": provenance(
            kind="fixed_start_prediction", n=args.n, alphas=args.alphas, multiples=args.multiples,
            t_max=args.t_max, table=args.table)}), indent=1))
    rows = json.loads(pred_path.read_text())["prediction"]
    for r in rows:
        print(f"alpha={r['alpha']:g} q0={r['q0']:.4f} ({r['multiple']:g} q0_c): predicted "
              f"{r['success_probability']:.3f} [{r['low']:.3f}, {r['high']:.3f}]", flush=True)
    if args.predict_only:
        return
    summary = study.compare_fixed_start(rows, folder, args.clusters, args.per_cluster)
    for r in summary["rows"]:
        print(f"alpha={r['alpha']:g} q0={r['q0']:.4f}: measured {r['successes']}/{r['starts']}, predicted "
              f"{r['success_probability']:.3f}, z = {r['z']:+.2f}", flush=True)
    summary["provenance"] = provenance(kind="fixed_start_compare", n=args.n, clusters=args.clusters,
                                       per_cluster=args.per_cluster)
    atomic_write_text(folder / "summary.json", json.dumps(json_ready(summary), indent=1))
    print(f"chi^2 = {summary['chi2']:.1f} over {summary['points']} points, p = {summary['p_value']:.3g}", flush=True)


if __name__ == "__main__":
    from theory.errors import InputError

    try:
        main()
    except InputError as exc:  # bad input: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
