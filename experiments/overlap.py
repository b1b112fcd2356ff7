"""Minima at teacher overlap q: Kac-Rice (docs/theory.md §8.10) against a flow held at q.

- :func:`overlap_predictions`: per (alpha, q), the most numerous minima (beta = 0) of L on the
  sub-sphere <W, W*>/N = q (``restricted``, eq. 8.24: where a flow held at q stops) and of L on
  the whole sphere at overlap q (eq. 8.21), with Sigma, mu and dSigma/dq.
- :func:`fixed_overlap_loss` / :func:`simulate_fixed_overlap`: gradient flow on the sub-sphere.
  With u = W*/|W*| and W = q sqrt(N) u + sqrt(1 - q^2) V, V orthogonal to u, |V|^2 = N, the
  prediction is <x_m, W> = q y_m + sqrt(1 - q^2) <x_m, V>, so the flow of V is the orthogonal
  protocol (simulation.protocols) with the loss l(q y + sqrt(1 - q^2) yhat, y). Same data and
  starts at every q (paired), the data and starts of the orthogonal protocol's point
  (experiments.threshold.point_seed), so q = 0 reproduces those states.
- :func:`overlap_compare`: the simulated stopping energies and multipliers against the
  predictions, as shifts from q = 0 (the q = 0 energy itself is 8-16% off, docs/validation.md).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from theory.kac_rice import KacRiceQuadrature, solve_kac_rice
from theory.loss import Loss, make_loss
from theory.statistics import standard_error

__all__ = ["overlap_predictions", "fixed_overlap_loss", "simulate_fixed_overlap", "overlap_compare", "plot_overlap"]


def overlap_predictions(alphas: Sequence[float], overlaps: Sequence[float], *,
                        quad: KacRiceQuadrature | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """One row per (alpha, q): beta = 0 Kac-Rice minima on the sub-sphere of overlap q
    (``*_restricted``) and on the whole sphere at overlap q (``*_sphere``), quartic loss."""
    quad = quad or KacRiceQuadrature()
    rows = []
    for a in alphas:
        guess = {True: None, False: None}
        for q in sorted(float(v) for v in overlaps):
            row = {"alpha": float(a), "overlap": q}
            for restricted, tag in ((True, "restricted"), (False, "sphere")):
                pt = solve_kac_rice(float(a), 0.0, quad=quad, overlap=q, restricted=restricted,
                                    guess=guess[restricted], strict=False)
                if pt.converged:
                    guess[restricted] = pt.guess
                row.update({f"e_{tag}": pt.energy, f"sigma_{tag}": pt.complexity, f"mu_{tag}": pt.mu,
                            f"dsigma_dq_{tag}": pt.dsigma_doverlap, f"branch_{tag}": pt.branch,
                            f"converged_{tag}": pt.converged, f"residual_{tag}": pt.residual,
                            f"mean_yhat_y_{tag}": pt.law.get("mean_yhat_y")})
            log(f"alpha={a:g} q={q:g}: restricted e={row['e_restricted']:.5f} Sigma={row['sigma_restricted']:.5f} "
                f"mu={row['mu_restricted']:.4f}; sphere e={row['e_sphere']:.5f} Sigma={row['sigma_sphere']:.5f}")
            rows.append(row)
    return rows


def fixed_overlap_loss(overlap: float) -> Loss:
    """The quartic loss seen by V on the sub-sphere of overlap q: l(q y + sqrt(1 - q^2) yhat, y)."""
    q = float(overlap)
    r = math.sqrt(1.0 - q * q)
    return make_loss(f"quartic_q{q:g}", f"(({q!r}*y + {r!r}*yhat)**2 - y**2)**2")


def simulate_fixed_overlap(n: int, alpha: float, overlap: float, reps: int, *, t_max: float = 2000.0) -> dict:
    """Gradient flow held at teacher overlap q (float32, rtol of experiments.threshold).

    Returns a dict: n, alpha, overlap, seed, status (per replica), energy (L/N in float64 on
    the original problem), q (measured), mu_restricted = alpha E[V' (yhat - q y)] / (1 - q^2)
    (the multiplier of the sub-sphere, eq. 8.24), mu (alpha E[V' yhat]), grad_signal
    (alpha E[V' s], free on the sub-sphere), subsphere_grad_norm (|gradient orthogonal to W and
    W*| / sqrt(N), 0 at a stop), stop_time, wall_seconds.
    """
    from experiments.threshold import RTOL, point_seed
    from simulation import Integrator, StopRules, make_problem, random_starts, run_dynamics
    from simulation.protocols import OrthogonalComplement
    from theory.loss import QUARTIC

    q = float(overlap)
    t0 = time.time()
    seed = point_seed(n, alpha, "orthogonal")
    prob = make_problem(n, alpha, seed=seed, dtype="float32")
    comp = OrthogonalComplement.of(prob)
    W0r = comp.reduce(random_starts(n, reps, seed=seed, dtype="float32"))
    red = run_dynamics(comp.problem, W0r, StopRules(t_max=t_max, success_overlap=1.0), Integrator(rtol=RTOL),
                       loss=fixed_overlap_loss(q))
    V = comp.lift(red.W)                                   # float64, |V|^2 = N, orthogonal to W*
    u = comp.teacher_unit()
    W = q * math.sqrt(n) * u[:, None] + math.sqrt(1.0 - q * q) * V
    p64 = prob.astype("float64")
    yhat = p64.X @ W
    y = p64.y[:, None]
    dv = QUARTIC.dV(yhat, y)
    s = (y - q * yhat) / math.sqrt(1.0 - q * q)
    grad = p64.X.T @ dv
    sub_grad = []
    for b in range(W.shape[1]):   # the gradient orthogonal to W and W*: 0 at a stop on the sub-sphere
        basis, _ = np.linalg.qr(np.stack([W[:, b], u], axis=1))
        g_b = grad[:, b] - basis @ (basis.T @ grad[:, b])
        sub_grad.append(float(np.linalg.norm(g_b) / math.sqrt(n)))
    return {"n": n, "alpha": float(alpha), "overlap": q, "seed": seed, "status": list(map(str, red.status)),
            "energy": (QUARTIC.V(yhat, y).sum(axis=0) / n).tolist(),
            "q": (p64.w_star @ W / n).tolist(),
            "mu_restricted": ((dv * (yhat - q * y)).sum(axis=0) / n / (1 - q * q)).tolist(),
            "mu": ((dv * yhat).sum(axis=0) / n).tolist(),
            "grad_signal": ((dv * s).sum(axis=0) / n).tolist(),
            "subsphere_grad_norm": sub_grad,
            "stop_time": np.asarray(red.stop_time, float).tolist(), "wall_seconds": time.time() - t0}


def overlap_compare(predictions: list[dict], runs: list[dict]) -> list[dict]:
    """Per (alpha, q) with runs: mean and standard error of the trapped replicas' energies and
    restricted multipliers, their shifts from the same alpha's q = 0 runs, and the predicted
    shifts (restricted Kac-Rice at beta = 0)."""
    pred = {(r["alpha"], r["overlap"]): r for r in predictions}
    by_point: dict = {}
    for run in runs:
        by_point.setdefault((run["alpha"], run["overlap"]), []).append(run)

    def stats(key, field):
        vals = [v for run in by_point.get(key, []) for v, st in zip(run[field], run["status"]) if st == "trapped"]
        if not vals:
            return None, None, 0
        vals = np.asarray(vals)
        return float(vals.mean()), float(standard_error(vals)) if vals.size > 1 else None, vals.size

    rows = []
    for key in sorted(by_point):
        a, q = key
        p, p0 = pred.get(key), pred.get((a, 0.0))
        e, e_se, k = stats(key, "energy")
        m, m_se, _ = stats(key, "mu_restricted")
        e0, _, _ = stats((a, 0.0), "energy")
        m0, _, _ = stats((a, 0.0), "mu_restricted")
        row = {"alpha": a, "overlap": q, "trapped": k, "e_sim": e, "e_sim_se": e_se, "mu_sim": m, "mu_sim_se": m_se,
               "e_kr": p and p["e_restricted"], "mu_kr": p and p["mu_restricted"],
               "sigma_kr": p and p["sigma_restricted"]}
        if p and p0 and e0 is not None:
            row.update(shift_e_sim=e - e0, shift_e_kr=p["e_restricted"] - p0["e_restricted"],
                       shift_mu_sim=m - m0, shift_mu_kr=p["mu_restricted"] - p0["mu_restricted"],
                       ratio_e=e / p["e_restricted"])
        rows.append(row)
    return rows


def plot_overlap(rows: list[dict], figure: str, predictions: list[dict] | None = None) -> None:
    """Energy and multiplier against q per alpha: the flow held at q (points, one marker per N)
    and the restricted Kac-Rice minima at beta = 0 (lines; dashed: whole-sphere minima)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.4))
    alphas = sorted({r["alpha"] for r in rows})
    colors = dict(zip(alphas, plt.cm.viridis(np.linspace(0, 0.9, len(alphas)))))
    markers = dict(zip(sorted({r["n"] for r in rows}), "osd^v"))
    pred = predictions or []
    for a in alphas:
        pr = sorted((p for p in pred if p["alpha"] == a), key=lambda p: p["overlap"])
        if pr:
            qs = [p["overlap"] for p in pr]
            ax.plot(qs, [p["e_restricted"] for p in pr], "-", color=colors[a], label=f"alpha = {a:g}")
            ax.plot(qs, [p["e_sphere"] for p in pr], "--", color=colors[a], lw=0.8)
            bx.plot(qs, [p["mu_restricted"] for p in pr], "-", color=colors[a])
        for n, mk in markers.items():
            sel = sorted((r for r in rows if r["alpha"] == a and r["n"] == n and r["e_sim"] is not None),
                         key=lambda r: r["overlap"])
            if not sel:
                continue
            dq = 0.006 * (list(markers).index(n) - 0.5)
            qs = [r["overlap"] + dq for r in sel]
            ax.errorbar(qs, [r["e_sim"] for r in sel], yerr=[r["e_sim_se"] or 0 for r in sel], fmt=mk,
                        color=colors[a], ms=4, mfc="none", label=f"flow N = {n}" if a == alphas[0] else None)
            bx.errorbar(qs, [r["mu_sim"] for r in sel], yerr=[r["mu_sim_se"] or 0 for r in sel], fmt=mk,
                        color=colors[a], ms=4, mfc="none")
    ax.set_xlabel("teacher overlap q (held fixed)")
    ax.set_ylabel("energy e = L/N")
    ax.set_title("lines: Kac-Rice e_typical on the sub-sphere (dashed: whole sphere)", fontsize=9)
    ax.legend(fontsize=7, ncol=3, loc="lower left", framealpha=0.7)
    ax.set_ylim(-0.9, None)               # room for the legend below the alpha = 3 points
    bx.set_xlabel("teacher overlap q (held fixed)")
    bx.set_ylabel("mu on the sub-sphere, alpha E[V' (yhat - q y)] / (1 - q^2)")
    bx.set_title("points: flow held at q (mean +- s.e. of the trapped replicas)", fontsize=9)
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    plt.close(fig)
