"""Command line of the theory package: ``python -m theory <subcommand> ...``.

Each subcommand is a pair ``_add_<name>(subparsers)`` / ``_run_<name>(args) -> int``
registered in :data:`SUBCOMMANDS`; errors are :class:`theory.errors.InputError` or
:class:`theory.errors.ConvergenceError`, which :func:`theory.errors.run_cli` turns into
one-line messages (exit 2 / 3), never a traceback.

Subcommands: ``spectrum`` (§2), ``threshold``, ``alpha-c``, ``curve``, ``plot`` (§3), ``dmft`` (§5),
``spectral-init`` (§6), ``success`` (§7; ``alpha-c --n N`` is its finite-N critical alpha),
``landscape`` (§8).
"""
from __future__ import annotations

import json
import sys
from typing import Sequence

import numpy as np

from .errors import InputError, OneLineArgumentParser, Subcommand, dispatch, subcommand_parser
from .io import integer_arg, json_ready, number_arg, output_path
from .measure import read_measure_file
from .statistics import standard_error

__all__ = ["build_parser", "main", "SUBCOMMANDS"]


def _format_value(value: object) -> str:
    """One table cell: none, yes/no, 10 significant digits, or str."""
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.10g}"
    return str(value)


#: status fields of every solver result, printed after its values (theory.errors)
_STATUS_KEYS = ("converged", "iterations", "residual", "message")


# ---------------------------------------------------------------------------- spectrum
def _add_spectrum(subparsers) -> None:
    p = subparsers.add_parser(
        "spectrum",
        help="bulk edge, isolated eigenvalue and overlap of the Hessian for a measure file",
        description="Random-matrix core (docs/theory.md §2) for the law of (yhat, y, s) in a measure file.",
    )
    p.add_argument("--measure", required=True, metavar="PATH", help="measure file (.npz, see theory.measure)")
    p.add_argument("--alpha", type=number_arg, metavar="A", help="override alpha = M/N of the file")
    p.add_argument("--mu", type=number_arg, metavar="MU",
                   help="override mu (default: the file's, else eq. 1.3 from the law)")
    p.add_argument("--loss", metavar="NAME", help="override the loss (registry name, default quartic)")
    p.add_argument("--density", metavar="FILE.png", help="write the predicted density (and eigenvalues) as PNG")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _density_grid(summary, measure, eigenvalues, n_points: int = 600):
    """Grid from below the lowest predicted/observed eigenvalue to past the bulk top."""
    from .spectrum import bulk_density, spectrum_support_bounds

    low, high = spectrum_support_bounds(measure)
    lowest = [summary.bulk_edge] + ([summary.isolated_eigenvalue] if summary.isolated_eigenvalue is not None else [])
    if eigenvalues is not None:
        lowest.append(float(eigenvalues[0]))
    start = min(lowest)
    coarse = np.linspace(summary.bulk_edge, high, 300)
    d = bulk_density(coarse, measure, strict=False).density
    support = coarse[d > 1e-6 * max(d.max(), 1e-300)]
    top = float(support[-1]) if support.size else high
    if eigenvalues is not None:
        top = max(top, float(eigenvalues[-1]))
    span = top - start
    x = np.linspace(start - 0.05 * span, top + 0.05 * span, n_points)
    x = np.unique(np.concatenate([x, [summary.bulk_edge], _zoom_points(summary, x)]))
    return x, bulk_density(x, measure, strict=False)


def _zoom_points(summary, x: np.ndarray, n_points: int = 200) -> np.ndarray:
    """Extra grid points for the zoom panel of :func:`theory.plots.plot_spectral_density`
    (edge and isolated eigenvalue too close to tell apart), else none."""
    from .plots import zoom_window

    window = zoom_window(summary.bulk_edge, summary.isolated_eigenvalue, float(x[-1] - x[0]))
    return np.empty(0) if window is None else np.linspace(*window, n_points)


def _run_spectrum(args) -> int:
    from .spectrum import spectrum_summary

    if args.density:
        output_path(args.density, "--density")
    mfile = read_measure_file(args.measure, alpha=args.alpha, mu=args.mu, loss=args.loss)
    measure = mfile.measure
    summary = spectrum_summary(measure)
    if args.density:
        from .plots import plot_spectral_density

        x, dens = _density_grid(summary, measure, mfile.eigenvalues)
        title = f"alpha = {measure.alpha:g}, mu = {measure.mu:.4g}, loss = {measure.loss.name}"
        if mfile.n is not None:
            title += f", N = {mfile.n}"
        plot_spectral_density(args.density, x, dens.density, bulk_edge=summary.bulk_edge,
                              isolated_eigenvalue=summary.isolated_eigenvalue, eigenvalues=mfile.eigenvalues,
                              eigenvalues_complete=mfile.eigenvalues_complete, title=title)
        if not dens.converged.all():
            print(f"warning: density did not converge at {int((~dens.converged).sum())} points",
                  file=sys.stderr)
    record = summary.to_dict()
    if args.json:
        print(json.dumps(json_ready(record)))
    else:
        _print_record(record, ["alpha", "mu", "bulk_edge", "isolated_eigenvalue", "overlap2", "rho_edge", "rho_iso",
                               "hard_edge", "set_by_lowest_atom", *_STATUS_KEYS])
        res = record["residuals"]
        print(f"{'residuals':<20} edge {_format_residual(res['edge'])}, isolated {_format_residual(res['isolated'])}, "
              f"bbp {'none' if res['bbp'] is None else format(res['bbp'], '.4g')}")
        if args.density:
            print(f"{'density plot':<20} {args.density}")
    return 0


