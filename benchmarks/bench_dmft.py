"""Cost of the DMFT solver (theory/dmft/) and its discretisation error.

Measures, on this machine (one thread), the wall time, the grid size and the memory of
the per-sample response storage (S (n+1)(n+2)/2 numbers) as t_max and S grow, and the change
of energy and q when dt_max is halved. Run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1:

    python benchmarks/bench_dmft.py                      # cost and discretisation tables
    python benchmarks/bench_dmft.py horizon --alpha 6 --samples 8000 --dt-max 0.1 --t-max 2 8 25

``horizon`` solves each t_max in its own process and reports wall time, peak resident
memory of that process, steps, the time reached and the status (JSON with --json).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
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


_CHILD = """
import json, sys, time
from theory.dmft import DMFTConfig, DMFTGrid, solve_dmft
alpha, t_max, S, dt_max, seed = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
t0 = time.perf_counter()
r = solve_dmft(DMFTConfig(alpha, t_max, samples=S, seed=seed, grid=DMFTGrid(t_max, dt_max=dt_max)), strict=False)
print(json.dumps(dict(steps=int(r.t.size - 1), t_end=float(r.t[-1]), converged=bool(r.converged), message=r.message,
                      energy_end=float(r.energy[-1]), iterations=int(r.iterations), solve_seconds=time.perf_counter() - t0,
                      response_bytes=int(r.memory_bytes))))
"""


def horizon(alpha: float, samples: int, dt_max: float, t_maxes, seed: int = 0) -> list[dict]:
    """Wall time and peak memory of one q0 = 0 solve per t_max, each in a fresh process."""
    rows = []
    for t_max in t_maxes:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(alpha), str(t_max), str(samples), str(dt_max),
                                 str(seed)], stdout=subprocess.PIPE, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        row = dict(alpha=alpha, samples=samples, dt_max=dt_max, t_max=t_max, seed=seed,
                   wall_seconds=time.perf_counter() - t0, peak_rss_mb=usage.ru_maxrss / 1024.0,
                   cpu_seconds=usage.ru_utime + usage.ru_stime, exit_status=status, **json.loads(out or "{}"))
        rows.append(row)
        print(f"t_max {t_max:g}: {row.get('steps')} steps to t = {row.get('t_end')}, {row['wall_seconds']:.0f} s, "
              f"peak {row['peak_rss_mb']:.0f} MB, converged {row.get('converged')} {row.get('message', '')}", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command")
    h = sub.add_parser("horizon", help="wall time and peak memory of one solve per t_max")
    h.add_argument("--alpha", type=float, default=6.0)
    h.add_argument("--samples", type=int, default=8000)
    h.add_argument("--dt-max", type=float, default=0.1)
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--t-max", type=float, nargs="+", default=[2.0, 8.0, 25.0])
    h.add_argument("--json", metavar="FILE")
    a = p.parse_args(argv)
    if a.command == "horizon":
        rows = horizon(a.alpha, a.samples, a.dt_max, a.t_max, a.seed)
        if a.json:
            from theory.io import atomic_write_text, provenance
            atomic_write_text(a.json, json.dumps(dict(provenance=provenance(command="bench_dmft horizon"),
                                                      rows=rows), indent=1))
        return 0
    cost()
    discretisation()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
