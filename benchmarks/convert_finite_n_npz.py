"""One-off conversion of the finite-N study's first runner's files into sweep files.

The study's runs were first stored by a runner of their own (benchmarks/finite_n_success.py
before the split into theory/simulation/experiments: ``run_point``, one ``n{N}_a{alpha}.npz`` per point, and ``horizon_check``,
``horizon_n{N}_a{alpha}.npz``). This script writes the same runs as sweep files
(``simulation.sweep`` format) with the configuration the study now runs
(:func:`experiments.finite_n.study_config`, explicit seeds point_seed(N, alpha) + j), so
that ``benchmarks/finite_n_success.py`` resumes them (nothing left to run) and any start
is rerun exactly by a one-start sweep with its seed (``--seeds S``, the study's options).

What the old files did not store is NaN and said so in the attrs: ``final_grad_norm``
everywhere; for the horizon reruns also ``final_energy``, and ``final_overlap`` is |q|
(the runner stored the absolute value). The initial overlaps q(0) are kept as the extra
variable ``initial_overlap``. Every parameter stored in an npz is checked against the
study's protocol before conversion.

    python benchmarks/convert_finite_n_npz.py --folder results/finite_n_t100
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from experiments.finite_n import (ATOL, DTYPE, GRID, RTOL, SUCCESS_OVERLAP, T_MAX, horizon_path, point_seed,
                                  study_config, sweep_path)
from simulation.sweep import SweepConfig, empty_dataset, write_dataset

RUNNER = "benchmarks/finite_n_success.py (run_point / horizon_check, before issue 16)"


def last_commit(path: Path) -> str:
    """Hash of the last commit that changed ``path`` ("unknown" outside git)."""
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%H", "--", str(path)], capture_output=True, text=True,
                             check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out or "unknown"


def check_protocol(d, path: Path, t_max: float = T_MAX) -> None:
    expected = dict(t_max=t_max, success_q=SUCCESS_OVERLAP, rtol=RTOL, atol=ATOL)
    for key, value in expected.items():
        if key in d.files and float(d[key]) != value:
            raise SystemExit(f"{path}: {key} = {float(d[key])} differs from the protocol's {value}")
    if "dtype" in d.files and str(d["dtype"]) != DTYPE:
        raise SystemExit(f"{path}: dtype {d['dtype']} differs from the protocol's {DTYPE}")


def convert_points(folder: Path, n: int) -> Path:
    """The per-point npz files of one N -> one sweep file (alpha grid GRID[n])."""
    files = {a: folder / f"n{n}_a{a:g}.npz" for a in GRID[n]}
    starts = {a: int(np.load(p)["seeds"].size) for a, p in files.items()}
    if len(set(starts.values())) != 1:
        raise SystemExit(f"N={n}: points have different start counts {starts}")
    config = study_config(n, next(iter(starts.values())))
    commits = sorted({last_commit(p) for p in files.values()})
    ds = empty_dataset(config, converted_from=f"{', '.join(p.name for p in files.values())} written by {RUNNER}",
                       converted_at_commit=", ".join(commits),
                       not_stored="final_grad_norm (NaN: the runner did not store it)")
    ds["initial_overlap"] = (("alpha", "n", "start"), np.full(config.shape, np.nan),
                             {"long_name": "q(0) = <W(0), W*>/N of the start (kept from the runner's q0)"})
    for i, a in enumerate(config.alpha):
        with np.load(files[a]) as d:
            check_protocol(d, files[a])
            seeds = d["seeds"]
            if not np.array_equal(seeds, point_seed(n, a) + np.arange(seeds.size)) or int(d["n"]) != n \
                    or float(d["alpha"]) != a:
                raise SystemExit(f"{files[a]}: seeds or (N, alpha) are not the study's")
            status = d["status"].astype(str)
            success = status == "success"
            if not np.array_equal(success, np.abs(d["q"]) >= SUCCESS_OVERLAP):
                raise SystemExit(f"{files[a]}: status success disagrees with |q| >= {SUCCESS_OVERLAP}")
            ds["status"].values[i, 0] = status.astype(object)
            ds["success"].values[i, 0] = success
            ds["final_overlap"].values[i, 0] = d["q"]
            ds["final_energy"].values[i, 0] = d["energy"]
            ds["stop_time"].values[i, 0] = d["stop_time"]
            ds["wall_seconds"].values[i, 0] = d["wall"]
            ds["initial_overlap"].values[i, 0] = d["q0"]
    return write_dataset(ds, sweep_path(folder, n))


def convert_horizon(folder: Path, path: Path) -> Path:
    """A horizon npz (timeouts of one point rerun to t_long) -> a sweep file over their seeds."""
    n, alpha = path.stem.removeprefix("horizon_n").split("_a")
    n, alpha = int(n), float(alpha)
    with np.load(path) as d:
        t_long = float(d["t_long"])
        check_protocol(d, path, t_long)
        seeds = [int(s) for s in d["seeds"]]
        config = SweepConfig(n=(n,), alpha=(alpha,), starts=len(seeds), seeds=[[seeds]], t_max=t_long,
                             success_overlap=SUCCESS_OVERLAP, rtol=RTOL, atol=ATOL, dtype=DTYPE, time_grid="none")
        ds = empty_dataset(config, converted_from=f"{path.name} written by {RUNNER}",
                           converted_at_commit=last_commit(path),
                           not_stored="final_energy, final_grad_norm (NaN); final_overlap is |q| (the runner "
                                      "stored the absolute value)",
                           rerun_of=f"the first {len(seeds)} timeouts at t = {T_MAX:g} of {sweep_path(folder, n).name}")
        status = d["status"].astype(str)
        ds["status"].values[0, 0] = status.astype(object)
        ds["success"].values[0, 0] = status == "success"
        ds["final_overlap"].values[0, 0] = d["q"]
        ds["stop_time"].values[0, 0] = d["stop_time"]
        ds["wall_seconds"].values[0, 0] = d["wall"]
        ds["overlap_at_first_t_max"] = (("alpha", "n", "start"), np.abs(d["q_at_tmax"])[None, None, :],
                                        {"long_name": f"|q| at t = {T_MAX:g} in the study's sweep"})
    return write_dataset(ds, horizon_path(folder, n, alpha))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", default="results/finite_n_t100")
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    for n in GRID:
        print("wrote", convert_points(folder, n))
    for path in sorted(folder.glob("horizon_n*_a*.npz")):
        print("wrote", convert_horizon(folder, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
