"""Threshold-state theory (docs/theory.md §3) against trapped gradient-flow states.

A thin script over ``experiments.threshold`` (the science and its documentation live
there). Two stages, both reproducible (fixed seeds), run by hand (minutes to hours):

1. ``simulate``: gradient flow (float32, adaptive RKC, rtol 1e-5, t_max 2000) from random
   starts at each (N, alpha) of the plan, under the ``free`` protocol or the ``orthogonal``
   one (the flow restricted to W orthogonal to W*, ``run_dynamics(protocol=...)``); one
   labelled netCDF file per point in ``--out`` (atomic, provenance in its attrs); finished
   points (also the ``.npz`` files of older runs) are skipped.
2. ``compare``: the theory of every closure against the stored states; prints a table (or
   ``--json``) and writes ``--figure`` (PNG).

    OPENBLAS_NUM_THREADS=1 python benchmarks/validate_threshold.py simulate --out results/threshold
    python benchmarks/validate_threshold.py compare --states results/threshold --figure thr.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments.threshold import PROTOCOLS, compare, format_comparison, load_points, simulate


def main(argv: list[str] | None = None) -> int:
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
        simulate(args.out, args.protocol, args.n, log=lambda line: print(line, flush=True))
        return 0
    points = load_points(args.states)
    if not points:
        print(f"no point files in {args.states}", file=sys.stderr)
        return 2
    result = compare(points, args.figure)
    print(json.dumps(result, indent=1) if args.json else format_comparison(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
