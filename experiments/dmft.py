"""The DMFT (theory.dmft, docs/theory.md §5) against simulations averaged over starts.

Each simulated start has its own data set (``make_problem`` with seed 1000 + start) and
its own random start (seed 2000 + start); warm starts have q(0) = q0 exactly
(:func:`simulation.data.warm_start`). The DMFT value at a time is the mean over seeds and
its error the spread over seeds / sqrt(seeds), which includes the dynamical Monte Carlo
noise that a single solution's standard error does not.

Every DMFT seed and every simulated start is one atomic ``.npz`` file in a cache folder,
reused when present (an interrupted comparison resumes; the DMFT and the simulations can
fill the cache as two processes). Files written here carry their provenance (package
version, parameters, seed, estimator): a new DMFT seed is a netCDF file (xarray Dataset,
provenance as attributes), a new simulated start an ``.npz`` with a JSON string array
``provenance``; the older cached ``.npz`` files, without it, are read as they are.

With several sizes the simulation means are extrapolated in 1/N (eq. 5.29,
:func:`theory.statistics.extrapolate_in_n`) and the DMFT is compared with the limit.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from theory.dmft import DMFTConfig, DMFTGrid, config_default, default_y_scale, energy_rise, solve_dmft, time_grid
from theory.errors import InputError
from theory.io import atomic_savez, load_netcdf, provenance, write_netcdf
from theory.statistics import extrapolate_in_n, standard_error

__all__ = ["DMFTComparison", "simulate", "dmft_runs", "dmft_cache_path", "simulation_cache_path",
           "comparison_rows", "finite_n_table", "size_starts", "plot_comparison", "compare",
           "format_row", "comparison_from_args", "TABLE_TIMES", "FINITE_N_TIMES"]

#: Times of the comparison table and of the finite-N table (those <= t_max are used).
TABLE_TIMES = (0, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 1, 2, 3, 4, 6, 8, 10, 20)
FINITE_N_TIMES = (0.1, 0.3, 0.5, 1, 2, 4, 6, 8, 10, 20)

Log = Callable[[str], None]


def _print(text: str) -> None:
    print(text, flush=True)


@dataclass(frozen=True)
class DMFTComparison:
    """One DMFT-versus-simulation comparison.

    Attributes
    ----------
    alpha, t_max, q0 : the problem (q0 = 0: random starts)
    n, starts : size and number of simulated starts
    samples, seeds : DMFT Monte Carlo samples and independent solutions (seeds 0..seeds-1)
    dt_max, dt0, growth : the DMFT grid (eq. 5.13); the simulation is reported on it
    y_scale : label importance sampling (eq. 5.27); None: :func:`default_y_scale` (q0)
    stein_rcond : Stein projection (5.28); None or 0: off
    rtol : flow tolerance of the simulation (atol = rtol / 100)
    sizes : ((N, starts), ...) for the finite-N extrapolation (empty: none)
    """

    alpha: float = 4.0
    t_max: float = 2.0
    q0: float = 0.0
    n: int = 1000
    starts: int = 8
    samples: int = 8000
    seeds: int = 3
    dt_max: float = 0.05
    dt0: float = config_default("dt0")
    growth: float = config_default("growth")
    y_scale: float | None = None
    stein_rcond: float | None = config_default("stein_rcond")
    rtol: float = 1e-7
    sizes: tuple = ()

    def __post_init__(self):
        if self.y_scale is None:
            object.__setattr__(self, "y_scale", default_y_scale(self.q0))
        if self.stein_rcond == 0:
            object.__setattr__(self, "stein_rcond", None)
        if self.seeds < 1 or self.starts < 1:
            raise InputError(f"need seeds >= 1 and starts >= 1, got {self.seeds}, {self.starts}")

    @property
    def grid(self) -> DMFTGrid:
        return DMFTGrid(self.t_max, dt0=self.dt0, dt_max=self.dt_max, growth=self.growth)

    def dmft_config(self, seed: int) -> DMFTConfig:
        """The DMFT problem of seed ``seed``."""
        return DMFTConfig(self.alpha, self.t_max, self.q0, samples=self.samples, grid=self.grid, seed=seed,
                          y_scale=self.y_scale, stein_rcond=self.stein_rcond)


# ---------------------------------------------------------------------------- simulation
def simulation_cache_path(cache: Path, alpha: float, q0: float, n: int, t_max: float, rtol: float, start: int) -> Path:
    return Path(cache) / f"sim_a{alpha:g}_q{q0:g}_n{n}_t{t_max:g}_rtol{rtol:g}_start{start}.npz"


def _longer_cached_run(cache: Path, alpha, q0, n, t_max, rtol, start: int) -> Path | None:
    """A cached simulation of the same start run to a later time (the grids coincide up
    to the shortened last step), or None."""
    best = None
    for path in Path(cache).glob(f"sim_a{alpha:g}_q{q0:g}_n{n}_t*_rtol{rtol:g}_start{start}.npz"):
        t_other = float(path.name.split("_t")[1].split("_rtol")[0])
        if t_other > t_max and (best is None or t_other < best[0]):
            best = (t_other, path)
    return None if best is None else best[1]


def _run_start(path: Path, alpha, n, start, t_max, q0, times, rtol, log: Log) -> None:
    """Simulate one start on ``times`` and store energy, mu, |q| with provenance."""
    from simulation.data import make_problem, random_starts, warm_start
    from simulation.flow import Integrator, StopRules, run_dynamics

    t0 = time.perf_counter()
    problem = make_problem(n, alpha, seed=1000 + start)
    W0 = warm_start(problem, q0, 2000 + start) if q0 > 0 else random_starts(n, 1, 2000 + start)
    res = run_dynamics(problem, W0, StopRules(t_max=t_max, success_overlap=1.0, energy_tol=0.0, grad_tol=0.0),
                       Integrator(rtol=rtol, atol=rtol / 100), times=times)
    tr = res.trajectory
    prov = provenance(kind="simulation", alpha=alpha, n=n, q0=q0, t_max=t_max, rtol=rtol, start=start,
                      data_seed=1000 + start, start_seed=2000 + start)
    atomic_savez(path, t=times, energy=tr.energy[:, 0], mu=tr.mu[:, 0], q=np.abs(tr.q[:, 0]),
                 wall_seconds=time.perf_counter() - t0, provenance=np.str_(json.dumps(prov)))
    log(f"start {start}: {time.perf_counter() - t0:.0f} s")


def simulate(alpha: float, n: int, starts: int, t_max: float, q0: float, times: np.ndarray, cache: Path,
             rtol: float = 1e-7, log: Log = _print) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Energy, mu, |q| of each start on ``times`` (one cached file per start), and the total
    wall time. A cached run of the same start on another grid (a later t_max, or the grid
    of another dt_max) is reused when it covers ``times``, linearly interpolated onto them.

    Returns
    -------
    E, MU, Q : (starts, len(times)) arrays; wall : float seconds
    """
    E, MU, Q, wall = [], [], [], 0.0
    for b in range(starts):
        path = simulation_cache_path(cache, alpha, q0, n, t_max, rtol, b)
        longer = None if path.exists() else _longer_cached_run(cache, alpha, q0, n, t_max, rtol, b)
        if longer is not None:
            path = longer
        elif not path.exists():
            _run_start(path, alpha, n, b, t_max, q0, times, rtol, log)
        d = np.load(path)
        if d["t"][0] > times[0] + 1e-12 or d["t"][-1] < times[-1] * (1 - 1e-12):
            raise InputError(f"{path}: stored times do not cover the grid; remove the file")
        same = d["t"].shape == times.shape and np.allclose(d["t"], times)
        for out, key in ((E, "energy"), (MU, "mu"), (Q, "q")):
            out.append(d[key] if same else np.interp(times, d["t"], d[key]))
        wall += float(d["wall_seconds"])
    return np.array(E), np.array(MU), np.array(Q), wall


