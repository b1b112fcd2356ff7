"""Threshold-state theory (docs/theory.md §3) against trapped gradient-flow states.

Two stages, both reproducible (fixed seeds), run by hand (minutes to hours):

1. ``simulate``: gradient flow (float32, adaptive RKC, rtol 1e-5, t_max 2000) from random
   starts at each (N, alpha) of the plan; every replica that ends "trapped" is kept with
   its energy, overlap q, mu, rms gradient, the empirical law of (yhat, y), the lowest
   tangent-Hessian eigenvalues (Lanczos, k = 4) and, for N <= 1000, the full spectrum.
   One ``.npz`` per point in ``--out`` (atomic); finished points are skipped on a rerun.
   Two protocols. ``free``: the plain flow; at alpha >= 6 and N >= 1000 it almost always
   succeeds (finite-N escape, docs/validation.md), so trapped states are rare there.
   ``orthogonal``: the flow restricted to the sphere of W orthogonal to W*, run in
   coordinates of the (N-1)-dim complement (class OrthogonalFlow), labels y = X W*
   unchanged, starts projected. Its
   stationary states are the spurious minima seen with the signal direction switched off,
   the object of the threshold theory; every probe (laws, Hessian) uses the original X, so
   the lowest eigenvalue is that of the full tangent Hessian and may be negative (a BBP
   direction toward the signal). Point files ``n{N}_a{alpha}_orth.npz``.
2. ``compare``: the theory for every closure against the states: energies per N and
   extrapolated in N, mu, the bulk edge against the lowest eigenvalues, Kolmogorov
   distances between the predicted and empirical laws of |yhat|, and of D = V''(yhat, y);
   prints a table (or ``--json``) and writes ``--figure`` (PNG).

    OPENBLAS_NUM_THREADS=1 python benchmarks/validate_threshold.py simulate --out results/threshold
    python benchmarks/validate_threshold.py compare --states results/threshold --figure thr.png
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from theory.statistics import kolmogorov_distance

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
PROTOCOLS = ("free", "orthogonal")
SEED = 20260


def point_path(out: Path, n: int, alpha: float, protocol: str = "free") -> Path:
    return out / (f"n{n}_a{alpha:g}.npz" if protocol == "free" else f"n{n}_a{alpha:g}_orth.npz")


class OrthogonalFlow:
    """The flow restricted to W orthogonal to W*, exactly: coordinates in the (N-1)-dim
    complement of u = W*/|W*| given by a Householder reflection H (H e_N = u, so columns
    1..N-1 of H span the complement). Reduced data X'' = (X H)[:, :N-1] sqrt(N/(N-1)) and
    reduced states W'' = (H W)[:N-1] sqrt((N-1)/N) have |W''|^2 = N-1 and <x'', W''> =
    <x, W>: the same loss, on a sphere the flow cannot leave (projecting the rows of X
    instead leaks: the W* component then obeys dc/dt = mu c and rounding grows it when
    mu > 0; it did at N = 500, alpha = 7). The reduced flow is the projected flow with time
    scaled by N/(N-1); observables are recomputed on the original problem after lifting.
    """

    def __init__(self, prob):
        from simulation import problem_from_arrays
        from simulation.probes import TangentBasis

        n = prob.n
        u = prob.w_star.astype(np.float64) / np.linalg.norm(prob.w_star.astype(np.float64))
        v = u.copy()
        v[-1] -= 1.0
        # the Householder vector u - e_N (not TangentBasis.at's sign choice): the reflection
        # the stored runs were made with
        self.basis = TangentBasis(v / np.linalg.norm(v))
        self.n = n
        Xr = self.basis.coordinates(prob.X.astype(np.float64).T).T * np.sqrt(n / (n - 1))
        # W* has no reduced component; the flow's stop rule needs some teacher, so give it
        # the first reduced axis and switch the overlap rule off (success_overlap = 1)
        dummy = np.zeros(n - 1)
        dummy[0] = np.sqrt(n - 1)
        # C order as the other problems (a transposed X would change the BLAS path and rounding)
        self.problem = problem_from_arrays(np.ascontiguousarray(Xr, dtype=prob.X.dtype), prob.y, w_star=dummy)
        self.dtype = prob.X.dtype

    def reduce(self, W: np.ndarray) -> np.ndarray:
        """Full states -> reduced ones (the W* component is dropped, the rest put on the sphere)."""
        Wr = self.basis.coordinates(W.astype(np.float64))
        Wr *= np.sqrt(self.n - 1) / np.linalg.norm(Wr, axis=0)
        return Wr.astype(self.dtype)

    def lift(self, Wr: np.ndarray) -> np.ndarray:
        """Reduced states -> full ones on |W|^2 = N, orthogonal to W*."""
        return self.basis.embed(Wr.astype(np.float64) * np.sqrt(self.n / (self.n - 1)))


def simulate_point(n: int, alpha: float, reps: int, t_max: float = 2000.0, protocol: str = "free") -> dict:
    """Flows of one point; the trapped replicas' observables and laws."""
    from simulation import (Integrator, StopRules, full_spectrum, lowest_eigenpairs, make_problem,
                            random_starts, run_dynamics, state_measure)
    from simulation.landscape import evaluate, teacher_overlap

    seed = SEED + 1000 * int(round(10 * alpha)) + n + (0 if protocol == "free" else 7)
    prob = make_problem(n, alpha, seed=seed, dtype="float32")
    W0 = random_starts(n, reps, seed=seed, dtype="float32")
    p64 = prob.astype("float64")
    if protocol == "orthogonal":
        orth = OrthogonalFlow(prob)
        r = run_dynamics(orth.problem, orth.reduce(W0), StopRules(t_max=t_max, success_overlap=1.0),
                         Integrator(rtol=1e-5))
        W = orth.lift(r.W)
        final = evaluate(p64, W)  # energy per N and mu of the original problem
        energy, mu, q = final.energy, final.mu, teacher_overlap(p64, W)
    else:
        r = run_dynamics(prob, W0, StopRules(t_max=t_max), Integrator(rtol=1e-5))
        W, energy, mu, q = r.W.astype(np.float64), r.energy, r.mu, r.q
    out = dict(n=n, alpha=alpha, seed=seed, protocol=protocol, status=np.array(r.status, dtype=str),
               energy=energy, q=q, mu=mu, stop_time=r.stop_time)
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


