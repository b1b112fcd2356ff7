"""Figures of the theory package (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .errors import InputError  # noqa: E402

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["plot_spectral_density", "plot_threshold_curve", "format_level", "zoom_window"]


def _save_png(fig, path) -> None:
    """Save ``fig`` as PNG and close it; an unwritable path is an InputError."""
    try:
        fig.savefig(path, format="png")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot write {str(path)!r}: {exc}") from None
    finally:
        plt.close(fig)


#: marked values closer than this fraction of the plotted range get a zoom panel
_ZOOM_BELOW_FRACTION = 0.03


def format_level(value: float, scale: float) -> str:
    """A marked eigenvalue for a legend: 4 significant digits, and "0" for a value below
    1e-9 of the plot's scale (a root-finder's 5e-14 for an edge at 0)."""
    return "0" if abs(value) <= 1e-9 * scale else f"{value:.4g}"


def zoom_window(bulk_edge: float, isolated_eigenvalue: float | None, span: float) -> tuple[float, float] | None:
    """The x-range of the zoom panel around the edge and the isolated eigenvalue when they
    are closer than 3 percent of ``span`` (their lines would overlap), else None."""
    if isolated_eigenvalue is None:
        return None
    gap = abs(bulk_edge - isolated_eigenvalue)
    if gap >= _ZOOM_BELOW_FRACTION * span:
        return None
    gap = max(gap, 1e-3 * span)
    low, high = min(bulk_edge, isolated_eigenvalue), max(bulk_edge, isolated_eigenvalue)
    return low - gap, high + 2 * gap


def plot_spectral_density(path: str | os.PathLike, x: np.ndarray, density: np.ndarray, *, bulk_edge: float,
                          isolated_eigenvalue: float | None, eigenvalues: np.ndarray | None = None,
                          eigenvalues_complete: bool = False, title: str = "") -> None:
    """Predicted bulk density (docs/theory.md eq. 2.10) with the edge and the isolated
    eigenvalue marked, over a histogram of the state's eigenvalues (``density=True``) when
    they are the full spectrum, or a rug of the lowest eigenvalues otherwise. When the edge
    and the isolated eigenvalue are too close to tell apart (:func:`zoom_window`), a second
    panel shows them enlarged; values below 1e-9 of the range are labelled 0."""
    span = float(np.max(x) - np.min(x)) or 1.0
    scale = max(span, float(np.max(np.abs(x))))
    window = zoom_window(bulk_edge, isolated_eigenvalue, span)
    if window is None:
        fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=120)
        panels = [ax]
    else:
        fig, (ax, zoom) = plt.subplots(1, 2, figsize=(10.0, 4.2), dpi=120, gridspec_kw={"width_ratios": [2.6, 1]})
        panels = [ax, zoom]
    if eigenvalues is not None and eigenvalues.size and eigenvalues_complete:
        bins = max(20, min(120, int(np.sqrt(eigenvalues.size) * 2)))
        ax.hist(eigenvalues, bins=bins, density=True, color="0.8", edgecolor="0.6",
                label=f"state eigenvalues (N = {eigenvalues.size})")
    top = max(float(np.max(density)), 1e-12)
    for panel in panels:
        panel.plot(x, density, color="C0", lw=1.8, label="predicted bulk density")
        if eigenvalues is not None and eigenvalues.size and not eigenvalues_complete:
            panel.plot(eigenvalues, np.full(eigenvalues.size, -0.04 * top), "|", color="k", ms=14, mew=1.2,
                       label=f"lowest {eigenvalues.size} state eigenvalues")
        panel.axvline(bulk_edge, color="C1", ls="--", lw=1.3,
                      label=f"predicted edge {format_level(bulk_edge, scale)}")
        if isolated_eigenvalue is not None:
            panel.axvline(isolated_eigenvalue, color="C3", ls="-.", lw=1.3,
                          label=f"predicted isolated eigenvalue {format_level(isolated_eigenvalue, scale)}")
        panel.set_xlabel("eigenvalue $\\lambda$ of the tangent Hessian")
    ax.set_ylabel("density")
    ax.set_ylim(bottom=-0.08 * top)
    if window is not None:
        ax.axvspan(*window, color="0.85", zorder=0, label="enlarged on the right")
        inside = (x >= window[0]) & (x <= window[1])
        local_top = max(float(np.max(density[inside])) if inside.any() else 0.0, 1e-3 * top)
        zoom.set_xlim(*window)
        zoom.set_ylim(-0.08 * local_top, 1.15 * local_top)
        zoom.set_title("near the edge", fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    _save_png(fig, path)


def plot_threshold_curve(path: str | os.PathLike, curve: "xr.Dataset", sweep: "xr.Dataset | None" = None) -> None:
    """Three panels against alpha from a theory curve (docs/theory.md §3): the threshold
    energy (with the mean energies of trapped starts of a sweep, per N, when given), mu of
    both closures, and the isolated eigenvalue and its overlap^2; alpha_c marked (unless
    its search failed, NaN).

    Rows of failed solves (``converged`` = 0) are skipped: their values are not drawn, so
    the lines have gaps there, and each such alpha is marked by a red x at the bottom of
    every panel.
    """
    alpha = curve["alpha"].values
    alpha_c = float(curve.attrs["alpha_c"])
    ok = np.asarray(curve["converged"].values, bool)

    def column(name: str) -> np.ndarray:
        return np.where(ok, np.asarray(curve[name].values, float), np.nan)

    fig, ax = plt.subplots(1, 3, figsize=(14.0, 4.2), dpi=120)
    ax[0].plot(alpha, column("energy"), "k-", lw=1.8, label="threshold energy $e_{th}$ (1RSB)")
    if sweep is not None:
        trapped = sweep["status"] == "trapped"
        e_tr = sweep["final_energy"].where(trapped).mean("start")
        count = trapped.sum("start")
        for n in sweep["n"].values:
            sel = count.sel(n=n) > 0
            ax[0].plot(sweep["alpha"].values[sel.values], e_tr.sel(n=n).values[sel.values], "o", ms=4,
                       label=f"trapped gradient flow, N = {int(n)}")
    ax[0].set_ylabel("energy per dimension $e = L/N$")
    ax[1].plot(alpha, column("mu_linear"), "C0-", label="$\\mu$, closure marginal")
    ax[1].plot(alpha, column("mu_stationary"), "C1--", label="$\\mu$, closure stationary")
    ax[1].set_ylabel("Lagrange multiplier $\\mu$")
    iso = column("isolated_eigenvalue") - column("bulk_edge")
    ax[2].plot(alpha, iso, "C3-", label="$\\lambda_{iso} - \\lambda_{edge}$")
    ax[2].set_ylabel("spike below the bulk edge")
    ax2 = ax[2].twinx()
    ax2.plot(alpha, column("overlap2"), "C2--", label="overlap$^2$ with the signal")
    ax2.set_ylabel("squared overlap of the spike with $e$")
    ax2.set_ylim(0, 1)
    for a in ax:
        if math.isfinite(alpha_c):
            a.axvline(alpha_c, color="0.5", ls=":", lw=1.2, label=f"$\\alpha_c$ = {alpha_c:.4f}")
        if not ok.all():
            a.plot(alpha[~ok], np.full(int((~ok).sum()), 0.03), "x", color="red", ms=7, mew=1.5, clip_on=False,
                   transform=a.get_xaxis_transform(), label=f"solver failed ({int((~ok).sum())} alpha)")
        a.set_xlabel("$\\alpha = M/N$")
    ax[0].legend(fontsize=8)
    ax[1].legend(fontsize=8)
    handles, labels = ax[2].get_legend_handles_labels()   # one legend for both axes of the panel
    handles2, labels2 = ax2.get_legend_handles_labels()
    ax[2].legend(handles + handles2, labels + labels2, loc="center left", fontsize=8)
    fig.suptitle(f"threshold states (closure {curve.attrs.get('closure')})", fontsize=10)
    fig.tight_layout()
    _save_png(fig, path)
