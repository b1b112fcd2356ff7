"""Figure of a sweep: success probability against alpha for several N, with alpha_c marked.

``python -m simulation plot --sweep sweep.nc --out success.png [--theory theory.nc]``.
The sweep file is the one written by ``python -m simulation sweep`` (finished starts only
are counted, so a sweep in progress can be plotted). The optional theory file is any
netCDF dataset with ``alpha_c`` as an attribute or a scalar variable (written by the
theory side); it is drawn as a vertical line.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot state, no
global backend switch), so the same function serves files and notebooks.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from theory.errors import InputError
from theory.io import load_netcdf, output_path
from theory.statistics import wilson_interval

from .sweep import decided_mask, read_sweep

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    import argparse

    import matplotlib.figure
    import xarray as xr

__all__ = ["SuccessTable", "success_table", "read_alpha_c", "success_figure",
           "save_figure", "figure_format", "add_plot_parser", "cmd_plot"]

#: Half-width of the error bars in standard deviations (z = 1: a 68% interval).
Z_ERRORBAR = 1.0


@dataclass(frozen=True)
class SuccessTable:
    """Successes among the finished starts of each (alpha, N) cell.

    Attributes
    ----------
    alpha : ndarray (A,)
    n : ndarray (K,)
    successes : ndarray (A, K) of int
        Finished starts that reached the signal.
    finished : ndarray (A, K) of int
        Finished starts: ended by a stop rule (not pending, not an error).
    starts : int
        Starts per cell in the sweep (finished or not).
    """

    alpha: np.ndarray
    n: np.ndarray
    successes: np.ndarray
    finished: np.ndarray
    starts: int

    @property
    def fraction(self) -> np.ndarray:
        """Success fraction per cell, NaN where no start is finished."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.finished > 0, self.successes / np.maximum(self.finished, 1), np.nan)

    @property
    def complete(self) -> bool:
        return bool(np.all(self.finished == self.starts))


def success_table(ds: xr.Dataset) -> SuccessTable:
    """Count successes per (alpha, N) among the finished starts of a sweep dataset
    (errors, like pending starts, are not counted: they say nothing about success)."""
    done = decided_mask(ds)
    wins = np.asarray(ds["success"].values, bool) & done
    return SuccessTable(alpha=np.asarray(ds["alpha"].values, float), n=np.asarray(ds["n"].values, int),
                        successes=wins.sum(axis=2), finished=done.sum(axis=2), starts=int(ds.sizes["start"]))


def read_alpha_c(path: str | os.PathLike) -> float:
    """alpha_c from a theory netCDF file: attribute ``alpha_c``, else a scalar variable.

    Raises
    ------
    InputError
        Missing or unreadable file, no alpha_c, or alpha_c not a finite positive scalar.
    """
    ds = load_netcdf(path, kind="theory file")
    if "alpha_c" in ds.attrs:
        value = ds.attrs["alpha_c"]
    elif "alpha_c" in ds.variables:
        value = ds["alpha_c"].values
    else:
        raise InputError(f"theory file {str(path)!r} has no alpha_c (attribute or variable)")
    value = np.asarray(value)
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise InputError(f"theory file {str(path)!r}: alpha_c must be one number, got shape {value.shape}")
    alpha_c = float(value.reshape(()))
    if not (math.isfinite(alpha_c) and alpha_c > 0):
        raise InputError(f"theory file {str(path)!r}: alpha_c must be finite and > 0, got {alpha_c}")
    return alpha_c


