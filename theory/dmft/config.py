"""What a DMFT solution is asked for: the problem, the Monte Carlo estimator and the solver
tolerances, with every default in one place (docs/theory.md §5.5, 5.8, 5.9).

:class:`DMFTConfig` is frozen and validated on construction; the solver
(:func:`theory.dmft.solve_dmft`), the command line (``python -m theory dmft``) and the
experiments read their defaults from it (:func:`config_default`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .grid import DMFTGrid

__all__ = ["DMFTConfig", "default_y_scale", "config_default", "IMPORTANCE_SAMPLING_BELOW_Q0", "VALIDATED_RUN"]

#: What ``python -m theory dmft`` runs by default: the estimator validated against N = 4000
#: simulations (docs/validation.md, DMFT section; Stein projection and the y_scale of
#: :func:`default_y_scale`, the DMFTConfig defaults) at S = 8000 samples and dt_max = 0.05,
#: averaged over ``seeds`` independent seeds with the standard error across seeds (the
#: per-run Monte Carlo error underestimates the seed-to-seed spread). Stored runs
#: (results/dmft/dmft_a4_q0_t8_dt0.05_ys2_st0.001_S8000_seed0-3, alpha = 4, random start):
#: the mean of seeds 0-3 is within 1.4 percent of the N = 4000 simulation energy at
#: t = 0.5, 1, 2 (one seed: 4.7 percent low at t = 2). The DMFTConfig field defaults
#: (S = 4000, DMFTGrid's dt_max = 0.1, one seed) are kept for the API.
VALIDATED_RUN = {"samples": 8000, "dt_max": 0.05, "seeds": 4}

#: Below this start overlap the default estimator samples the label with importance (eq. 5.27).
IMPORTANCE_SAMPLING_BELOW_Q0 = 0.2


def default_y_scale(q0: float) -> float:
    """The validated label importance-sampling scale (eq. 5.27) for a start with overlap q0.

    2 for q0 < 0.2: from a random start it removes the heavy-tail bias at t = 0.1-0.5 and,
    with the Stein projection, matches simulation to t = 8 (alpha = 3, 4); from q0 = 0.1
    (alpha = 4, q plateaus near 0.4) it matches within 1.8 sigma where plain sampling is 2
    sigma low in mu at t = 0.1. 1 (plain) for q0 >= 0.2: from q0 = 0.3 the flow converges
    to the signal by t ~ 1, importance sampling leaves its rare extreme labels unconverged
    (e 2-2.5 sigma low at t = 0.3-0.5, an energy floor at t = 2) and plain sampling matches
    (docs/validation.md, DMFT section). Tested at q0 = 0, 0.1, 0.3; the switch at 0.2 lies
    between the tested values.
    """
    return 2.0 if q0 < IMPORTANCE_SAMPLING_BELOW_Q0 else 1.0


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True)
class DMFTConfig:
    """A DMFT problem and how to solve it (docs/theory.md §5).

    The default estimator is the one validated against simulation (N = 4000,
    docs/validation.md, DMFT section): the Stein projection (stein_rcond = 1e-3) always,
    with importance sampling y_scale = 2 below q0 = 0.2 and y_scale = 1 above
    (:func:`default_y_scale`). y_scale = 1, stein_rcond = None is the plain Monte Carlo
    solver, biased from t ~ 1/4 on (docs/theory.md 5.8).

    Attributes
    ----------
    alpha : float > 0
        M / N.
    t_max : float > 0
        Final time.
    q0 : float in [0, 1)
        Teacher overlap at t = 0 (0: random start).
    samples : even int >= 4
        Monte Carlo samples S of the measurement process.
    grid : DMFTGrid
        Time grid (eq. 5.13); None on construction gives ``DMFTGrid(t_max)``.
    seed : int
        Seed of the common random numbers (y, z0, eta).
    dtype : str
        Storage of the per-sample response ("float64" or "float32").
    loss : str
        Registry name of the loss (:func:`theory.loss.get_loss`); it must have the
        closed-form backward-Euler step ``prox_step`` (eq. 5.14).
    y_scale : float >= 1
        Importance sampling of the label (eq. 5.27): y ~ N(0, y_scale^2), every average
        weighted by phi(y) / phi_{y_scale}(y) (mean 1, bounded by y_scale); 1 is plain
        sampling; None on construction gives :func:`default_y_scale` (q0).
    stein_rcond : float in (0, 1) or None
        Stein projection of the memory row (eq. 5.28, docs/theory.md 5.9): the min-norm
        correction of K[k, :k] enforcing the identity where C_perp[1:k, :k] has singular
        values above stein_rcond times the largest; None: off.
    inner_tol : float
        Inner fixed point (eq. 5.19): relative change of the kernel rows at which it stops.
    memory_tol : float
        Relative change of the memory row K[k, :k] (eq. 5.16) at which the step stops.
    inner_max_iter : int
        Iteration limit of the inner fixed point and of the memory-row loop.
    mult_tol_abs, mult_tol_rel : float
        Runaway guard: the norm multiplier (5.18) and alpha E[V'h] (5.24) agree up to Monte
        Carlo noise and O(dt); |mu_multiplier - mu| > mult_tol_abs + mult_tol_rel |mu| means
        the solution has run away (heavy-tailed memory kernel, docs/theory.md 5.5).
    """

    alpha: float
    t_max: float
    q0: float = 0.0
    samples: int = 4000
    grid: DMFTGrid | None = None
    seed: int = 0
    dtype: str = "float64"
    loss: str = "quartic"
    y_scale: float | None = None
    stein_rcond: float | None = 1e-3
    inner_tol: float = 1e-9
    memory_tol: float = 1e-8
    inner_max_iter: int = 200
    mult_tol_abs: float = 2.0
    mult_tol_rel: float = 0.5

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731  frozen
        for name in ("alpha", "t_max", "q0"):
            v = getattr(self, name)
            if not (_is_number(v) and math.isfinite(v)):
                raise InputError(f"{name} must be a finite number, got {v!r}")
            set_(name, float(v))
        if self.alpha <= 0:
            raise InputError(f"alpha must be positive, got {self.alpha:g}")
        if self.t_max <= 0:
            raise InputError(f"t_max must be positive, got {self.t_max:g}")
        if not (0.0 <= self.q0 < 1.0):
            raise InputError(f"q0 must be in [0, 1), got {self.q0:g}")
        if not (isinstance(self.samples, (int, np.integer)) and self.samples >= 4 and self.samples % 2 == 0):
            raise InputError(f"samples must be an even integer >= 4, got {self.samples!r}")
        set_("samples", int(self.samples))
        grid = DMFTGrid(self.t_max) if self.grid is None else self.grid
        if not isinstance(grid, DMFTGrid):
            raise InputError(f"grid must be a DMFTGrid, got {type(grid).__name__}")
        if abs(grid.t_max - self.t_max) > 1e-12 * self.t_max:
            raise InputError(f"grid.t_max = {grid.t_max} differs from t_max = {self.t_max}")
        set_("grid", grid)
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise InputError(f"seed must be an integer, got {self.seed!r}")
        if str(self.dtype) not in ("float64", "float32"):
            raise InputError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        if not isinstance(self.loss, str):
            raise InputError(f"loss must be a registry name, got {self.loss!r}")
        y_scale = default_y_scale(self.q0) if self.y_scale is None else self.y_scale
        if not (_is_number(y_scale) and math.isfinite(y_scale) and y_scale >= 1.0):
            raise InputError(f"y_scale must be a finite number >= 1, got {y_scale!r}")
        set_("y_scale", float(y_scale))
        if self.stein_rcond is not None and not (_is_number(self.stein_rcond) and 0 < self.stein_rcond < 1):
            raise InputError(f"stein_rcond must be None or a number in (0, 1), got {self.stein_rcond!r}")
        for name in ("inner_tol", "memory_tol", "mult_tol_abs", "mult_tol_rel"):
            v = getattr(self, name)
            if not (_is_number(v) and v > 0):
                raise InputError(f"{name} must be a positive number, got {v!r}")
        if not (isinstance(self.inner_max_iter, (int, np.integer)) and self.inner_max_iter >= 1):
            raise InputError(f"inner_max_iter must be an integer >= 1, got {self.inner_max_iter!r}")

    @property
    def importance_sampled(self) -> bool:
        """True when the label is importance-sampled (y_scale > 1, eq. 5.27)."""
        return self.y_scale != 1.0

    @property
    def label(self) -> str:
        """Short description naming the parameters, for messages."""
        return f"alpha={self.alpha:g}, q0={self.q0:g}, t_max={self.t_max:g}, S={self.samples}"

    def estimator(self) -> dict:
        """The estimator and the problem as a flat JSON-ready dict (for provenance)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "grid"}
        out.update({f"grid_{f.name}": getattr(self.grid, f.name) for f in dataclasses.fields(DMFTGrid)})
        return out


def config_default(name: str) -> float | int | str | None:
    """The default of the :class:`DMFTConfig` field ``name`` (or of ``DMFTGrid`` for
    ``dt0``, ``dt_max``, ``growth``): the one place the command line reads them from."""
    for cls in (DMFTConfig, DMFTGrid):
        for f in dataclasses.fields(cls):
            if f.name == name and f.default is not dataclasses.MISSING:
                return f.default
    raise KeyError(f"no default for {name!r}")
