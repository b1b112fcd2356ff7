"""The Kac-Rice landscape of the minima (docs/theory.md §8) against the states where gradient
flow stops (docs/validation.md, "Kac-Rice landscape (§8)").

- :func:`window_table`: per alpha, the minima counted by Kac-Rice: e_low (lower end of the
  window Sigma >= 0), e_typical (beta = 0, the most numerous), optionally e_high, with mu,
  Sigma, the BBP residual; next to the 1RSB threshold energy e_th (§3) and the simulated
  stopping energies (:data:`STOPPING_ENERGIES`).
- :func:`simulate_states`: a few trapped states, orthogonal protocol (q = 0), through
  :func:`experiments.threshold.simulate` (same seeds, same point files).
- :func:`compare_states`: laws of the states (KS on |yhat|, D, V) and their pooled Hessian
  spectra against the Kac-Rice law at e_typical and against the 1RSB threshold law.
- :func:`phase_diagram_dataset` / :func:`plot_phase_diagram`: the (alpha, e) plane with the
  regions no minima / stable minima / minima unstable toward the signal.
- :func:`critical_table` (predictions only) / :func:`critical_compare` (at the stopping
  energies) / :func:`plot_critical`: the critical points of any index (docs/theory.md §8.8-8.9),
  their index density, and the crossover energies of the typical critical points.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from theory.kac_rice import (KacRicePoint, KacRiceQuadrature, landscape, phase_diagram, solve_at_energy,
                             solve_kac_rice)
from theory.statistics import kolmogorov_distance

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["STOPPING_ENERGIES", "window_table", "critical_table", "critical_upper_table", "critical_compare", "plot_critical", "simulate_states", "compare_states",
           "phase_diagram_dataset", "plot_phase_diagram", "plot_sigma_curves", "format_rows"]

#: Stopping energies of gradient flow under the orthogonal protocol (q = 0), per alpha:
#: N = 500 / 1000 / 2000 / 4000, from docs/validation.md ("Orthogonal protocol", measured
#: before this theory was written; sem 0.01-0.04).
STOPPING_ENERGIES = {
    3.0: (0.851, 0.725, 0.781, 0.744),
    4.0: (1.476, 1.495, 1.475, 1.501),
    5.0: (2.284, 2.237, 2.317, 2.306),
    6.0: (3.120, 3.214, 3.156, 3.130),
    7.0: (3.961, 4.147, 4.223, 4.145),
}


def window_table(alphas: Sequence[float], *, high: bool = False, quad: KacRiceQuadrature | None = None,
                 log: Callable[[str], None] = print) -> list[dict]:
    """One row per alpha: e_low, e_typical (and e_high if ``high``), Sigma, mu, BBP residual of
    the Kac-Rice minima; e_th of the 1RSB threshold state; the simulated stopping energies."""
    from theory.threshold import solve_threshold

    rows = []
    for a in alphas:
        a = float(a)
        if high:
            land = landscape(a, quad=quad, strict=False)
            typ, low, hi = land.typical, land.low, land.high
            msg = land.message
        else:
            typ = solve_kac_rice(a, 0.0, quad=quad or KacRiceQuadrature(), strict=False)
            low = _low_end(a, typ, quad)
            hi, msg = None, typ.message
        thr = solve_threshold(a, strict=False)
        sims = STOPPING_ENERGIES.get(a)
        row = {"alpha": a, "e_low": None if low is None else low.energy, "e_typical": typ.energy,
               "e_high": None if hi is None else hi.energy, "sigma_typical": typ.complexity,
               "mu_typical": typ.mu, "chi": typ.chi, "kappa": typ.kappa, "bbp_residual": typ.bbp_residual,
               "branch": typ.branch, "residual": typ.residual, "converged": typ.converged,
               "e_th": thr.energy, "sigma_th": float(thr.complexity), "mu_th_stationary": thr.mu_stationary,
               "e_sim": list(sims) if sims else None,
               "e_sim_N4000": sims[-1] if sims else None,
               "rel_typical_vs_sim": (typ.energy / sims[-1] - 1.0) if sims else None,
               "rel_th_vs_sim": (thr.energy / sims[-1] - 1.0) if sims else None,
               "message": msg}
        log(f"alpha={a:g}: e_low={row['e_low']}, e_typical={typ.energy:.5f}, Sigma={typ.complexity:.5f}, "
            f"e_th={thr.energy:.4f}, sim={sims}")
        rows.append(row)
    return rows


def _low_end(alpha: float, typical: KacRicePoint, quad) -> KacRicePoint | None:
    from theory.kac_rice import _zero_crossing, kac_rice_loss

    if not (typical.converged and typical.complexity > 0):
        return None
    pt, _, _ = _zero_crossing(alpha, kac_rice_loss(None), quad or KacRiceQuadrature(), typical, +1.0, 4.0)
    return pt


def simulate_states(out: Path, alphas: Sequence[float] = (3.0, 4.0, 5.0, 6.0, 7.0), n: int = 1000,
                    reps: int = 4, log: Callable[[str], None] = print) -> list[Path]:
    """Trapped states at q = 0 (orthogonal protocol), one point file per alpha in ``out``
    (resumable; :func:`experiments.threshold.simulate`, the seeds of its plan)."""
    from experiments.threshold import simulate

    return simulate(Path(out), "orthogonal", plan=[(n, [float(a) for a in alphas], reps)], log=log)


def _law_cdfs(yhat, y, loss):
    return {"abs_yhat": np.abs(yhat), "D": loss.d2V(yhat, y), "V": loss.V(yhat, y)}


def compare_states(points: list[dict], *, quad: KacRiceQuadrature | None = None, grid_points: int = 800,
                   figure: str | None = None, log: Callable[[str], None] | None = None) -> list[dict]:
    """Per point file (:func:`experiments.threshold.load_points`): mean stopping energy and mu of
    the trapped states; Kolmogorov distances of their pooled laws (|yhat|, D, V) and pooled
    full Hessian spectra against the Kac-Rice law at e_typical and at the states' own mean
    energy, and against the 1RSB threshold law (closure stationary for the spectrum)."""
    from theory.loss import QUARTIC
    from theory.spectrum import bulk_density
    from theory.threshold import solve_threshold

    rows, panels = [], []
    for p in points:
        a, n = float(p["alpha"]), int(p["n"])
        tr = np.asarray(p["trapped"], int)
        if tr.size == 0:
            continue
        laws = np.asarray(p["laws"])
        e_states = np.asarray(p["energy"])[tr]
        mu_states = np.asarray(p["mu"])[tr]
        yhat, y = laws[:, 0, :].ravel(), laws[:, 1, :].ravel()
        emp = _law_cdfs(yhat, y, QUARTIC)
        typ = solve_kac_rice(a, 0.0, quad=quad or KacRiceQuadrature())
        own = solve_at_energy(a, float(e_states.mean()), quad=quad or KacRiceQuadrature(), strict=False)
        thr = solve_threshold(a, closure="stationary")
        row = {"alpha": a, "n": n, "states": int(tr.size), "e_states": float(e_states.mean()),
               "mu_states": float(mu_states.mean()), "e_typical": typ.energy, "mu_typical": typ.mu,
               "e_th": thr.energy, "mu_th": thr.mu}
        models = {"kr_typical": (typ.atoms["yhat"], typ.atoms["y"], typ.atoms["weights"], typ.curvature_law),
                  "th": (thr.measure.yhat, thr.measure.y, thr.measure.weights, thr.measure)}
        if own is not None and own.converged:
            models["kr_at_e"] = (own.atoms["yhat"], own.atoms["y"], own.atoms["weights"], own.curvature_law)
            row["mu_kr_at_e"] = own.mu
            row["sigma_kr_at_e"] = own.complexity
            row["beta_kr_at_e"] = own.beta
            row["bbp_kr_at_e"] = own.bbp_residual
        spectra = np.asarray(p["spectra"])
        lam = np.sort(spectra.ravel()) if spectra.size else None
        for name, (u, yy, w, law) in models.items():
            th = _law_cdfs(u, yy, QUARTIC)
            for k in emp:
                row[f"ks_{k}_{name}"] = kolmogorov_distance(emp[k], th[k], w)
            if lam is not None and name != "kr_at_e":
                x = np.linspace(min(lam[0], 0.0) - 1.0, lam[-1] + 1.0, grid_points)
                dens = bulk_density(x, law, strict=False, max_atoms=5000).density
                cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(x))])
                row[f"ks_spectrum_{name}"] = float(np.max(np.abs(cdf - np.searchsorted(lam, x, side="right") / lam.size)))
                if name == "kr_typical":
                    panels.append((a, n, lam, x, dens))
        rows.append(row)
        if log is not None:
            log(f"alpha={a:g} N={n}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                                                  if isinstance(v, float)))
    if figure and panels:
        _plot_density_panels(panels, figure)
    return rows


def _plot_density_panels(panels, figure: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), squeeze=False)
    for axis, (a, n, lam, x, dens) in zip(ax[0], panels):
        axis.hist(lam, bins=70, density=True, color="0.8", edgecolor="0.6", label=f"trapped, N={n}")
        axis.plot(x, dens, "C3-", lw=1.2, label="Kac-Rice, e_typical")
        axis.set_xlim(-0.5, np.quantile(lam, 0.995))
        axis.set_xlabel(r"eigenvalue of the tangent Hessian")
        axis.set_title(rf"$\alpha$ = {a:g}", fontsize=10)
        axis.legend(fontsize=7)
    ax[0][0].set_ylabel("density")
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    plt.close(fig)


def phase_diagram_dataset(alphas: Sequence[float], betas: Sequence[float], *,
                          quad: KacRiceQuadrature | None = None,
                          log: Callable[[str], None] | None = None) -> "xr.Dataset":
    """:func:`theory.kac_rice.phase_diagram` with the 1RSB e_th(alpha) and provenance attached."""
    from theory.io import provenance
    from theory.threshold import solve_threshold

    quad = quad or KacRiceQuadrature()
    ds = phase_diagram(alphas, betas, quad=quad, progress=log)
    e_th = [solve_threshold(float(a), strict=False).energy for a in ds["alpha"].values]
    ds["e_th"] = (("alpha",), np.asarray(e_th, float))
    ds["e_th"].attrs["description"] = "1RSB threshold energy (docs/theory.md §3)"
    ds.attrs.update(provenance(experiment="experiments.landscape.phase_diagram_dataset", n_u=quad.n_u,
                               n_y=quad.n_y, u_max=quad.u_max, y_max=quad.y_max, seed=None))
    return ds


def plot_phase_diagram(ds: "xr.Dataset", figure: str, bbp: dict | None = None) -> None:
    """(alpha, e) plane: Sigma >= 0 region of the minima split by the sign of the BBP
    residual, the curve e_typical(alpha), the 1RSB e_th and the simulated stopping energies."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas = ds["alpha"].values
    betas = ds["beta"].values
    fig, ax = plt.subplots(figsize=(7.2, 5.0))
    for i, a in enumerate(alphas):
        e = ds["energy"].values[i]
        reg = ds["region"].values[i]
        ok = np.isfinite(e)
        for code, colour, label in ((0, "0.75", "no minima (Sigma < 0)"), (1, "C0", "stable minima"),
                                    (2, "C3", "minima unstable toward the signal")):
            sel = ok & (reg == code)
            ax.scatter(np.full(sel.sum(), a), e[sel], s=16, c=colour, marker="s",
                       label=label if i == 0 or (code == 2 and not ax.get_legend_handles_labels()[1].count(label)) else None)
    j0 = int(np.argmin(np.abs(betas)))
    ax.plot(alphas, ds["energy"].values[:, j0], "k-", lw=1.2, label=r"$e_{typical}$ ($\beta$ = 0)")
    ax.plot(alphas, ds["e_th"].values, "C2--", lw=1.2, label=r"1RSB $e_{th}$")
    sa = sorted(STOPPING_ENERGIES)
    ax.plot(sa, [STOPPING_ENERGIES[a][-1] for a in sa], "k*", ms=9, label="flow stops (N = 4000, q = 0)")
    if bbp and bbp.get("alpha_bbp"):
        ax.axvline(bbp["alpha_bbp"], color="C3", lw=0.8, ls=":")
        ax.text(bbp["alpha_bbp"], ax.get_ylim()[1] * 0.95, rf" $\alpha_{{BBP}}$ = {bbp['alpha_bbp']:.2f}",
                color="C3", fontsize=8, va="top")
    ax.axvline(13.80, color="C2", lw=0.8, ls=":")
    ax.set_xlabel(r"$\alpha$")
    ax.set_ylabel(r"energy $e = L/N$ of the counted minima")
    ax.set_title("Kac-Rice minima at q = 0 (annealed); one marker per beta", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    seen = {}
    for h, lab in zip(handles, labels):
        seen.setdefault(lab, h)
    ax.legend(seen.values(), seen.keys(), fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    plt.close(fig)


def plot_sigma_curves(ds: "xr.Dataset", figure: str, alphas: Sequence[float] = (3.0, 4.0, 5.0, 6.0, 7.0)) -> None:
    """Sigma(e) of the minima at fixed alpha (one curve per alpha of ``ds`` in ``alphas``), with
    the 1RSB e_th (circle) and the simulated stopping energy at N = 4000 (star) on the axis."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    for k, a in enumerate(alphas):
        if a not in ds["alpha"].values:
            continue
        sub = ds.sel(alpha=a)
        e, s = sub["energy"].values, sub["complexity"].values
        ok = np.isfinite(e) & np.isfinite(s)
        order = np.argsort(e[ok])
        colour = f"C{k}"
        ax.plot(e[ok][order], s[ok][order], "-o", ms=3, color=colour, label=rf"$\alpha$ = {a:g}")
        ax.plot([float(sub["e_th"])], [0.0], "o", mfc="none", color=colour, ms=8)
        if a in STOPPING_ENERGIES:
            ax.plot([STOPPING_ENERGIES[a][-1]], [0.0], "*", color=colour, ms=11)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel(r"energy $e$ of the minima")
    ax.set_ylabel(r"annealed complexity $\Sigma(e)$")
    ax.set_title("Kac-Rice minima at q = 0. circles: 1RSB e_th; stars: flow stops (N = 4000)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    plt.close(fig)


def critical_table(alphas: Sequence[float], *, quad: KacRiceQuadrature | None = None,
                   refine_alpha: float | None = 4.0, log: Callable[[str], None] = print) -> list[dict]:
    """Predictions of the critical-point count (docs/theory.md §8.8-8.9) per alpha: the result of
    :func:`theory.kac_rice.critical_landscape` (e_low_critical, its index, the energies at the
    index levels, e_threshold_kr, the walk down in energy). No simulated number is used.
    At ``refine_alpha`` the point at e_typical is recomputed on a 1.5x refined grid with twice
    the crossing nodes (``refinement`` entry: differences of energy-fixed Sigma_tot and index)."""
    import theory.kac_rice as kr

    quad = quad or KacRiceQuadrature()
    rows = []
    for a in alphas:
        a = float(a)
        row = kr.critical_landscape(a, quad=quad)
        if refine_alpha is not None and a == float(refine_alpha) and row.get("converged"):
            e = row["e_typical_minima"]
            base = kr.solve_critical_points(a, energy=e, quad=quad, guess=_curve_guess(row, e), strict=False)
            saved = kr.CRIT_LOCAL_NODES
            try:
                kr.CRIT_LOCAL_NODES = 2 * saved
                kr._ROW_GRIDS.clear()
                fine = kr.solve_critical_points(a, energy=e, quad=quad.refined(1.5), guess=_curve_guess(row, e),
                                                strict=False)
            finally:
                kr.CRIT_LOCAL_NODES = saved
                kr._ROW_GRIDS.clear()
            row["refinement"] = {"energy": e, "grid": [quad.n_u, quad.n_y, saved],
                                 "fine_grid": [round(quad.n_u * 1.5), round(quad.n_y * 1.5), 2 * saved],
                                 "sigma_tot": base.complexity, "sigma_tot_fine": fine.complexity,
                                 "index": base.index, "index_fine": fine.index, "converged": base.converged and fine.converged}
        log(f"alpha={a:g}: e_low_crit={row.get('e_low_critical')}, index there={row.get('index_at_e_low_critical')}, "
            f"levels={row.get('index_levels')}, e_threshold_kr={row.get('e_threshold_kr')}; {row.get('message')}")
        rows.append(row)
    return rows


def critical_upper_table(pred_rows: list[dict], *, quad: KacRiceQuadrature | None = None,
                         log: Callable[[str], None] = print) -> list[dict]:
    """Per alpha, the most numerous critical points (beta = 0, maximum of Sigma_tot; docs/theory.md
    §8.9), by :func:`theory.kac_rice.critical_maximum` from the top of the committed walk
    ``pred_rows`` (:func:`critical_table`); the walk up (energy, Sigma_tot, index, beta) is kept."""
    from theory.kac_rice import critical_maximum, solve_critical_points

    quad = quad or KacRiceQuadrature()
    rows = []
    for row in pred_rows:
        a = float(row["alpha"])
        top = max(row["curve"], key=lambda p: p["energy"])
        start = solve_critical_points(a, energy=top["energy"], quad=quad, guess=_curve_guess(row, top["energy"]),
                                      strict=False)
        pt, walk, msg = critical_maximum(a, start, quad=quad)
        out = {"alpha": a, "e_typical_critical": None if pt is None else pt.energy,
               "sigma_tot_max": None if pt is None else pt.complexity, "index_at_max": None if pt is None else pt.index,
               "mu_at_max": None if pt is None else pt.mu, "law_at_max": None if pt is None else pt.law,
               "walk": [{"energy": p.energy, "sigma_tot": p.complexity, "index": p.index, "beta": p.beta}
                        for p in walk],
               "converged": pt is not None and pt.converged, "residual": None if pt is None else pt.residual,
               "message": msg}
        log(f"alpha={a:g}: e_typical_critical={out['e_typical_critical']}, Sigma_tot max={out['sigma_tot_max']}, "
            f"index={out['index_at_max']}; {msg}")
        rows.append(out)
    return rows


def _curve_guess(row: dict, energy: float):
    p = min(row["curve"], key=lambda q: abs(q["energy"] - energy))
    return (p["chi_re"], p["chi_im"], p["c"], p["beta"])


def critical_compare(pred_rows: list[dict], *, quad: KacRiceQuadrature | None = None,
                     log: Callable[[str], None] = print) -> list[dict]:
    """At each alpha's stopping energy (:data:`STOPPING_ENERGIES`, N = 4000): Sigma_tot, the
    index of the typical critical points and Sigma_min of the marginal minima there, next to the
    committed predictions ``pred_rows`` (:func:`critical_table`)."""
    from theory.kac_rice import solve_critical_points

    quad = quad or KacRiceQuadrature()
    rows = []
    for row in pred_rows:
        a = float(row["alpha"])
        e_sim = STOPPING_ENERGIES[a][-1]
        crit = solve_critical_points(a, energy=e_sim, quad=quad, guess=_curve_guess(row, e_sim), strict=False)
        mins = solve_at_energy(a, e_sim, quad=quad, strict=False)
        levels = {f"e_index_{lv['index']:g}": lv["energy"] for lv in row["index_levels"]}
        out = {"alpha": a, "e_sim_N4000": e_sim, "sigma_tot_at_e_sim": crit.complexity, "index_at_e_sim": crit.index,
               "beta_tot_at_e_sim": crit.beta, "sigma_min_at_e_sim": mins.complexity,
               "gap_tot_minus_min": crit.complexity - mins.complexity,
               "e_low_critical": row["e_low_critical"],
               "rel_e_low_critical_vs_sim": row["e_low_critical"] / e_sim - 1.0,
               **levels, **{f"rel_{k}_vs_sim": (v / e_sim - 1.0 if v else None) for k, v in levels.items()},
               "e_threshold_kr": row["e_threshold_kr"],
               "converged": bool(crit.converged and mins.converged),
               "residual": max(crit.residual, mins.residual), "message": f"{crit.message}; minima: {mins.message}"}
        log(f"alpha={a:g}: e_sim={e_sim}, Sigma_tot={crit.complexity:.4f}, index={crit.index:.4f}, "
            f"Sigma_min={mins.complexity:.4f}")
        rows.append(out)
    return rows


def plot_critical(pred_rows: list[dict], figure: str, phase: "xr.Dataset | None" = None) -> None:
    """Two panels per the walk of :func:`critical_table`: Sigma_tot(e) (solid) with the minima's
    Sigma_min(e) from the phase diagram (dashed) and the index density of the typical critical
    points (log scale); stars: the flow's stopping energies (N = 4000)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11.0, 4.4))
    for k, row in enumerate(pred_rows):
        a = float(row["alpha"])
        colour = f"C{k}"
        cur = sorted(row["curve"], key=lambda p: p["energy"])
        e = np.array([p["energy"] for p in cur])
        ax.plot(e, [p["sigma_tot"] for p in cur], "-o", ms=3, color=colour, label=rf"$\alpha$ = {a:g}")
        bx.semilogy(e, [p["index"] for p in cur], "-o", ms=3, color=colour, label=rf"$\alpha$ = {a:g}")
        if phase is not None and a in phase["alpha"].values:
            sub = phase.sel(alpha=a)
            em, sm = sub["energy"].values, sub["complexity"].values
            ok = np.isfinite(em) & np.isfinite(sm) & (em <= e.max() * 1.02)
            order = np.argsort(em[ok])
            ax.plot(em[ok][order], sm[ok][order], "--", color=colour, lw=1)
        if a in STOPPING_ENERGIES:
            ax.plot([STOPPING_ENERGIES[a][-1]], [0.0], "*", color=colour, ms=11)
            bx.axvline(STOPPING_ENERGIES[a][-1], color=colour, ls=":", lw=1)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel("energy e")
    ax.set_ylabel(r"annealed complexity")
    ax.set_title(r"solid: all critical points $\Sigma_{tot}$; dashed: minima; stars: flow stops", fontsize=9)
    ax.set_ylim(-0.35, None)
    ax.legend(fontsize=8)
    bx.set_xlabel("energy e")
    bx.set_ylabel("index density of the typical critical points")
    bx.set_title("dotted: flow stops (N = 4000)", fontsize=9)
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    plt.close(fig)


def format_rows(rows: list[dict], keys: Sequence[str]) -> str:
    """A markdown table of ``rows`` restricted to ``keys`` (numbers to 4 significant digits)."""
    def cell(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list):
            return " / ".join(cell(x) for x in v)
        return str(v)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)
