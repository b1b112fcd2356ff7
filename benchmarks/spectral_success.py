"""Success of gradient flow from spectral starts vs random starts (issue 18, docs/theory.md §6.7).

Thin script: arguments -> experiments.spectral_success -> files in ``--out``.

    # 1. the prediction (DMFT from q0_spec; q0_c(alpha)), committed before any simulation
    OPENBLAS_NUM_THREADS=1 python benchmarks/spectral_success.py --theory
    # 2. the sweeps (resumable, one file per preprocessing and N, in this process)
    OPENBLAS_NUM_THREADS=1 python benchmarks/spectral_success.py --n 256 1024 4096
    OPENBLAS_NUM_THREADS=1 python benchmarks/spectral_success.py --random   # random starts, N = 256, alpha < 3
    # 3. the comparison from the stored files only (table, JSON, figure)
    python benchmarks/spectral_success.py --report

Protocol of every sweep: the finite-N study's (experiments.finite_n: float32, rtol 1e-2,
atol 1e-3, success |q| >= 0.9 by t = 100, recording t = 0 only; seeds point_seed(N, alpha) + j).
Any start reruns alone, e.g. ``python -m simulation run --init spectral --preprocess trimmed ...``
or a one-start sweep with ``--seeds``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments import finite_n
from experiments import spectral_success as study
from simulation.sweep import run_sweep
from theory.io import atomic_write_text, provenance

#: low-alpha random-start reference (the stored random study starts at alpha = 3).
RANDOM_N, RANDOM_ALPHAS, RANDOM_STARTS = 256, (1.0, 1.5, 2.0, 2.5), 32


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/spectral_success", help="folder of the theory file and sweeps")
    ap.add_argument("--random-folder", default="results/finite_n_t100", help="the random-start study's sweeps")
    ap.add_argument("--n", type=int, nargs="*", default=[256, 1024, 4096])
    ap.add_argument("--preprocess", nargs="*", default=list(study.PREPROCESSINGS))
    ap.add_argument("--starts", type=int, default=None, help="starts per point (default: study.STARTS[N])")
    ap.add_argument("--theory", action="store_true", help="compute the prediction file (DMFT) and exit")
    ap.add_argument("--random", action="store_true", help="the low-alpha random-start points at N = 256")
    ap.add_argument("--extra", action="store_true", help="the alphas of study.EXTRA_GRID (own files)")
    ap.add_argument("--paired", nargs=3, metavar=("PREPROCESS", "N", "ALPHA"), default=None,
                    help="spectral vs independent start of the same q0 on the same data (eq. 6.10's test)")
    ap.add_argument("--report", action="store_true", help="only read stored files: table, JSON, figure")
    ap.add_argument("--figure", default="figures/spectral_success.png")
    ap.add_argument("--workers", type=int, default=0, help="sweep worker processes (default 0: this process)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report:
        res = study.report(out, args.random_folder, fig_path=args.figure, out_json=out / "report.json")
        print("\n".join(study.format_report(res)))
        return 0
    if args.theory:
        study.theory_prediction(study.theory_path(out), refine=2)
        study.critical_q0_table(study.theory_path(out), steps=3)
        print(json.dumps({k: v.get("alpha_spec_bracket") for k, v in
                          json.loads(study.theory_path(out).read_text())["preprocessings"].items()}))
        return 0
    if args.paired:
        pre, n, alpha = args.paired[0], int(args.paired[1]), float(args.paired[2])
        path = out / f"paired_{pre}_n{n}_a{alpha:g}.json"
        rows = study.paired_warm_starts(pre, n, alpha, args.starts or 12, progress=True)
        atomic_write_text(path, json.dumps(dict(provenance=provenance(command="benchmarks/spectral_success.py --paired",
                                                                      preprocess=pre, n=n, alpha=alpha),
                                                rows=rows), indent=1))
        return 0
    if args.extra:
        for pre, by_n in study.EXTRA_GRID.items():
            for n in args.n:
                if n in by_n:
                    config = study.study_config(pre, n, args.starts or study.STARTS[n], by_n[n])
                    run_sweep(config, study.extra_path(out, pre, n), workers=args.workers, progress=True)
        return 0
    if args.random:
        config = finite_n.study_config(RANDOM_N, RANDOM_STARTS, RANDOM_ALPHAS)
        run_sweep(config, out / f"random_n{RANDOM_N}.nc", workers=args.workers, progress=True)
        return 0
    for n in args.n:
        for pre in args.preprocess:
            config = study.study_config(pre, n, args.starts or study.STARTS[n])
            rep = run_sweep(config, study.sweep_path(out, pre, n), workers=args.workers, progress=True)
            for a, p in zip(config.alpha, rep.success_fraction[:, 0]):
                print(f"{pre} N={n} alpha={a:g}: P(success)={p:.3f} over {config.starts} starts", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
