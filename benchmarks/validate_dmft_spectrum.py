"""Spectra of the DMFT law against Lanczos on simulated states (docs/theory.md 5.11, §2, §4.2).

The DMFT (default estimator: importance sampling of y and the Stein projection, random
start) gives the N = infinity law of (yhat(t), y, s); a system of M = alpha N measurements
sees M atoms of it: ``DMFTResult.measure(t, atoms=M, seed=d)`` draws them independently
(eq. 5.30), ``--draws`` systems per DMFT seed, so that the extreme labels fluctuate as over
real data sets (§4.1) and the averages compare with averages over simulated starts. Its random-matrix prediction (bulk edge, isolated eigenvalue toward e and its
overlap^2; full law and with extreme atoms split off, §4.2) is compared at each time with
gradient flows at the same N and alpha (``experiments.tracking.track``: the lowest Lanczos
eigenpairs of the tangent Hessian, and the core on the state's own empirical law).

Every simulated start and DMFT seed is cached as JSON in ``--cache``, so the script resumes
and ``--part sim`` / ``--part dmft`` can run as two processes before the table is printed.
Run with OPENBLAS_NUM_THREADS=1:

    python benchmarks/validate_dmft_spectrum.py --alpha 6 --n 4000 --starts 4 --seeds 3 --json FILE
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from experiments.tracking import track
from simulation.data import make_problem, random_starts
from simulation.flow import Integrator
from theory.dmft import DMFTGrid, default_y_scale, solve_dmft
from theory.errors import ConvergenceError
from theory.finite_m import split_theory
from theory.statistics import standard_error
from theory.io import atomic_write_text, json_ready, provenance
from theory.spectrum import spectrum_summary

TIMES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5)


def simulated_start(alpha, n, b, times, k, rtol, cache: Path) -> list[dict]:
    """TrackPoint dicts of start b (data seed 1000 + b, start seed 2000 + b, as validate_dmft).

    The cache file holds {"provenance", "points"} (older caches: the list of points alone)."""
    path = cache / f"track_a{alpha:g}_n{n}_k{k}_rtol{rtol:g}_t{'-'.join(f'{t:g}' for t in times)}_start{b}.json"
    if not path.exists():
        problem = make_problem(n, alpha, seed=1000 + b)
        res = track(problem, random_starts(n, 1, 2000 + b)[:, 0], times, k=k,
                    integrator=Integrator(rtol=rtol, atol=rtol / 100))
        prov = provenance(experiment="experiments.tracking.track", n=n, alpha=alpha, data_seed=1000 + b,
                          start_seed=2000 + b, times=list(times), k=k, rtol=rtol, atol=rtol / 100)
        atomic_write_text(path, json.dumps({"provenance": prov, "points": [p.to_dict() for p in res.points]}))
        print(f"start {b}: {res.wall_seconds:.0f} s", flush=True)
    cached = json.loads(path.read_text())
    return cached["points"] if isinstance(cached, dict) else cached


def dmft_seed(alpha, n, seed, times, samples, y_scale, draws, cache: Path) -> list[list[dict]] | None:
    """Predictions from the DMFT law of one seed, for ``draws`` independent systems of
    M = alpha N atoms each: [draw][time] (None: the seed ran away)."""
    t_max = max(times)
    path = (cache / f"dmft_a{alpha:g}_n{n}_S{samples}_ys{y_scale:g}_t{'-'.join(f'{t:g}' for t in times)}"
                    f"_draws{draws}_seed{seed}.json")
    if not path.exists():
        atoms = round(alpha * n)
        try:
            r = solve_dmft(alpha, t_max, n_samples=samples, seed=seed, y_scale=y_scale,
                           grid=DMFTGrid(t_max, dt_max=0.05), progress=True)
        except ConvergenceError as exc:
            atomic_write_text(path, json.dumps({"failed": str(exc)}))
        else:
            rows = [[] for _ in range(draws)]
            for d, t in itertools.product(range(draws), times):
                law = r.measure(t, atoms, seed=1000 * seed + d)
                full, split = spectrum_summary(law), split_theory(law)
                rows[d].append(dict(t=float(r.t[r.index(t)]), energy=float(r.energy[r.index(t)]), mu=law.mu,
                                 edge=full.bulk_edge, iso=full.isolated_eigenvalue, overlap2=full.overlap2,
                                 n_split=split.n_split, edge_split=split.summary.bulk_edge,
                                 iso_split=split.summary.isolated_eigenvalue, overlap2_split=split.summary.overlap2,
                                 lowest_outlier=min(split.outliers, default=None)))
            prov = provenance(solver="theory.dmft.solve_dmft", alpha=alpha, n=n, seed=seed, times=list(times),
                              samples=samples, y_scale=y_scale, draws=draws, dt_max=0.05)
            atomic_write_text(path, json.dumps(json_ready({"rows": rows, "wall_seconds": r.wall_seconds,
                                                           "provenance": prov})))
            print(f"DMFT seed {seed}: {r.wall_seconds:.0f} s", flush=True)
    d = json.loads(path.read_text())
    return None if "failed" in d else d["rows"]


def _mean_se(values) -> tuple[float | None, float | None, int]:
    """Mean, standard error and count of the non-None values."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return None, None, 0
    return float(v.mean()), float(standard_error(v)) if v.size > 1 else None, int(v.size)