def simulate(out: Path, protocol: str = "free", sizes=None) -> None:
    from theory.io import atomic_savez

    out.mkdir(parents=True, exist_ok=True)
    plan = PLAN if protocol == "free" else PLAN_ORTHOGONAL
    for n, alphas, reps in plan:
        if sizes and n not in sizes:
            continue
        for alpha in alphas:
            path = point_path(out, n, alpha, protocol)
            if path.exists():
                continue
            t0 = time.time()
            rec = simulate_point(n, alpha, reps, protocol=protocol)
            rec["wall_seconds"] = time.time() - t0
            atomic_savez(path, **rec)
            e_tr = rec["energy"][rec["trapped"]]
            print(f"[{protocol}] N={n} alpha={alpha:g}: {len(rec['trapped'])}/{reps} trapped, e={np.round(e_tr, 4).tolist()} "
                  f"|q|={np.round(np.abs(rec['q'][rec['trapped']]), 3).tolist()} ({rec['wall_seconds']:.0f} s)",
                  flush=True)


def own_law_edge(law: np.ndarray, alpha: float, mu: float) -> float:
    """Bulk edge (§2) of a trapped state's own empirical law and mu (s is not stored, so
    no spike: at |q| > 0 it would need s = sqrt(N) <x, e>, not y)."""
    from theory.measure import Measure
    from theory.spectrum import spectrum_summary

    return spectrum_summary(Measure.empirical(law[0], law[1], alpha=alpha, mu=float(mu))).bulk_edge


def finite_m_edge(state, n: int, samples: int = 8, seed: int = 0) -> float:
    """Mean §2 edge of M = alpha N atoms drawn from the predicted law (the finite-M gap,
    docs/theory.md §3.6), with the closure's mu."""
    from theory.measure import Measure
    from theory.spectrum import spectrum_summary

    rng = np.random.default_rng(seed)
    m, M = state.measure, int(round(state.alpha * n))
    edges = []
    for _ in range(samples):
        idx = rng.choice(m.size, size=M, p=m.weights)
        edges.append(spectrum_summary(Measure.empirical(m.yhat[idx], m.y[idx], alpha=state.alpha, mu=state.mu)).bulk_edge)
    return float(np.mean(edges))


