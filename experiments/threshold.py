"""Threshold-state theory (docs/theory.md §3) against trapped gradient-flow states.

Two stages, both reproducible (fixed seeds, :func:`point_seed`):

1. :func:`simulate` / :func:`simulate_point`: gradient flow (float32, adaptive RKC,
   rtol 1e-5, t_max 2000) from random starts at each (N, alpha) of the plan; every replica
   that ends "trapped" is kept with its energy, overlap q, mu, the empirical law of
   (yhat, y), the lowest tangent-Hessian eigenvalues (Lanczos, k = 4) and, for N <= 1000,
   the full spectrum. One labelled netCDF file per point (:func:`point_dataset`, atomic,
   provenance in its attrs); finished points (netCDF, or ``.npz`` of the older layout) are
   skipped on a rerun. Two protocols (``simulation.protocols``):
   ``free``, the plain flow (at alpha >= 6 and N >= 1000 it almost always succeeds, the
   finite-N escape of docs/validation.md, so trapped states are rare there), and
   ``orthogonal``, the flow restricted exactly to W orthogonal to W* (q = 0), whose
   stationary states are the spurious minima seen with the signal direction switched off,
   the object of the threshold theory. Every probe (laws, Hessian) uses the original X, so
   the lowest eigenvalue is that of the full tangent Hessian and may be negative (a BBP
   direction toward the signal). Point files ``n{N}_a{alpha}.nc`` / ``n{N}_a{alpha}_orth.nc``
   (older runs: the same names with ``.npz``, read by :func:`load_points` too).
2. :func:`compare`: the theory of every closure against the states: energies per N and
   extrapolated in N (:func:`extrapolate`), mu, the bulk edge against the lowest
   eigenvalues (:func:`own_law_edge`, :func:`finite_m_edge`), Kolmogorov distances between
   the predicted and empirical laws of |yhat|, of D = V''(yhat, y) and of V, and of the
   full spectra (:func:`density_comparison`); :func:`format_comparison` makes the table and
   :func:`plot` the figure.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulation.protocols import PROTOCOLS, check_protocol
from theory.statistics import kolmogorov_distance, standard_error

if TYPE_CHECKING:
    import xarray as xr

    from theory.threshold import ThresholdState

__all__ = ["PLAN", "PLAN_ORTHOGONAL", "PROTOCOLS", "SEED", "RTOL", "point_path", "point_seed", "simulate_point",
           "point_dataset", "point_record", "simulate", "load_points", "compare", "format_comparison", "own_law_edge", "finite_m_edge",
           "density_comparison", "extrapolate", "plot"]

#: (N, alphas, replicas); replicas share one data set per point (fresh data across points)
PLAN = [
    (500, (3.0, 4.0, 5.0, 6.0, 7.0), 16),
    (1000, (3.0, 4.0, 5.0, 6.0, 7.0), 8),
    (2000, (3.0, 4.0, 5.0), 4),
    (4000, (3.0, 4.0), 2),
]
#: the orthogonal protocol: every (N, alpha) of the free plan and more, since it always
#: ends trapped (q = 0 exactly) and costs less (no slow escape along W*)
PLAN_ORTHOGONAL = [
    (1000, (3.0, 4.0, 5.0, 6.0, 7.0), 4),
    (2000, (3.0, 4.0, 5.0, 6.0, 7.0), 4),
    (500, (3.0, 4.0, 5.0, 6.0, 7.0), 8),
    (4000, (3.0, 4.0, 5.0, 6.0, 7.0), 2),
]
SEED = 20260
#: flow tolerance of the stored runs (float32)
RTOL = 1e-5

Plan = Sequence[tuple[int, Sequence[float], int]]


def point_path(out: Path, n: int, alpha: float, protocol: str = "free", suffix: str = ".nc") -> Path:
    """The point file of (N, alpha, protocol) in the folder ``out`` (``suffix=".npz"``: the
    older layout)."""
    return out / ((f"n{n}_a{alpha:g}" if protocol == "free" else f"n{n}_a{alpha:g}_orth") + suffix)


def point_seed(n: int, alpha: float, protocol: str = "free") -> int:
    """Seed of the data and the starts of one point: SEED + 1000 round(10 alpha) + N,
    plus 7 for the orthogonal protocol (fresh data across points and protocols)."""
    return SEED + 1000 * int(round(10 * alpha)) + n + (0 if check_protocol(protocol) == "free" else 7)


def simulate_point(n: int, alpha: float, reps: int, t_max: float = 2000.0, protocol: str = "free") -> dict:
    """Flows of one point (float32, rtol 1e-5); the trapped replicas' observables and laws.

    Returns a dict of arrays: n, alpha, seed, protocol, per replica status, energy, q, mu,
    stop_time (energy, q, mu in float64 on the original problem for the orthogonal
    protocol, in float32 from the flow for the free one); for the trapped replicas (indices
    ``trapped``) ``laws`` (T, 2, M) = (yhat, y), ``lowest`` (T, 4) eigenvalues of the
    tangent Hessian (eq. 1.6), ``lowest_overlap2`` (T, 4) their squared overlaps with e
    (eq. 1.7) and, for N <= 1000, ``spectra`` (T, N-1).
    """
    from simulation import (Integrator, StopRules, full_spectrum, lowest_eigenpairs, make_problem,
                            random_starts, run_dynamics, state_measure)

    seed = point_seed(n, alpha, protocol)
    prob = make_problem(n, alpha, seed=seed, dtype="float32")
    W0 = random_starts(n, reps, seed=seed, dtype="float32")
    p64 = prob.astype("float64")
    r = run_dynamics(prob, W0, StopRules(t_max=t_max), Integrator(rtol=RTOL), protocol=protocol)
    W = r.W.astype(np.float64)
    out = dict(n=n, alpha=alpha, seed=seed, protocol=protocol, status=np.array(r.status, dtype=str),
               energy=r.energy, q=r.q, mu=r.mu, stop_time=r.stop_time)
    trapped = [b for b in range(reps) if r.status[b] == "trapped"]
    laws, lowest, lowest_e2, spectra = [], [], [], []
    for b in trapped:
        sm = state_measure(p64, W[:, b])
        laws.append(np.stack([sm.yhat, sm.y]))
        eig = lowest_eigenpairs(p64, W[:, b], k=4)
        lowest.append(eig.eigenvalues)
        lowest_e2.append(eig.overlap2)
        if n <= 1000:
            spectra.append(full_spectrum(p64, W[:, b], k=1)[0])
    m = prob.m
    out.update(trapped=np.array(trapped, dtype=int),
               laws=np.array(laws).reshape(len(trapped), 2, m),
               lowest=np.array(lowest).reshape(len(trapped), 4),
               lowest_overlap2=np.array(lowest_e2).reshape(len(trapped), 4),
               spectra=np.array(spectra).reshape(len(spectra), n - 1))
    return out


#: per-point arrays of a record and their netCDF dimensions
_POINT_DIMS = {
    "status": ("replica",), "energy": ("replica",), "q": ("replica",), "mu": ("replica",),
    "stop_time": ("replica",), "trapped": ("state",), "laws": ("state", "field", "measurement"),
    "lowest": ("state", "level"), "lowest_overlap2": ("state", "level"), "spectra": ("spectrum_state", "eigenvalue"),
}
_POINT_LONG_NAMES = {
    "status": "stop rule of each replica: success | trapped | timeout",
    "energy": "energy per dimension e = L/N at the stop (eq. 1.1)",
    "q": "teacher overlap <W, W*>/N at the stop", "mu": "Lagrange multiplier at the stop (eq. 1.3)",
    "stop_time": "flow time at the stop", "trapped": "indices of the replicas that ended trapped",
    "laws": "empirical law of the trapped states: field yhat = <x_m, W>, y = <x_m, W*>",
    "lowest": "lowest eigenvalues of the tangent Hessian (eq. 1.6), Lanczos",
    "lowest_overlap2": "squared overlaps of those eigenvectors with e (eq. 1.7)",
    "spectra": "full tangent-Hessian spectrum of each trapped state (N <= 1000 only)",
}
_POINT_SCALARS = ("n", "alpha", "seed", "protocol", "wall_seconds")


def point_dataset(rec: dict, attrs: dict | None = None) -> xr.Dataset:
    """A :func:`simulate_point` record as a labelled ``xarray.Dataset`` (arrays with named
    dimensions; the scalars n, alpha, seed, protocol, wall_seconds and ``attrs``, e.g.
    theory.io.provenance, as attributes). :func:`point_record` inverts it."""
    import xarray as xr

    data = {k: (_POINT_DIMS[k], np.asarray(rec[k], dtype=object if k == "status" else None),
                {"long_name": _POINT_LONG_NAMES[k]}) for k in _POINT_DIMS}
    scalars = {k: (rec[k].item() if isinstance(rec[k], np.ndarray) else rec[k]) for k in _POINT_SCALARS if k in rec}
    return xr.Dataset(data, coords={"field": ["yhat", "y"]}, attrs={**(attrs or {}), **scalars})


def point_record(ds: xr.Dataset) -> dict:
    """The record dict (the arrays of :func:`simulate_point`) of a point dataset."""
    rec = {k: ds[k].values for k in _POINT_DIMS}
    rec["status"] = rec["status"].astype(str)
    rec.update({k: ds.attrs[k] for k in _POINT_SCALARS if k in ds.attrs})
    rec["provenance"] = dict(ds.attrs)
    return rec


def simulate(out: Path, protocol: str = "free", sizes: Iterable[int] | None = None, plan: Plan | None = None,
             t_max: float = 2000.0, log: Callable[[str], None] = print) -> list[Path]:
    """Run the points of ``plan`` (default :data:`PLAN` / :data:`PLAN_ORTHOGONAL`) not yet in
    ``out`` (as netCDF or as an older ``.npz``), one netCDF file each (atomic) with the
    provenance in its attrs (theory.io.provenance: package version, time, N, alpha,
    replicas, seed, protocol, t_max, rtol, dtype). Returns the paths written."""
    from theory.io import provenance, write_netcdf

    check_protocol(protocol)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan if plan is not None else (PLAN if protocol == "free" else PLAN_ORTHOGONAL)
    sizes = set(sizes) if sizes else None
    written = []
    for n, alphas, reps in plan:
        if sizes and n not in sizes:
            continue
        for alpha in alphas:
            path = point_path(out, n, alpha, protocol)
            if path.exists() or point_path(out, n, alpha, protocol, ".npz").exists():
                continue
            t0 = time.time()
            rec = simulate_point(n, alpha, reps, t_max=t_max, protocol=protocol)
            rec["wall_seconds"] = time.time() - t0
            prov = provenance(n=n, alpha=alpha, replicas=reps, seed=rec["seed"], protocol=protocol, t_max=t_max,
                              rtol=RTOL, dtype="float32", experiment="experiments.threshold.simulate_point")
            write_netcdf(point_dataset(rec, prov), path)
            written.append(path)
            e_tr = rec["energy"][rec["trapped"]]
            log(f"[{protocol}] N={n} alpha={alpha:g}: {len(rec['trapped'])}/{reps} trapped, e={np.round(e_tr, 4).tolist()} "
                f"|q|={np.round(np.abs(rec['q'][rec['trapped']]), 3).tolist()} ({rec['wall_seconds']:.0f} s)")
    return written


def load_points(states: Path) -> list[dict]:
    """The point files of a folder as record dicts, sorted by name: netCDF ``n*_a*.nc``
    (:func:`point_record`, with their ``provenance``) and the older ``n*_a*.npz`` where no
    netCDF file of the same point exists (files without a protocol read as "free", no
    provenance)."""
    from theory.io import load_netcdf

    files = {p.stem: p for p in states.glob("n*_a*.npz")}
    files.update({p.stem: p for p in states.glob("n*_a*.nc")})
    points = []
    for stem in sorted(files, key=lambda stem: stem + ".npz"):  # the order of the older layout
        path = files[stem]
        if path.suffix == ".nc":
            p = point_record(load_netcdf(path, kind="point file"))
        else:
            p = dict(np.load(path, allow_pickle=False))
        p["protocol"] = str(p.get("protocol", "free"))
        points.append(p)
    return points


def own_law_edge(law: np.ndarray, alpha: float, mu: float) -> float:
    """Bulk edge (§2) of a trapped state's own empirical law (yhat, y) = law (2, M) and mu
    (s is not stored, so no spike: at |q| > 0 it would need s = sqrt(N) <x, e>, not y)."""
    from theory.measure import Measure
    from theory.spectrum import spectrum_summary

    return spectrum_summary(Measure.empirical(law[0], law[1], alpha=alpha, mu=float(mu))).bulk_edge


def finite_m_edge(state: ThresholdState, n: int, samples: int = 8, seed: int = 0) -> float:
    """Mean §2 edge of M = alpha N atoms drawn from the predicted law of ``state`` (a
    theory.threshold.ThresholdState), with the closure's mu: the finite-M gap,
    docs/theory.md §3.6."""
    from theory.measure import Measure
    from theory.spectrum import spectrum_summary

    rng = np.random.default_rng(seed)
    m, M = state.measure, int(round(state.alpha * n))
    edges = []
    for _ in range(samples):
        idx = rng.choice(m.size, size=M, p=m.weights)
        edges.append(spectrum_summary(Measure.empirical(m.yhat[idx], m.y[idx], alpha=state.alpha, mu=state.mu)).bulk_edge)
    return float(np.mean(edges))


def _point_row(p: dict, theory: dict, finite_m_samples: int) -> dict:
    """The comparison row of one point file against the theory of its alpha."""
    from theory.threshold import CLOSURES

    a, n, tr = float(p["alpha"]), int(p["n"]), p["trapped"]
    m = theory["marginal"][a].measure
    D_th = 6 * m.yhat**2 - 2 * m.y**2
    row = dict(n=n, alpha=a, protocol=p["protocol"], trapped=int(tr.size), replicas=int(p["status"].size))
    if tr.size:
        laws = p["laws"]
        yh, yy = np.abs(laws[:, 0, :]).ravel(), laws[:, 1, :].ravel()
        row.update(
            energy_mean=float(p["energy"][tr].mean()),
            energy_sem=float(standard_error(p["energy"][tr])) if tr.size > 1 else None,
            mu_mean=float(p["mu"][tr].mean()), abs_q_mean=float(np.abs(p["q"][tr]).mean()),
            lowest_mean=float(p["lowest"][:, 0].mean()),
            lowest_overlap2_mean=float(p["lowest_overlap2"][:, 0].mean()) if "lowest_overlap2" in p else None,
            ks_abs_yhat=kolmogorov_distance(yh, np.abs(m.yhat), m.weights),
            ks_D=kolmogorov_distance(6 * yh**2 - 2 * yy**2, D_th, m.weights),
            ks_V=kolmogorov_distance(0.5 * (yh**2 - yy**2) ** 2, 0.5 * (m.yhat**2 - m.y**2) ** 2, m.weights),
            edge_own_law=float(np.mean([own_law_edge(law, a, mu) for law, mu in zip(laws, p["mu"][tr])])),
            **{f"edge_finite_M_{c}": finite_m_edge(theory[c][a], n, samples=finite_m_samples) for c in CLOSURES},
        )
    return row


def compare(points: list[dict], figure: str | None = None, grid_points: int = 3000,
            finite_m_samples: int = 8) -> dict:
    """Theory of every closure against the point files (:func:`load_points`).

    Returns dict(simulation=rows (one per point, in the order given), theory=rows per
    (alpha, closure) with energy, mu, bulk_edge, extrapolation=:func:`extrapolate`,
    densities=:func:`density_comparison`); with ``figure`` also writes it (:func:`plot`)
    and the density figure next to it.
    """
    from theory.threshold import CLOSURES, solve_threshold

    alphas = sorted({float(p["alpha"]) for p in points})
    theory = {c: {a: solve_threshold(a, closure=c) for a in alphas} for c in CLOSURES}
    rows = [_point_row(p, theory, finite_m_samples) for p in points]
    th_rows = [dict(alpha=a, closure=c, energy=theory[c][a].energy, mu=theory[c][a].mu,
                    bulk_edge=theory[c][a].bulk_edge) for c in CLOSURES for a in alphas]
    extrap = extrapolate(rows, alphas)
    densities = density_comparison(points, theory, figure, grid_points=grid_points)
    if figure:
        plot(rows, theory, alphas, figure)
    return dict(simulation=rows, theory=th_rows, extrapolation=extrap, densities=densities)


def format_comparison(result: dict) -> str:
    """The table of :func:`compare` (rows sorted by protocol, alpha, N) as text."""
    rows = sorted(result["simulation"], key=lambda r: (r["protocol"], r["alpha"], r["n"]))
    lines = ["proto N     alpha trapped  e_sim (sem)      mu_sim   lam_min  own-law  finiteM-marg finiteM-stat  |q|   KS|yhat| KS(D) KS(V)"]
    for r in rows:
        if r["trapped"]:
            sem = r["energy_sem"] if r["energy_sem"] is not None else float("nan")
            lines.append(
                f"{r['protocol'][:5]:<5s} {r['n']:<5d} {r['alpha']:<5g} {r['trapped']:>2d}/{r['replicas']:<3d} {r['energy_mean']:.4f} ({sem:.4f}) "
                f"{r['mu_mean']:8.4f} {r['lowest_mean']:8.4f} {r['edge_own_law']:8.4f} {r['edge_finite_M_marginal']:10.4f} "
                f"{r['edge_finite_M_stationary']:12.4f}  {r['abs_q_mean']:.3f} {r['ks_abs_yhat']:.3f}    {r['ks_D']:.3f} {r['ks_V']:.3f}")
    lines.append("theory: alpha closure energy mu bulk_edge")
    for t in result["theory"]:
        lines.append(f"  {t['alpha']:g} {t['closure']:<10s} {t['energy']:.4f} {t['mu']:.4f} {t['bulk_edge']:.3g}")
    lines.append("extrapolation e(N) = e_inf + c N^(-x):")
    for key, fit in result["extrapolation"].items():
        lines.append(f"  alpha {key:<6s} sizes {fit['sizes']}: " + "; ".join(
            f"{k}: e_inf = {v['e_inf']:.3f} +- {v['e_inf_err']:.3f} (chi2/dof {v['chi2_per_dof']:.1f})"
            for k, v in fit.items() if k != "sizes"))
    lines.append("full spectra of trapped states vs predicted density (Kolmogorov): " + json.dumps(result["densities"]))
    return "\n".join(lines)


def density_comparison(points: list[dict], theory: dict, figure: str | None, grid_points: int = 3000) -> dict:
    """Kolmogorov distance between the pooled full spectra of the trapped states (N <= 1000)
    and the predicted threshold density of each closure (integrated by the trapezoid rule
    on ``grid_points`` points); a figure per alpha with a spectrum, next to ``figure``."""
    from theory.spectrum import bulk_density

    out, panels = {}, []
    for p in points:
        if not p["spectra"].size:
            continue
        a, n = float(p["alpha"]), int(p["n"])
        lam = np.sort(p["spectra"].ravel())
        x = np.linspace(min(lam[0], 0.0) - 1.0, lam[-1] + 1.0, grid_points)
        rec = {}
        for c, th in ((c, theory[c][a]) for c in theory):
            dens = bulk_density(x, th.measure, strict=False).density
            cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(x))])
            emp = np.searchsorted(lam, x, side="right") / lam.size
            rec[c] = float(np.max(np.abs(cdf - emp)))
            if c == "marginal":
                panels.append((a, n, lam, x, dens, theory["stationary"][a].bulk_edge))
        out[f"N{n}_a{a:g}" + ("_orth" if p["protocol"] == "orthogonal" else "")] = rec
    if figure and panels:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        panels = [pn for pn in panels if pn[1] == max(q[1] for q in panels)][:3]
        fig, ax = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
        for axis, (a, n, lam, x, dens, gap) in zip(ax[0], panels):
            axis.hist(lam, bins=80, density=True, color="0.8", edgecolor="0.6", label=f"trapped states, N={n}")
            axis.plot(x, dens, "C0-", label="predicted, closure marginal")
            axis.plot(x + gap, dens, "C1--", label="predicted, closure stationary")
            axis.set_xlim(-0.5, np.quantile(lam, 0.995))
            axis.set_xlabel(r"eigenvalue $\lambda$ of the tangent Hessian")
            axis.set_ylabel("density")
            axis.set_title(rf"$\alpha$ = {a:g}", fontsize=10)
            axis.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(str(Path(figure).with_name(Path(figure).stem + "_density.png")), dpi=120)
        plt.close(fig)
    return out


def extrapolate(rows: list[dict], alphas: Iterable[float], exponents: Sequence[float] = (0.5, 2.0 / 3.0)) -> dict:
    """Weighted least squares e(N) = e_inf + c N^(-x) per alpha and protocol, for x = 1/2
    (the sample-to-sample scale of an intensive quantity) and x = 2/3 (the finite-size
    scale of mean-field glassy energies, e.g. SK ground states); needs >= 2 sizes. A point
    with a single trapped state enters with a standard error of 0.05. Returns per alpha
    (key suffixed ``_orth`` for that protocol) e_inf, its error and the chi^2 per degree of
    freedom of each exponent."""
    out = {}
    for a, proto in ((a, pr) for a in alphas for pr in PROTOCOLS):
        rs = [r for r in rows if r["alpha"] == a and r["protocol"] == proto and r["trapped"] >= 1]
        if len(rs) < 2:
            continue
        n = np.array([r["n"] for r in rs], float)
        e = np.array([r["energy_mean"] for r in rs])
        w = 1 / np.maximum(np.array([r["energy_sem"] or 0.05 for r in rs]), 1e-3) ** 2
        fits = {}
        for x in exponents:
            A = np.stack([np.ones_like(n), n ** -x], axis=1) * np.sqrt(w)[:, None]
            coef, *_ = np.linalg.lstsq(A, e * np.sqrt(w), rcond=None)
            cov = np.linalg.inv(A.T @ A)
            chi2 = float(np.sum((A @ coef - e * np.sqrt(w)) ** 2))
            fits[f"x={x:.3g}"] = dict(e_inf=float(coef[0]), e_inf_err=float(np.sqrt(cov[0, 0])), slope=float(coef[1]),
                                      chi2_per_dof=chi2 / max(len(rs) - 2, 1))
        out[f"{a:g}" + ("" if proto == "free" else "_orth")] = dict(sizes=[int(v) for v in n], **fits)
    return out


def plot(rows: list[dict], theory: dict, alphas: Sequence[float], path: str) -> None:
    """Energies and mu of the trapped states against alpha, with the theory (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    a_grid = np.array(alphas)
    ax[0].plot(a_grid, [theory["marginal"][a].energy for a in alphas], "k-", lw=2, label="threshold theory (1RSB)")
    for k, n in enumerate(sorted({r["n"] for r in rows})):
        for proto, fmt in (("free", "o"), ("orthogonal", "s")):
            rs = [r for r in rows if r["n"] == n and r["trapped"] and r["protocol"] == proto]
            if rs:
                ax[0].errorbar([r["alpha"] + (0.06 if proto == "orthogonal" else 0) for r in rs],
                               [r["energy_mean"] for r in rs], yerr=[r["energy_sem"] or 0 for r in rs], fmt=fmt,
                               color=f"C{k}", mfc="none" if proto == "orthogonal" else None, ms=4, capsize=2,
                               label=f"trapped GF, N={n}" + (" (flow orthogonal to W*)" if proto == "orthogonal" else ""))
    ax[0].set_xlabel(r"$\alpha = M/N$")
    ax[0].set_ylabel(r"energy per dimension $e = L/N$")
    ax[0].set_title("threshold energy: theory vs trapped states")
    ax[0].legend(fontsize=8)
    for c, style in (("marginal", "k-"), ("stationary", "k--")):
        ax[1].plot(a_grid, [theory[c][a].mu for a in alphas], style, label=f"theory mu ({c})")
    for k, n in enumerate(sorted({r["n"] for r in rows})):
        for proto, fmt in (("free", "o"), ("orthogonal", "s")):
            rs = [r for r in rows if r["n"] == n and r["trapped"] and r["protocol"] == proto]
            if rs:
                ax[1].plot([r["alpha"] + (0.06 if proto == "orthogonal" else 0) for r in rs], [r["mu_mean"] for r in rs],
                           fmt, color=f"C{k}", mfc="none" if proto == "orthogonal" else None, ms=4,
                           label=f"N={n}" + (" orth." if proto == "orthogonal" else ""))
    ax[1].set_xlabel(r"$\alpha$")
    ax[1].set_ylabel(r"Lagrange multiplier $\mu$")
    ax[1].set_title(r"$\mu$ at the trapped states")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
