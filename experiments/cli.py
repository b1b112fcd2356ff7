"""Command line of the experiments: ``python -m experiments <subcommand> ...``.

Every subcommand has --help, defaults that give a real result in about a minute, and
--json for scripts (JSON on stdout, nothing else; progress bars only without --json; the
JSON carries ``provenance``, theory.io.provenance). Bad input gives one line on stderr and
exit status 2 (theory.errors.run_cli).

Subcommands: ``track`` (theory vs Lanczos along one flow, experiments.tracking);
``spectral-success`` (success from spectral vs random starts, from stored files,
experiments.spectral_success).
"""
from __future__ import annotations

import json
from typing import Sequence

from simulation.data import check_memory, make_problem, random_starts, resolve_dtype
from simulation.flow import Integrator
from theory.errors import InputError, OneLineArgumentParser, Subcommand, dispatch, run_cli, subcommand_parser
from theory.escape import check_times
from theory.io import integer_arg, number_arg, output_path, provenance

from .tracking import DEFAULT_TIMES, plot_track, track

__all__ = ["SUBCOMMANDS", "build_parser", "main", "entry", "format_table"]


# ---------------------------------------------------------------------------- track
def _float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise InputError(f"times must be numbers, got {text!r}") from None


def _add_track(sub) -> None:
    p = sub.add_parser("track", help="Hessian along one flow: empirical-law theory vs Lanczos at recorded times",
                       description="Run gradient flow from one random start and, at each recorded time, "
                                   "compare the random-matrix prediction from the state's empirical law of "
                                   "(yhat, y, s) (bulk edge, isolated eigenvalue, overlap^2; docs/theory.md "
                                   "§2, §4) with the lowest Lanczos eigenpairs of the tangent Hessian.")
    p.add_argument("--n", type=integer_arg("N"), default=512, help="dimension N (default 512)")
    p.add_argument("--alpha", type=number_arg, default=5.0, help="ratio M/N (default 5)")
    p.add_argument("--seed", type=integer_arg("seed"), default=0, help="seed of data and start (default 0)")
    p.add_argument("--times", nargs="+", default=None, metavar="T",
                   help="recording times, e.g. '0 0.1 1 10' (default: %s)" % " ".join(f"{t:g}" for t in DEFAULT_TIMES))
    p.add_argument("--k", type=integer_arg("k"), default=4, help="lowest Lanczos eigenpairs per time (default 4)")
    p.add_argument("--no-lanczos", action="store_true", help="theory only (no Lanczos)")
    p.add_argument("--dtype", default="float64", help="flow precision: float64 (default) or float32")
    p.add_argument("--rtol", type=number_arg, default=None, help="flow tolerance (default 1e-6; 1e-4 in float32)")
    p.add_argument("--loss", default="quartic", help="loss name (default quartic)")
    p.add_argument("--plot", default=None, help="write a PNG of lambda_iso(t), theory vs Lanczos")
    p.add_argument("--json", action="store_true", help="print JSON only")


def _fmt(x, spec=".4g", none="-"):
    return none if x is None else format(x, spec)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[str] = ()) -> list[str]:
    """Lines of a text table: each column as wide as its widest cell (header included),
    right-aligned, except the columns named in ``left``; two spaces between columns."""
    widths = [max([len(h)] + [len(r[j]) for r in rows]) for j, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if h in left else c.rjust(w)
                         for c, w, h in zip(cells, widths, header)).rstrip()

    return [line(header)] + [line(r) for r in rows]


