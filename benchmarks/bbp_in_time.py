"""alpha_BBP(t) and the growth exponent of the overlap from laws along trajectories
(issue 5 items 3-4, docs/theory.md §4.3-4.4, docs/validation.md).

For each N and alpha, ``--starts`` trajectories (fresh data and start each, float32
flow, rtol 1e-3) are tracked theory-only (no Lanczos) at a log grid of times: the
empirical law of (yhat, y, s) with its extreme atoms split off (eq. 4.3) gives
lambda_iso(t), overlap2(t) and the BBP residual (eq. 2.9) at each time. Saved per (N,
alpha) in ``--out`` (resumable). ``--report`` builds, from the saved files:

* the (alpha, t) diagram: the fraction of uninformed trajectories (|q| < 0.3) whose law
  has an isolated eigenvalue toward e, and alpha_BBP(t) where the mean BBP residual
  crosses 0 (linear interpolation in alpha);
* Lambda_N(alpha) = int_0^T r(t) dt, r(t) = mean over uninformed trajectories of
  max(0, -lambda_iso(t)) (eq. 4.6), and the mechanism prediction of the success
  probability (eq. 4.7) P = erfc(q* sqrt(N) exp(-Lambda) / sqrt 2) and of alpha_c(N)
  (eq. 4.8: Lambda_N(alpha_c) = log(q* sqrt(N) / 0.674)).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bbp_in_time.py --out results/bbp_t
    python benchmarks/bbp_in_time.py --out results/bbp_t --report
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from simulation.data import make_problem, random_starts
from simulation.flow import Integrator
from simulation.tracking import Q_INFORMED, track
from theory.io import atomic_savez, atomic_write_text
from theory.spectrum import bbp_threshold

TIMES = (0.0, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)
ALPHAS = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0)


def run_point(n, alpha, starts):
    rows = {k: [] for k in ("q", "iso", "ov2", "bbp", "edge", "energy", "nsplit", "iso_raw")}
    for j in range(starts):
        seed = 9_000_000 + 10_000 * n + 100 * int(alpha * 10) + j
        p = make_problem(n, alpha, seed, "float32")
        w0 = random_starts(n, 1, seed, "float32")[:, 0]
        tr = track(p, w0, TIMES, lanczos=False, integrator=Integrator(rtol=1e-3, atol=1e-4))
        nan = lambda v: np.nan if v is None else v  # noqa: E731
        rows["q"].append([pt.q for pt in tr.points])
        rows["iso"].append([nan(pt.iso_theory_split) for pt in tr.points])
        rows["iso_raw"].append([nan(pt.iso_theory) for pt in tr.points])
        rows["ov2"].append([pt.overlap2_theory_split for pt in tr.points])
        rows["bbp"].append([pt.bbp_residual_split for pt in tr.points])
        rows["edge"].append([pt.edge_theory_split for pt in tr.points])
        rows["energy"].append([pt.energy for pt in tr.points])
        rows["nsplit"].append([pt.n_split for pt in tr.points])
    return {k: np.array(v, dtype=float) for k, v in rows.items()}


def load(out: Path):
    data = {}
    for path in sorted(out.glob("n*_a*.npz")):
        with np.load(path) as d:
            data[(int(d["n"]), float(d["alpha"]))] = {k: d[k] for k in d.files}
    return data


def growth_rate(d):
    """r(t): mean over uninformed trajectories of max(0, -lambda_iso(t)); NaN if none."""
    unin = np.abs(d["q"]) < Q_INFORMED
    rate = np.where(np.isnan(d["iso"]), 0.0, np.maximum(0.0, -d["iso"]))
    cnt = unin.sum(axis=0)
    r = np.where(cnt > 0, (rate * unin).sum(axis=0) / np.maximum(cnt, 1), np.nan)
    return r, cnt


def Lambda(t, r):
    """Trapezoid integral of r over t, stopping at the first NaN (eq. 4.6)."""
    ok = np.isfinite(r)
    last = len(r) if ok.all() else int(np.argmin(ok))
    if last < 2:
        return 0.0
    return float(np.sum(0.5 * (r[1:last] + r[:last - 1]) * np.diff(t[:last])))


def report(out: Path, fig_dir: Path, q_star: float = 1.0) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.special import erfc

    data = load(out)
    t = np.array(TIMES)
    ns = sorted({n for n, _ in data})
    res = {"times": list(TIMES), "q_star": q_star, "by_n": {}}
    for n in ns:
        alphas = sorted(a for m, a in data if m == n)
        frac, mbbp, lam = [], [], []
        for a in alphas:
            d = data[(n, a)]
            unin = np.abs(d["q"]) < Q_INFORMED
            has = np.isfinite(d["iso"]) & unin
            frac.append(np.where(unin.sum(0) > 0, has.sum(0) / np.maximum(unin.sum(0), 1), np.nan))
            mbbp.append(np.array([np.mean(d["bbp"][unin[:, k], k]) if unin[:, k].any() else np.nan
                                  for k in range(t.size)]))
            r, _ = growth_rate(d)
            lam.append(Lambda(t, r))
        frac, mbbp = np.array(frac), np.array(mbbp)
        a_bbp = []
        for k in range(t.size):
            col = mbbp[:, k]
            cross = bbp_threshold(alphas, col)
            if cross is not None:
                a_bbp.append(cross)
            elif np.all(col[np.isfinite(col)] > 0):
                a_bbp.append(-np.inf)  # below the grid
            else:
                a_bbp.append(np.nan)   # no crossing inside the grid
        p_pred = [float(erfc(q_star * np.sqrt(n) * np.exp(-L) / np.sqrt(2))) for L in lam]
        target = np.log(q_star * np.sqrt(n) / 0.6745)
        ac = np.nan
        for i in range(len(alphas) - 1):
            if lam[i] <= target < lam[i + 1]:
                ac = alphas[i] + (alphas[i + 1] - alphas[i]) * (target - lam[i]) / (lam[i + 1] - lam[i])
        res["by_n"][n] = dict(alphas=alphas, Lambda=lam, p_pred=p_pred, alpha_c_pred=ac,
                              alpha_bbp_t=[None if not np.isfinite(x) else float(x) for x in a_bbp],
                              frac_iso=frac.tolist(), mean_bbp=mbbp.tolist(),
                              starts=[int(data[(n, a)]["q"].shape[0]) for a in alphas])
        # (alpha, t) diagram
        fig, ax = plt.subplots(figsize=(7, 4.6))
        tp = np.where(t > 0, t, t[1] / 2)
        mesh = ax.pcolormesh(tp, alphas, frac, shading="nearest", cmap="viridis", vmin=0, vmax=1)
        fig.colorbar(mesh, ax=ax, label="fraction with an isolated eigenvalue")
        ab = np.array(a_bbp, dtype=float)
        ax.plot(tp[np.isfinite(ab)], ab[np.isfinite(ab)], "w-o", lw=2, label=r"$\alpha_{BBP}(t)$ (mean BBP residual = 0)")
        ax.set_xscale("log")
        ax.set_xlabel(f"flow time t (t = 0 drawn at {tp[0]:.2g})")
        ax.set_ylabel("alpha = M / N")
        ax.set_title(f"BBP in time, N={n}: states with |q| < {Q_INFORMED:g} (white: none left)", fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        fig.savefig(fig_dir / f"alpha_bbp_t_n{n}.png", dpi=120)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4.6))
    tp = np.where(t > 0, t, t[1] / 2)
    for i, n in enumerate(ns):
        ab = np.array([np.nan if x is None else x for x in res["by_n"][n]["alpha_bbp_t"]], dtype=float)
        ax.plot(tp, ab, "o-", color=f"C{i}", label=f"N={n} ({min(res['by_n'][n]['starts'])}+ trajectories per alpha)")
    ax.set_xscale("log")
    ax.set_xlabel(f"flow time t (t = 0 drawn at {tp[0]:.2g})")
    ax.set_ylabel(r"$\alpha_{BBP}(t)$")
    ax.set_title("alpha above which the Hessian at time t has a spike toward the signal", fontsize=10)
    ax.text(0.02, 0.97, "above a curve: isolated eigenvalue (informative)\nbelow: spike merged in the bulk",
            transform=ax.transAxes, va="top", fontsize=8)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(fig_dir / "alpha_bbp_t.png", dpi=120)
    plt.close(fig)
    atomic_write_text(out / "report.json", json.dumps(res, indent=1, default=float))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/bbp_t")
    ap.add_argument("--n", type=int, nargs="*", default=[256, 512, 1024])
    ap.add_argument("--alpha", type=float, nargs="*", default=list(ALPHAS))
    ap.add_argument("--starts", type=int, default=6)
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--figures", default="figures")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.report:
        res = report(out, Path(args.figures))
        for n, r in res["by_n"].items():
            print(f"N={n}: Lambda(alpha) " + " ".join(f"{a:g}:{L:.2f}" for a, L in zip(r["alphas"], r["Lambda"]))
                  + f"; predicted alpha_c = {r['alpha_c_pred']:.2f}; P_pred " +
                  " ".join(f"{a:g}:{p:.2f}" for a, p in zip(r["alphas"], r["p_pred"])))
            print(f"   alpha_BBP(t): " + " ".join(f"{tt:g}:{'-' if x is None else f'{x:.2f}'}"
                                               for tt, x in zip(res["times"], r["alpha_bbp_t"])))
        return 0
    from tqdm import tqdm
    todo = [(n, a) for n in args.n for a in args.alpha if not (out / f"n{n}_a{a:g}.npz").exists()]
    for n, a in tqdm(todo, desc="bbp_t points", mininterval=10):
        t0 = time.perf_counter()
        d = run_point(n, a, args.starts)
        atomic_savez(out / f"n{n}_a{a:g}.npz", n=np.int64(n), alpha=np.float64(a), t=np.array(TIMES), **d)
        print(f"N={n} alpha={a:g}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