def _cell(values) -> str:
    m, se, c = _mean_se(values)
    if m is None:
        return f"{'none':>17}"
    return f"{m:8.2f}" + (f"+-{se:4.2f}" if se is not None else "      ") + f" ({c})"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alpha", type=float, default=6.0)
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--starts", type=int, default=4, help="simulated starts, each with its own data")
    p.add_argument("--seeds", type=int, default=3, help="DMFT seeds")
    p.add_argument("--samples", type=int, default=8000, help="DMFT Monte Carlo samples S")
    p.add_argument("--draws", type=int, default=4, help="independent systems of M atoms per DMFT seed")
    p.add_argument("--y-scale", type=float, default=None,
                   help="DMFT importance sampling (default: solve_dmft's, 2 for a random start; 1: plain)")
    p.add_argument("--times", type=float, nargs="+", default=list(TIMES))
    p.add_argument("--k", type=int, default=6, help="lowest Lanczos eigenpairs per state")
    p.add_argument("--rtol", type=float, default=1e-5, help="flow tolerance")
    p.add_argument("--cache", type=Path, default=Path("results/dmft_spectrum"))
    p.add_argument("--part", choices=("all", "dmft", "sim"), default="all")
    p.add_argument("--json", metavar="FILE", help="write the table as JSON")
    a = p.parse_args()
    y_scale = default_y_scale(0.0) if a.y_scale is None else a.y_scale
    times = sorted(a.times)
    a.cache.mkdir(parents=True, exist_ok=True)
    sims = [] if a.part == "dmft" else [simulated_start(a.alpha, a.n, b, times, a.k, a.rtol, a.cache)
                                         for b in range(a.starts)]
    runs = [] if a.part == "sim" else [dmft_seed(a.alpha, a.n, s, times, a.samples, y_scale, a.draws, a.cache)
                                       for s in range(a.seeds)]
    if a.part != "all":
        return
    used = [system for r in runs if r is not None for system in r]
    print(f"alpha {a.alpha:g}, N = {a.n}, M = {round(a.alpha * a.n)} atoms; {a.starts} simulated starts, "
          f"DMFT S = {a.samples}, y_scale {y_scale:g}, {len(used) // a.draws} of {a.seeds} seeds (others ran away) "
          f"x {a.draws} draws of M atoms")
    print("mean +- s.e. (count of starts/seeds with a value); 'spike': the Lanczos eigenvector among the "
          f"{a.k} lowest most aligned with e, if overlap^2 > 0.05; split: extreme atoms removed (§4.2)")
    print(f"{'t':>5} | {'Lanczos lowest':>17} {'Lanczos spike':>17} {'spike ov2':>17} | {'sim law: split edge':>19} "
          f"{'split iso':>17} | {'DMFT: iso':>17} {'edge':>17} {'split edge':>17} {'split iso':>17} {'split ov2':>17} "
          f"{'lowest outlier':>17}")
    table = []
    for i, t in enumerate(times):
        pts = [s[i] for s in sims]
        rows = [r[i] for r in used]
        columns = {"lanczos_lowest": [pt["lanczos_lowest"][0] for pt in pts],
                   "lanczos_spike": [pt["lanczos_spike"] for pt in pts],
                   "lanczos_spike_overlap2": [pt["lanczos_spike_overlap2"] for pt in pts],
                   "sim_edge_split": [pt["edge_theory_split"] for pt in pts],
                   "sim_iso_split": [pt["iso_theory_split"] for pt in pts],
                   "dmft_iso": [r["iso"] for r in rows],
                   "dmft_edge": [r["edge"] for r in rows],
                   "dmft_edge_split": [r["edge_split"] for r in rows],
                   "dmft_iso_split": [r["iso_split"] for r in rows],
                   "dmft_overlap2_split": [r["overlap2_split"] if r["iso_split"] is not None else None for r in rows],
                   "dmft_lowest_outlier": [r["lowest_outlier"] for r in rows]}
        table.append(dict(t=t, sim_q=_mean_se([abs(pt["q"]) for pt in pts]),
                          **{name: _mean_se(v) for name, v in columns.items()}))
        cells = [_cell(v) for v in columns.values()]
        print(f"{t:5.2f} | {' '.join(cells[:3])} | {cells[3]:>19} {cells[4]} | {' '.join(cells[5:])}", flush=True)
    if a.json:
        atomic_write_text(a.json, json.dumps(json_ready(dict(args={k: str(v) for k, v in vars(a).items()},
                                                             y_scale=y_scale, systems=len(used), rows=table,
                                                             provenance=provenance(
                                                                 script="benchmarks/validate_dmft_spectrum.py",
                                                                 **{k: str(v) if isinstance(v, Path) else v
                                                                    for k, v in vars(a).items()}))),
                                             indent=1))


if __name__ == "__main__":
    main()
