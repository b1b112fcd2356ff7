"""Time edge + isolated eigenvalue + overlap (docs/theory.md §2) for a law of 10^6 atoms.

    python benchmarks/bench_spectrum.py [--atoms 1000000] [--repeat 5] [--json]

Two laws: the curvature law D = 1 - 1.5 tanh(s^2/2) (an isolated eigenvalue exists), and
the empirical t = 0 quartic law (yhat, y independent N(0, 1), s = y; the edge sits next to
the pole 1/D_min). Reported: best and median wall seconds of ``spectrum_summary`` (law
already built, i.e. D computed), and the one-off time to build the Measure and D.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from theory.measure import CurvatureLaw, Measure
from theory.spectrum import spectrum_summary


def _time(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    s = rng.standard_normal(args.atoms)
    yhat = rng.standard_normal(args.atoms)

    t0 = time.perf_counter()
    spike_law = CurvatureLaw.from_samples(1 - 1.5 * np.tanh(s**2 / 2), s, alpha=4.0, mu=0.0)
    build_spike = time.perf_counter() - t0
    t0 = time.perf_counter()
    t0_measure = Measure.empirical(yhat, s, alpha=4.0)
    t0_law = t0_measure.curvature_law()
    build_t0 = time.perf_counter() - t0

    rows = []
    for name, law, build in (("curvature D=1-1.5tanh(s^2/2), alpha=4", spike_law, build_spike),
                             ("empirical t=0 quartic, alpha=4", t0_law, build_t0)):
        summary = spectrum_summary(law)
        times = _time(lambda: spectrum_summary(law), args.repeat)
        rows.append(dict(law=name, atoms=args.atoms, best_seconds=min(times),
                         median_seconds=statistics.median(times), build_seconds=build,
                         bulk_edge=summary.bulk_edge, isolated_eigenvalue=summary.isolated_eigenvalue,
                         overlap2=summary.overlap2))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            iso = "none" if r["isolated_eigenvalue"] is None else f"{r['isolated_eigenvalue']:.6g}"
            print(f"{r['law']}: {r['atoms']} atoms, spectrum_summary best {r['best_seconds']:.3f} s, "
                  f"median {r['median_seconds']:.3f} s (build {r['build_seconds']:.3f} s); "
                  f"edge {r['bulk_edge']:.6g}, isolated {iso}, overlap2 {r['overlap2']:.4g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
