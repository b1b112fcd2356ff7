"""Lowest tangent-Hessian eigenvalue at t = 0 vs the finite-M cutoff law (docs/theory.md §4.1).

For each N and alpha, ``--seeds`` fresh data sets and random starts: Lanczos lowest
eigenvalue and the squared overlap of its eigenvector with e, against
:func:`simulation.tracking.t0_prediction` (t = 0 law with labels cut at y_c(M),
M P(|y| > y_c) = 1) and against the random-matrix core on each sample's own empirical
law. Writes a JSON table and a PNG against log M, with the cutoff-law curve continued to
M = 10^8 to show the log M drift.

    OPENBLAS_NUM_THREADS=1 python benchmarks/t0_lowest_eigenvalue.py --out results/t0
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from simulation.data import make_problem, random_starts
from simulation.probes import lowest_eigenpairs
from simulation.tracking import law_at_state, t0_prediction
from theory.io import atomic_write_text
from theory.spectrum import spectrum_summary


def measure(n: int, alpha: float, seeds: int) -> dict:
    low, ov, emp = [], [], []
    for seed in range(seeds):
        p = make_problem(n, alpha, 7_000_000 + 1000 * n + seed)
        w = random_starts(n, 1, 7_000_000 + 1000 * n + seed)[:, 0]
        pr = lowest_eigenpairs(p, w, 2, tol=1e-8)
        low.append(float(pr.eigenvalues[0]))
        ov.append(float(pr.overlap2[0]))
        s = spectrum_summary(law_at_state(p, w))
        emp.append(s.bulk_edge if s.isolated_eigenvalue is None else min(s.bulk_edge, s.isolated_eigenvalue))
    pred = t0_prediction(alpha, int(round(alpha * n)))
    return dict(n=n, alpha=alpha, m=int(round(alpha * n)), seeds=seeds, lanczos_mean=float(np.mean(low)),
                lanczos_sem=float(np.std(low, ddof=1) / np.sqrt(seeds)), lanczos_overlap2_mean=float(np.mean(ov)),
                empirical_law_mean=float(np.mean(emp)), cutoff_edge=pred.edge, cutoff_iso=pred.iso,
                cutoff_overlap2=pred.overlap2, cutoff_lowest=pred.lowest, y_cut2=pred.y_cut2)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.6))
    for i, alpha in enumerate(sorted({r["alpha"] for r in rows})):
        rr = [r for r in rows if r["alpha"] == alpha]
        m = np.array([r["m"] for r in rr])
        ax.errorbar(np.log(m), [r["lanczos_mean"] for r in rr], yerr=[2 * r["lanczos_sem"] for r in rr], fmt="o",
                    color=f"C{i}", label=f"Lanczos, alpha={alpha:g} (mean +- 2 s.e.)")
        ax.plot(np.log(m), [r["empirical_law_mean"] for r in rr], "x", color=f"C{i}", ms=8,
                label=f"core on each sample's law, alpha={alpha:g}")
        mm = np.unique(np.geomspace(max(8, m.min() / 2), 1e8, 40).astype(int))
        preds = [t0_prediction(alpha, int(x)) for x in mm]
        ax.plot(np.log(mm), [p.lowest for p in preds], "-", color=f"C{i}", label=f"cutoff law (eq. 4.3), alpha={alpha:g}")
        ax.plot(np.log(mm), [-2 * p.y_cut2 - (4 * alpha * 24 / (2 * p.y_cut2)) for p in preds], ":", color=f"C{i}",
                label=f"-2 y_c^2 - 96 alpha / (2 y_c^2), alpha={alpha:g}")
    ax.set_xlabel("log M  (M = alpha N measurements)")
    ax.set_ylabel("lowest tangent-Hessian eigenvalue at t = 0")
    ax.set_title("t = 0: lowest eigenvalue vs the finite-M cutoff of the labels")
    ax.legend(fontsize=7, ncol=1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/t0")
    ap.add_argument("--n", type=int, nargs="*", default=[128, 256, 512, 1024, 2048])
    ap.add_argument("--alpha", type=float, nargs="*", default=[4.0, 6.0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--figure", default="figures/t0_lowest_eigenvalue.png")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for alpha in args.alpha:
        for n in args.n:
            t0 = time.perf_counter()
            r = measure(n, alpha, args.seeds)
            r["wall"] = time.perf_counter() - t0
            rows.append(r)
            print(f"alpha={alpha:g} N={n} M={r['m']}: Lanczos {r['lanczos_mean']:.2f} +- {r['lanczos_sem']:.2f} "
                  f"(overlap2 {r['lanczos_overlap2_mean']:.2f}); own law {r['empirical_law_mean']:.2f}; cutoff law "
                  f"{r['cutoff_lowest']:.2f} (edge {r['cutoff_edge']:.2f}, iso {r['cutoff_iso']}, ov2 "
                  f"{r['cutoff_overlap2']:.2f}); {r['wall']:.0f} s", file=sys.stderr, flush=True)
    atomic_write_text(out / "t0_lowest.json", json.dumps(rows, indent=1))
    plot(rows, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
