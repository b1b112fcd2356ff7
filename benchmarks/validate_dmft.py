"""DMFT (theory.dmft, docs/theory.md §5) against simulations averaged over starts.

A thin script: arguments -> :func:`experiments.dmft.compare` -> a JSON report (the science,
the cache layout and the tables are in experiments/dmft.py). Prints a table of energy,
mu, q at a few times: simulation mean +- standard error over starts, DMFT mean +- standard
error over seeds. Run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1.

Every DMFT seed and every simulated start is stored in ``--cache`` (one atomic ``.npz``
each) and reused, so an interrupted run resumes, and ``--part dmft`` / ``--part sim`` can
run as two processes (one core each) before ``--part all`` prints the table.

    python benchmarks/validate_dmft.py --alpha 4 --t-max 2 --n 1000 --starts 8 --q0 0 --samples 8000 --seeds 3

``--sizes 1000:64 2000:32 4000:8`` (with ``--part all``) adds the finite-N check: the
simulation means at each N, their weighted least-squares extrapolation a + b/N to
N = infinity (eq. 5.29 of docs/theory.md: the leading finite-N correction of a
self-averaging mean), and the DMFT against that extrapolation.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.dmft import DMFTComparison, compare, comparison_from_args, size_starts
from theory.dmft import config_default
from theory.errors import InputError
from theory.io import atomic_write_text

DEFAULTS = DMFTComparison()


def _size_starts(text: str) -> tuple[int, int]:
    try:
        return size_starts(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main():
    d = DEFAULTS
    p = argparse.ArgumentParser()
    p.add_argument("--alpha", type=float, default=d.alpha)
    p.add_argument("--t-max", type=float, default=d.t_max)
    p.add_argument("--n", type=int, default=d.n)
    p.add_argument("--starts", type=int, default=d.starts)
    p.add_argument("--q0", type=float, default=d.q0)
    p.add_argument("--samples", type=int, default=d.samples)
    p.add_argument("--dt-max", type=float, default=d.dt_max)
    p.add_argument("--dt0", type=float, default=d.dt0, help="first step of the grid (eq. 5.13)")
    p.add_argument("--growth", type=float, default=d.growth, help="step growth factor of the grid")
    p.add_argument("--y-scale", type=float, default=None,
                   help="importance sampling of the label, y ~ N(0, y_scale^2) (eq. 5.27; default as in "
                        "DMFTConfig: 2 at q0 < 0.2, 1 above; 1: plain)")
    p.add_argument("--stein-rcond", type=float, default=config_default("stein_rcond"),
                   help="Stein projection of the memory kernel (DMFTConfig.stein_rcond; default "
                        f"{config_default('stein_rcond'):g} as in DMFTConfig; 0: off)")
    p.add_argument("--seeds", type=int, default=d.seeds, help="independent DMFT solutions (seeds 0..k-1)")
    p.add_argument("--rtol", type=float, default=d.rtol, help=f"flow tolerance of the simulation (default {d.rtol:g})")
    p.add_argument("--cache", type=Path, default=Path("results/dmft"), help="per-seed / per-start files")
    p.add_argument("--part", choices=("all", "dmft", "sim"), default="all",
                   help="compute only the DMFT or only the simulations (fill the cache), or all and compare")
    p.add_argument("--sizes", nargs="*", type=_size_starts, default=[], metavar="N:STARTS",
                   help="also compare with simulations at these sizes extrapolated to N = infinity "
                        "(e.g. 1000:64 2000:32 4000:8)")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--figure", metavar="PNG", help="write e, mu, |q| against t, DMFT vs simulation")
    a = p.parse_args()
    try:
        c = comparison_from_args(**{**vars(a), "sizes": tuple(a.sizes)})
        a.y_scale = c.y_scale
        report = compare(c, a.cache, a.part, a.figure)
    except InputError as exc:
        raise SystemExit(str(exc)) from None
    if report is not None and a.json:
        atomic_write_text(a.json, json.dumps(dict(args={k: str(v) for k, v in vars(a).items()}, **report), indent=1))


if __name__ == "__main__":
    main()
