"""DMFT (theory/dmft.py, docs/theory.md §5) against simulations averaged over starts.

Each start has its own data set (make_problem with seed = start index) and its own
random start; warm starts have q(0) = q0 exactly. Prints a table of energy, mu, q at a
few times: simulation mean +- standard error over starts, DMFT value +- its Monte Carlo
standard error. Run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1.

Every DMFT seed and every simulated start is stored in ``--cache`` (one atomic ``.npz``
each) and reused, so an interrupted run resumes, and ``--part dmft`` / ``--part sim`` can
run as two processes (one core each) before ``--part all`` prints the table.

    python benchmarks/validate_dmft.py --alpha 4 --t-max 2 --n 1000 --starts 8 --q0 0 --samples 8000 --seeds 3

``--sizes 1000:64 2000:32 4000:8`` (with ``--part all``) adds the finite-N check: the
simulation means at each N, their weighted least-squares extrapolation a + b/N to
N = infinity (eq. 5.29 of docs/theory.md: the leading finite-N correction of a
self-averaging mean), and the DMFT against that extrapolation.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from simulation.data import make_problem, random_starts, warm_start
from simulation.flow import Integrator, StopRules, run_dynamics
from theory.dmft import DMFTGrid, default_y_scale, energy_rise, solve_dmft, time_grid
from theory.errors import ConvergenceError
from theory.io import atomic_savez, atomic_write_text
from theory.statistics import extrapolate_in_n


def _longer_cached_run(cache: Path, alpha, q0, n, t_max, rtol, b) -> Path | None:
    """A cached simulation of the same start run to a later time (the grids coincide up
    to the shortened last step), or None."""
    best = None
    for path in cache.glob(f"sim_a{alpha:g}_q{q0:g}_n{n}_t*_rtol{rtol:g}_start{b}.npz"):
        t_other = float(path.name.split("_t")[1].split("_rtol")[0])
        if t_other > t_max and (best is None or t_other < best[0]):
            best = (t_other, path)
    return None if best is None else best[1]


def simulate(alpha, n, starts, t_max, q0, times, cache: Path, rtol: float = 1e-7):
    """Energy, mu, |q| of each start on ``times`` (one cached file per start). A cached run
    of the same start on another grid (a later t_max, or the grid of another dt_max) is
    reused when it covers ``times``, linearly interpolated onto them."""
    E, MU, Q, wall = [], [], [], 0.0
    for b in range(starts):
        path = cache / f"sim_a{alpha:g}_q{q0:g}_n{n}_t{t_max:g}_rtol{rtol:g}_start{b}.npz"
        longer = None if path.exists() else _longer_cached_run(cache, alpha, q0, n, t_max, rtol, b)
        if longer is not None:
            path = longer
        elif not path.exists():
            t0 = time.perf_counter()
            problem = make_problem(n, alpha, seed=1000 + b)
            W0 = warm_start(problem, q0, 2000 + b) if q0 > 0 else random_starts(n, 1, 2000 + b)
            res = run_dynamics(problem, W0, StopRules(t_max=t_max, success_overlap=1.0, energy_tol=0.0, grad_tol=0.0),
                               Integrator(rtol=rtol, atol=rtol / 100), times=times)
            tr = res.trajectory
            atomic_savez(path, t=times, energy=tr.energy[:, 0], mu=tr.mu[:, 0], q=np.abs(tr.q[:, 0]),
                         wall_seconds=time.perf_counter() - t0)
            print(f"start {b}: {time.perf_counter() - t0:.0f} s", flush=True)
        d = np.load(path)
        if d["t"][0] > times[0] + 1e-12 or d["t"][-1] < times[-1] * (1 - 1e-12):
            raise SystemExit(f"{path}: stored times do not cover the grid; remove the file")
        same = d["t"].shape == times.shape and np.allclose(d["t"], times)
        for out, key in ((E, "energy"), (MU, "mu"), (Q, "q")):
            out.append(d[key] if same else np.interp(times, d["t"], d[key]))
        wall += float(d["wall_seconds"])
    return np.array(E), np.array(MU), np.array(Q), wall


def size_starts(text: str) -> tuple[int, int]:
    """``N:STARTS`` of ``--sizes`` (N >= 2, STARTS >= 2: a standard error needs two starts)."""
    try:
        n, starts = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N:STARTS with two integers, got {text!r}") from None
    if n < 2 or starts < 2:
        raise argparse.ArgumentTypeError(f"need N >= 2 and STARTS >= 2, got {text!r}")
    return n, starts


def finite_n_table(a, times, dm, se) -> list[dict]:
    """Simulation means at each N of ``--sizes``, their extrapolation to N = infinity, and
    the DMFT (mean over seeds) against it, at the table times."""
    sims = {}
    for n, starts in a.sizes:
        E, MU, _, _ = simulate(a.alpha, n, starts, a.t_max, a.q0, times, a.cache, a.rtol)
        sims[n] = (E, MU)
    ns = sorted(sims)
    print(f"finite-N check: N = {ns}, starts = {[sims[n][0].shape[0] for n in ns]}; "
          "fit a + b/N per time (eq. 5.29), DMFT vs a in combined standard errors")
    rows = []
    for tt in [0.1, 0.3, 0.5, 1, 2, 4, 6, 8, 10, 20]:
        if tt > a.t_max:
            continue
        k = int(np.argmin(np.abs(times - tt)))
        row = dict(t=float(times[k]))
        for name, col, key in (("e", 0, "energy"), ("mu", 1, "mu")):
            means = [float(sims[n][col][:, k].mean()) for n in ns]
            ses = [float(se(sims[n][col][:, k])) for n in ns]
            fit = extrapolate_in_n(ns, means, ses)
            d, d_se = float(dm[key][:, k].mean()), float(se(dm[key][:, k]))
            row[name] = dict(sim_means=means, sim_ses=ses, **fit, dmft=d, dmft_se=d_se,
                             sigma=(d - fit["a"]) / float(np.hypot(d_se, fit["a_se"])))
        rows.append(row)
        cells = " | ".join(
            " ".join(f"{m:6.3f}" for m in row[nm]["sim_means"]) + f" -> {row[nm]['a']:6.3f}+-{row[nm]['a_se']:5.3f}"
            f" (dmft {row[nm]['dmft']:6.3f}, {row[nm]['sigma']:+.1f} sd"
            + ("" if row[nm]["chi2_per_dof"] is None else f", fit chi2/dof {row[nm]['chi2_per_dof']:.1f}") + ")"
            for nm in ("e", "mu"))
        print(f"{row['t']:6.3f} {cells}", flush=True)
    return rows


def plot_comparison(path, a, times, sim: dict, dm: dict, dmft_t) -> None:
    """Figure: e(t), mu(t), |q|(t), simulation mean +- 2 standard errors over starts against the
    DMFT mean +- 2 standard errors over seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, key, label in zip(axes, ("energy", "mu", "q"), ("e(t) = L / N", "mu(t)", "|q(t)|")):
        for t, v, name, style in ((times, sim[key], f"simulation N = {a.n}, {sim[key].shape[0]} starts", "C7"),
                                  (dmft_t, dm[key], f"DMFT S = {a.samples}, {dm[key].shape[0]} seeds", "C0")):
            m, se = v.mean(0), v.std(0, ddof=1) / np.sqrt(v.shape[0])
            ax.plot(t, m, color=style, label=name)
            ax.fill_between(t, m - 2 * se, m + 2 * se, color=style, alpha=0.3, lw=0)
        ax.set_xscale("log"); ax.set_xlim(min(0.005, a.t_max), a.t_max); ax.set_xlabel("t"); ax.set_ylabel(label)
    axes[1].set_ylim(max(axes[1].get_ylim()[0], -3), min(axes[1].get_ylim()[1], 6))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"DMFT vs simulation, alpha = {a.alpha:g}, q0 = {a.q0:g} (bands: 2 standard errors)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def dmft_runs(a, cache: Path) -> list[dict]:
    """The DMFT solutions of seeds 0..seeds-1 (one cached file per seed). A seed that runs
    away (ConvergenceError, docs/theory.md 5.5) is stored as such, reported and left out of
    the averages: its count is part of the result."""
    runs = []
    for seed in range(a.seeds):
        fine = "" if (a.dt0, a.growth) == (0.005, 1.04) else f"_dt0{a.dt0:g}_g{a.growth:g}"
        fine += "" if a.y_scale == 1.0 else f"_ys{a.y_scale:g}"
        fine += "" if a.y_cut == float("inf") else f"_yc{a.y_cut:g}"
        fine += "" if not a.stein_rcond else f"_st{a.stein_rcond:g}"
        path = cache / f"dmft_a{a.alpha:g}_q{a.q0:g}_t{a.t_max:g}_dt{a.dt_max:g}{fine}_S{a.samples}_seed{seed}.npz"
        if not path.exists():
            try:
                r = solve_dmft(a.alpha, a.t_max, a.q0, n_samples=a.samples, seed=seed, y_scale=a.y_scale, y_cut=a.y_cut,
                               stein_rcond=a.stein_rcond or None,
                               grid=DMFTGrid(a.t_max, dt0=a.dt0, dt_max=a.dt_max, growth=a.growth), progress=True)
            except ConvergenceError as exc:
                atomic_savez(path, failed=np.str_(str(exc)))
            else:
                atomic_savez(path, t=r.t, energy=r.energy, mu=r.mu, q=r.q, mu_multiplier=r.mu_multiplier,
                             wall_seconds=r.wall_seconds, memory_bytes=r.memory_bytes)
                print(f"DMFT seed {seed}: {r.wall_seconds:.0f} s", flush=True)
        d = dict(np.load(path))
        if "failed" in d:
            print(f"DMFT seed {seed} ran away, left out: {d['failed']}", flush=True)
            continue
        runs.append(d)
    if not runs:
        raise SystemExit("every DMFT seed ran away; more samples or other seeds")
    return runs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--alpha", type=float, default=4.0)
    p.add_argument("--t-max", type=float, default=2.0)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--starts", type=int, default=8)
    p.add_argument("--q0", type=float, default=0.0)
    p.add_argument("--samples", type=int, default=8000)
    p.add_argument("--dt-max", type=float, default=0.05)
    p.add_argument("--dt0", type=float, default=0.005, help="first step of the grid (eq. 5.13)")
    p.add_argument("--growth", type=float, default=1.04, help="step growth factor of the grid")
    p.add_argument("--y-scale", type=float, default=None,
                   help="importance sampling of the label, y ~ N(0, y_scale^2) (eq. 5.27; default as in "
                        "solve_dmft: 2 at q0 < 0.2, 1 above; 1: plain)")
    p.add_argument("--y-cut", type=float, default=float("inf"),
                   help="labels restricted to |y| <= y_cut (docs/theory.md 5.8; default: no cut)")
    p.add_argument("--stein-rcond", type=float, default=1e-3,
                   help="Stein projection of the memory kernel (solve_dmft stein_rcond; default 1e-3 as in "
                        "solve_dmft; 0: off)")
    p.add_argument("--seeds", type=int, default=3, help="independent DMFT solutions (seeds 0..k-1)")
    p.add_argument("--rtol", type=float, default=1e-7, help="flow tolerance of the simulation (default 1e-7)")
    p.add_argument("--cache", type=Path, default=Path("results/dmft"), help="per-seed / per-start files")
    p.add_argument("--part", choices=("all", "dmft", "sim"), default="all",
                   help="compute only the DMFT or only the simulations (fill the cache), or all and compare")
    p.add_argument("--sizes", nargs="*", type=size_starts, default=[], metavar="N:STARTS",
                   help="also compare with simulations at these sizes extrapolated to N = infinity "
                        "(e.g. 1000:64 2000:32 4000:8)")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--figure", metavar="PNG", help="write e, mu, |q| against t, DMFT vs simulation")
    a = p.parse_args()
    a.y_scale = default_y_scale(a.q0) if a.y_scale is None else a.y_scale
    a.cache.mkdir(parents=True, exist_ok=True)
    times = time_grid(DMFTGrid(a.t_max, dt0=a.dt0, dt_max=a.dt_max, growth=a.growth))
    if a.part == "sim":
        simulate(a.alpha, a.n, a.starts, a.t_max, a.q0, times, a.cache, a.rtol)
        return
    runs = dmft_runs(a, a.cache)
    if a.part == "dmft":
        return
    r = runs[0]
    # DMFT value: mean over seeds; error: spread over seeds / sqrt(seeds) (this includes
    # the dynamical Monte Carlo noise, which the per-run standard error does not)
    dm = {key: np.array([x[key] for x in runs]) for key in ("energy", "mu", "q", "mu_multiplier")}
    E, MU, Q, wall = simulate(a.alpha, a.n, a.starts, a.t_max, a.q0, times, a.cache, a.rtol)
    se = lambda x: x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])  # noqa: E731
    print(f"alpha={a.alpha} q0={a.q0} N={a.n} starts={a.starts} (sim {wall:.0f} s); "
          f"DMFT S={a.samples} y_scale={a.y_scale:g} y_cut={a.y_cut:g} steps={len(times)-1} ({float(r['wall_seconds']):.0f} s, "
          f"B {float(r['memory_bytes'])/1e6:.0f} MB), {len(runs)} of {a.seeds} seeds ({a.seeds - len(runs)} ran away)")
    # a gradient flow cannot raise its energy: any rise of a seed's e(t) is Monte Carlo error
    rises = [energy_rise(x["energy"]) for x in runs]
    print("energy rise per seed (Monte Carlo error, DMFTResult.energy_rise): " + " ".join(f"{v:.3f}" for v in rises))
    print(f"{'t':>7} {'e_sim':>15} {'e_dmft':>15} {'mu_sim':>15} {'mu_dmft':>15} {'mu_mult':>8} {'q_sim':>14} {'q_dmft':>14}")
    rows = []
    for tt in [0, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 1, 2, 3, 4, 6, 8, 10, 20]:
        if tt > a.t_max:
            continue
        k = int(np.argmin(np.abs(times - tt)))
        row = dict(t=float(times[k]), e_sim=float(E[:, k].mean()), e_sim_se=float(se(E[:, k])),
                   e_dmft=float(dm["energy"][:, k].mean()), e_dmft_se=float(se(dm["energy"][:, k])),
                   mu_sim=float(MU[:, k].mean()), mu_sim_se=float(se(MU[:, k])),
                   mu_dmft=float(dm["mu"][:, k].mean()), mu_dmft_se=float(se(dm["mu"][:, k])),
                   mu_mult=float(dm["mu_multiplier"][:, k].mean()),
                   q_sim=float(Q[:, k].mean()), q_sim_se=float(se(Q[:, k])), q_dmft=float(dm["q"][:, k].mean()),
                   q_dmft_se=float(se(dm["q"][:, k])))
        rows.append(row)
        print(f"{row['t']:7.3f} {row['e_sim']:7.3f}+-{row['e_sim_se']:5.3f} {row['e_dmft']:7.3f}+-{row['e_dmft_se']:5.3f} "
              f"{row['mu_sim']:7.3f}+-{row['mu_sim_se']:5.3f} {row['mu_dmft']:7.3f}+-{row['mu_dmft_se']:5.3f} "
              f"{row['mu_mult']:8.3f} {row['q_sim']:6.3f}+-{row['q_sim_se']:5.3f} {row['q_dmft']:6.3f}+-{row['q_dmft_se']:5.3f}",
              flush=True)
    finite_n = finite_n_table(a, times, dm, se) if a.sizes else None
    if a.figure:
        plot_comparison(a.figure, a, times, dict(energy=E, mu=MU, q=Q), dm, r["t"])
        print(f"figure: {a.figure}")
    if a.json:
        atomic_write_text(a.json, json.dumps(dict(
            args={k: str(v) for k, v in vars(a).items()}, rows=rows, finite_n=finite_n, energy_rise_per_seed=rises, seeds_used=len(runs),
            seeds_run_away=a.seeds - len(runs), dmft_seconds=[float(x["wall_seconds"]) for x in runs],
            sim_seconds=wall), indent=1))


if __name__ == "__main__":
    main()
