"""A direct count of the local minima at small N, against the annealed Kac-Rice complexity.

docs/theory.md §8 predicts E N_min(e) ~ exp(N Sigma(e)) at q = 0: the most numerous minima sit
at e_typical (beta = 0, Sigma maximal) and their number grows as exp(N Sigma(e_typical)). The
count is made on the sphere orthogonal to W* (the orthogonal protocol, simulation.protocols:
q = 0 exactly, so no start is lost to the signal), where the minima are those of L restricted
to q = 0, the same annealed count at q = 0 (§8.10, eq. 8.24). For small N (16-48), many random
starts per data set are run to a stop by the flow of :mod:`simulation` on the reduced problem,
each stop is refined by Riemannian Newton steps (eq. 1.6 Hessian, dense), classified by its
tangent Hessian, and the minima are deduplicated modulo W -> -W. Per data set: the distinct minima, their energies and how many
starts reached each (basin weight). Two averages of the energy separate what the flow does
from what the landscape holds: over starts (where the flow stops) and over distinct minima
(where the minima are). Finding every minimum needs the starts to outnumber the minima by far;
the count is a lower bound (``new_in_last_half`` says how many were first seen in the second
half of the starts).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
from scipy.linalg import eigh, null_space

from theory.loss import Loss
from theory.statistics import standard_error

__all__ = ["newton_refine", "count_minima", "count_table"]


def newton_refine(X: np.ndarray, y: np.ndarray, w: np.ndarray, loss: Loss, *, tol: float = 1e-11,
                  max_steps: int = 30) -> dict:
    """Riemannian Newton on the sphere |w|^2 = N for one state (dense, small N).

    Step: d = -H_t^{-1} g_t in an orthonormal basis of the tangent space, H_t the tangent Hessian
    of eq. 1.6 (X^T diag(V'') X - mu), then w <- sqrt(N) (w + B d)/|w + B d|. Returns w, energy,
    q-free quantities: grad_norm (|g|/sqrt N), hessian_min (lowest tangent eigenvalue), steps,
    converged (grad_norm < tol)."""
    n = w.size
    w = w * math.sqrt(n) / np.linalg.norm(w)
    steps = 0
    for steps in range(max_steps + 1):
        yhat = X @ w
        dv = loss.dV(yhat, y)
        grad = X.T @ dv
        mu = float(w @ grad) / n
        rgrad = grad - mu * w
        gnorm = float(np.linalg.norm(rgrad) / math.sqrt(n))
        B = null_space(w[None, :])
        Ht = B.T @ ((X.T * loss.d2V(yhat, y)) @ X) @ B - mu * np.eye(n - 1)
        if gnorm < tol or steps == max_steps:
            break
        try:
            d = -np.linalg.solve(Ht, B.T @ rgrad)
        except np.linalg.LinAlgError:
            break
        w = w + B @ d
        w *= math.sqrt(n) / np.linalg.norm(w)
    lam = eigh(Ht, eigvals_only=True)
    return {"w": w, "energy": float(loss.V(X @ w, y).sum() / n), "grad_norm": gnorm, "mu": mu,
            "hessian_min": float(lam[0]), "steps": steps, "converged": gnorm < tol}


def count_minima(n: int, alpha: float, data_seed: int, starts: int, *, t_max: float = 2000.0,
                 same: float = 1e-8, raw_same: float = 1e-5) -> dict:
    """Distinct local minima at q = 0 of one data set (dimension N, M = alpha N) found from
    ``starts`` random starts of the orthogonal flow.

    Returns a dict: n, alpha, data_seed, starts, status_counts of the flow, saddles (refined
    stops with a negative tangent eigenvalue), unrefined (Newton did not converge), minima
    (list of dicts: energy e = L/N, mu, hessian_min, hits = starts that reached it),
    new_in_last_half, wall_seconds. Two states are the same minimum when |<w1, w2>|/|w|^2 > 1 - ``same``
    after refinement; a flow stop within 1 - ``raw_same`` of a refined minimum is counted as a hit on
    it without refinement."""
    from simulation import Integrator, StopRules, make_problem, random_starts, run_dynamics
    from simulation.protocols import OrthogonalComplement
    from theory.loss import QUARTIC

    t0 = time.time()
    prob = make_problem(n, alpha, seed=data_seed, dtype="float64")
    comp = OrthogonalComplement.of(prob)
    W0 = comp.reduce(random_starts(n, starts, seed=data_seed + 1, dtype="float64"))
    run = run_dynamics(comp.problem, W0, StopRules(t_max=t_max, success_overlap=1.0), Integrator(),
                       batching="independent")
    X, y = comp.problem.X, comp.problem.y
    dim = X.shape[1]
    found: list[dict] = []
    reps = np.empty((dim, 0))                 # refined minima, columns on |w|^2 = N - 1
    saddles = unrefined = new_late = 0
    for b in range(starts):
        w = run.W[:, b]
        near = np.abs(reps.T @ w) / dim > 1 - raw_same if reps.shape[1] else np.zeros(0, bool)
        if near.any():                        # a stop next to a known minimum: the same one
            found[int(np.argmax(near))]["hits"] += 1
            continue
        ref = newton_refine(X, y, w, QUARTIC)
        if not ref["converged"]:
            unrefined += 1
            continue
        if ref["hessian_min"] <= 0:
            saddles += 1
            continue
        same_as = np.abs(reps.T @ ref["w"]) / dim > 1 - same if reps.shape[1] else np.zeros(0, bool)
        if same_as.any():
            found[int(np.argmax(same_as))]["hits"] += 1
            continue
        reps = np.column_stack([reps, ref["w"]])
        found.append({"energy": ref["energy"] * dim / n,          # reduced problem: L/(N-1) -> L/N
                      "mu": ref["mu"] * dim / n, "hessian_min": ref["hessian_min"], "hits": 1})
        new_late += b >= starts // 2
    return {"n": n, "alpha": float(alpha), "data_seed": data_seed, "starts": starts,
            "status_counts": {s: int(np.sum(np.asarray(run.status) == s)) for s in set(map(str, run.status))},
            "saddles": saddles, "unrefined": unrefined, "minima": found,
            "new_in_last_half": int(new_late), "wall_seconds": time.time() - t0}


def _energy_ratio(record: dict) -> float:
    e = np.array([m["energy"] for m in record["minima"]])
    h = np.array([m["hits"] for m in record["minima"]], float)
    return float((e * h).sum() / h.sum() / e.mean())


def _mean_se(values: Sequence[float]) -> tuple[float | None, float | None]:
    v = np.asarray(values, float)
    if v.size == 0:
        return None, None
    return float(v.mean()), (float(standard_error(v)) if v.size > 1 else None)


def count_table(records: list[dict], sigma_typical: float | None = None) -> list[dict]:
    """Per N: the mean number of distinct minima over data sets (annealed) and the mean
    of its log (quenched), their (1/N) logs, the slopes between successive N (prefactors of the
    form N^g cancel up to g log(N2/N1)/(N2 - N1)), and the energy averaged over distinct minima
    against the energy averaged over starts (basin weights), and per data set the ratio of the
    two (``ratio_starts_to_minima``, mean and s.e. over data sets: below 1 when the flow's basins
    favour the lower minima)."""
    rows = []
    for n in sorted({r["n"] for r in records}):
        rs = [r for r in records if r["n"] == n]
        counts = np.array([len(r["minima"]) for r in rs], float)
        e_min = np.concatenate([[m["energy"] for m in r["minima"]] for r in rs]) if counts.sum() else np.array([])
        hits = np.concatenate([[m["hits"] for m in r["minima"]] for r in rs]) if counts.sum() else np.array([])
        # per data set: energy over starts / energy over distinct minima (the labels' scale cancels)
        ratios = [_energy_ratio(r) for r in rs if r["minima"]]
        rows.append({"n": n, "data_sets": len(rs), "starts": rs[0]["starts"], "mean_count": float(counts.mean()),
                     "se_count": float(standard_error(counts)) if len(rs) > 1 else None,
                     "log_mean_over_n": float(math.log(counts.mean()) / n) if counts.mean() > 0 else None,
                     "mean_log_over_n": float(np.mean(np.log(np.maximum(counts, 1))) / n),
                     "e_over_minima": float(e_min.mean()) if e_min.size else None,
                     "e_over_starts": float((e_min * hits).sum() / hits.sum()) if e_min.size else None,
                     "ratio_starts_to_minima": _mean_se(ratios)[0], "ratio_se": _mean_se(ratios)[1],
                     "new_in_last_half": int(sum(r["new_in_last_half"] for r in rs)),
                     "sigma_typical": sigma_typical})
    for a, b in zip(rows, rows[1:]):
        if a["mean_count"] > 0 and b["mean_count"] > 0:
            b["slope_annealed"] = (math.log(b["mean_count"]) - math.log(a["mean_count"])) / (b["n"] - a["n"])
            b["slope_quenched"] = (b["mean_log_over_n"] * b["n"] - a["mean_log_over_n"] * a["n"]) / (b["n"] - a["n"])
    return rows


def run_counts(sizes: Sequence[int], alpha: float, data_sets: int, starts: int, done: list[dict],
               save: Callable[[list[dict]], None], log: Callable[[str], None] = print) -> list[dict]:
    """Resumable driver: count_minima for every (N, data set) not yet in ``done``; ``save`` after each."""
    records = list(done)
    have = {(r["n"], r["alpha"], r["data_seed"]) for r in records}
    for n in sizes:
        for k in range(data_sets):
            seed = 900_000 + 1000 * n + 2 * k
            if (n, float(alpha), seed) in have:
                continue
            rec = count_minima(n, alpha, seed, starts)
            records.append(rec)
            save(records)
            log(f"N={n} alpha={alpha:g} data set {k}: {len(rec['minima'])} minima, "
                f"{rec['saddles']} saddles, {rec['new_in_last_half']} new in the last half ({rec['wall_seconds']:.0f} s)")
    return records
