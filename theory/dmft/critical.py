"""The critical start overlap of the nonlinear DMFT, q0_c(alpha; T) (docs/theory.md 7.8).

The smallest start overlap q0 from which the N = infinity flow reaches |q| >= ``level`` by
the horizon T, found by bisection on q0 with the nonlinear solver. It is a function of the
start overlap only (any start with that overlap and an otherwise random direction: random
starts at finite N, later spectral starts).

The finite-S solver from q0 > 0 carries its own sample's overlap source (§7.7 i): the
overlap it behaves as if started from is q_eff = q0 + zeta_S(T_l) / G_raw(T_l), with zeta_S the
sample source propagated by the raw response of the q0 = 0 solution on the same samples
(:func:`theory.dmft.linear.overlap_response`), T_l a time in the linear window. The
bisection is done in q_eff and q0_c is reported in q_eff.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import InputError, raise_if_failed
from .config import DMFTConfig
from .grid import DMFTGrid
from .linear import overlap_response
from .result import DMFTResult
from .solve import solve_dmft

__all__ = ["CriticalStartConfig", "EscapeRun", "CriticalStart", "escape_time", "critical_start",
           "bracket_at_horizon"]


@dataclass(frozen=True)
class CriticalStartConfig:
    """How q0_c is searched (every default in one place).

    level : |q| that counts as escaped toward the signal (the flow is then in its fast final
        phase, §7.9 F: |q| 0.5 -> 1 in ~0.5)
    t_linear : T_l, the time of the linear window at which the sample source is converted to
        a start shift (7.13; prototype 0.5)
    lo, hi : initial bracket in q_eff
    width : stop when the bracket in q_eff is narrower than this
    max_solves : at most this many nonlinear solves (bracket expansion included)
    samples, dt_max, seed : the DMFT (S, grid step, seed; y_scale fixed at 2 for every q0 so
        that the q0 = 0 and q0 > 0 solutions share their samples)
    """

    level: float = 0.9
    t_linear: float = 0.5
    lo: float = 0.01
    hi: float = 0.08
    width: float = 0.005
    max_solves: int = 9
    samples: int = 8000
    dt_max: float = 0.025
    seed: int = 0
    y_scale: float = 2.0

    def __post_init__(self):
        if not (0 < self.level < 1):
            raise InputError(f"level must be in (0, 1), got {self.level!r}")
        if not (0 < self.lo < self.hi < 0.2):
            raise InputError(f"need 0 < lo < hi < 0.2 (y_scale switch), got lo={self.lo!r}, hi={self.hi!r}")
        if not (self.width > 0 and self.t_linear > 0 and self.max_solves >= 2):
            raise InputError("width, t_linear must be positive and max_solves >= 2")

    def dmft(self, alpha: float, t_max: float, q0: float) -> DMFTConfig:
        return DMFTConfig(alpha, t_max, q0=q0, samples=self.samples, seed=self.seed, y_scale=self.y_scale,
                          grid=DMFTGrid(t_max, dt_max=self.dt_max))


@dataclass(frozen=True)
class EscapeRun:
    """One nonlinear solve: start q0, effective start q_eff, first time with |q| >= level
    (None: not by the end), |q| at the end, the time reached, the solver's status, and the
    path q(t) on at most 41 grid times (``path_t``, ``path_q``)."""

    q0: float
    q_eff: float
    escape_time: float | None
    q_end: float
    t_end: float
    converged: bool
    message: str
    path_t: tuple[float, ...] = ()
    path_q: tuple[float, ...] = ()


@dataclass(frozen=True)
class CriticalStart:
    """q0_c(alpha; T) in q_eff with its bracket and status (scipy OptimizeResult spirit).

    q0_critical : midpoint of the bracket (nan when not bracketed)
    lower, upper : largest q_eff that did not escape by T, smallest that did
    shift : zeta_S(T_l) / G_raw(T_l), q_eff - q0 (the sample's own source, §7.7 i)
    G_linear : projected G(t_linear) of the q0 = 0 solution (7.6), ratio: r(t_linear) (7.13)
    runs : every nonlinear solve, in order
    converged : bracket found, width reached; iterations: solves; residual: bracket width
    """

    alpha: float
    t_max: float
    q0_critical: float
    lower: float
    upper: float
    shift: float
    G_linear: float
    ratio: float
    linear: dict
    runs: tuple[EscapeRun, ...]
    converged: bool
    iterations: int
    residual: float
    message: str
    config: CriticalStartConfig = field(default_factory=CriticalStartConfig)

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["runs"] = [dataclasses.asdict(r) for r in self.runs]
        return out


def escape_time(result: DMFTResult, level: float) -> float | None:
    """First grid time with |q| >= level, None if none."""
    hit = np.nonzero(np.abs(result.q) >= level)[0]
    return float(result.t[hit[0]]) if hit.size else None


def bracket_at_horizon(runs: tuple[EscapeRun, ...] | list[EscapeRun], horizon: float) -> tuple[float, float]:
    """(largest q_eff not escaped by ``horizon``, smallest q_eff escaped by it) over the runs
    that reached the horizon or escaped before it; (nan, nan) sides when missing. A run that
    failed before the horizon without escaping is undecided and ignored."""
    escaped = [abs(r.q_eff) for r in runs if r.escape_time is not None and r.escape_time <= horizon]
    trapped = [abs(r.q_eff) for r in runs if (r.escape_time is None or r.escape_time > horizon)
               and r.t_end >= horizon * (1 - 1e-9)]
    up = min(escaped) if escaped else math.nan
    lo = max([q for q in trapped if not (q >= up)], default=math.nan)
    return lo, up


def critical_start(alpha: float, t_max: float, config: CriticalStartConfig | None = None, *,
                   strict: bool = True, progress: bool = False,
                   known_runs: list[EscapeRun] | None = None,
                   on_run: Callable[[EscapeRun], None] | None = None,
                   solver: Callable[..., DMFTResult] = solve_dmft) -> CriticalStart:
    """q0_c(alpha; T = t_max) by bisection in q_eff with the nonlinear DMFT (docs/theory.md 7.8).

    ``known_runs`` are reused (resume: a run with the same q0 is not solved again); ``on_run``
    is called after every new solve (to cache it). Raises ConvergenceError (strict) when the
    bracket is not found within ``max_solves``.
    """
    cfg = CriticalStartConfig() if config is None else config
    if not (alpha > 0 and math.isfinite(alpha)):
        raise InputError(f"alpha must be positive, got {alpha!r}")
    if not (t_max > cfg.t_linear):
        raise InputError(f"t_max must exceed t_linear = {cfg.t_linear:g}, got {t_max!r}")
    base = solver(cfg.dmft(alpha, t_max, 0.0), strict=False, progress=progress)
    lin_raw = overlap_response(base, "raw")
    lin = overlap_response(base, "projected")
    if base.t[-1] < cfg.t_linear:
        raise InputError(f"the q0 = 0 solution stopped at t = {base.t[-1]:.3g} before t_linear: {base.message}")
    at_raw, at = lin_raw.at(cfg.t_linear), lin.at(cfg.t_linear)
    shift = at_raw["sample_source"] / at_raw["G"]
    runs: list[EscapeRun] = []
    # a stored solve is the same start when q0 agrees to 1e-7: the shift comes from the
    # q0 = 0 solve, which a change of the solver's tolerances moves at the 1e-9 level
    known = {round(r.q0, 7): r for r in (known_runs or [])}

    def run(q_eff: float) -> EscapeRun:
        q0 = q_eff - shift
        if not (0.0 <= q0 < 0.2):
            return EscapeRun(q0=q0, q_eff=q_eff, escape_time=None, q_end=math.nan, t_end=0.0, converged=False,
                             message="q0 = q_eff - shift outside [0, 0.2)")
        key = round(q0, 7)
        if key in known:
            r = known[key]
        else:
            res = solver(cfg.dmft(alpha, t_max, q0), strict=False, progress=progress, stop_overlap=cfg.level)
            idx = np.unique(np.linspace(0, res.t.size - 1, min(41, res.t.size)).round().astype(int))
            r = EscapeRun(q0=q0, q_eff=q_eff, escape_time=escape_time(res, cfg.level), q_end=float(abs(res.q[-1])),
                          t_end=float(res.t[-1]), converged=bool(res.converged), message=res.message,
                          path_t=tuple(float(v) for v in res.t[idx]), path_q=tuple(float(v) for v in res.q[idx]))
            if on_run is not None:
                on_run(r)
        runs.append(r)
        if progress:
            print(f"q0_c alpha={alpha:g} T={t_max:g}: q_eff={q_eff:.4f} (q0={q0:.4f}) escape={r.escape_time} "
                  f"|q(end)|={r.q_end:.3f} t_end={r.t_end:.3g}", file=sys.stderr, flush=True)
        return r

    def escaped(r: EscapeRun) -> bool | None:
        if r.escape_time is not None and r.escape_time <= t_max:
            return True
        return False if r.t_end >= t_max * (1 - 1e-9) else None

    lo, hi = max(cfg.lo, shift + 1e-3), cfg.hi
    if hi <= lo:
        hi = min(2 * lo, 0.19)
    message = ""
    state_lo = escaped(run(lo))
    while state_lo and len(runs) < cfg.max_solves and lo / 2 - shift >= 0:
        hi, lo = lo, lo / 2
        state_lo = escaped(run(lo))
    state_hi = True if hi != cfg.hi else escaped(run(hi))
    while state_hi is False and len(runs) < cfg.max_solves and min(2 * hi, 0.19) - shift < 0.2 and hi < 0.19:
        lo, hi = hi, min(2 * hi, 0.19)
        state_hi = escaped(run(hi))
    if state_lo is not False or state_hi is not True:
        message = (f"no bracket: q_eff={lo:.4g} escaped={state_lo}, q_eff={hi:.4g} escaped={state_hi} "
                   f"(None: the solver stopped before T: {runs[-1].message})")
    else:
        while hi - lo > cfg.width and len(runs) < cfg.max_solves:
            mid = 0.5 * (lo + hi)
            e = escaped(run(mid))
            if e is None:
                message = f"undecided at q_eff={mid:.4g}: {runs[-1].message}"
                break
            lo, hi = (lo, mid) if e else (mid, hi)
    bracketed = not message
    width = hi - lo if bracketed else math.inf
    if bracketed and width > cfg.width:
        message = f"bracket width {width:.3g} above {cfg.width:g} after {len(runs)} solves"
    qc = 0.5 * (lo + hi) if bracketed else math.nan
    result = CriticalStart(alpha=float(alpha), t_max=float(t_max), q0_critical=qc,
                           lower=lo if bracketed else math.nan, upper=hi if bracketed else math.nan,
                           shift=float(shift), G_linear=at["G"], ratio=at["ratio"], runs=tuple(runs),
                           linear={"t": lin.t.tolist(), "G": lin.G.tolist(), "G_raw": lin_raw.G.tolist(),
                                   "var_zeta": lin.var_zeta.tolist(), "sample_source": lin_raw.sample_source.tolist(),
                                   "converged": bool(base.converged), "message": base.message},
                           converged=not message, iterations=len(runs), residual=float(width),
                           message=message, config=cfg)
    return raise_if_failed(result, strict)