# ---------------------------------------------------------------------------- threshold
def _add_closure(p) -> None:
    from .threshold import CLOSURES, DEFAULT_CLOSURE

    p.add_argument("--closure", default=DEFAULT_CLOSURE, metavar="NAME",
                   help="; ".join(f"{k}: {v}" for k, v in CLOSURES.items()) + f" (default {DEFAULT_CLOSURE})")


def _add_loss(p) -> None:
    from .loss import LOSSES, get_loss

    default = get_loss().name
    with_prox = ", ".join(k for k, v in LOSSES.items() if v.prox is not None)
    p.add_argument("--loss", default=default, metavar="NAME",
                   help=f"loss from the registry (default {default}); the threshold states need its proximal "
                        f"map in closed form ({with_prox})")


def _format_residual(value) -> str:
    return "none" if value is None else f"{value:.2e}"


def _print_record(record: dict, keys: Sequence[str]) -> None:
    """``key value`` lines, one per key, values by :func:`_format_value`."""
    for key in keys:
        print(f"{key:<20} {_format_value(record[key])}")


def _add_threshold(subparsers) -> None:
    p = subparsers.add_parser(
        "threshold", help="threshold state at one alpha: energy, complexity, mu, Hessian edge and spike",
        description="Threshold states of the spurious minima (docs/theory.md §3): zero-temperature 1RSB at "
                    "replicon marginality, its law of (yhat, y) fed to the random-matrix core.")
    p.add_argument("--alpha", type=number_arg, required=True, metavar="A",
                   help="alpha = M/N > 0; the quartic threshold equations converge for 1.02 <= A <= 1e7 "
                        "(checked), chi and Y diverge as A -> 1 and no threshold state exists below A = 1")
    _add_closure(p)
    _add_loss(p)
    p.add_argument("--density", metavar="FILE.png", help="write the predicted Hessian density as PNG")
    p.add_argument("--export-measure", metavar="PATH", help="write the predicted law as a measure file (.npz)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _run_threshold(args) -> int:
    from .measure import write_measure_file
    from .threshold import solve_threshold

    if args.alpha <= 0:
        raise InputError(f"alpha must be > 0, got {args.alpha:g}")
    measure_out = None if not args.export_measure else output_path(args.export_measure, "--export-measure", ".npz")
    if args.density:
        output_path(args.density, "--density")
    state = solve_threshold(args.alpha, closure=args.closure, loss=args.loss)
    if measure_out is not None:
        measure_out = write_measure_file(measure_out, state.measure)
    if args.density:
        from .plots import plot_spectral_density

        x, dens = _density_grid(state.spectrum, state.measure, None)
        plot_spectral_density(args.density, x, dens.density, bulk_edge=state.bulk_edge,
                              isolated_eigenvalue=state.isolated_eigenvalue,
                              title=f"threshold state, alpha = {state.alpha:g}, closure {state.closure}")
    record = state.to_dict()
    if args.json:
        print(json.dumps(json_ready(record)))
    else:
        _print_record(record, ["alpha", "closure", "loss", "energy", "complexity", "mu", "bulk_edge",
                               "isolated_eigenvalue", "overlap2", "Y", "chi", "bbp_residual", *_STATUS_KEYS])
        print(f"{'residuals':<20} " + ", ".join(f"{k} {_format_residual(v)}" for k, v in record["residuals"].items()
                                                if v is not None))
        if measure_out is not None:
            print(f"{'measure file':<20} {measure_out}")
    return 0


def _add_alpha_c(subparsers) -> None:
    p = subparsers.add_parser(
        "alpha-c", help="critical alpha where the threshold Hessian develops a spike toward the signal (BBP)",
        description="alpha_c: root of the BBP residual (eq. 2.9) along the threshold line (docs/theory.md §3.5).")
    _add_closure(p)
    _add_loss(p)
    p.add_argument("--bracket", type=number_arg, nargs=2, default=(6.0, 24.0), metavar=("LO", "HI"),
                   help="alpha bracket of the root search (default 6 24)")
    _add_finite_n_options(p, n_required=False)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _run_alpha_c(args) -> int:
    from dataclasses import asdict

    if args.n is not None:
        return _run_alpha_c_finite_n(args)

    from .threshold import critical_alpha

    result = critical_alpha(closure=args.closure, bracket=tuple(args.bracket), loss=args.loss)
    record = asdict(result)
    record["bracket"] = list(result.bracket)
    if args.json:
        print(json.dumps(json_ready(record)))
    else:
        _print_record(record, ["alpha_c", "energy_at_alpha_c", "complexity_at_alpha_c", "Y", "chi", "closure", "loss",
                               *_STATUS_KEYS])
        print(f"{'bracket':<20} [{result.bracket[0]:.12g}, {result.bracket[1]:.12g}]")
    return 0


def _add_curve(subparsers) -> None:
    p = subparsers.add_parser(
        "curve", help="threshold quantities over a grid of alpha, stored as a labelled netCDF file",
        description="Threshold states on an alpha grid (docs/theory.md §3) with alpha_c as an attribute, "
                    "written atomically as an xarray Dataset (netCDF). An alpha whose threshold state does "
                    "not converge is stored as a row with converged = 0 (NaN values) and a warning.")
    p.add_argument("--alpha", nargs="+", default=["3:20:0.25"], metavar="GRID",
                   help="alpha values or START:STOP:STEP ranges (default 3:20:0.25)")
    _add_closure(p)
    _add_loss(p)
    p.add_argument("--out", required=True, metavar="FILE.nc", help="output netCDF file")
    p.add_argument("--json", action="store_true", help="print a JSON summary; no progress bar")


def _run_curve(args) -> int:
    from .curve import threshold_curve
    from .io import parse_alpha_grid, write_netcdf

    alphas = parse_alpha_grid(args.alpha)
    output_path(args.out, "--out")
    ds = threshold_curve(alphas, closure=args.closure, loss=args.loss, progress=not args.json)
    path = write_netcdf(ds, args.out)
    ok = np.asarray(ds["converged"].values, bool)
    failed = [float(a) for a in ds["alpha"].values[~ok]]
    alpha_c_ok = bool(ds.attrs["alpha_c_converged"])
    summary = dict(out=str(path), n_alpha=len(alphas), closure=args.closure, loss=args.loss,
                   alpha_c=float(ds.attrs["alpha_c"]), converged=bool(ok.all() and alpha_c_ok),
                   n_failed=len(failed), failed_alpha=failed, alpha_c_message=str(ds.attrs["alpha_c_message"]))
    if args.json:
        print(json.dumps(json_ready(summary)))
    else:
        _print_record(summary, list(summary))
    problems = []
    if failed:
        problems.append(f"the threshold state did not converge at alpha = {', '.join(f'{a:g}' for a in failed)} "
                        f"(rows stored with converged = 0, values NaN)")
    if not alpha_c_ok:
        problems.append(f"alpha_c did not converge (attribute NaN): {ds.attrs['alpha_c_message']}")
    if problems:
        print(f"warning: {'; '.join(problems)}", file=sys.stderr)
    return 0


def _add_plot(subparsers) -> None:
    p = subparsers.add_parser(
        "plot", help="figures of a theory curve: e_th, mu and lambda_iso / overlap^2 against alpha",
        description="Figures of a file written by `python -m theory curve` (optionally with the trapped "
                    "energies of a `python -m simulation sweep` file).")
    p.add_argument("--curve", required=True, metavar="FILE.nc", help="file from `python -m theory curve`")
    p.add_argument("--sweep", metavar="FILE.nc", help="sweep file: overlay mean energies of trapped starts")
    p.add_argument("--out", required=True, metavar="FILE.png", help="output figure")
    p.add_argument("--json", action="store_true", help="print JSON")


#: format tags of the files written by ``python -m simulation sweep`` start with this
#: (simulation.sweep.FORMATS; the theory package does not import simulation)
SWEEP_FORMAT_PREFIX = "phaseflow-sweep-"
#: what the overlay of trapped energies reads from a sweep file
_SWEEP_VARIABLES = ("status", "final_energy")
_SWEEP_DIMS = ("alpha", "n", "start")


def _read_sweep(path: str):
    """The sweep file of ``plot --sweep``, checked for its kind (attribute ``format``) and for
    the variables the overlay reads; a curve or any other file is a one-line InputError."""
    from .curve import CURVE_FORMAT
    from .io import load_netcdf

    ds = load_netcdf(path, kind="sweep file")
    fmt = ds.attrs.get("format")
    if not str(fmt).startswith(SWEEP_FORMAT_PREFIX):
        hint = " (a theory curve: pass it as --curve)" if fmt == CURVE_FORMAT else ""
        raise InputError(f"--sweep {path!r} is not a sweep file of `python -m simulation sweep` "
                         f"(format {fmt!r}){hint}")
    missing = [v for v in _SWEEP_VARIABLES if v not in ds.variables] + [d for d in _SWEEP_DIMS if d not in ds.dims]
    if missing:
        raise InputError(f"--sweep {path!r} lacks {', '.join(missing)}")
    return ds


def _run_plot(args) -> int:
    from .curve import read_curve
    from .plots import plot_threshold_curve

    out = output_path(args.out, "--out")
    curve = read_curve(args.curve, keep_failed=True)
    trapped = None
    if args.sweep:
        trapped = _read_sweep(args.sweep)
    plot_threshold_curve(out, curve, trapped)
    failed = [float(a) for a in curve["alpha"].values[~np.asarray(curve["converged"].values, bool)]]
    if args.json:
        print(json.dumps({"out": str(out), "n_alpha": int(curve.sizes["alpha"]), "failed_alpha": failed}))
    else:
        print(f"figure written to {out}")
        if failed:
            print(f"{len(failed)} failed alpha(s) left as gaps, marked x: {', '.join(f'{a:g}' for a in failed)}")
    return 0


# ---------------------------------------------------------------------------- dmft
#: log-spaced report times start here (or at t_max when it is smaller)
_DMFT_FIRST_TIME = 0.01


def _add_dmft(subparsers) -> None:
    from .dmft import IMPORTANCE_SAMPLING_BELOW_Q0, config_default
    from .dmft.config import VALIDATED_RUN

    q0, seed, stein_rcond = (config_default(k) for k in ("q0", "seed", "stein_rcond"))
    samples, dt_max, seeds = (VALIDATED_RUN[k] for k in ("samples", "dt_max", "seeds"))
    p = subparsers.add_parser(
        "dmft", help="N -> infinity dynamics (DMFT) of gradient flow: energy, mu, q, lambda_iso in time",
        description="Dynamical mean-field theory of gradient flow on the sphere (docs/theory.md §5), "
                    "solved by Monte Carlo over the effective measurement process; the law of "
                    "(yhat(t), y) is fed to the random-matrix core (§2). The default is the estimator "
                    f"validated against simulation (docs/validation.md, DMFT section): S = {samples}, "
                    f"dt_max = {dt_max:g}, the mean over {seeds} seeds with the standard error across "
                    "seeds on every column. Cost: one S = 8000 seed to t = 2 takes 70-120 s and 0.4 GB "
                    f"on a shared 2-core machine (memory grows as S n_steps^2: 2.5 GB to t = 8), so the "
                    f"default {seeds} seeds to t = 2 take about 5-8 minutes; a quick look: --seeds 1 "
                    "--samples 2000 (biased, no error bar).")
    p.add_argument("--alpha", type=number_arg, required=True, metavar="A", help="alpha = M/N > 0")
    p.add_argument("--t-max", type=number_arg, required=True, metavar="T", help="final time > 0")
    p.add_argument("--q0", type=number_arg, default=q0, metavar="Q",
                   help=f"teacher overlap at t = 0, in [0, 1) (default {q0:g}: random start)")
    p.add_argument("--samples", type=integer_arg("samples"), default=samples, metavar="S",
                   help=f"Monte Carlo samples per seed, an even integer >= 4 (default {samples}, validated)")
    p.add_argument("--dt-max", type=number_arg, default=dt_max, metavar="DT",
                   help=f"largest time step (default {dt_max:g}, validated)")
    p.add_argument("--seed", type=integer_arg("seed"), default=seed, metavar="SEED",
                   help=f"first seed of the common random numbers, >= 0 (default {seed}); the seeds are "
                        "SEED, SEED+1, ...")
    p.add_argument("--seeds", type=integer_arg("seeds"), default=seeds, metavar="K",
                   help=f"independent seeds averaged, >= 1 (default {seeds}); error bars are the standard "
                        "error across seeds (none for K = 1)")
    p.add_argument("--y-scale", type=number_arg, default=config_default("y_scale"), metavar="SIGMA",
                   help="importance sampling of the label, y ~ N(0, SIGMA^2) (docs/theory.md eq. 5.27; "
                        f"default: the validated choice, 2 at q0 < {IMPORTANCE_SAMPLING_BELOW_Q0:g} and 1 "
                        "(plain) above)")
    p.add_argument("--stein-rcond", type=number_arg, default=stein_rcond, metavar="R",
                   help=f"Stein projection of the memory kernel (docs/theory.md 5.9; default {stein_rcond:g}, "
                        "validated; 0: off)")
    p.add_argument("--atoms", type=integer_arg("atoms"), default=None, metavar="M",
                   help="spectral columns for a system of M = alpha N measurements: M equal-weight atoms "
                        "resampled from the law (docs/theory.md 5.11; default: M = samples)")
    p.add_argument("--points", type=integer_arg("points"), default=8, metavar="K",
                   help=f"times reported after t = 0: K log-spaced times from {_DMFT_FIRST_TIME:g} to T, the "
                        "last one T (K = 1: T only), each at its nearest grid time; fewer rows (and a note) "
                        "when the grid has fewer distinct times (default 8)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (no progress on stderr)")


def _dmft_config(args, seed: int):
    """The :class:`theory.dmft.DMFTConfig` of the command line for one seed (validated
    there); the first step is the config's dt0 unless --dt-max is smaller."""
    from .dmft import DMFTConfig, DMFTGrid, config_default

    if not args.dt_max > 0:
        raise InputError(f"dt-max must be > 0, got {args.dt_max:g}")
    grid = None
    if args.t_max > 0:
        grid = DMFTGrid(args.t_max, dt0=min(config_default("dt0"), args.dt_max), dt_max=args.dt_max)
    return DMFTConfig(args.alpha, args.t_max, args.q0, samples=args.samples, grid=grid, seed=seed,
                      y_scale=args.y_scale, stein_rcond=args.stein_rcond or None)


def dmft_report_times(t_max: float, points: int) -> np.ndarray:
    """The ``points`` requested report times: log-spaced from 0.01 (or t_max) to t_max, the
    last exactly t_max (``points`` = 1: t_max alone)."""
    if points == 1:
        return np.array([float(t_max)])
    times = np.geomspace(min(_DMFT_FIRST_TIME, t_max), t_max, points)
    times[-1] = t_max
    return times


def dmft_report_indices(grid_t: np.ndarray, requested: np.ndarray) -> tuple[list[int], list[float]]:
    """Grid indices nearest to t = 0 and each requested time, without repeats (a grid
    coarser than the request gives fewer rows), with the requested time of each row."""
    indices, asked = [0], [0.0]
    for t in requested:
        k = int(np.argmin(np.abs(grid_t - t)))
        if k not in indices:
            indices.append(k)
            asked.append(float(t))
    return indices, asked


def _mean_and_error(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean over seeds and its standard error (sample standard deviation / sqrt K); None
    when any seed lacks the value (no isolated eigenvalue), error None for one seed."""
    if any(v is None for v in values):
        return None, None
    v = np.asarray(values, float)
    if v.size == 1:
        return float(v[0]), None
    return float(v.mean()), float(standard_error(v))


#: the columns of a DMFT row, averaged over seeds with their standard error ``<name>_se``
_DMFT_COLUMNS = ("energy", "mu", "mu_multiplier", "q", "bulk_edge", "lambda_iso", "overlap2", "bbp_residual")


def _dmft_seed_rows(res, indices: Sequence[int], atoms: int | None) -> list[dict]:
    """The columns of one seed's solution at grid indices ``indices``."""
    rows = []
    for k, summ in zip(indices, res.spectrum([res.t[k] for k in indices], atoms)):
        rows.append({"energy": float(res.energy[k]), "mu": float(res.mu[k]),
                     "mu_multiplier": float(res.mu_multiplier[k]), "q": float(res.q[k]),
                     "bulk_edge": summ.bulk_edge, "lambda_iso": summ.isolated_eigenvalue,
                     "overlap2": summ.overlap2, "bbp_residual": summ.residuals.bbp})
    return rows


def _format_mean(value: float | None, error: float | None, width: int) -> str:
    """``mean +- error`` cell (``none`` without a value, ``-`` for no error bar)."""
    if value is None:
        return f"{'none':>{width}} {'':>7}"
    return f"{value:{width}.4f} {'-' if error is None else format(error, '.4f'):>7}"


def _run_dmft(args) -> int:
    from .dmft import solve_dmft

    if args.points < 1:
        raise InputError(f"points must be >= 1, got {args.points}")
    if args.atoms is not None and args.atoms < 2:
        raise InputError(f"atoms must be >= 2, got {args.atoms}")
    if args.seed < 0:
        raise InputError(f"seed must be >= 0, got {args.seed}")
    if args.seeds < 1:
        raise InputError(f"seeds must be >= 1, got {args.seeds}")
    seeds = list(range(args.seed, args.seed + args.seeds))
    configs = [_dmft_config(args, s) for s in seeds]    # every input checked before the first solve
    requested = dmft_report_times(args.t_max, args.points)
    results, per_seed, indices, asked = [], [], None, None
    for config in configs:
        if not args.json and len(configs) > 1:
            print(f"seed {config.seed} ({len(results) + 1} of {len(configs)})", file=sys.stderr)
        res = solve_dmft(config, progress=not args.json)
        if indices is None:
            indices, asked = dmft_report_indices(res.t, requested)
        results.append(res)
        per_seed.append(_dmft_seed_rows(res, indices, args.atoms))
    res = results[0]
    rows = []
    for i, (k, t_asked) in enumerate(zip(indices, asked)):
        row = {"t": float(res.t[k]), "t_requested": t_asked}
        for name in _DMFT_COLUMNS:
            row[name], row[f"{name}_se"] = _mean_and_error([seed_rows[i][name] for seed_rows in per_seed])
        rows.append(row)
    coarse = len(indices) - 1 < len(requested)
    note = (f"the time grid (dt_max {args.dt_max:g}) has {len(indices) - 1} distinct times among the "
            f"{len(requested)} requested: {len(indices) - 1} rows after t = 0") if coarse else ""
    atoms = res.n_samples if args.atoms is None else args.atoms   # DMFTResult.measure's default M
    record = {"alpha": res.alpha, "q0": res.q0, "samples": res.n_samples, "seeds": seeds, "atoms": atoms,
              "y_scale": res.y_scale, "stein_rcond": args.stein_rcond, "dt_max": args.dt_max,
              "steps": int(res.t.size - 1),
              "residual": max(r.residual for r in results), "converged": all(r.converged for r in results),
              "wall_seconds": sum(r.wall_seconds for r in results),
              "energy_rise": max(r.energy_rise for r in results), "note": note,
              "rows": [json_ready(r) for r in rows]}
    if args.json:
        print(json.dumps(record))
        return 0
    print(f"alpha {res.alpha:g}, q0 {res.q0:g}, {res.n_samples} samples x {len(seeds)} seed(s) "
          f"{seeds[0]}-{seeds[-1]}, {res.t.size - 1} steps (dt_max {args.dt_max:g}), residual "
          f"{record['residual']:.2e}, {record['wall_seconds']:.1f} s, energy rise {record['energy_rise']:.3f} "
          "(largest over seeds)")
    print("each column: mean over seeds, then its standard error across seeds (+-; '-' for one seed: the "
          "per-run Monte Carlo error underestimates the seed-to-seed spread, docs/validation.md)")
    print("mu_mult: the norm multiplier (eq. 5.18); without the Stein projection (--stein-rcond 0) a gap "
          "|mu_mult - mu| above ~0.3 flags the heavy-tail bias of docs/theory.md 5.8; energy rise: the "
          "largest increase of e(t), which a gradient flow cannot have (Monte Carlo error)")
    print(f"bulk_edge, lambda_iso, overlap2: random-matrix core (docs/theory.md §2) on the law as {atoms} "
          "equal-weight atoms (a system of M = alpha N measurements; --atoms, docs/theory.md 5.11); "
          "lambda_iso none when a seed has no isolated eigenvalue")
    if note:
        print(f"note: {note}")
    names = ("energy", "mu", "mu_mult", "q", "bulk_edge", "lambda_iso", "overlap2")
    print(f"{'t':>9} " + " ".join(f"{n:>10} {'+-':>7}" for n in names))
    for r in rows:
        print(f"{r['t']:9.4f} " + " ".join(_format_mean(r[c], r[f"{c}_se"], 10) for c in
                                           ("energy", "mu", "mu_multiplier", "q", "bulk_edge", "lambda_iso",
                                            "overlap2")))
    return 0


# ---------------------------------------------------------------------------- spectral-init
def _add_spectral_init(subparsers) -> None:
    from .spectral_start import PREPROCESSINGS

    p = subparsers.add_parser(
        "spectral-init", help="spectral start (Wirtinger flow initialisation): alpha_w, overlap^2, eigenvalues",
        description="Top eigenvector of (1/M) sum T(y_m) a_m a_m^T through the random-matrix core with "
                    "D = -T/alpha, s = y, mu = 0 (docs/theory.md §6).")
    p.add_argument("--preprocess", required=True, metavar="NAME",
                   help=f"{', '.join(PREPROCESSINGS)}, mondelli-montanari:D, or a formula in y (and alpha)")
    p.add_argument("--alpha", type=number_arg, required=True, metavar="A", help="alpha = M/N > 0")
    p.add_argument("--m", type=integer_arg("m"), default=None, metavar="M",
                   help="number of measurements: finite-M cutoff law (eq. 4.1; needed for T unbounded above, "
                        "e.g. plain); alpha_w is then searched at fixed N = M/alpha")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _run_spectral_init(args) -> int:
    from .spectral_start import spectral_prediction, weak_recovery_threshold

    if args.alpha <= 0:
        raise InputError(f"alpha must be > 0, got {args.alpha:g}")
    if args.m is not None and args.m < 2:
        raise InputError(f"m must be >= 2, got {args.m}")
    pred = spectral_prediction(args.preprocess, args.alpha, args.m, strict=False)
    n = None if args.m is None else args.m / args.alpha
    thr = weak_recovery_threshold(args.preprocess, n=n, strict=False)
    record = {"preprocess": pred.preprocess, "alpha": pred.alpha, "m": pred.m, "alpha_w": thr.alpha_w,
              "overlap2": pred.overlap2, "top_eigenvalue": pred.top_eigenvalue, "bulk_edge": pred.bulk_edge,
              "bbp_residual": pred.bbp_residual, "converged": pred.converged and thr.converged,
              "prediction": pred.to_dict(), "threshold": thr.to_dict()}
    if args.json:
        print(json.dumps(json_ready(record)))
        return 0
    _print_record(record, ["preprocess", "alpha", "m", "alpha_w", "overlap2", "top_eigenvalue", "bulk_edge",
                           "bbp_residual", "converged"])
    print(f"{'status':<20} prediction: {pred.message}; alpha_w: {thr.message} "
          f"({thr.iterations} iterations, residual {thr.residual:.2e})")
    return 0


# ---------------------------------------------------------------------------- landscape (§8)
def _add_landscape(subparsers) -> None:
    from .kac_rice import LANDSCAPE_DEFAULTS as D

    p = subparsers.add_parser(
        "landscape", help="Kac-Rice complexity of the minima at teacher overlap q: energy window, typical and "
                          "marginal minima",
        description="Annealed Kac-Rice landscape of the local minima at teacher overlap q (docs/theory.md §8; "
                    "q != 0: §8.10): Sigma, the energy window of minima [e_low, e_high], the most numerous "
                    "(e_typical) and the marginal minima, their law, Hessian edge and isolated eigenvalue toward "
                    "the signal, and dSigma/dq.")
    p.add_argument("--alpha", type=number_arg, required=True, metavar="A", help="alpha = M/N > 0")
    p.add_argument("--energy", type=number_arg, metavar="E", help="also the minima at energy E = L/N > 0")
    p.add_argument("--overlap", type=number_arg, default=D.overlap, metavar="Q",
                   help=f"teacher overlap q = <W, W*>/N of the counted minima, |q| < 1 (default {D.overlap:g}; "
                        "q != 0 costs ~2x per point)")
    p.add_argument("--restricted", action="store_true",
                   help="count the minima of L on the sub-sphere <W, W*>/N = q (where a flow held at q stops, "
                        "docs/theory.md eq. 8.24) instead of the minima of L at overlap q")
    p.add_argument("--loss", default=D.loss, metavar="NAME",
                   help=f"loss from the registry, even in yhat and y (default {D.loss})")
    p.add_argument("--beta-limit", type=number_arg, default=D.beta_limit, metavar="B",
                   help=f"largest |beta| = |dSigma/de| searched for the window ends (default {D.beta_limit:g})")
    p.add_argument("--critical", action="store_true",
                   help="also the critical points of any index (docs/theory.md §8.8-8.9; ~45 s more): "
                        "e_threshold_kr, e_low_critical and its index, the energies at index 1e-2 and 1e-3")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _run_landscape(args) -> int:
    from .kac_rice import kac_rice_loss, landscape

    kac_rice_loss(args.loss)
    if args.alpha <= 0:
        raise InputError(f"alpha must be > 0, got {args.alpha:g}")
    if args.energy is not None and args.energy <= 0:
        raise InputError(f"energy must be > 0, got {args.energy:g}")
    if args.beta_limit <= 0:
        raise InputError(f"--beta-limit must be > 0, got {args.beta_limit:g}")
    if not abs(args.overlap) < 1:
        raise InputError(f"--overlap must satisfy |q| < 1, got {args.overlap:g}")
    if args.critical and (args.overlap != 0 or args.restricted):
        raise InputError("--critical is computed at q = 0 only (docs/theory.md §8.8); drop --overlap or --critical")
    if sys.stderr.isatty():   # progress for a person; a failure must stay a single line on stderr
        print(f"landscape alpha={args.alpha:g} q={args.overlap:g}: solving beta = 0, then the window ends ...",
              file=sys.stderr)
    record = landscape(args.alpha, energy=args.energy, loss=args.loss, beta_limit=args.beta_limit,
                       overlap=args.overlap, restricted=args.restricted).to_dict()
    if args.critical:
        from .kac_rice import critical_landscape

        crit = critical_landscape(args.alpha, loss=args.loss)
        crit.pop("curve", None)
        record["critical"] = crit
        record["e_threshold_kr"] = crit.get("e_threshold_kr")
        record["e_low_critical"] = crit.get("e_low_critical")
        record["converged"] = bool(record["converged"] and crit.get("converged"))
    if args.json:
        print(json.dumps(json_ready(record)))
    else:
        _print_record(record, ["alpha", "loss", "overlap", "e_low", "e_typical", "e_high", "e_marginal", "sigma_low",
                               "sigma_typical", "sigma_high", "energy", "sigma", "beta", "dsigma_doverlap", "tau",
                               "branch", "mu",
                               "bulk_edge", "isolated_eigenvalue", "overlap2", "bbp_residual", *_STATUS_KEYS])
        print(f"{'law':<20} " + ", ".join(f"{k} {v:.6g}" for k, v in record["law"].items()))
        print(f"{'residuals':<20} " + ", ".join(f"{k} {_format_residual(v)}" for k, v in record["residuals"].items()
                                                if v is not None))
        if "critical" in record:
            c = record["critical"]
            levels = ", ".join(f"e(index {lv['index']:g}) {lv['energy']}" for lv in c.get("index_levels", []))
            print(f"{'critical points':<20} e_threshold_kr {c.get('e_threshold_kr')}, e_low_critical "
                  f"{c.get('e_low_critical')} (index {c.get('index_at_e_low_critical')}), {levels}; {c.get('message')}")
    return 0


# ---------------------------------------------------------------------------- success (§7)
def _add_finite_n_options(p, n_required: bool) -> None:
    """--n, --t-max, --table, --start-only of the finite-N success law (theory.success.SuccessConfig)."""
    from .success import SuccessConfig

    d = SuccessConfig()
    p.add_argument("--n", type=integer_arg("--n"), required=n_required, metavar="N",
                   help="dimension N >= 2" + ("" if n_required else
                                              ": the finite-N critical alpha of docs/theory.md 7.8 (P_success = 1/2) "
                                              "instead of the N = infinity threshold-state value"))
    p.add_argument("--t-max", type=number_arg, default=d.t_max, metavar="T",
                   help=f"horizon T of the escape decision (default {d.t_max:g}; the q0_c table must hold it)")
    p.add_argument("--table", default=d.table, metavar="PATH", help="q0_c table (default: the repository's)")
    p.add_argument("--samples", type=integer_arg("--samples"), default=d.samples, metavar="S",
                   help=f"DMFT samples S of the q0_c entries to use (default {d.samples}; "
                        f"results/finite_n_theory/q0c_table.json holds S = 2000 at alpha = 5-7)")
    p.add_argument("--start-only", action="store_true",
                   help="the start overlap alone, without the finite-N source r of eq. 7.11")


def _success_config(args):
    from .success import SuccessConfig

    if args.n is not None and args.n < 2:
        raise InputError(f"N must be an integer >= 2, got {args.n}")
    if args.t_max <= 0:
        raise InputError(f"t_max must be positive, got {args.t_max:g}")
    return SuccessConfig(t_max=args.t_max, table=args.table, with_source=not args.start_only, samples=args.samples)


def _add_success(subparsers) -> None:
    p = subparsers.add_parser(
        "success", help="finite-N success probability of gradient flow from a random start (DMFT, §7)",
        description="P_success(alpha, N; T) of docs/theory.md eq. 7.13: the exact law of the start overlap at "
                    "dimension N (widened by the finite-N source, eq. 7.11) against the critical start "
                    "q0_c(alpha; T) of the nonlinear DMFT, read from the cached q0_c table.")
    p.add_argument("--alpha", type=number_arg, required=True, metavar="A", help="alpha = M/N > 0")
    _add_finite_n_options(p, n_required=True)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _run_success(args) -> int:
    from dataclasses import asdict

    from .success import success_probability

    if args.alpha <= 0:
        raise InputError(f"alpha must be > 0, got {args.alpha:g}")
    pred = success_probability(args.alpha, args.n, _success_config(args))
    record = asdict(pred)
    record["escape_times"] = list(pred.escape_times)
    if args.json:
        print(json.dumps(json_ready(record)))
    else:
        _print_record(record, ["alpha", "n", "t_max", "success_probability", "uncertainty", "low", "high",
                               "q0_critical", "q0_lower", "q0_upper", "ratio", "converged", "message"])
        print(f"{'escape_times':<20} " + ", ".join(f"{t:.3g}" for t in pred.escape_times))
    return 0


def _run_alpha_c_finite_n(args) -> int:
    from .success import alpha_c

    record = alpha_c(args.n, _success_config(args))
    if args.json:
        print(json.dumps(json_ready(record)))
    else:
        _print_record(record, ["alpha_c", "uncertainty", "lower", "upper", "n", "t_max", "converged", "message"])
    return 0


# ---------------------------------------------------------------------------- wiring
SUBCOMMANDS: list[Subcommand] = [
    ("spectrum", _add_spectrum, _run_spectrum),
    ("threshold", _add_threshold, _run_threshold),
    ("alpha-c", _add_alpha_c, _run_alpha_c),
    ("curve", _add_curve, _run_curve),
    ("plot", _add_plot, _run_plot),
    ("dmft", _add_dmft, _run_dmft),
    ("spectral-init", _add_spectral_init, _run_spectral_init),
    ("landscape", _add_landscape, _run_landscape),
    ("success", _add_success, _run_success),
]


def build_parser() -> OneLineArgumentParser:
    return subcommand_parser("python -m theory", "Theory of gradient flow in phase retrieval (docs/theory.md).",
                             SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; returns the exit status."""
    return dispatch(build_parser(), SUBCOMMANDS, argv)
