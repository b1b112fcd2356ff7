"""Threshold quantities over a grid of alpha as a labelled xarray Dataset (docs/theory.md §3).

One variable per quantity on the dimension ``alpha``; ``isolated_eigenvalue`` is NaN where
there is none (below alpha_c, ``overlap2`` is then 0). Attributes: the format tag, closure,
alpha_c with its residual, the quadrature and the package version. Files are written with
:func:`theory.io.write_netcdf` (atomic). A curve of 69 alphas takes about 20 s, so it is
written once at the end rather than chunk by chunk.
"""
from __future__ import annotations

import os
from dataclasses import asdict

import numpy as np

from .errors import InputError
from .io import load_netcdf, package_version
from .threshold import DEFAULT_CLOSURE, Quadrature, critical_alpha, solve_threshold

__all__ = ["CURVE_FORMAT", "CURVE_VARIABLES", "threshold_curve", "read_curve"]

CURVE_FORMAT = "phaseflow-theory-curve-1"
CURVE_VARIABLES = ("energy", "complexity", "mu", "mu_stationary", "mu_linear", "bulk_edge",
                   "isolated_eigenvalue", "overlap2", "bbp_residual", "Y", "chi",
                   "residual_chi", "residual_replicon", "converged")


def threshold_curve(alphas, closure: str = DEFAULT_CLOSURE, quad: Quadrature = Quadrature(),
                    progress: bool = False):
    """Solve the threshold state at every alpha (warm-started along the grid) and alpha_c."""
    import xarray as xr
    from tqdm import tqdm

    alphas = np.asarray(sorted(alphas), dtype=float)
    columns = {k: np.empty(alphas.size) for k in CURVE_VARIABLES}
    guess = None
    for i, a in enumerate(tqdm(alphas, desc="threshold curve", unit="alpha", disable=not progress)):
        st = solve_threshold(a, closure=closure, quad=quad, guess=guess)
        guess = (st.chi, st.Y)
        for k in CURVE_VARIABLES:
            if k == "residual_chi":
                columns[k][i] = st.residuals["chi"]
            elif k == "residual_replicon":
                columns[k][i] = st.residuals["replicon"]
            elif k == "isolated_eigenvalue":
                columns[k][i] = np.nan if st.isolated_eigenvalue is None else st.isolated_eigenvalue
            else:
                columns[k][i] = getattr(st, k)
    crit = critical_alpha(closure=closure, quad=quad)
    ds = xr.Dataset({k: ("alpha", v.astype(bool) if k == "converged" else v) for k, v in columns.items()},
                    coords={"alpha": alphas})
    ds.attrs.update(format=CURVE_FORMAT, closure=closure, alpha_c=crit.alpha_c,
                    alpha_c_residual=crit.residual, energy_at_alpha_c=crit.energy_at_alpha_c,
                    quadrature=str(asdict(quad)), version=package_version(),
                    note="isolated_eigenvalue is NaN where the threshold Hessian has no spike")
    return ds


def read_curve(path: str | os.PathLike):
    """A file written by ``python -m theory curve``, checked for format and variables."""
    ds = load_netcdf(path, kind="theory curve file")
    if ds.attrs.get("format") != CURVE_FORMAT:
        raise InputError(f"{str(path)!r} is not a theory curve file (format {ds.attrs.get('format')!r})")
    missing = [k for k in CURVE_VARIABLES if k not in ds]
    if missing or "alpha" not in ds.dims:
        raise InputError(f"theory curve file {str(path)!r} lacks {missing or ['alpha']}")
    return ds
