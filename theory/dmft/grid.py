"""Time grid of the backward-Euler scheme of the DMFT (docs/theory.md eq. 5.13)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["DMFTGrid", "time_grid"]


@dataclass(frozen=True)
class DMFTGrid:
    """Time grid of the backward-Euler scheme (eq. 5.13).

    Steps grow geometrically from ``dt0`` by the factor ``growth`` until ``dt_max``,
    then stay at ``dt_max`` until ``t_max``; the last step is shortened to end at t_max.
    """

    t_max: float
    dt0: float = 0.005
    dt_max: float = 0.1
    growth: float = 1.04

    def __post_init__(self):
        for name in ("t_max", "dt0", "dt_max"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InputError(f"{name} must be a positive finite number, got {v!r}")
        if self.dt0 > self.dt_max:
            raise InputError(f"dt0 = {self.dt0} must not exceed dt_max = {self.dt_max}")
        if not (self.growth >= 1.0 and math.isfinite(self.growth)):
            raise InputError(f"growth must be >= 1, got {self.growth!r}")


def time_grid(grid: DMFTGrid) -> np.ndarray:
    """Times t_0 = 0 < t_1 < ... < t_n = t_max of the grid (eq. 5.13)."""
    times = [0.0]
    dt = grid.dt0
    while times[-1] < grid.t_max * (1 - 1e-12):
        times.append(min(times[-1] + dt, grid.t_max))
        dt = min(dt * grid.growth, grid.dt_max)
    t = np.asarray(times)
    if t.size < 3:
        raise InputError(f"grid has only {t.size - 1} step(s); lower dt0 or raise t_max")
    return t