def _run_track(args) -> int:
    """``python -m experiments track``: see :func:`_add_track`."""
    times = check_times(DEFAULT_TIMES if args.times is None
                        else [t for text in args.times for t in _float_list(text)])
    if args.plot is not None and not str(args.plot).lower().endswith(".png"):
        raise InputError(f"--plot must name a .png file, got {args.plot!r}")
    if args.plot is not None:
        args.plot = str(output_path(args.plot, "--plot"))  # before computing
    dtype = resolve_dtype(args.dtype)
    check_memory(args.n, args.alpha, 1, dtype)
    problem = make_problem(args.n, args.alpha, args.seed, dtype)
    if not args.no_lanczos and not (1 <= args.k < problem.n - 1):
        raise InputError(f"k must be between 1 and N-2 = {problem.n - 2}, got {args.k}")
    w0 = random_starts(problem.n, 1, args.seed, dtype)[:, 0]
    integ = Integrator(rtol=args.rtol)
    bar = None
    if not args.json:
        from tqdm import tqdm
        bar = tqdm(total=times.size, desc="track: times", unit="t", leave=False, delay=1.0)
    try:
        tr = track(problem, w0, times, k=args.k, loss=args.loss, integrator=integ,
                   lanczos=not args.no_lanczos, seed=args.seed,
                   progress=(lambda i: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    if args.plot:
        plot_track(tr, args.plot)
    if args.json:
        out = tr.to_dict()
        out["plot"] = args.plot
        out["provenance"] = provenance(command="python -m experiments track", n=args.n, alpha=args.alpha,
                                       seed=args.seed, times=times.tolist(), k=args.k, lanczos=not args.no_lanczos,
                                       dtype=dtype.name, rtol=integ.tolerances(dtype)[0], loss=args.loss)
        print(json.dumps(out))
        return 0
    print(f"Hessian along gradient flow: N={tr.n} alpha={tr.alpha:g} seed={tr.seed} [{tr.dtype}]; theory = "
          f"random-matrix core on the state's empirical law, full / extreme atoms split off (docs/theory.md §4)")
    header = ("t", "energy", "q", "mu", "edge_th", "iso_th", "ov2_th", "edge_sp", "iso_sp", "ov2_sp",
              "lanczos_lowest", "lanczos_overlap2")
    rows = [(f"{p.t:.3g}", f"{p.energy:.4g}", f"{p.q:.3f}", f"{p.mu:.4g}", f"{p.edge_theory:.4g}",
             _fmt(p.iso_theory), _fmt(p.overlap2_theory, ".3f"), _fmt(p.edge_theory_split), _fmt(p.iso_theory_split),
             _fmt(p.overlap2_theory_split, ".3f"),
             " ".join(f"{x:.3g}" for x in p.lanczos_lowest[:3]) or "-",
             " ".join(f"{x:.2f}" for x in p.lanczos_overlap2[:3]) or "-") for p in tr.points]
    print("\n".join(format_table(header, rows, left=("lanczos_lowest", "lanczos_overlap2"))))
    void = next((p.theory_invalid_reason for p in tr.points if p.theory_invalid_reason), None)
    if void:
        print(f"-: {void}")
    print(f"growth exponent int max(0,-lambda_iso) dt up to t={tr.t_end:g}: {tr.growth_exponent:.3g} (split law), "
          f"{tr.growth_exponent_raw:.3g} (full law); measured log|q(t)/q(0)| = {tr.log_q_growth:.3g}; "
          f"wall {tr.wall_seconds:.1f} s" + (f"; plot {args.plot}" if args.plot else ""))
    return 0


# ---------------------------------------------------------------------------- spectral-success
def _add_spectral_success(sub) -> None:
    p = sub.add_parser("spectral-success", help="success from spectral vs random starts (stored files)",
                       description="Report, from stored files only, the success of gradient flow from spectral "
                                   "starts against random starts: P_success with Wilson intervals, the measured "
                                   "start overlap against the core's q0_spec, the finite-N prediction "
                                   "P(|q(0)| >= q0_c) and the N = infinity threshold alpha_spec of the DMFT "
                                   "(docs/theory.md §6.7). The files are made by benchmarks/spectral_success.py.")
    p.add_argument("--folder", default="results/spectral_success",
                   help="theory.json and the spectral sweeps (default results/spectral_success)")
    p.add_argument("--random-folder", default="results/finite_n_t100",
                   help="the random-start study's sweep_n{N}.nc (default results/finite_n_t100)")
    p.add_argument("--plot", default=None, help="write the figure to this PNG")
    p.add_argument("--json", action="store_true", help="print JSON only")


def _run_spectral_success(args) -> int:
    """``python -m experiments spectral-success``: see :func:`_add_spectral_success`."""
    from pathlib import Path

    from .spectral_success import format_report, report

    if not Path(args.folder).is_dir():
        raise InputError(f"--folder {args.folder!r} is not a folder")
    if args.plot is not None:
        if not str(args.plot).lower().endswith(".png"):
            raise InputError(f"--plot must name a .png file, got {args.plot!r}")
        args.plot = str(output_path(args.plot, "--plot"))
    res = report(args.folder, args.random_folder, fig_path=args.plot)
    if args.json:
        res["provenance"] = provenance(command="python -m experiments spectral-success", folder=args.folder,
                                       random_folder=args.random_folder)
        print(json.dumps(res, default=float))
        return 0
    print("\n".join(format_report(res)))
    return 0


# ---------------------------------------------------------------------------- wiring
#: Subcommands as (name, add_parser(subparsers), command(args) -> exit status). A new
#: experiment adds one entry here.
SUBCOMMANDS: list[Subcommand] = [
    ("track", _add_track, _run_track),
    ("spectral-success", _add_spectral_success, _run_spectral_success),
]


def build_parser() -> OneLineArgumentParser:
    return subcommand_parser("python -m experiments", "Theory-versus-simulation experiments for phase retrieval.", SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; returns the exit status."""
    return dispatch(build_parser(), SUBCOMMANDS, argv)


def entry(argv: Sequence[str] | None = None) -> int:
    """``main`` behind :func:`theory.errors.run_cli` (one-line errors, exit statuses)."""
    return run_cli(main, argv)
