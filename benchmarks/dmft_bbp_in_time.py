"""alpha_BBP(t) at N = infinity from the DMFT law of (yhat(t), y) (docs/theory.md eq. 5.26).

Random starts (q0 = 0, so q(t) = 0 and s = y): for each alpha the DMFT is solved to
t_max and the BBP residual (eq. 2.9) of the law is computed at a few times, as seen by a
system of M measurements (M equal-weight atoms drawn from the law, eq. 5.30, docs/theory.md
5.11); alpha_BBP(t) is where it changes sign. Run with OPENBLAS_NUM_THREADS=1:

    python benchmarks/dmft_bbp_in_time.py [--samples 8000] [--t-max 1] [--atoms M] [--y-scale 1] [--stein-rcond 0] [--json FILE]

Defaults: the validated estimator of solve_dmft (importance sampling y_scale = 2 and the
Stein projection stein_rcond = 1e-3), M = S atoms by systematic resampling (the typical
system). ``--y-scale 1 --stein-rcond 0`` gives the plain-sampling numbers of earlier runs.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from theory.dmft import DMFTGrid, alpha_bbp, default_y_scale, solve_dmft
from theory.errors import ConvergenceError
from theory.io import atomic_write_text
from theory.spectrum import spectrum_summary

ALPHAS = (3.0, 4.0, 6.0, 8.0, 10.0)
TIMES = (0.0, 0.03, 0.1, 0.3, 1.0)


def main(samples: int = 8000, t_max: float = 1.0, y_scale: float | None = None, stein_rcond: float | None = 1e-3,
         atoms: int | None = None, json_path: str | None = None):
    results, rows = [], []
    atoms = samples if atoms is None else atoms
    y_scale = default_y_scale(0.0) if y_scale is None else y_scale
    print(f"S = {samples}, M = {atoms} atoms; rows: alpha, then (bulk edge, lambda_iso, bbp residual) at t = {TIMES}")
    for a in ALPHAS:
        try:
            r = solve_dmft(a, t_max, n_samples=samples, grid=DMFTGrid(t_max, dt_max=0.05), y_scale=y_scale,
                           stein_rcond=stein_rcond)
        except ConvergenceError as exc:
            print(f"alpha {a:5.1f}: {exc}", flush=True)
            continue
        results.append(r)
        cells = []
        for t in TIMES:
            sm = spectrum_summary(r.measure(t, atoms))
            iso = "none" if sm.isolated_eigenvalue is None else f"{sm.isolated_eigenvalue:.3f}"
            cells.append(f"({sm.bulk_edge:.3f}, {iso}, {sm.residuals.bbp:+.3f})")
            rows.append(dict(alpha=a, t=float(r.t[r.index(t)]), energy=float(r.energy[r.index(t)]),
                             bulk_edge=sm.bulk_edge, lambda_iso=sm.isolated_eigenvalue, bbp_residual=sm.residuals.bbp))
        print(f"alpha {a:5.1f} e(t_max) {r.energy[-1]:.3f} ({r.wall_seconds:.0f} s): " + " ".join(cells), flush=True)
    a_bbp = {f"{t:g}": alpha_bbp(results, t, atoms) for t in TIMES}
    for t, v in a_bbp.items():
        print(f"alpha_BBP(t = {t}) = {v}")
    if json_path:
        atomic_write_text(json_path, json.dumps(dict(samples=samples, atoms=atoms, t_max=t_max, y_scale=y_scale,
                                                     stein_rcond=stein_rcond, rows=rows, alpha_bbp=a_bbp), indent=1))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=8000)
    ap.add_argument("--t-max", type=float, default=1.0)
    ap.add_argument("--y-scale", type=float, default=None,
                    help="importance sampling of y (default: solve_dmft's, 2 from a random start; 1: plain)")
    ap.add_argument("--stein-rcond", type=float, default=1e-3, help="Stein projection (default 1e-3; 0: off)")
    ap.add_argument("--atoms", type=int, default=None, help="system of M measurements (default M = samples)")
    ap.add_argument("--json", metavar="FILE", help="write the table and alpha_BBP(t) as JSON")
    a = ap.parse_args()
    main(a.samples, a.t_max, a.y_scale, a.stein_rcond or None, a.atoms, a.json)
