"""Cost of the DMFT solver (theory/dmft/) and its discretisation error.

Measures, on this machine (one thread), the wall time, the grid size and the memory of
the per-sample response storage (S (n+1)^2 numbers) as t_max and S grow, and the change
of energy and q when dt_max is halved. Run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1:

    python benchmarks/bench_dmft.py
"""
from __future__ import annotations

import resource
import time

from theory.dmft import DMFTConfig, DMFTGrid, solve_dmft


def cost(alpha=4.0):
    print("cost (alpha = 4, q0 = 0, dt0 = 0.005, growth 1.04):")
    print(f"{'t_max':>6} {'dt_max':>6} {'S':>6} {'steps':>6} {'wall s':>7} {'B MB':>7} {'inner/step':>10}")
    for t_max, dt_max, S in [(0.5, 0.05, 2000), (1, 0.05, 2000), (2, 0.05, 2000), (4, 0.05, 2000),
                             (4, 0.1, 2000), (8, 0.1, 2000), (2, 0.05, 4000), (2, 0.05, 8000)]:
        t0 = time.perf_counter()
        r = solve_dmft(DMFTConfig(alpha, t_max, samples=S, grid=DMFTGrid(t_max, dt_max=dt_max)))
        wall = time.perf_counter() - t0
        n = r.t.size - 1
        print(f"{t_max:6g} {dt_max:6g} {S:6d} {n:6d} {wall:7.1f} {r.memory_bytes / 1e6:7.0f} "
              f"{r.iterations / n:10.1f}", flush=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")


def discretisation(alpha=4.0, q0=0.3, t_max=1.0, S=4000):
    print(f"discretisation (alpha = {alpha}, q0 = {q0}, S = {S}, same seed):")
    for dt_max, dt0 in [(0.1, 0.01), (0.05, 0.005), (0.025, 0.0025)]:
        r = solve_dmft(DMFTConfig(alpha, t_max, q0, samples=S, grid=DMFTGrid(t_max, dt0=dt0, dt_max=dt_max)))
        vals = " ".join(f"t={r.t[r.index(t)]:.2f}: e {r.energy[r.index(t)]:.4f} q {r.q[r.index(t)]:.4f}"
                        for t in (0.1, 0.3, 1.0))
        print(f"  dt0 {dt0:6g} dt_max {dt_max:6g} steps {r.t.size - 1:4d}: {vals}", flush=True)


if __name__ == "__main__":
    cost()
    discretisation()
