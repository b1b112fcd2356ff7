"""Figures of the theory package (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .errors import InputError  # noqa: E402

__all__ = ["plot_spectral_density"]


def plot_spectral_density(path: str | os.PathLike, x: np.ndarray, density: np.ndarray, *, bulk_edge: float,
                          isolated_eigenvalue: float | None, eigenvalues: np.ndarray | None = None,
                          eigenvalues_complete: bool = False, title: str = "") -> None:
    """Predicted bulk density (docs/theory.md eq. 2.10) with the edge and the isolated
    eigenvalue marked, over a histogram of the state's eigenvalues (``density=True``) when
    they are the full spectrum, or a rug of the lowest eigenvalues otherwise."""
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=120)
    if eigenvalues is not None and eigenvalues.size and eigenvalues_complete:
        bins = max(20, min(120, int(np.sqrt(eigenvalues.size) * 2)))
        ax.hist(eigenvalues, bins=bins, density=True, color="0.8", edgecolor="0.6",
                label=f"state eigenvalues (N = {eigenvalues.size})")
    ax.plot(x, density, color="C0", lw=1.8, label="predicted bulk density")
    top = max(float(np.max(density)), 1e-12)
    if eigenvalues is not None and eigenvalues.size and not eigenvalues_complete:
        ax.plot(eigenvalues, np.full(eigenvalues.size, -0.04 * top), "|", color="k", ms=14, mew=1.2,
                label=f"lowest {eigenvalues.size} state eigenvalues")
    ax.axvline(bulk_edge, color="C1", ls="--", lw=1.3, label=f"predicted edge {bulk_edge:.4g}")
    if isolated_eigenvalue is not None:
        ax.axvline(isolated_eigenvalue, color="C3", ls="-.", lw=1.3,
                   label=f"predicted isolated eigenvalue {isolated_eigenvalue:.4g}")
    ax.set_xlabel("eigenvalue $\\lambda$ of the tangent Hessian")
    ax.set_ylabel("density")
    ax.set_ylim(bottom=-0.08 * top)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    try:
        fig.savefig(path, format="png")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot write {str(path)!r}: {exc}") from None
    finally:
        plt.close(fig)