# ---------------------------------------------------------------------------- DMFT
def dmft_cache_path(cache: Path, c: DMFTComparison, seed: int) -> Path:
    """The cache file of DMFT seed ``seed`` in the older ``.npz`` layout (names as the
    results/dmft files); new seeds are written next to it with the suffix ``.nc``."""
    fine = "" if (c.dt0, c.growth) == (config_default("dt0"), config_default("growth")) \
        else f"_dt0{c.dt0:g}_g{c.growth:g}"
    fine += "" if c.y_scale == 1.0 else f"_ys{c.y_scale:g}"
    fine += "" if not c.stein_rcond else f"_st{c.stein_rcond:g}"
    return Path(cache) / f"dmft_a{c.alpha:g}_q{c.q0:g}_t{c.t_max:g}_dt{c.dt_max:g}{fine}_S{c.samples}_seed{seed}.npz"


def _read_dmft_run(npz: Path, nc: Path) -> dict:
    """A cached DMFT seed as a dict of arrays t, energy, mu, q, mu_multiplier,
    wall_seconds, memory_bytes (and ``failed``: the message, for a seed that failed):
    the older ``.npz`` layout, or the netCDF file with provenance attributes."""
    if npz.exists():
        return dict(np.load(npz))
    ds = load_netcdf(nc, kind="DMFT cache file")
    d = {key: ds[key].values for key in ("energy", "mu", "q", "mu_multiplier")}
    d.update(t=ds["t"].values, wall_seconds=float(ds.attrs["wall_seconds"]),
             memory_bytes=int(ds.attrs["memory_bytes"]))
    if not int(ds.attrs["converged"]):
        d["failed"] = str(ds.attrs["message"])
    return d


