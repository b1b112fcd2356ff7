"""alpha_BBP(t) and the growth exponent of the overlap from laws along trajectories
(docs/theory.md §4.3-4.4, docs/validation.md; the science is in
experiments/bbp.py).

For each N and alpha, ``--starts`` trajectories (fresh data and start each, float32
flow, rtol 1e-3) are tracked theory-only at a log grid of times and saved per (N, alpha)
in ``--out`` (resumable; ``experiments.bbp.run_point``). ``--report`` builds, from the
saved files, alpha_BBP(t) (eq. 4.4), Lambda_N(alpha) (eq. 4.6) and the mechanism
predictions (eqs. 4.7-4.8) (``experiments.bbp.bbp_report``), writes ``report.json`` in
``--out`` (with provenance) and the figures in ``--figures``.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bbp_in_time.py --out results/bbp_t
    python benchmarks/bbp_in_time.py --out results/bbp_t --report
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from experiments.bbp import (ALPHAS, TIMES, bbp_report, load_points, plot_alpha_bbp_diagram, plot_alpha_bbp_t,
                             point_path, run_point, save_point)
from theory.io import atomic_write_text, provenance


def report(out: Path, fig_dir: Path, q_star: float = 1.0) -> dict:
    """The report of the points in ``out``: report.json there, figures in ``fig_dir``."""
    res = bbp_report(load_points(out), TIMES, q_star)
    for n in res["by_n"]:
        plot_alpha_bbp_diagram(res, n, fig_dir / f"alpha_bbp_t_n{n}.png")
    plot_alpha_bbp_t(res, fig_dir / "alpha_bbp_t.png")
    res["provenance"] = provenance(script="benchmarks/bbp_in_time.py --report", points=str(out), q_star=q_star)
    atomic_write_text(out / "report.json", json.dumps(res, indent=1, default=float))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/bbp_t")
    ap.add_argument("--n", type=int, nargs="*", default=[256, 512, 1024])
    ap.add_argument("--alpha", type=float, nargs="*", default=list(ALPHAS))
    ap.add_argument("--starts", type=int, default=6)
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--figures", default="figures")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.report:
        res = report(out, Path(args.figures))
        for n, r in res["by_n"].items():
            print(f"N={n}: Lambda(alpha) " + " ".join(f"{a:g}:{L:.2f}" for a, L in zip(r["alphas"], r["Lambda"]))
                  + f"; predicted alpha_c = {r['alpha_c_pred']:.2f}; P_pred " +
                  " ".join(f"{a:g}:{p:.2f}" for a, p in zip(r["alphas"], r["p_pred"])))
            print("   alpha_BBP(t): " + " ".join(f"{tt:g}:{'-' if x is None else f'{x:.2f}'}"
                                               for tt, x in zip(res["times"], r["alpha_bbp_t"])))
        return 0
    from tqdm import tqdm
    todo = [(n, a) for n in args.n for a in args.alpha if not point_path(out, n, a).exists()]
    for n, a in tqdm(todo, desc="bbp_t points", mininterval=10):
        t0 = time.perf_counter()
        save_point(out, n, a, run_point(n, a, args.starts))
        print(f"N={n} alpha={a:g}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
