"""Batched starts: several random starts on one data set, run as one matrix-matrix flow,
and success probabilities over such clusters.

A *cluster* is one data set (``make_problem(N, alpha, seed)``) with ``B`` starts
(``random_starts(N, B, seed)``) integrated together by :func:`simulation.flow.run_dynamics`
(each replica its own step size, stages as (M, N) x (N, B) products, which run at BLAS-3
speed instead of the memory-bound BLAS-2 of one start). Each start of a cluster is, on its
own, distributed exactly as a start of the fresh-data sweep, so the mean success over all
starts estimates the same P(success); but starts on the same data are correlated, and its
standard error must be the cluster-robust one (:func:`theory.statistics.cluster_proportion`: the between-cluster
variance of the ratio estimator) or a cluster bootstrap (:func:`theory.statistics.cluster_bootstrap`), not
the binomial sqrt(P(1-P)/(C B)).

Storage (:func:`run_point`): one netCDF file per (N, alpha) point with dims (cluster, replica),
written after every cluster (atomic; a rerun resumes the clusters not yet stored).
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from theory import io
from theory.errors import InputError
from theory.statistics import cluster_bootstrap, cluster_proportion

from .data import check_memory, check_size, make_problem, random_starts
from .decide import EarlyDecider, EarlyRules
from .flow import Decider, FlowResult, Integrator, StopRules, run_dynamics

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ClusterResult", "run_cluster", "run_point",
           "read_point", "point_success", "BATCH_FORMAT"]

BATCH_FORMAT = "phaseflow-batched-1"


@dataclass(frozen=True)
class ClusterResult:
    """One data set with its B starts run together.

    Attributes
    ----------
    seed : int
    status : (B,) str; q, stop_time, energy, grad_norm : (B,) final values
    decided_early : (B,) bool, stopped by the early rules
    evaluations : int, gradient evaluations of the batch (each covers the running starts;
        Lanczos probes included)
    replica_evaluations : (B,) evaluations each start took part in (its cost counted in
        single-start evaluations; Lanczos probes spread over the running starts)
    wall_seconds : float, data drawn and flow run
    """

    seed: int
    status: np.ndarray
    q: np.ndarray
    stop_time: np.ndarray
    energy: np.ndarray
    grad_norm: np.ndarray
    decided_early: np.ndarray
    evaluations: int
    replica_evaluations: np.ndarray
    wall_seconds: float


def run_cluster(n: int, alpha: float, seed: int, starts: int, stop: StopRules, integrator: Integrator,
                dtype: str = "float32", loss: str | None = None, times: np.ndarray | None = None,
                early: EarlyRules | None = None, decide: Decider | None = None,
                batching: str = "shared", width: int | None = None) -> tuple[ClusterResult, FlowResult]:
    """Draw the data of ``seed`` and ``starts`` starts, run them as one batch.

    ``early``: the early-decision rules (:class:`~simulation.decide.EarlyRules`); ``decide``: any
    other hook of ``run_dynamics`` (e.g. a :class:`~simulation.decide.TrajectoryLog`), not both.
    ``batching``: "shared" (one stage count per step, the stored runs up to issue 17's
    second round) or "independent" (each start its own stage counts: it follows, to
    rounding, its run alone; :func:`simulation.flow.run_dynamics`); ``width``: with it, at
    most that many starts run at once, the others entering as starts stop (refill).
    Returns the summary and the flow's full result.
    """
    check_size(n, alpha)
    if early is not None and decide is not None:
        raise InputError("give early rules or a decide hook, not both")
    t0 = time.perf_counter()
    problem = make_problem(n, alpha, seed, dtype)
    W0 = random_starts(n, starts, seed, dtype)
    hook = EarlyDecider(early) if early is not None and early.active else decide
    res = run_dynamics(problem, W0, stop, integrator, loss, times=times, decide=hook, batching=batching,
                       width=width)
    summary = ClusterResult(seed=int(seed), status=res.status.astype(str), q=res.q, stop_time=res.stop_time,
                            energy=res.energy, grad_norm=res.grad_norm,
                            decided_early=np.asarray(res.extra.get("decided_early", np.zeros(starts, bool))),
                            evaluations=int(res.gradient_evaluations), replica_evaluations=np.asarray(res.extra.get("replica_evaluations", np.full(starts, res.gradient_evaluations)), float),
                            wall_seconds=time.perf_counter() - t0)
    return summary, res


# ---------------------------------------------------------------------------- stored points
def _empty(seeds, starts, attrs) -> xr.Dataset:
    import xarray as xr

    C = len(seeds)
    shape = (C, starts)
    nan = lambda: np.full(shape, np.nan)  # noqa: E731
    dims = ("cluster", "replica")
    data = {"status": (dims, np.full(shape, "pending", dtype=object)),
            "final_overlap": (dims, nan()), "stop_time": (dims, nan()), "final_energy": (dims, nan()),
            "final_grad_norm": (dims, nan()), "decided_early": (dims, np.zeros(shape, bool)),
            "replica_evaluations": (dims, nan()),
            "evaluations": (("cluster",), np.zeros(C, np.int64)),
            "wall_seconds": (("cluster",), np.full(C, np.nan)),
            "cluster_seed": (("cluster",), np.array(seeds, np.int64))}
    return xr.Dataset(data, coords={"cluster": np.arange(C), "replica": np.arange(starts)}, attrs=attrs)


def run_point(out: str | os.PathLike, n: int, alpha: float, seeds: ArrayLike, starts: int, stop: StopRules,
              integrator: Integrator, dtype: str = "float32", loss: str | None = None,
              early: EarlyRules | None = None, progress: bool = False, batching: str = "shared",
              width: int | None = None) -> xr.Dataset:
    """Run (or resume) the clusters ``seeds`` (one data set each, ``starts`` starts) of one
    (N, alpha) point into the netCDF file ``out``; recording only t = 0 (steps never
    shortened, as the finite-N study). ``batching``: of :func:`run_cluster` (attribute
    ``batching``; files without it were made with "shared") and ``width`` (attribute
    ``width``, "all" when None). Returns the dataset. A file
    made with other parameters is refused (InputError).
    """
    import sys

    seeds = [int(s) for s in np.asarray(seeds).ravel()]
    out = io.output_path(out, "point file")
    need = check_memory(n, alpha, starts, dtype)
    if batching == "independent":  # the contiguous copy of X.T
        from .data import available_memory

        extra = np.dtype(dtype).itemsize * int(round(alpha * n)) * n
        have = available_memory()
        if have is not None and need + extra > have:
            raise InputError(f"N={n}, alpha={alpha:g}: the independent batch needs about {(need + extra) / 1e9:.3g} GB "
                             f"of memory, only {have / 1e9:.3g} GB available")
    attrs = {"format": BATCH_FORMAT, "batching": str(batching), "width": "all" if width is None else int(width), "n": int(n), "alpha": float(alpha), "starts_per_cluster": int(starts),
             "dtype": str(dtype), "loss": str(loss or "quartic"), "time_grid": "none",
             **{f"stop_{k}": ("default" if v is None else v) for k, v in asdict(stop).items()},
             **{f"integrator_{k}": ("default" if v is None else v) for k, v in asdict(integrator).items()},
             **{f"early_{k}": ("off" if v is None else (float(v) if np.isfinite(v) else "inf"))
                for k, v in asdict(early or EarlyRules()).items()}}
    if Path(out).exists():
        ds = io.load_netcdf(out)
        for k, v in attrs.items():
            if str(ds.attrs.get(k, {"batching": "shared", "width": "all"}.get(k))) != str(v):
                raise InputError(f"{out} holds another point or protocol ({k}: {ds.attrs.get(k)!r} != {v!r})")
        if [int(s) for s in ds["cluster_seed"].values] != seeds:
            raise InputError(f"{out} holds other cluster seeds")
    else:
        ds = _empty(seeds, starts, {**io.provenance(**attrs), **attrs})
        io.write_netcdf(ds, out)
    for c, seed in enumerate(seeds):
        if not np.all(ds["status"].values[c] == "pending"):
            continue
        summary, _ = run_cluster(n, alpha, seed, starts, stop, integrator, dtype, loss, np.array([0.0]), early,
                                 batching=batching, width=width)
        ds["status"].values[c] = summary.status.astype(object)
        for name, v in (("final_overlap", summary.q), ("stop_time", summary.stop_time),
                        ("final_energy", summary.energy), ("final_grad_norm", summary.grad_norm),
                        ("decided_early", summary.decided_early),
                        ("replica_evaluations", summary.replica_evaluations)):
            ds[name].values[c] = v
        ds["evaluations"].values[c] = summary.evaluations
        ds["wall_seconds"].values[c] = summary.wall_seconds
        io.write_netcdf(ds, out)
        if progress:
            p = np.mean(summary.status == "success")
            print(f"N={n} alpha={alpha:g} cluster {c + 1}/{len(seeds)} (seed {seed}): P={p:.3f}, "
                  f"{summary.evaluations} evaluations, {summary.wall_seconds:.1f} s", file=sys.stderr, flush=True)
    return ds


def read_point(path: str | os.PathLike) -> xr.Dataset:
    """A point file of :func:`run_point` (InputError if it is not one)."""
    ds = io.load_netcdf(path)
    if ds.attrs.get("format") != BATCH_FORMAT:
        raise InputError(f"{path} is not a batched point file ({BATCH_FORMAT})")
    return ds


def point_success(ds: xr.Dataset) -> dict:
    """P(success) of a point over its finished clusters: the cluster-robust estimate and
    standard error, the cluster bootstrap's, the binomial error (wrong for clusters, shown
    for comparison), counts."""
    status = np.asarray(ds["status"].values).astype(str)
    finished = ~np.any(status == "pending", axis=1)
    s = status[finished] == "success"
    p, se = cluster_proportion(s)
    _, se_boot = cluster_bootstrap(s) if s.shape[0] >= 2 else (p, float("nan"))
    k, m = int(s.sum()), int(s.size)
    return dict(p=p, se=se, se_bootstrap=se_boot,
                se_binomial=float(np.sqrt(p * (1 - p) / m)) if m else float("nan"),
                successes=k, starts=m, clusters=int(finished.sum()),
                timeouts=int(np.sum(status[finished] == "timeout")),
                early=int(np.asarray(ds["decided_early"].values)[finished].sum()))
