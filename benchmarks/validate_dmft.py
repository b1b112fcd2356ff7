"""DMFT (theory/dmft.py, docs/theory.md §5) against simulations averaged over starts.

Each start has its own data set (make_problem with seed = start index) and its own
random start; warm starts have q(0) = q0 exactly. Prints a table of energy, mu, q at a
few times: simulation mean +- standard error over starts, DMFT value +- its Monte Carlo
standard error. Run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1.

    python benchmarks/validate_dmft.py --alpha 4 --t-max 2 --n 1000 --starts 8 --q0 0 --samples 8000 --seeds 3
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from simulation.data import make_problem, random_starts
from simulation.flow import Integrator, StopRules, run_dynamics
from theory.dmft import DMFTGrid, solve_dmft


def warm_start(problem, q0: float, seed: int) -> np.ndarray:
    """A start on the sphere with overlap exactly q0 with the teacher (column vector)."""
    n = problem.n
    w = random_starts(n, 1, seed)[:, 0].astype(np.float64)
    ws = problem.w_star.astype(np.float64)
    perp = w - (w @ ws) / n * ws
    perp *= np.sqrt(n) / np.linalg.norm(perp)
    return (q0 * ws + np.sqrt(1 - q0 * q0) * perp)[:, None]


def simulate(alpha, n, starts, t_max, q0, times):
    E, MU, Q = [], [], []
    t0 = time.perf_counter()
    for b in range(starts):
        problem = make_problem(n, alpha, seed=1000 + b)
        W0 = warm_start(problem, q0, 2000 + b) if q0 > 0 else random_starts(n, 1, 2000 + b)
        res = run_dynamics(problem, W0, StopRules(t_max=t_max, success_overlap=1.0, energy_tol=0.0, grad_tol=0.0),
                           Integrator(rtol=1e-7, atol=1e-9), times=times)
        tr = res.trajectory
        E.append(tr.energy[:, 0]); MU.append(tr.mu[:, 0]); Q.append(np.abs(tr.q[:, 0]))
    return np.array(E), np.array(MU), np.array(Q), time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--alpha", type=float, default=4.0)
    p.add_argument("--t-max", type=float, default=2.0)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--starts", type=int, default=8)
    p.add_argument("--q0", type=float, default=0.0)
    p.add_argument("--samples", type=int, default=8000)
    p.add_argument("--dt-max", type=float, default=0.05)
    p.add_argument("--seeds", type=int, default=3, help="independent DMFT solutions (seeds 0..k-1)")
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    runs = [solve_dmft(a.alpha, a.t_max, a.q0, n_samples=a.samples, seed=seed,
                       grid=DMFTGrid(a.t_max, dt_max=a.dt_max)) for seed in range(a.seeds)]
    r = runs[0]
    times = r.t
    # DMFT value: mean over seeds; error: spread over seeds / sqrt(seeds) (this includes
    # the dynamical Monte Carlo noise, which the per-run standard error does not)
    dm = {key: np.array([getattr(x, key) for x in runs]) for key in ("energy", "mu", "q", "mu_multiplier")}
    E, MU, Q, wall = simulate(a.alpha, a.n, a.starts, a.t_max, a.q0, times)
    se = lambda x: x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])  # noqa: E731
    print(f"alpha={a.alpha} q0={a.q0} N={a.n} starts={a.starts} (sim {wall:.0f} s); "
          f"DMFT S={a.samples} steps={len(times)-1} ({r.wall_seconds:.0f} s, B {r.memory_bytes/1e6:.0f} MB)")
    print(f"{'t':>7} {'e_sim':>15} {'e_dmft':>15} {'mu_sim':>15} {'mu_dmft':>15} {'mu_mult':>8} {'q_sim':>14} {'q_dmft':>7}")
    rows = []
    for tt in [0, 0.01, 0.03, 0.1, 0.3, 0.5, 1, 2, 3, 5, 10, 20]:
        if tt > a.t_max:
            continue
        k = r.index(tt)
        row = dict(t=float(times[k]), e_sim=float(E[:, k].mean()), e_sim_se=float(se(E[:, k])),
                   e_dmft=float(dm["energy"][:, k].mean()), e_dmft_se=float(se(dm["energy"][:, k])),
                   mu_sim=float(MU[:, k].mean()), mu_sim_se=float(se(MU[:, k])),
                   mu_dmft=float(dm["mu"][:, k].mean()), mu_dmft_se=float(se(dm["mu"][:, k])),
                   mu_mult=float(dm["mu_multiplier"][:, k].mean()),
                   q_sim=float(Q[:, k].mean()), q_sim_se=float(se(Q[:, k])), q_dmft=float(dm["q"][:, k].mean()))
        rows.append(row)
        print(f"{row['t']:7.3f} {row['e_sim']:7.3f}+-{row['e_sim_se']:5.3f} {row['e_dmft']:7.3f}+-{row['e_dmft_se']:5.3f} "
              f"{row['mu_sim']:7.3f}+-{row['mu_sim_se']:5.3f} {row['mu_dmft']:7.3f}+-{row['mu_dmft_se']:5.3f} "
              f"{row['mu_mult']:8.3f} {row['q_sim']:6.3f}+-{row['q_sim_se']:5.3f} {row['q_dmft']:7.3f}", flush=True)
    from theory.spectrum import spectrum_summary
    spec = []
    for tt in [0.0, 0.1, 0.3, 1.0, 2.0, 5.0]:
        if tt <= a.t_max:
            sm = spectrum_summary(r.measure(tt))
            spec.append(dict(t=float(times[r.index(tt)]), bulk_edge=sm.bulk_edge, lambda_iso=sm.isolated_eigenvalue,
                             overlap2=sm.overlap2, bbp=sm.residuals.bbp))
            print(f"spectrum of the DMFT law (seed 0) at t={spec[-1]['t']:.3f}: edge {sm.bulk_edge:.3f}, "
                  f"lambda_iso {sm.isolated_eigenvalue}, overlap2 {sm.overlap2:.3f}, bbp residual {sm.residuals.bbp:.3f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(args=vars(a), rows=rows, spectrum=spec, dmft_seconds=[x.wall_seconds for x in runs], sim_seconds=wall), f, indent=1)


if __name__ == "__main__":
    main()
