"""Finite-N success of gradient flow from the N = infinity DMFT (docs/theory.md §7.8).

A random start at dimension N has the overlap q(0) = <W(0), W*> / N whose exact law is that
of one coordinate of a uniform unit vector, q(0)^2 ~ Beta(1/2, (N-1)/2) (sqrt(N) q(0) -> z ~
N(0, 1)). While q is small the finite system is the N = infinity flow from the effective
start q_eff = (z + zeta(T_l) / G(T_l)) / sqrt(N) (eq. 7.12): the finite-N source zeta
(7.11) adds the variance ratio r = Var zeta / G^2 to the start. The flow escapes by the
horizon T iff |q_eff| >= q0_c(alpha; T) (:func:`theory.dmft.critical.critical_start`), so

    P_success(alpha, N; T) = P( |q_eff| >= q0_c(alpha; T) )                      (7.13)

evaluated with the exact start law widened by the source: |q_eff| sqrt(N) is the modulus of
z_N + zeta', z_N = sqrt(N) q(0) with its exact Beta law and zeta' ~ N(0, r) independent.
alpha_c(N; T) is where P = 1/2, on a table of q0_c(alpha; T) interpolated in log alpha.

No constant is fitted to success counts: q0_c and r come from DMFT solves.

The table of q0_c (one entry per (alpha, T, estimator)) is a JSON file with provenance,
written atomically after every nonlinear solve, so a long computation resumes
(:func:`load_table`, :func:`store_run`, :func:`store_entry`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize, stats

from .dmft.critical import CriticalStartConfig
from .errors import InputError
from .io import atomic_write_text, json_ready, provenance

__all__ = ["SuccessConfig", "SuccessPrediction", "start_overlap_sf", "success_probability_from",
           "fixed_start_success_from",
           "success_probability", "alpha_c", "load_table", "store_entry", "store_run", "entry_key",
           "table_entries"]

#: the repository's cached table of q0_c(alpha; T) (results/finite_n_theory), S = 8000, alpha 4-9
#: (q0c_table.json next to it holds the earlier S = 2000 entries, biased at alpha 6-7)
DEFAULT_TABLE = Path(__file__).resolve().parents[1] / "results" / "finite_n_theory" / "q0c_table_S8000.json"


#: what the band of a one-seed q0_c leaves out (docs/validation.md, S-dependence at alpha = 7)
SINGLE_SEED_CAVEAT = ("band = q0_c bracket of one DMFT seed; its Monte Carlo error is not in it "
                      "(one seed or S moves q0_c by 20-35% at alpha 6-8, docs/validation.md)")


@dataclass(frozen=True)
class SuccessConfig:
    """Every default of the finite-N success law and its commands (docs/theory.md 7.8).

    t_max : horizon T of the decision (the DMFT reaches T = 2 today, §7.10)
    level, t_linear, samples, dt_max : of the q0_c search (:class:`CriticalStartConfig`)
    with_source : include the finite-N source r (7.11); False: the start overlap alone
    table : path of the cached q0_c table
    """

    t_max: float = 2.0
    level: float = CriticalStartConfig.level
    t_linear: float = CriticalStartConfig.t_linear
    samples: int = CriticalStartConfig.samples
    dt_max: float = CriticalStartConfig.dt_max
    with_source: bool = True
    table: str = str(DEFAULT_TABLE)


@dataclass(frozen=True)
class SuccessPrediction:
    """P_success(alpha, N; T) with its numerical uncertainty (status fields included).

    success_probability : at the bracket midpoint of q0_c (and the seed mean of r)
    low, high : at the upper / lower end of the q0_c bracket (and r -/+ its seed spread)
    uncertainty : (high - low) / 2
    q0_critical, q0_lower, q0_upper : q0_c(alpha; T) in q_eff and its bracket
    ratio : r = Var zeta / G^2 at t_linear (0 without the source)
    escape_times : the escape times of the solves that escaped by T
    seeds : the fewest DMFT seeds behind q0_c at the tabulated alphas the interpolation uses
        (the two around alpha, or alpha itself when tabulated); with one, the band holds the
        bracket only, not the Monte Carlo error of q0_c (message says so)
    """

    alpha: float
    n: int
    t_max: float
    success_probability: float
    low: float
    high: float
    uncertainty: float
    q0_critical: float
    q0_lower: float
    q0_upper: float
    ratio: float
    escape_times: tuple[float, ...]
    converged: bool
    message: str
    seeds: int = 1


# ------------------------------------------------------------------------ the law of the start
def start_overlap_sf(x: float | np.ndarray, n: int, ratio: float = 0.0) -> float | np.ndarray:
    """P(|z_N + zeta'| >= x), z_N = sqrt(N) q(0) of a uniform random start at dimension N
    (q(0)^2 ~ Beta(1/2, (N-1)/2), exact) and zeta' ~ N(0, ratio) independent.

    ratio = 0: the exact tail of the start overlap, P(|q(0)| >= x / sqrt(N))."""
    if n < 2:
        raise InputError(f"N must be >= 2, got {n}")
    x = np.asarray(x, dtype=float)
    beta = stats.beta(0.5, 0.5 * (n - 1))
    if ratio <= 0:
        out = np.where(x * x >= n, 0.0, beta.sf(np.minimum(x * x / n, 1.0)))
        return float(out) if out.ndim == 0 else out
    return _widened_sf(x, n, math.sqrt(ratio))


#: Gauss-Legendre nodes of the start-law quadrature (the integrand is smooth in theta)
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(400)


def _modulus_sf(x, u, sd: float):
    """P(|u + sd g| >= x), g ~ N(0, 1) (broadcast over x and u)."""
    return stats.norm.sf((x - u) / sd) + stats.norm.cdf((-x - u) / sd)


def _widened_sf(x: np.ndarray, n: int, sd: float) -> float | np.ndarray:
    """P(|z_N + sd g| >= x): q(0) = sin(theta) with density prop. to cos(theta)^(N-2) on
    (-pi/2, pi/2) (uniform start), integrated by Gauss-Legendre in theta over the range where
    the density is above exp(-60) of its peak, normalised numerically."""
    th_max = math.pi / 2 if n <= 3 else min(math.pi / 2, math.acos(math.exp(-60.0 / (n - 2))))
    th = th_max * _NODES
    logd = (n - 2) * np.log(np.cos(th)) if n > 2 else np.zeros_like(th)
    w = _WEIGHTS * np.exp(logd - logd.max())
    w /= w.sum()
    u = math.sqrt(n) * np.sin(th)                                    # z_N at the nodes
    tail = _modulus_sf(np.atleast_1d(x)[:, None], u, sd)
    out = np.clip(tail @ w, 0.0, 1.0)
    return float(out[0]) if np.ndim(x) == 0 else out.reshape(np.shape(x))


def success_probability_from(q0_critical: float, n: int, ratio: float = 0.0) -> float:
    """(7.13) for given q0_c and r: P(|z_N + zeta'| >= q0_c sqrt(N))."""
    if not (q0_critical >= 0):
        raise InputError(f"q0_critical must be >= 0, got {q0_critical!r}")
    return float(start_overlap_sf(q0_critical * math.sqrt(n), n, ratio))


def fixed_start_success_from(q0_critical: float, q0: float, n: int, ratio: float = 0.0) -> float:
    """(7.13) for a start of given overlap q0 (a warm start; a spectral start's overlap):
    P(|q0 sqrt(N) + zeta'| >= q0_c sqrt(N)), zeta' ~ N(0, r), i.e. only the finite-N source
    spreads the effective start (7.12). r = 0: 1 if |q0| >= q0_c else 0."""
    if not (q0_critical >= 0):
        raise InputError(f"q0_critical must be >= 0, got {q0_critical!r}")
    if not (-1.0 <= q0 <= 1.0):
        raise InputError(f"q0 must be in [-1, 1], got {q0!r}")
    if n < 2:
        raise InputError(f"N must be >= 2, got {n}")
    if ratio <= 0:
        return float(abs(q0) >= q0_critical)
    return float(_modulus_sf(q0_critical * math.sqrt(n), q0 * math.sqrt(n), math.sqrt(ratio)))


# ------------------------------------------------------------------------ the table
def entry_key(alpha: float, t_max: float, samples: int, seed: int, dt_max: float, level: float,
              t_linear: float) -> str:
    return f"a{alpha:g}_T{t_max:g}_S{samples}_seed{seed}_dt{dt_max:g}_lv{level:g}_tl{t_linear:g}"


def load_table(path: str | Path) -> dict:
    """The q0_c table (``{"entries": {key: CriticalStart dict}, "runs": {key: [runs]}, ...}``);
    an empty table when the file does not exist; InputError when it is not a table."""
    p = Path(path)
    if not p.exists():
        return {"kind": "q0c_table", "entries": {}, "runs": {}}
    try:
        table = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the q0_c table {str(p)!r}: {exc}") from None
    if not isinstance(table, dict) or table.get("kind") != "q0c_table":
        raise InputError(f"{str(p)!r} is not a q0_c table")
    table.setdefault("entries", {})
    table.setdefault("runs", {})
    return table


def _write(path: str | Path, table: dict) -> None:
    table = dict(table)
    table.update({"kind": "q0c_table", "provenance": provenance(kind="q0c_table")})
    atomic_write_text(path, json.dumps(json_ready(table), indent=1, sort_keys=True))


def store_run(path: str | Path, key: str, run: dict) -> None:
    """Append one nonlinear solve to the table (atomic rewrite; resumable)."""
    table = load_table(path)
    table["runs"].setdefault(key, []).append(run)
    _write(path, table)


def store_entry(path: str | Path, key: str, entry: dict) -> None:
    """Store a finished q0_c search (a CriticalStart as dict, with its config) under ``key``."""
    table = load_table(path)
    table["entries"][key] = entry
    _write(path, table)


def table_entries(table: dict, t_max: float, level: float, t_linear: float, samples: int,
                  dt_max: float) -> dict[float, list[dict]]:
    """Entries of the table for one horizon and search config, grouped by alpha (one per seed)."""
    out: dict[float, list[dict]] = {}
    for e in table["entries"].values():
        c = e.get("config", {})
        if (abs(e["t_max"] - t_max) < 1e-9 and c.get("level") == level and c.get("t_linear") == t_linear
                and c.get("samples") == samples and c.get("dt_max") == dt_max):
            out.setdefault(float(e["alpha"]), []).append(e)
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------ the prediction
def _check(alpha: float | None, n: int | None, t_max: float | None) -> None:
    if alpha is not None and not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
        raise InputError(f"alpha must be positive, got {alpha!r}")
    if n is not None and not (isinstance(n, (int, np.integer)) and n >= 2):
        raise InputError(f"N must be an integer >= 2, got {n!r}")
    if t_max is not None and not (isinstance(t_max, (int, float)) and math.isfinite(t_max) and t_max > 0):
        raise InputError(f"t_max must be positive, got {t_max!r}")


def _alpha_table(config: SuccessConfig) -> dict[float, dict]:
    """Per tabulated alpha: q0_c midpoint / bracket and r (mean and spread over seeds)."""
    table = load_table(config.table)
    groups = table_entries(table, config.t_max, config.level, config.t_linear, config.samples, config.dt_max)
    out = {}
    for a, es in groups.items():
        ok = [e for e in es if e["converged"]]
        if not ok:
            continue
        lo = np.array([e["lower"] for e in ok])
        up = np.array([e["upper"] for e in ok])
        r = np.array([e["ratio"] for e in ok])
        esc = tuple(sorted(run["escape_time"] for e in ok for run in e["runs"]
                           if run["escape_time"] is not None and run["escape_time"] <= config.t_max))
        out[a] = {"q0c": float(np.mean(0.5 * (lo + up))), "lower": float(lo.min()), "upper": float(up.max()),
                  "ratio": float(r.mean()), "ratio_sd": float(r.std(ddof=1)) if r.size > 1 else 0.0,
                  "seeds": len(ok), "escape_times": esc}
    return out


def _interp_log(alphas: np.ndarray, values: np.ndarray, alpha: float) -> float:
    """Linear interpolation of log(values) in log(alpha) (values > 0), no extrapolation."""
    return float(np.exp(np.interp(math.log(alpha), np.log(alphas), np.log(values))))


def success_probability(alpha: float, n: int, config: SuccessConfig | None = None,
                        q0: float | None = None) -> SuccessPrediction:
    """P_success(alpha, N; T) of (7.13) from the cached q0_c table, with the uncertainty from
    the q0_c bracket and the seed spread of r. Between tabulated alphas q0_c, its bracket and
    r are interpolated in log-log; outside the tabulated range InputError.

    ``q0``: a start of that overlap (:func:`fixed_start_success_from`) instead of a uniform
    random start."""
    cfg = SuccessConfig() if config is None else config
    _check(alpha, n, cfg.t_max)
    if q0 is None:
        law = success_probability_from
    else:
        def law(q0c: float, n: int, ratio: float) -> float:
            return fixed_start_success_from(q0c, q0, n, ratio)
    tab = _alpha_table(cfg)
    if not tab:
        raise InputError(f"no converged q0_c at T = {cfg.t_max:g} in {cfg.table!r}; "
                         f"compute it with python -m experiments finite-n-theory")
    alphas = np.array(sorted(tab))
    if not (alphas[0] - 1e-9 <= alpha <= alphas[-1] + 1e-9):
        raise InputError(f"alpha = {alpha:g} outside the tabulated q0_c range "
                         f"[{alphas[0]:g}, {alphas[-1]:g}] at T = {cfg.t_max:g}")
    col = {name: np.array([tab[a][name] for a in alphas]) for name in ("q0c", "lower", "upper", "ratio", "ratio_sd")}
    q0c, lo, up = (_interp_log(alphas, col[k], alpha) for k in ("q0c", "lower", "upper"))
    r = float(np.interp(alpha, alphas, col["ratio"])) if cfg.with_source else 0.0
    r_sd = float(np.interp(alpha, alphas, col["ratio_sd"])) if cfg.with_source else 0.0
    p = law(q0c, n, r)
    # the band: q0_c at its bracket ends; r -/+ its seed spread (which widens toward 1/2 when
    # the start lies beyond q0_c, so both are tried at each end)
    ends = [law(qc, n, rr) for qc in (lo, up) for rr in (max(r - r_sd, 0.0), r + r_sd)]
    p_low, p_high = min(ends + [p]), max(ends + [p])
    near = alphas[np.argmin(np.abs(alphas - alpha))]
    # the tabulated alphas the interpolation leans on (the node itself when alpha is one), as alpha_c
    used = [near] if abs(near - alpha) < 1e-9 else list(_interval(alphas, alpha))
    seeds = min(int(tab[a]["seeds"]) for a in used)
    return SuccessPrediction(alpha=float(alpha), n=int(n), t_max=cfg.t_max, success_probability=p, low=p_low,
                             high=p_high, uncertainty=0.5 * (p_high - p_low), q0_critical=q0c, q0_lower=lo,
                             q0_upper=up, ratio=r, escape_times=tab[near]["escape_times"], converged=True,
                             message=SINGLE_SEED_CAVEAT if seeds < 2 else "", seeds=seeds)


def _interval(alphas: np.ndarray, a: float) -> tuple[float, float]:
    """The two neighbouring nodes of the sorted ``alphas`` between which ``a`` lies."""
    i = int(np.clip(np.searchsorted(alphas, a), 1, alphas.size - 1))
    return float(alphas[i - 1]), float(alphas[i])


def alpha_c(n: int, config: SuccessConfig | None = None) -> dict:
    """alpha_c(N; T): the alpha where P_success = 1/2 (with the alphas where the low / high
    ends of the uncertainty band cross 1/2). Returns plain numbers and status fields."""
    cfg = SuccessConfig() if config is None else config
    _check(None, n, cfg.t_max)
    tab = _alpha_table(cfg)
    if len(tab) < 2:
        raise InputError(f"alpha_c needs q0_c at >= 2 alphas at T = {cfg.t_max:g} in {cfg.table!r}")
    alphas = np.array(sorted(tab))

    def root(which: str) -> float:
        def f(a):
            pr = success_probability(a, n, cfg)
            return getattr(pr, which) - 0.5
        fa, fb = f(alphas[0]), f(alphas[-1])
        if fa * fb > 0:
            return math.nan
        return float(optimize.brentq(f, alphas[0], alphas[-1], xtol=1e-4))

    mid, lo_p, hi_p = root("success_probability"), root("low"), root("high")
    ok = math.isfinite(mid)
    # the high-probability band crosses 1/2 at smaller alpha
    lower, upper = hi_p, lo_p
    unc = 0.5 * (upper - lower) if math.isfinite(lower) and math.isfinite(upper) else math.nan
    msg = "" if ok else (f"P_success does not cross 1/2 over the tabulated alphas "
                         f"[{alphas[0]:g}, {alphas[-1]:g}] at N = {n}")
    # the caveat when a tabulated alpha the roots interpolate between has one seed only
    used = {a for r in (mid, lower, upper) if math.isfinite(r) for a in _interval(alphas, r)}
    if ok and min(tab[a]["seeds"] for a in used) < 2:
        msg = SINGLE_SEED_CAVEAT
    return {"alpha_c": mid, "lower": lower, "upper": upper, "uncertainty": unc, "n": int(n), "t_max": cfg.t_max,
            "converged": ok, "message": msg}
