"""Finite-N success from the DMFT (docs/theory.md §7): the q0_c table and the comparison.

    OPENBLAS_NUM_THREADS=1 python benchmarks/finite_n_prediction.py table --alphas 6 5 7 --t-max 2 --seeds 0
    python benchmarks/finite_n_prediction.py compare --t-max 2 --out results/finite_n_theory/compare_T2.json

``table`` computes q0_c(alpha; T) with the nonlinear DMFT (S = 8000, dt_max = 0.025, the
CriticalStartConfig defaults) into results/finite_n_theory/q0c_table_S8000.json, resumable;
``compare`` writes the prediction against the stored sweeps and the N = 8192 prediction.
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
    args = p.parse_args()
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


if __name__ == "__main__":
    main()
