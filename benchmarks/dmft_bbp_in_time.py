"""alpha_BBP(t) at N = infinity from the DMFT law of (yhat(t), y) (docs/theory.md eq. 5.26).

Random starts (q0 = 0, so q(t) = 0 and s = y): for each alpha the DMFT is solved to
t_max and the BBP residual (eq. 2.9) of the sampled law is computed at a few times;
alpha_BBP(t) is where it changes sign. Run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1:

    python benchmarks/dmft_bbp_in_time.py
"""
from __future__ import annotations

import numpy as np

from theory.dmft import DMFTGrid, alpha_bbp, solve_dmft
from theory.errors import ConvergenceError
from theory.spectrum import spectrum_summary

ALPHAS = (3.0, 4.0, 6.0, 8.0, 10.0)
TIMES = (0.0, 0.03, 0.1, 0.3, 1.0)


def main(samples: int = 8000, t_max: float = 1.0):
    results = []
    print(f"S = {samples}; rows: alpha, then (bulk edge, lambda_iso, bbp residual) at t = {TIMES}")
    for a in ALPHAS:
        try:
            r = solve_dmft(a, t_max, n_samples=samples, grid=DMFTGrid(t_max, dt_max=0.05))
        except ConvergenceError as exc:
            print(f"alpha {a:5.1f}: {exc}", flush=True)
            continue
        results.append(r)
        cells = []
        for t in TIMES:
            sm = spectrum_summary(r.measure(t))
            iso = "none" if sm.isolated_eigenvalue is None else f"{sm.isolated_eigenvalue:.3f}"
            cells.append(f"({sm.bulk_edge:.3f}, {iso}, {sm.residuals.bbp:+.3f})")
        print(f"alpha {a:5.1f} e(t_max) {r.energy[-1]:.3f} ({r.wall_seconds:.0f} s): " + " ".join(cells), flush=True)
    for t in TIMES:
        print(f"alpha_BBP(t = {t:g}) = {alpha_bbp(results, t)}")


if __name__ == "__main__":
    main()