def dmft_runs(c: DMFTComparison, cache: Path, log: Log = _print, progress: bool = True) -> list[dict]:
    """The DMFT solutions of seeds 0..seeds-1 (one cached file per seed), as dicts of
    arrays t, energy, mu, q, mu_multiplier, wall_seconds, memory_bytes. New seeds are
    written as netCDF (:meth:`DMFTResult.to_dataset`: provenance as attributes), the older
    ``.npz`` files are read as they are. A seed that fails (a runaway, docs/theory.md 5.5)
    is stored as such (its partial solution, converged 0 and the message), reported and
    left out: its count is part of the result."""
    runs = []
    for seed in range(c.seeds):
        npz = dmft_cache_path(cache, c, seed)
        nc = npz.with_suffix(".nc")
        if not npz.exists() and not nc.exists():
            r = solve_dmft(c.dmft_config(seed), strict=False, progress=progress)
            write_netcdf(r.to_dataset(), nc)
            if r.converged:
                log(f"DMFT seed {seed}: {r.wall_seconds:.0f} s")
        d = _read_dmft_run(npz, nc)
        if "failed" in d:
            log(f"DMFT seed {seed} ran away, left out: {d['failed']}")
            continue
        runs.append(d)
    return runs


# ---------------------------------------------------------------------------- tables
def comparison_rows(times: np.ndarray, sim: dict, dm: dict, t_max: float) -> list[dict]:
    """Simulation mean +- standard error over starts against the DMFT mean +- standard
    error over seeds (and the mean norm multiplier) at :data:`TABLE_TIMES` <= t_max.

    ``sim``: energy, mu, q as (starts, len(times)); ``dm``: energy, mu, q, mu_multiplier
    as (seeds, len(times))."""
    se = standard_error
    rows = []
    for tt in TABLE_TIMES:
        if tt > t_max:
            continue
        k = int(np.argmin(np.abs(times - tt)))
        E, MU, Q = sim["energy"], sim["mu"], sim["q"]
        rows.append(dict(t=float(times[k]), e_sim=float(E[:, k].mean()), e_sim_se=float(se(E[:, k])),
                         e_dmft=float(dm["energy"][:, k].mean()), e_dmft_se=float(se(dm["energy"][:, k])),
                         mu_sim=float(MU[:, k].mean()), mu_sim_se=float(se(MU[:, k])),
                         mu_dmft=float(dm["mu"][:, k].mean()), mu_dmft_se=float(se(dm["mu"][:, k])),
                         mu_mult=float(dm["mu_multiplier"][:, k].mean()),
                         q_sim=float(Q[:, k].mean()), q_sim_se=float(se(Q[:, k])), q_dmft=float(dm["q"][:, k].mean()),
                         q_dmft_se=float(se(dm["q"][:, k]))))
    return rows


def format_row(row: dict) -> str:
    """One line of the comparison table."""
    return (f"{row['t']:7.3f} {row['e_sim']:7.3f}+-{row['e_sim_se']:5.3f} {row['e_dmft']:7.3f}+-{row['e_dmft_se']:5.3f} "
            f"{row['mu_sim']:7.3f}+-{row['mu_sim_se']:5.3f} {row['mu_dmft']:7.3f}+-{row['mu_dmft_se']:5.3f} "
            f"{row['mu_mult']:8.3f} {row['q_sim']:6.3f}+-{row['q_sim_se']:5.3f} {row['q_dmft']:6.3f}+-{row['q_dmft_se']:5.3f}")


def size_starts(text: str) -> tuple[int, int]:
    """``N:STARTS`` of a size list (N >= 2, STARTS >= 2: a standard error needs two starts)."""
    try:
        n, starts = (int(v) for v in text.split(":"))
    except ValueError:
        raise InputError(f"expected N:STARTS with two integers, got {text!r}") from None
    if n < 2 or starts < 2:
        raise InputError(f"need N >= 2 and STARTS >= 2, got {text!r}")
    return n, starts


def finite_n_table(c: DMFTComparison, times: np.ndarray, dm: dict, cache: Path, log: Log = _print) -> list[dict]:
    """Simulation means at each size of ``c.sizes``, their extrapolation a + b/N to
    N = infinity (eq. 5.29), and the DMFT (mean over seeds) against it in combined
    standard errors, at :data:`FINITE_N_TIMES` <= t_max."""
    se = standard_error
    sims = {}
    for n, starts in c.sizes:
        E, MU, _, _ = simulate(c.alpha, n, starts, c.t_max, c.q0, times, cache, c.rtol, log)
        sims[n] = (E, MU)
    ns = sorted(sims)
    log(f"finite-N check: N = {ns}, starts = {[sims[n][0].shape[0] for n in ns]}; "
        "fit a + b/N per time (eq. 5.29), DMFT vs a in combined standard errors")
    rows = []
    for tt in FINITE_N_TIMES:
        if tt > c.t_max:
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
        log(f"{row['t']:6.3f} {cells}")
    return rows