def compare(states: Path, figure: str | None, as_json: bool) -> int:
    from theory.threshold import CLOSURES, solve_threshold

    points = [dict(np.load(p, allow_pickle=False)) for p in sorted(states.glob("n*_a*.npz"))]
    for p in points:
        p["protocol"] = str(p.get("protocol", "free"))
    if not points:
        print(f"no point files in {states}", file=sys.stderr)
        return 2
    alphas = sorted({float(p["alpha"]) for p in points})
    theory = {c: {a: solve_threshold(a, closure=c) for a in alphas} for c in CLOSURES}
    rows = []
    for p in points:
        a, n, tr = float(p["alpha"]), int(p["n"]), p["trapped"]
        th = theory["marginal"][a]
        m = th.measure
        D_th = 6 * m.yhat**2 - 2 * m.y**2
        row = dict(n=n, alpha=a, protocol=p["protocol"], trapped=int(tr.size), replicas=int(p["status"].size))
        if tr.size:
            laws = p["laws"]
            yh, yy = np.abs(laws[:, 0, :]).ravel(), laws[:, 1, :].ravel()
            row.update(
                energy_mean=float(p["energy"][tr].mean()), energy_sem=float(p["energy"][tr].std(ddof=1) / np.sqrt(tr.size)) if tr.size > 1 else None,
                mu_mean=float(p["mu"][tr].mean()), abs_q_mean=float(np.abs(p["q"][tr]).mean()),
                lowest_mean=float(p["lowest"][:, 0].mean()),
                lowest_overlap2_mean=float(p["lowest_overlap2"][:, 0].mean()) if "lowest_overlap2" in p else None,
                ks_abs_yhat=kolmogorov_distance(yh, np.abs(m.yhat), m.weights),
                ks_D=kolmogorov_distance(6 * yh**2 - 2 * yy**2, D_th, m.weights),
                ks_V=kolmogorov_distance(0.5 * (yh**2 - yy**2) ** 2, 0.5 * (m.yhat**2 - m.y**2) ** 2, m.weights),
                edge_own_law=float(np.mean([own_law_edge(law, a, mu) for law, mu in zip(laws, p["mu"][tr])])),
                **{f"edge_finite_M_{c}": finite_m_edge(theory[c][a], n) for c in CLOSURES},
            )
        rows.append(row)
    th_rows = [dict(alpha=a, closure=c, energy=theory[c][a].energy, mu=theory[c][a].mu,
                    bulk_edge=theory[c][a].bulk_edge) for c in CLOSURES for a in alphas]
    extrap = extrapolate(rows, alphas)
    densities = density_comparison(points, theory, figure)
    if as_json:
        print(json.dumps(dict(simulation=rows, theory=th_rows, extrapolation=extrap, densities=densities), indent=1))
    else:
        rows.sort(key=lambda r: (r["protocol"], r["alpha"], r["n"]))
        print("proto N     alpha trapped  e_sim (sem)      mu_sim   lam_min  own-law  finiteM-marg finiteM-stat  |q|   KS|yhat| KS(D) KS(V)")
        for r in rows:
            if r["trapped"]:
                sem = r["energy_sem"] if r["energy_sem"] is not None else float("nan")
                print(f"{r['protocol'][:5]:<5s} {r['n']:<5d} {r['alpha']:<5g} {r['trapped']:>2d}/{r['replicas']:<3d} {r['energy_mean']:.4f} ({sem:.4f}) "
                      f"{r['mu_mean']:8.4f} {r['lowest_mean']:8.4f} {r['edge_own_law']:8.4f} {r['edge_finite_M_marginal']:10.4f} "
                      f"{r['edge_finite_M_stationary']:12.4f}  {r['abs_q_mean']:.3f} {r['ks_abs_yhat']:.3f}    {r['ks_D']:.3f} {r['ks_V']:.3f}")
        print("theory: alpha closure energy mu bulk_edge")
        for t in th_rows:
            print(f"  {t['alpha']:g} {t['closure']:<10s} {t['energy']:.4f} {t['mu']:.4f} {t['bulk_edge']:.3g}")
        print("extrapolation e(N) = e_inf + c N^(-x):")
        for key, fit in extrap.items():
            print(f"  alpha {key:<6s} sizes {fit['sizes']}: " + "; ".join(
                f"{k}: e_inf = {v['e_inf']:.3f} +- {v['e_inf_err']:.3f} (chi2/dof {v['chi2_per_dof']:.1f})"
                for k, v in fit.items() if k != "sizes"))
        print("full spectra of trapped states vs predicted density (Kolmogorov):", json.dumps(densities))
    if figure:
        plot(rows, theory, alphas, figure)
    return 0


def density_comparison(points, theory, figure: str | None) -> dict:
    """Kolmogorov distance between the pooled full spectra of the trapped states (N <= 1000)
    and the predicted threshold density of each closure; a figure per alpha with a spectrum."""
    from theory.spectrum import bulk_density

    out, panels = {}, []
    for p in points:
        if not p["spectra"].size:
            continue
        a, n = float(p["alpha"]), int(p["n"])
        lam = np.sort(p["spectra"].ravel())
        x = np.linspace(min(lam[0], 0.0) - 1.0, lam[-1] + 1.0, 3000)
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
    return out


def extrapolate(rows, alphas, exponents=(0.5, 2.0 / 3.0)) -> dict:
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


def plot(rows, theory, alphas, path: str) -> None:
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("simulate", help="run the flows (resumable)")
    s.add_argument("--out", type=Path, default=Path("results/threshold"))
    s.add_argument("--protocol", choices=PROTOCOLS, default="free", help="free flow or flow orthogonal to W*")
    s.add_argument("--n", type=int, nargs="+", default=None, help="only these sizes of the plan")
    c = sub.add_parser("compare", help="theory against the stored states")
    c.add_argument("--states", type=Path, default=Path("results/threshold"))
    c.add_argument("--json", action="store_true")
    c.add_argument("--figure", default=None, help="PNG: energies and mu against alpha")
    args = ap.parse_args(argv)
    if args.cmd == "simulate":
        simulate(args.out, args.protocol, args.n)
        return 0
    return compare(args.states, args.figure, args.json)


if __name__ == "__main__":
    sys.exit(main())
