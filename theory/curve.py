"""Threshold quantities over a grid of alpha as a labelled xarray Dataset (docs/theory.md §3).

One variable per quantity on the dimension ``alpha``; ``isolated_eigenvalue`` is NaN where
there is none (below alpha_c, ``overlap2`` is then 0). Status per alpha (the fields of
:class:`theory.threshold.ThresholdState`): ``converged``, ``iterations``, ``residual`` and
``message``. An alpha whose threshold state does not converge is kept as a row with
``converged`` = 0 and NaN values (``residual_chi``, ``residual_replicon``, ``iterations``
and ``residual`` are those of the root finder's last iterate, ``message`` says why) and
the curve goes on.

Attributes: the format tag, alpha_c with its residual and status (``alpha_c`` NaN when its
search failed), and the provenance of :func:`theory.io.provenance` (package version,
creation time, closure, loss, quadrature). Files are written with
:func:`theory.io.write_netcdf` (atomic). A curve of 69 alphas takes about 20 s, so it is
written once at the end rather than chunk by chunk.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Iterable

import numpy as np

from .errors import InputError
from .io import load_netcdf, provenance
from .loss import Loss
from .threshold import DEFAULT_CLOSURE, Quadrature, critical_alpha, solve_threshold, threshold_loss

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["CURVE_FORMAT", "CURVE_VARIABLES", "STATUS_VARIABLES", "threshold_curve", "read_curve"]

CURVE_FORMAT = "phaseflow-theory-curve-1"
#: variables every curve file has (files written before the status fields included)
CURVE_VARIABLES = ("energy", "complexity", "mu", "mu_stationary", "mu_linear", "bulk_edge",
                   "isolated_eigenvalue", "overlap2", "bbp_residual", "Y", "chi",
                   "residual_chi", "residual_replicon", "converged")
#: status variables added with the failed-row format (absent from older files)
STATUS_VARIABLES = ("iterations", "residual", "message")
#: ThresholdState attributes stored as they are (NaN on a failed row)
_STATE_VARIABLES = ("energy", "complexity", "mu", "mu_stationary", "mu_linear", "bulk_edge",
                    "isolated_eigenvalue", "overlap2", "bbp_residual", "Y", "chi")


def threshold_curve(alphas: Iterable[float], closure: str = DEFAULT_CLOSURE, quad: Quadrature = Quadrature(),
                    progress: bool = False, *, loss: Loss | str | None = None) -> "xr.Dataset":
    """Solve the threshold state at every alpha (warm-started along the grid from the last
    converged state) and alpha_c, all with ``strict=False``: a failed alpha becomes a row
    with ``converged`` = 0 and NaN values, a failed alpha_c a NaN attribute with
    ``alpha_c_converged`` = 0; neither stops the curve.

    Raises
    ------
    InputError
        An unknown closure or a loss the threshold states cannot use (before any solve).
    """
    import xarray as xr
    from tqdm import tqdm

    loss = threshold_loss(loss)
    alphas = np.asarray(sorted(alphas), dtype=float)
    n = alphas.size
    values = {k: np.full(n, np.nan) for k in (*_STATE_VARIABLES, "residual_chi", "residual_replicon", "residual")}
    converged = np.zeros(n, dtype=bool)
    iterations = np.zeros(n, dtype=np.int64)
    message = np.empty(n, dtype=object)
    guess = None
    for i, a in enumerate(tqdm(alphas, desc="threshold curve", unit="alpha", disable=not progress)):
        st = solve_threshold(a, closure=closure, quad=quad, guess=guess, loss=loss, strict=False)
        converged[i], iterations[i], message[i] = st.converged, st.iterations, st.message
        values["residual"][i] = st.residual
        values["residual_chi"][i] = st.residuals["chi"]
        values["residual_replicon"][i] = st.residuals["replicon"]
        if not st.converged:
            continue
        guess = (st.chi, st.Y)
        for k in _STATE_VARIABLES:
            v = getattr(st, k)
            values[k][i] = np.nan if v is None else v
    crit = critical_alpha(closure=closure, quad=quad, loss=loss, strict=False)
    data = {k: ("alpha", v) for k, v in values.items()}
    data.update(converged=("alpha", converged), iterations=("alpha", iterations),
                message=("alpha", message.astype(str)))
    ds = xr.Dataset(data, coords={"alpha": alphas})
    ds.attrs.update(format=CURVE_FORMAT, alpha_c=crit.alpha_c, alpha_c_residual=crit.residual,
                    energy_at_alpha_c=crit.energy_at_alpha_c, alpha_c_converged=int(crit.converged),
                    alpha_c_message=crit.message,
                    note="isolated_eigenvalue is NaN where the threshold Hessian has no spike; "
                         "rows with converged = 0 are failed solves (values NaN)",
                    **provenance(closure=closure, loss=loss.name, quadrature=asdict(quad)))
    return ds


def read_curve(path: str | os.PathLike, *, keep_failed: bool = False) -> "xr.Dataset":
    """A file written by ``python -m theory curve``, checked for format and variables.

    Rows of failed solves (``converged`` = 0) are dropped unless ``keep_failed``.
    """
    ds = load_netcdf(path, kind="theory curve file")
    if ds.attrs.get("format") != CURVE_FORMAT:
        raise InputError(f"{str(path)!r} is not a theory curve file (format {ds.attrs.get('format')!r})")
    missing = [k for k in CURVE_VARIABLES if k not in ds]
    if missing or "alpha" not in ds.dims:
        raise InputError(f"theory curve file {str(path)!r} lacks {missing or ['alpha']}")
    if not keep_failed:
        ds = ds.isel(alpha=np.flatnonzero(np.asarray(ds["converged"].values, bool)))
    return ds