def plot_comparison(path: str | os.PathLike, c: DMFTComparison, times: np.ndarray, sim: dict, dm: dict,
                    dmft_t: np.ndarray) -> None:
    """Figure: e(t), mu(t), |q|(t), simulation mean +- 2 standard errors over starts against the
    DMFT mean +- 2 standard errors over seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, key, label in zip(axes, ("energy", "mu", "q"), ("e(t) = L / N", "mu(t)", "|q(t)|")):
        for t, v, name, style in ((times, sim[key], f"simulation N = {c.n}, {sim[key].shape[0]} starts", "C7"),
                                  (dmft_t, dm[key], f"DMFT S = {c.samples}, {dm[key].shape[0]} seeds", "C0")):
            m, se = v.mean(0), standard_error(v)
            ax.plot(t, m, color=style, label=name)
            ax.fill_between(t, m - 2 * se, m + 2 * se, color=style, alpha=0.3, lw=0)
        ax.set_xscale("log")
        ax.set_xlim(min(0.005, c.t_max), c.t_max)
        ax.set_xlabel("t")
        ax.set_ylabel(label)
    axes[1].set_ylim(max(axes[1].get_ylim()[0], -3), min(axes[1].get_ylim()[1], 6))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"DMFT vs simulation, alpha = {c.alpha:g}, q0 = {c.q0:g} (bands: 2 standard errors)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------- the comparison
def compare(c: DMFTComparison, cache: Path, part: str = "all", figure: str | None = None,
            log: Log = _print) -> dict | None:
    """Run (or read from ``cache``) the DMFT seeds and the simulated starts of ``c`` and
    compare them. ``part`` "dmft" / "sim" only fills the cache (returns None); "all"
    prints the tables and returns the report: rows (:func:`comparison_rows`), finite_n
    (:func:`finite_n_table`, None without sizes), energy_rise_per_seed, seeds_used,
    seeds_run_away, dmft_seconds, sim_seconds."""
    if part not in ("all", "dmft", "sim"):
        raise InputError(f"part must be all, dmft or sim, got {part!r}")
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    times = time_grid(c.grid)
    if part == "sim":
        simulate(c.alpha, c.n, c.starts, c.t_max, c.q0, times, cache, c.rtol, log)
        return None
    runs = dmft_runs(c, cache, log)
    if part == "dmft":
        return None
    if not runs:
        raise InputError("every DMFT seed ran away; more samples or other seeds")
    r = runs[0]
    dm = {key: np.array([x[key] for x in runs]) for key in ("energy", "mu", "q", "mu_multiplier")}
    E, MU, Q, wall = simulate(c.alpha, c.n, c.starts, c.t_max, c.q0, times, cache, c.rtol, log)
    log(f"alpha={c.alpha} q0={c.q0} N={c.n} starts={c.starts} (sim {wall:.0f} s); "
        f"DMFT S={c.samples} y_scale={c.y_scale:g} steps={len(times)-1} ({float(r['wall_seconds']):.0f} s, "
        f"B {float(r['memory_bytes'])/1e6:.0f} MB), {len(runs)} of {c.seeds} seeds ({c.seeds - len(runs)} ran away)")
    # a gradient flow cannot raise its energy: any rise of a seed's e(t) is Monte Carlo error
    rises = [energy_rise(x["energy"]) for x in runs]
    log("energy rise per seed (Monte Carlo error, DMFTResult.energy_rise): " + " ".join(f"{v:.3f}" for v in rises))
    log(f"{'t':>7} {'e_sim':>15} {'e_dmft':>15} {'mu_sim':>15} {'mu_dmft':>15} {'mu_mult':>8} {'q_sim':>14} {'q_dmft':>14}")
    sim = dict(energy=E, mu=MU, q=Q)
    rows = comparison_rows(times, sim, dm, c.t_max)
    for row in rows:
        log(format_row(row))
    finite_n = finite_n_table(c, times, dm, cache, log) if c.sizes else None
    if figure:
        plot_comparison(figure, c, times, sim, dm, r["t"])
        log(f"figure: {figure}")
    return dict(rows=rows, finite_n=finite_n, energy_rise_per_seed=rises, seeds_used=len(runs),
                seeds_run_away=c.seeds - len(runs), dmft_seconds=[float(x["wall_seconds"]) for x in runs],
                sim_seconds=wall)


def comparison_from_args(**kwargs) -> DMFTComparison:
    """A :class:`DMFTComparison` from keyword arguments, ignoring those it has no field for."""
    names = {f.name for f in dataclasses.fields(DMFTComparison)}
    return DMFTComparison(**{k: v for k, v in kwargs.items() if k in names})
