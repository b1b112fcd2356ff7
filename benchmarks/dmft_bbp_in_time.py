"""alpha_BBP(t) from the DMFT law of (yhat(t), y) (docs/theory.md eqs. 4.4, 5.26, §5.11).

Random starts (q0 = 0, so q(t) = 0 and s = y; ``--q0`` for a start with overlap q0): for each alpha the DMFT is solved to the
last time and, at each time, the BBP residual (eq. 2.9) of the law as seen by a system of
M measurements is computed: M equal-weight atoms drawn from the law (eq. 5.30), for the
full law and with the extreme atoms split off (§4.2), averaged over ``--draws`` independent
systems. alpha_BBP(t) is where the mean residual turns positive. With ``--n N`` the system
has M = alpha N atoms at each alpha, as the simulated states of ``bbp_in_time.py`` (whose
alpha_BBP(t) uses the split law, averaged over trajectories): the same quantity from the
N = infinity dynamics. Run with OPENBLAS_NUM_THREADS=1:

    python benchmarks/dmft_bbp_in_time.py --n 512 1024 [--draws 8] [--samples 8000] [--json FILE] [--figure PNG]
    python benchmarks/dmft_bbp_in_time.py --replot FILE [FILE ...] --figure PNG --simulation results/bbp_t_16/report.json
    python benchmarks/dmft_bbp_in_time.py --atoms 8000 --draws 0      # one typical system of M = 8000

Defaults: the validated estimator of solve_dmft (importance sampling y_scale = 2 and the
Stein projection stein_rcond = 1e-3). ``--y-scale 1 --stein-rcond 0`` gives plain sampling.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from theory.dmft import DMFTGrid, default_y_scale, solve_dmft
from theory.errors import ConvergenceError
from theory.finite_m import split_theory
from theory.io import atomic_write_text, provenance
from theory.spectrum import bbp_threshold, spectrum_summary

ALPHAS = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0)
TIMES = (0.0, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)


def mean_residuals(result, t: float, atoms: int, draws: int) -> tuple[float, float]:
    """Mean BBP residual (eq. 2.9) of the full and of the split law over ``draws`` independent
    systems of ``atoms`` atoms (draws = 0: the one systematic, typical system)."""
    seeds = [None] if draws == 0 else range(draws)
    full, split = [], []
    for seed in seeds:
        law = result.measure(t, atoms, seed=seed)
        full.append(spectrum_summary(law).residuals.bbp)
        split.append(split_theory(law).summary.residuals.bbp)
    return float(np.mean(full)), float(np.mean(split))


def plot(records: list[dict], path: str, simulation: str | None = None) -> None:
    """alpha_BBP(t) of the split law from DMFT runs (one curve per run and N; dotted for a
    start with q0 > 0), with the simulated one of ``bbp_in_time.py --report`` (its
    report.json) for the same N where given."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sim = json.loads(open(simulation).read()) if simulation else None
    sizes = sorted({size for r in records for size in r["by_size"]}, key=str)
    color = {size: f"C{i}" for i, size in enumerate(sizes)}
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for record in records:
        t = np.array(record["times"])
        q0 = record.get("q0", 0.0)
        for size, d in record["by_size"].items():
            a = [np.nan if v is None else v for v in d["alpha_bbp_split"]]
            m = f"alpha x {size}" if size != "atoms" else f"{record['atoms'] or record['samples']}"
            ax.plot(np.where(t > 0, t, 0.003), a, "o-" if q0 == 0 else "^:", color=color[size],
                    label=f"DMFT, M = {m}, q0 = {q0:g}")
    if sim:
        for size in sizes:
            if size in sim["by_n"]:
                st = np.array(sim["times"])
                sa = [np.nan if v is None or not np.isfinite(v) else v for v in sim["by_n"][size]["alpha_bbp_t"]]
                ax.plot(np.where(st > 0, st, 0.003), sa, "s--", color=color[size], mfc="none",
                        label=f"simulation N = {size} ({sim['by_n'][size]['starts'][0]} trajectories per alpha)")
    ax.set_xscale("log")
    ax.set_xlim(0.002, 0.4)
    ax.set_ylim(1.5, 10.5)
    ax.set_xlabel("flow time t (t = 0 at 0.003)")
    ax.set_ylabel("alpha_BBP(t), split law")
    ax.set_title("Above alpha_BBP(t) the Hessian at time t has a spike toward the signal", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS))
    ap.add_argument("--times", type=float, nargs="+", default=list(TIMES))
    ap.add_argument("--samples", type=int, default=8000, help="DMFT Monte Carlo samples S (default 8000)")
    ap.add_argument("--seed", type=int, default=0, help="DMFT seed (default 0)")
    ap.add_argument("--q0", type=float, default=0.0,
                    help="start overlap (default 0: random start at N = infinity; 0.8 / sqrt(N), the mean |q(0)| "
                         "of a random start at finite N, docs/theory.md eq. 5.31)")
    ap.add_argument("--n", type=int, nargs="+", default=None,
                    help="systems of M = alpha N atoms (as simulations at N); several N reuse each solution")
    ap.add_argument("--atoms", type=int, default=None, help="systems of M atoms at every alpha (default M = S)")
    ap.add_argument("--draws", type=int, default=8,
                    help="independent systems per (alpha, t), residuals averaged (0: one systematic; default 8)")
    ap.add_argument("--y-scale", type=float, default=None,
                    help="importance sampling of y (default: solve_dmft's, 2 below q0 = 0.2; 1: plain)")
    ap.add_argument("--stein-rcond", type=float, default=1e-3, help="Stein projection (default 1e-3; 0: off)")
    ap.add_argument("--json", metavar="FILE", help="write the residuals and alpha_BBP(t) as JSON")
    ap.add_argument("--figure", metavar="PNG", help="plot alpha_BBP(t) (split law)")
    ap.add_argument("--simulation", metavar="REPORT", help="with --figure: bbp_in_time.py's report.json to compare")
    ap.add_argument("--replot", metavar="FILE", nargs="+",
                    help="no computation: plot the JSON of earlier runs (needs --figure)")
    a = ap.parse_args(argv)
    if a.replot:
        if not a.figure:
            ap.error("--replot needs --figure")
        records = [json.loads(open(f).read()) for f in a.replot]
        plot(records, a.figure, a.simulation)
        return records[0]
    if a.n is not None and a.atoms is not None:
        ap.error("give --n or --atoms, not both")
    y_scale = default_y_scale(a.q0) if a.y_scale is None else a.y_scale
    times, t_max = sorted(a.times), max(a.times)
    sizes = a.n or [None]   # None: M fixed by --atoms (default S)
    size = f"M = alpha x N, N = {a.n}" if a.n else f"M = {a.atoms or a.samples}"
    print(f"S = {a.samples}, q0 = {a.q0:g}, y_scale {y_scale:g}, {size} atoms, "
          f"{'one systematic system' if a.draws == 0 else f'{a.draws} independent systems'} per point; "
          f"rows: alpha, then mean BBP residual full / split at t = {times}", flush=True)
    alphas, energy = [], []
    full, split = {n: [] for n in sizes}, {n: [] for n in sizes}
    for alpha in sorted(a.alphas):
        try:
            r = solve_dmft(alpha, t_max, a.q0, n_samples=a.samples, seed=a.seed, grid=DMFTGrid(t_max, dt_max=0.05),
                           y_scale=y_scale, stein_rcond=a.stein_rcond or None)
        except ConvergenceError as exc:
            print(f"alpha {alpha:5.1f}: {exc}", flush=True)
            continue
        alphas.append(alpha)
        energy.append([float(r.energy[r.index(t)]) for t in times])
        for n in sizes:
            atoms = round(alpha * n) if n else (a.atoms or a.samples)
            pairs = [mean_residuals(r, t, atoms, a.draws) for t in times]
            full[n].append([p[0] for p in pairs])
            split[n].append([p[1] for p in pairs])
            print(f"alpha {alpha:5.1f}, M = {atoms} ({r.wall_seconds:.0f} s): "
                  + " ".join(f"{f:+.2f}/{s:+.2f}" for f, s in pairs), flush=True)
    by_size = {}
    for n in sizes:
        full_a = [bbp_threshold(alphas, col) for col in zip(*full[n])]
        split_a = [bbp_threshold(alphas, col) for col in zip(*split[n])]
        print(f"{'t':>6} {'alpha_BBP full law':>19} {'split law':>10}" + (f"   (N = {n})" if n else ""))
        for t, f, s in zip(times, full_a, split_a):
            print(f"{t:6.3f} {'none' if f is None else f'{f:.2f}':>19} {'none' if s is None else f'{s:.2f}':>10}")
        by_size[str(n or "atoms")] = dict(bbp_full=full[n], bbp_split=split[n], alpha_bbp_full=full_a,
                                          alpha_bbp_split=split_a)
    record = dict(samples=a.samples, seed=a.seed, q0=a.q0, n=a.n, atoms=a.atoms, draws=a.draws, y_scale=y_scale,
                  stein_rcond=a.stein_rcond, times=times, alphas=alphas, energy=energy, by_size=by_size)
    record["provenance"] = provenance(script="benchmarks/dmft_bbp_in_time.py", samples=a.samples, seed=a.seed,
                                      q0=a.q0, n=a.n, atoms=a.atoms, draws=a.draws, y_scale=y_scale,
                                      stein_rcond=a.stein_rcond)
    if a.json:
        atomic_write_text(a.json, json.dumps(record, indent=1))
    if a.figure:
        plot([record], a.figure, a.simulation)
    return record


if __name__ == "__main__":
    main()
