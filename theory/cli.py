"""Command line of the theory package: ``python -m theory <subcommand> ...``.

Each subcommand is a pair ``_add_<name>(subparsers)`` / ``_run_<name>(args) -> int``
registered in :data:`SUBCOMMANDS`; errors are :class:`theory.errors.InputError` or
:class:`theory.errors.ConvergenceError`, which :func:`theory.errors.run_cli` turns into
one-line messages (exit 2 / 3), never a traceback.

Subcommands: ``spectrum`` (docs/theory.md §2). Planned: threshold, alpha-c, dmft, curve, plot.
"""
from __future__ import annotations

import json
import math
import sys
from typing import Callable, Sequence

import numpy as np

from .errors import InputError, OneLineArgumentParser
from .measure import read_measure_file

__all__ = ["build_parser", "main", "SUBCOMMANDS"]


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise InputError(f"not a finite number: {text!r}")
    return value


def _json_ready(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


def _format_value(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


# ---------------------------------------------------------------------------- spectrum
def _add_spectrum(subparsers) -> None:
    p = subparsers.add_parser(
        "spectrum",
        help="bulk edge, isolated eigenvalue and overlap of the Hessian for a measure file",
        description="Random-matrix core (docs/theory.md §2) for the law of (yhat, y, s) in a measure file.",
    )
    p.add_argument("--measure", required=True, metavar="PATH", help="measure file (.npz, see theory.measure)")
    p.add_argument("--alpha", type=_finite_float, metavar="A", help="override alpha = M/N of the file")
    p.add_argument("--mu", type=_finite_float, metavar="MU",
                   help="override mu (default: the file's, else eq. 1.3 from the law)")
    p.add_argument("--loss", metavar="NAME", help="override the loss (registry name, default quartic)")
    p.add_argument("--density", metavar="FILE.png", help="write the predicted density (and eigenvalues) as PNG")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_run_spectrum)


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
    x = np.unique(np.concatenate([x, [summary.bulk_edge]]))
    return x, bulk_density(x, measure, strict=False)


def _run_spectrum(args) -> int:
    from .spectrum import spectrum_summary

    if args.density:
        from pathlib import Path

        if not Path(args.density).resolve().parent.is_dir():
            raise InputError(f"cannot write {args.density!r}: its folder does not exist")
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
        print(json.dumps(_json_ready(record)))
    else:
        keys = ["alpha", "mu", "bulk_edge", "isolated_eigenvalue", "overlap2", "rho_edge", "rho_iso",
                "converged", "hard_edge", "set_by_lowest_atom"]
        for key in keys:
            print(f"{key:<20} {_format_value(record[key])}")
        res = record["residuals"]
        print(f"{'residuals':<20} edge {res['edge']:.2e}, isolated {res['isolated']:.2e}, bbp {res['bbp']:.4g}")
        if args.density:
            print(f"{'density plot':<20} {args.density}")
    return 0


# ---------------------------------------------------------------------------- wiring
SUBCOMMANDS: list[Callable] = [_add_spectrum]


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="python -m theory",
                                   description="Theory of gradient flow in phase retrieval (docs/theory.md).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.handler(args)