def success_figure(table: SuccessTable, alpha_c: float | None = None, title: str = "") -> matplotlib.figure.Figure:
    """Success probability against alpha, one curve per N, Wilson 68% error bars.

    Parameters
    ----------
    table : SuccessTable
    alpha_c : float, optional
        Theoretical threshold, drawn as a vertical dashed line.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=120)
    ax = fig.add_subplot()
    lo, hi = wilson_interval(table.successes, table.finished)
    frac = table.fraction
    cmap = colormaps["viridis"]
    k = len(table.n)
    step = float(np.min(np.diff(table.alpha))) if len(table.alpha) > 1 else 1.0
    for j, n in enumerate(table.n):
        color = cmap(0.8 * j / max(k - 1, 1))
        ok = table.finished[:, j] > 0
        if not ok.any():
            continue
        dodge = (j - (k - 1) / 2) * 0.06 * step  # keep the error bars of different N apart
        yerr = np.vstack([frac[ok, j] - lo[ok, j], hi[ok, j] - frac[ok, j]])
        ax.errorbar(table.alpha[ok] + dodge, frac[ok, j], yerr=yerr, color=color, marker="o", ms=4, lw=1.4,
                    capsize=2.5, label=f"N = {n}")
    if alpha_c is not None:
        ax.axvline(alpha_c, color="C3", ls="--", lw=1.3, label=rf"$\alpha_c$ = {alpha_c:.3g} (theory)")
    ax.set_xlabel(r"$\alpha = M/N$")
    ax.set_ylabel(r"success probability  P($|q| \to 1$)")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    done, total = int(table.finished.sum()), table.finished.size * table.starts
    note = f"{table.starts} starts per point" if table.complete else f"{done}/{total} starts finished"
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: not labels[i].startswith("N ="))  # N curves first
    ax.legend([handles[i] for i in order], [labels[i] for i in order], title=f"{note}; bars: 68% Wilson",
              fontsize=8, title_fontsize=8, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def figure_format(path: str | os.PathLike) -> str:
    """The format of a figure file from its suffix (png, pdf, svg; none: png); InputError otherwise."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "pdf", "svg"):
        raise InputError(f"figure format must be png, pdf or svg, got {str(path)!r}")
    return fmt


def save_figure(fig: matplotlib.figure.Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` (format from the suffix: png, pdf, svg); InputError if it cannot."""
    path = Path(path)
    fmt = figure_format(path)
    try:
        fig.savefig(path, format=fmt)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot write {str(path)!r}: {exc}") from None
    return path


def add_plot_parser(sub: argparse._SubParsersAction) -> None:
    """``python -m simulation plot``: register the subparser."""
    p = sub.add_parser("plot", help="figure of success probability against alpha for each N of a sweep",
                       description="Success probability against alpha, one curve per N, from a sweep file "
                                   "(finished starts only), with 68% Wilson error bars and, given a theory "
                                   "file, alpha_c as a vertical line.")
    p.add_argument("--sweep", default="sweep.nc", help="sweep file (default sweep.nc)")
    p.add_argument("--out", default="success.png", help="figure file, .png/.pdf/.svg (default success.png)")
    p.add_argument("--theory", default=None, metavar="FILE.nc",
                   help="netCDF file with alpha_c (attribute or scalar variable) to mark")
    p.add_argument("--title", default=None, help="figure title (default: from the sweep's parameters)")
    p.add_argument("--json", action="store_true", help="print JSON only")


def cmd_plot(args: argparse.Namespace) -> int:
    """Run ``python -m simulation plot``."""
    figure_format(args.out)
    output_path(args.out, "--out")  # before reading anything
    ds = read_sweep(args.sweep)
    table = success_table(ds)
    if not table.finished.any():
        raise InputError(f"sweep file {str(args.sweep)!r} has no finished start yet: nothing to plot")
    alpha_c = read_alpha_c(args.theory) if args.theory else None
    title = args.title
    if title is None:
        a = ds.attrs
        how = "gradient flow" if a.get("method") == "flow" else f"projected GD (lr {a.get('lr')})"
        seeds = "explicit seeds" if a.get("seed_source") == "explicit" else f"seed {a.get('seed')}"
        title = f"{how}, {a.get('dtype')}, {seeds}, t_max {float(a.get('t_max', float('nan'))):g}"
    save_figure(success_figure(table, alpha_c, title), args.out)
    frac = [[None if not np.isfinite(v) else float(v) for v in row] for row in table.fraction]
    if args.json:
        print(json.dumps(dict(out=str(args.out), sweep=str(args.sweep), alpha=table.alpha.tolist(),
                              n=table.n.tolist(), success_fraction=frac, finished=table.finished.tolist(),
                              starts=table.starts, alpha_c=alpha_c)))
        return 0
    print(f"figure written to {args.out}: N = {', '.join(map(str, table.n))}; {len(table.alpha)} alpha values; "
          f"{int(table.finished.sum())}/{table.finished.size * table.starts} starts finished"
          + (f"; alpha_c = {alpha_c:.4g}" if alpha_c is not None else ""))
    return 0
