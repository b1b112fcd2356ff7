"""State files: the final states of a run and everything needed to rebuild their data.

A state file is an ``.npz`` (written atomically) with the run parameters (n, m, alpha,
seed, dtype, loss, method, protocol), the final states ``W`` (N, B), per-replica outcomes, the
trajectory arrays, the labels ``y`` (a checksum of the data) and, for user-supplied
data only, ``X`` and ``w_star``. Data drawn from a seed are rebuilt from it (X is
M x N doubles: 190 MB at N = 2000, alpha = 6) and checked against the stored labels.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from theory.errors import InputError
from theory.io import atomic_savez, load_npz

from .data import Problem, make_problem, problem_from_arrays
from .flow import FlowResult

__all__ = ["save_state", "load_state", "SavedState"]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SavedState:
    """A state file read back: the data set and the arrays of the run."""

    problem: Problem
    W: np.ndarray
    status: np.ndarray
    loss: str
    arrays: dict
    protocol: str = "free"


def save_state(path: str | os.PathLike, problem: Problem, result: FlowResult, loss: str = "quartic",
               W0: np.ndarray | None = None) -> Path:
    """Write the outcome of ``run_dynamics`` to ``path`` (.npz, atomic); the protocol is
    stored (files without it are "free")."""
    tr = result.trajectory
    arrays = dict(
        format_version=np.int64(FORMAT_VERSION), n=np.int64(problem.n), m=np.int64(problem.m),
        alpha=np.float64(problem.alpha), dtype=np.str_(problem.dtype.name), loss=np.str_(loss),
        method=np.str_(result.method), protocol=np.str_(result.protocol), W=result.W, status=result.status.astype(str),
        stop_time=result.stop_time, energy=result.energy, q=result.q, mu=result.mu,
        grad_norm=result.grad_norm, traj_t=tr.t, traj_energy=tr.energy, traj_q=tr.q, traj_mu=tr.mu,
        traj_grad_norm=tr.grad_norm, y=problem.y,
    )
    if W0 is not None:
        arrays["W0"] = W0
    if problem.seed is not None:
        arrays["seed"] = np.int64(problem.seed)
    else:
        arrays["X"] = problem.X
        if problem.w_star is not None:
            arrays["w_star"] = problem.w_star
    return atomic_savez(path, **arrays)


def load_state(path: str | os.PathLike) -> SavedState:
    """Read a state file and rebuild its data set; a missing, malformed or inconsistent
    file raises InputError with a one-line message."""
    if Path(path).is_dir():
        raise InputError(f"state file {str(path)!r} is a folder, not a state file")
    a = load_npz(path, required=("n", "m", "W", "status", "y", "dtype", "loss"), kind="state file")
    n, m = int(a["n"]), int(a["m"])
    W = a["W"]
    if W.ndim != 2 or W.shape[0] != n:
        raise InputError(f"state file {str(path)!r}: W has shape {W.shape}, expected ({n}, B)")
    dtype = str(a["dtype"])
    if "seed" in a:
        problem = make_problem(n, m / n, int(a["seed"]), dtype)
        if problem.m != m or not np.array_equal(problem.y, a["y"]):
            raise InputError(f"state file {str(path)!r}: data rebuilt from seed {int(a['seed'])} "
                             "do not match the stored labels (file from another version?)")
    elif "X" in a:
        problem = problem_from_arrays(a["X"], a["y"], a.get("w_star"))
    else:
        raise InputError(f"state file {str(path)!r} has neither a seed nor the data X")
    return SavedState(problem, W, a["status"], str(a["loss"]), a, str(a.get("protocol", "free")))
