"""Sweeps of gradient flow over (alpha, N, start), stored as a labelled netCDF dataset.

Every start of every cell (alpha, N) gets FRESH data and its own start, both drawn from
one seed per start: by default the cell seed derived from (base seed, N, alpha, start) by
``numpy.random.SeedSequence`` (:func:`cell_seed`), so the numbers do not depend on
chunking, ordering or the executor; or seeds given explicitly per start
(``SweepConfig.seeds``, ``--seeds``: to rerun chosen starts, e.g. the timeouts of a
study, to a longer horizon). Each start is one call of ``run_dynamics`` with one replica, from a random start on the
sphere (default) or from the spectral start of its data (``init="spectral"``: the top
eigenvector of the preprocessed data matrix, :mod:`simulation.spectral_start`); the start
overlap q(0) of every start is stored (``initial_overlap``).

The sweep carries every stop rule and tolerance of the flow (all fields of
:class:`~simulation.flow.StopRules` and :class:`~simulation.flow.Integrator`, the dtype,
the loss, and the recording grid, which the adaptive flow's steps land on), each with the
flow's own default, and records them in the file's attrs.

Storage (netCDF4 through h5netcdf, one file): an ``xarray.Dataset`` with dims
(alpha, n, start), variables ``success``, ``final_energy``, ``final_overlap``,
``final_grad_norm``, ``stop_time``, ``status`` ("success" | "trapped" | "timeout" | "diverged" |
"error" | "pending"), ``message`` (why a start is an "error": the exception raised by the
flow, e.g. a ConvergenceError; "" otherwise), ``wall_seconds`` (cost of each start: metadata,
not reproducible) and ``cell_seed``, coordinate ``m``
(alpha, n) = round(alpha N), and attrs with every parameter that fixes the numbers plus
provenance (:func:`theory.io.provenance`). Work is split in chunks (a few starts of one
cell); after each finished chunk the whole file is rewritten to a temporary file and moved
into place with ``os.replace``, so a kill loses at most the chunks in flight and the file
on disk is always a complete, readable dataset. A rerun with the same parameters skips the
finished starts (errors included: the same seed gives the same error); one with different
parameters is refused. Files of the first format (``phaseflow-sweep-1``, which exposed
fewer parameters) resume when the arguments give the unexposed parameters the values that
format used (the flow's defaults, time grid "log", derived seeds), and are refused naming
the first difference otherwise.

Only one sweep may write a file at a time: :func:`run_sweep` holds an exclusive
``flock`` on ``.<name>.lock`` next to it (released by the kernel even on SIGKILL; the
file is removed when the sweep ends, normally or interrupted).

Executors: local processes (``concurrent.futures.ProcessPoolExecutor``, spawn), in-process
(``workers=0``), or a Dask distributed cluster (``scheduler="tcp://host:port"``). All run
the same pure function :func:`run_chunk` with one BLAS thread (threadpoolctl), so the
numbers are bit-for-bit the same on every executor, given the same NumPy/BLAS build on
the machines that run the chunks.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from theory import io
from theory.errors import ConvergenceError, InputError
from theory.loss import get_loss
from theory.spectral_start import DEFAULT_PREPROCESSING, get_preprocessing

from .data import Problem, check_memory, check_size, make_problem, random_starts, resolve_dtype
from .flow import Integrator, StopRules, run_dynamics
from .landscape import teacher_overlap
from .spectral_start import spectral_start

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: importing the sweep loads neither
    import argparse
    from collections.abc import Iterator as _Iterator

    import xarray as xr

__all__ = ["SweepConfig", "Chunk", "StartResult", "parse_alpha_grid", "cell_seed", "plan_chunks",
           "run_start", "run_chunk", "empty_dataset", "read_sweep", "open_sweep", "write_dataset", "run_sweep",
           "done_mask", "decided_mask", "store_chunk", "success_fraction", "sweep_lock",
           "SweepReport", "FORMAT", "FORMATS", "PENDING", "ERROR", "STATUSES", "TIME_GRIDS",
           "add_sweep_parser", "add_flow_options", "config_from_args", "cmd_sweep", "LEGACY_ATTRS",
           "START_FAILURES", "terminate_as_interrupt", "INITS", "initial_state"]

FORMAT = "phaseflow-sweep-2"
#: Formats :func:`read_sweep` opens; format 1 lacks the message variable and the attrs of
#: the parameters it did not expose (see LEGACY_ATTRS).
FORMATS = ("phaseflow-sweep-1", FORMAT)
PENDING = "pending"
ERROR = "error"
#: Statuses of a start: the flow's three stop rules, an exception in the flow, not run yet.
STATUSES = ("success", "trapped", "timeout", "diverged", ERROR, PENDING)
#: Recording grids: "log" = log_time_grid(t_max), as ``python -m simulation run`` (the
#: adaptive flow shortens its steps to land on each recording time); "none" = only t = 0
#: (steps never shortened; the protocol of the finite-N study).
TIME_GRIDS = ("log", "none")
#: alpha enters the seed as round(alpha * ALPHA_KEY_SCALE): grids finer than 1e-6 are refused.
ALPHA_KEY_SCALE = 10**6
RESULT_FIELDS = ("final_energy", "final_overlap", "final_grad_norm", "stop_time")
SEED_SOURCES = ("derived", "explicit")
#: Starts: random on the sphere (random_starts) or spectral (the data's top eigenvector).
INITS = ("random", "spectral")


def _flow_default(cls, name: str):
    """Default of field ``name`` of the flow's dataclass ``cls`` (StopRules, Integrator)."""
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


#: Parameters a format-1 file does not record, with the values that format used for them.
LEGACY_ATTRS = {
    "success_overlap": _flow_default(StopRules, "success_overlap"),
    "energy_tol": _flow_default(StopRules, "energy_tol"),
    "atol": None,
    "max_stages": _flow_default(Integrator, "max_stages"),
    "time_grid": "log",
    "seed_source": "derived",
}


# ---------------------------------------------------------------------------- parameters
def parse_alpha_grid(tokens: Sequence[str] | str) -> tuple[float, ...]:
    """Alpha grid of a sweep: :func:`theory.io.parse_alpha_grid` (numbers and inclusive
    START:STOP:STEP ranges), plus distinct seed keys (:func:`alpha_key`)."""
    grid = io.parse_alpha_grid(tokens)
    keys = [alpha_key(a) for a in grid]
    if len(set(keys)) != len(keys):
        raise InputError("alpha values must differ by at least 1e-6")
    return grid


def alpha_key(alpha: float) -> int:
    """Integer key of alpha in the seed derivation: round(alpha * 10^6)."""
    return int(round(float(alpha) * ALPHA_KEY_SCALE))


def cell_seed(base_seed: int, n: int, alpha: float, start: int) -> int:
    """Seed of one start: 63 bits of ``SeedSequence(base_seed, spawn_key=(N, alpha_key, start))``.

    It feeds ``make_problem`` (data) and ``random_starts`` (start) exactly as
    ``python -m simulation run --seed <cell_seed>`` does, so each start is reproducible
    alone, and independent of the rest of the sweep.
    """
    ss = np.random.SeedSequence(int(base_seed), spawn_key=(int(n), alpha_key(alpha), int(start)))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _attr(value):
    """A parameter as a netCDF-safe attribute (None, the flow's dtype-dependent default -> "default")."""
    return "default" if value is None else value


@dataclass(frozen=True)
class SweepConfig:
    """Everything that fixes the numbers of a sweep (the file's identity).

    Every stop rule and tolerance of the flow is a field, with the flow's own default
    (read from :class:`~simulation.flow.StopRules` and :class:`~simulation.flow.Integrator`).

    Attributes
    ----------
    n : tuple of int
        Dimensions N (sorted, distinct, >= 2).
    alpha : tuple of float
        Ratios M/N (sorted, distinct, > 0); see :func:`parse_alpha_grid`.
    starts : int
        Starts per cell (>= 1); start k of a cell has its own data and start.
    seed : int
        Base seed (>= 0) of the derived seeds :func:`cell_seed` (unused with ``seeds``).
    t_max, success_overlap, energy_tol, grad_tol
        Stop rules (:class:`~simulation.flow.StopRules`; grad_tol None: the dtype's default).
    method, rtol, atol, lr, max_stages
        Integrator (:class:`~simulation.flow.Integrator`; rtol/atol None: the dtype's default).
    dtype, loss
        As in ``python -m simulation run``.
    time_grid : {"log", "none"}
        Recording grid the flow's steps land on (:data:`TIME_GRIDS`).
    init : {"random", "spectral"}
        The start (:data:`INITS`): random on the sphere, or the spectral start of the start's
        data with preprocessing ``preprocess`` (docs/theory.md §6).
    preprocess : str or None
        T(y) of a spectral start (a name or formula of :func:`theory.spectral_start.get_preprocessing`;
        None: :data:`theory.spectral_start.DEFAULT_PREPROCESSING`); only with ``init="spectral"``.
    seeds : tuple or None
        Explicit seed of every start, nested (alpha, N, start) in the order of the sorted
        grids (then ``n`` and ``alpha`` must be given sorted); None: :func:`cell_seed`.
    """

    n: tuple[int, ...]
    alpha: tuple[float, ...]
    starts: int
    seed: int = 0
    t_max: float = _flow_default(StopRules, "t_max")
    method: str = _flow_default(Integrator, "method")
    lr: float = _flow_default(Integrator, "lr")
    rtol: float | None = _flow_default(Integrator, "rtol")
    grad_tol: float | None = _flow_default(StopRules, "grad_tol")
    dtype: str = resolve_dtype(None).name
    loss: str = get_loss(None).name
    success_overlap: float = _flow_default(StopRules, "success_overlap")
    energy_tol: float = _flow_default(StopRules, "energy_tol")
    atol: float | None = _flow_default(Integrator, "atol")
    max_stages: int = _flow_default(Integrator, "max_stages")
    time_grid: str = TIME_GRIDS[0]
    seeds: tuple | None = field(default=None, repr=False)
    init: str = INITS[0]
    preprocess: str | None = None

    def __post_init__(self):
        try:
            ns = tuple(sorted({int(v) for v in self.n}))
            integral = all(int(v) == v for v in self.n)
        except (TypeError, ValueError):
            raise InputError(f"N values must be integers, got {self.n!r}") from None
        if not ns:
            raise InputError("no N value given")
        if not integral:
            raise InputError(f"N values must be integers, got {self.n!r}")
        try:
            alphas = parse_alpha_grid([repr(float(a)) for a in self.alpha]) if len(self.alpha) else ()
        except (TypeError, ValueError):
            raise InputError(f"alpha values must be numbers, got {self.alpha!r}") from None
        if not alphas:
            raise InputError("no alpha value given")
        for n in ns:
            for a in alphas:
                check_size(n, a)
        if not isinstance(self.starts, (int, np.integer)) or self.starts < 1:
            raise InputError(f"starts must be an integer >= 1, got {self.starts!r}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.time_grid not in TIME_GRIDS:
            raise InputError(f"time grid must be one of {', '.join(TIME_GRIDS)}, got {self.time_grid!r}")
        if self.init not in INITS:
            raise InputError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.init == "spectral":
            object.__setattr__(self, "preprocess", get_preprocessing(self.preprocess or DEFAULT_PREPROCESSING).name)
        elif self.preprocess is not None:
            raise InputError("a preprocessing needs init 'spectral' (--init spectral)")
        self.stop_rules()  # the flow's own checks of its rules and tolerances, now, not in a worker
        self.integrator()
        if self.seeds is not None:
            if len(self.n) != len(ns) or tuple(int(v) for v in self.n) != ns \
                    or tuple(float(a) for a in self.alpha) != alphas:
                raise InputError("with explicit seeds, give N and alpha sorted and distinct")
            object.__setattr__(self, "seeds", _seed_table(self.seeds, (len(alphas), len(ns), int(self.starts))))
        object.__setattr__(self, "n", ns)
        object.__setattr__(self, "alpha", alphas)
        object.__setattr__(self, "starts", int(self.starts))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "max_stages", int(self.max_stages))
        object.__setattr__(self, "dtype", resolve_dtype(self.dtype).name)
        get_loss(self.loss)

    def stop_rules(self) -> StopRules:
        return StopRules(t_max=float(self.t_max), success_overlap=float(self.success_overlap),
                         energy_tol=float(self.energy_tol), grad_tol=self.grad_tol)

    def integrator(self) -> Integrator:
        return Integrator(method=self.method, rtol=self.rtol, atol=self.atol, lr=float(self.lr),
                          max_stages=self.max_stages)

    def recording_times(self) -> np.ndarray | None:
        """Times passed to ``run_dynamics``: None (its log grid) or only t = 0."""
        return None if self.time_grid == "log" else np.array([0.0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.alpha), len(self.n), self.starts

    @property
    def seed_source(self) -> str:
        return SEED_SOURCES[self.seeds is not None]

    def start_seed(self, n: int, alpha: float, start: int) -> int:
        """Seed of one start: explicit, or :func:`cell_seed` (base seed, N, alpha, start)."""
        if self.seeds is None:
            return cell_seed(self.seed, n, alpha, start)
        return self.seeds[self.alpha.index(alpha)][self.n.index(n)][start]

    def seed_table(self) -> np.ndarray:
        """Seeds of every start, int64 (alpha, n, start)."""
        return np.array([[[self.start_seed(n, a, s) for s in range(self.starts)] for n in self.n]
                         for a in self.alpha], dtype=np.int64)

    def identity(self) -> dict:
        """Scalar parameters as netCDF-safe attrs (None -> "default"), with how seeds are made."""
        out = {}
        for key, value in asdict(self).items():
            if key in ("n", "alpha", "starts", "seeds") or (key in ("init", "preprocess") and self.init == "random"):
                continue  # random starts: no init attrs, so files written before spectral starts resume
            out[key] = _attr(value)
        out["starts"] = self.starts
        out["seed_source"] = self.seed_source
        return out


def _seed_table(seeds, shape: tuple[int, int, int]) -> tuple:
    """Explicit seeds as a nested tuple of ``shape``, each an integer in [0, 2^63)."""
    try:
        arr = np.asarray(seeds, dtype=object)
        ok = arr.shape == shape and all(isinstance(s, (int, np.integer)) and 0 <= s < 2**63 for s in arr.flat)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"explicit seeds must be {shape[0]} x {shape[1]} x {shape[2]} (alpha, N, start) "
                         "integers in [0, 2^63)")
    return tuple(tuple(tuple(int(s) for s in row) for row in plane) for plane in arr)


@dataclass(frozen=True)
class Chunk:
    """A few starts of one cell (alpha, N): the unit of work and of writing."""

    alpha_index: int
    n_index: int
    alpha: float
    n: int
    starts: tuple[int, ...]


@dataclass(frozen=True)
class StartResult:
    """Outcome of one start (one replica on its own data)."""

    start: int
    cell_seed: int
    status: str
    final_energy: float
    final_overlap: float
    final_grad_norm: float
    stop_time: float
    message: str = ""
    wall_seconds: float = float("nan")  # the flow's own wall clock (metadata: not bit-reproducible)
    initial_overlap: float = float("nan")  # q(0) of the start (NaN if the start itself failed)

    @property
    def success(self) -> bool:
        return self.status == "success"


def plan_chunks(config: SweepConfig, done: np.ndarray | None = None, chunk_size: int = 4) -> list[Chunk]:
    """Split the starts not yet ``done`` (bool array of ``config.shape``) into chunks of at
    most ``chunk_size`` consecutive pending starts of one cell; cells in (alpha, N) order."""
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise InputError(f"chunk size must be an integer >= 1, got {chunk_size!r}")
    done = np.zeros(config.shape, bool) if done is None else np.asarray(done, bool)
    chunks = []
    for i, a in enumerate(config.alpha):
        for j, n in enumerate(config.n):
            pending = np.flatnonzero(~done[i, j])
            for k in range(0, pending.size, chunk_size):
                chunks.append(Chunk(i, j, a, n, tuple(int(s) for s in pending[k:k + chunk_size])))
    return chunks


# ---------------------------------------------------------------------------- work
#: Failures of one start that are stored as an "error" row instead of ending the sweep:
#: the numerics gave up (ConvergenceError, e.g. a step-size collapse; InputError, e.g. gd
#: diverging at its learning rate; floating-point and linear-algebra errors). Anything else
#: is a bug and propagates.
START_FAILURES = (ConvergenceError, InputError, ArithmeticError, np.linalg.LinAlgError)


def run_start(config: SweepConfig, n: int, alpha: float, start: int) -> StartResult:
    """One start: fresh data and start from its seed (:meth:`SweepConfig.start_seed`), run to
    its stop rule; a failure of the flow (:data:`START_FAILURES`) is returned as status
    "error" with the exception's message and NaN results."""
    seed = config.start_seed(n, alpha, start)
    problem = make_problem(n, alpha, seed, config.dtype)
    q0 = float("nan")
    try:
        W0 = initial_state(config, problem, seed)
        q0 = float(teacher_overlap(problem, W0)[0])
        res = run_dynamics(problem, W0, config.stop_rules(), config.integrator(), config.loss,
                           times=config.recording_times())
    except START_FAILURES as exc:
        nan = float("nan")
        return StartResult(start=start, cell_seed=seed, status=ERROR, final_energy=nan, final_overlap=nan,
                           final_grad_norm=nan, stop_time=nan, message=f"{type(exc).__name__}: {exc}",
                           initial_overlap=q0)
    return StartResult(start=start, cell_seed=seed, status=str(res.status[0]),
                       final_energy=float(res.energy[0]), final_overlap=float(res.q[0]),
                       final_grad_norm=float(res.grad_norm[0]), stop_time=float(res.stop_time[0]),
                       wall_seconds=float(res.wall_seconds), initial_overlap=q0)


def initial_state(config: SweepConfig, problem: Problem, seed: int) -> np.ndarray:
    """The start (N, 1) of one start of the sweep: ``random_starts(N, 1, seed)``, or the spectral
    start of ``problem`` (Lanczos seeded by ``seed``; a Lanczos failure raises ConvergenceError,
    stored as an "error" row)."""
    if config.init == "spectral":
        return spectral_start(problem, config.preprocess, 1, seed=seed).W0
    return random_starts(problem.n, 1, seed, config.dtype)


def run_chunk(config: SweepConfig, chunk: Chunk) -> tuple[Chunk, tuple[StartResult, ...]]:
    """Run the starts of a chunk with one BLAS thread (same numbers on every executor)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return chunk, tuple(run_start(config, chunk.n, chunk.alpha, s) for s in chunk.starts)


def _exit_with_parent(parent: int, period: float = 0.5) -> None:
    """Worker watchdog: end this process as soon as ``parent`` is gone (reparented), so
    a SIGKILLed sweep leaves no orphan computing a chunk nobody will store."""
    while os.getppid() == parent:
        time.sleep(period)
    os._exit(1)


def _init_worker(parent: int) -> None:
    """Process-pool initializer: leave Ctrl-C to the parent (which stops the pool, so an
    interrupt prints one line, not a traceback per worker), and die with the parent."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _local_results(config, chunks, workers) -> Iterator:
    if workers == 0:
        for c in chunks:
            yield run_chunk(config, c)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=mp.get_context("spawn"),
                               initializer=_init_worker, initargs=(os.getpid(),))
    finished = False
    try:
        futures = [pool.submit(run_chunk, config, c) for c in chunks]
        for fut in as_completed(futures):
            yield fut.result()
        finished = True
    finally:
        if not finished:  # interrupted or failed: drop the chunks in flight now
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
        pool.shutdown(wait=finished, cancel_futures=True)


def check_scheduler(address: str, timeout: float = 5.0) -> str:
    """Validate a Dask scheduler address and check that something listens there.

    Done before ``distributed.Client`` is built because a Client that fails to connect
    prints a traceback from its destructor; here the failure is one InputError line.

    Returns
    -------
    str
        The address with its scheme (``tcp://`` when none is given).
    """
    try:
        from distributed.comm import parse_address
        from distributed.comm.addressing import parse_host_port
    except ImportError:  # pragma: no cover - dependency declared in pyproject
        raise InputError("--scheduler needs dask.distributed (pip install 'dask[distributed]')") from None
    try:
        scheme, location = parse_address(str(address))
        host, port = parse_host_port(location) if scheme in ("tcp", "tls") else (None, None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"malformed scheduler address {address!r} ({exc}); use tcp://HOST:PORT") from None
    if host is not None:
        import socket

        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler at {address!r} ({exc.strerror or exc})") from None
    return f"{scheme}://{location}"


def _dask_results(config, chunks, scheduler) -> Iterator:
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot connect to the Dask scheduler {scheduler!r} ({type(exc).__name__})") from None
    try:
        futures = [client.submit(run_chunk, config, c, pure=False) for c in chunks]
        for fut in as_completed(futures, loop=client.loop):  # not the default client: we set none
            yield fut.result()
    finally:
        client.close()


# ---------------------------------------------------------------------------- storage
def empty_dataset(config: SweepConfig, **provenance) -> xr.Dataset:
    """A dataset of ``config.shape`` with every start pending (NaN results).

    Its attrs are the format, :func:`theory.io.provenance` (package version, creation
    time, ``config.identity()`` and the extra ``provenance`` keywords, e.g. where converted
    data came from), the seed rule in words and the conventions.
    """
    import xarray as xr

    dims = ("alpha", "n", "start")
    shape = config.shape
    nan = lambda: np.full(shape, np.nan)  # noqa: E731
    m = np.array([[int(round(a * n)) for n in config.n] for a in config.alpha], dtype=np.int64)
    data = {
        "success": (dims, np.zeros(shape, bool),
                    {"long_name": f"the start reached |q| >= {config.success_overlap:g} "
                                  f"or e <= {config.energy_tol:g}"}),
        "status": (dims, np.full(shape, PENDING, dtype=object),
                   {"long_name": "stop rule: success | trapped | timeout | error (the flow raised, see "
                                 "message) | pending (not run yet)"}),
        "message": (dims, np.full(shape, "", dtype=object),
                    {"long_name": "the exception of an error start (type: message); empty otherwise"}),
        "final_energy": (dims, nan(), {"long_name": "energy per dimension e = L/N at the stop"}),
        "final_overlap": (dims, nan(), {"long_name": "overlap q = <W, W*>/N at the stop"}),
        "final_grad_norm": (dims, nan(), {"long_name": "rms Riemannian gradient |g|/sqrt(N) at the stop"}),
        "stop_time": (dims, nan(), {"long_name": "flow time (gd: steps x lr) at the stop"}),
        "wall_seconds": (dims, nan(), {"long_name": "wall-clock seconds of the flow (cost; not reproducible)"}),
        "initial_overlap": (dims, nan(), {"long_name": "overlap q(0) = <W0, W*>/N of the start"}),
        "cell_seed": (dims, config.seed_table(),
                      {"long_name": "seed of this start's data and start (python -m simulation run --seed)"}),
    }
    coords = {"alpha": ("alpha", np.array(config.alpha), {"long_name": "M/N"}),
              "n": ("n", np.array(config.n, dtype=np.int64), {"long_name": "dimension N"}),
              "start": ("start", np.arange(config.starts, dtype=np.int64)),
              "m": (("alpha", "n"), m, {"long_name": "measurements M = round(alpha N)"})}
    rule = ("cell_seed = SeedSequence(seed, spawn_key=(N, round(alpha*1e6), start)).generate_state(1, uint64) >> 1"
            if config.seeds is None else "cell_seed given explicitly for every start (SweepConfig.seeds, --seeds)")
    attrs = {"format": FORMAT, **io.provenance(**config.identity(), **provenance),
             "seed_rule": rule + "; data = make_problem(N, alpha, cell_seed), start = " + (
                 f"spectral_start(data, {config.preprocess!r}, 1, seed=cell_seed)" if config.init == "spectral"
                 else "random_starts(N, 1, cell_seed)"),
             "conventions": "docs/theory.md section 1"}
    return xr.Dataset(data, coords=coords, attrs=attrs)


write_dataset = io.write_netcdf


def _stale_temporaries(path: Path) -> list[Path]:
    """Temporary files of :func:`write_dataset` for ``path`` (left by a kill mid-write)."""
    return sorted(path.parent.glob(path.name + ".*.tmp"))


@contextlib.contextmanager
def sweep_lock(path: str | os.PathLike) -> _Iterator[Path]:
    """Hold an exclusive lock for writing the sweep at ``path`` (``.<name>.lock`` next to
    it; flock, so the kernel releases it when the process dies, even by SIGKILL).

    The lock file is removed when the block ends (normally or by an exception), while the
    lock is still held; a process that opened the file before the removal finds, once it
    holds the flock, that the name no longer points to its file and starts again, so two
    writers never hold locks on two different files. Only a SIGKILL leaves the file (the
    next sweep takes it over).

    Raises
    ------
    InputError
        Another process holds the lock (a sweep is already writing this file).
    """
    import fcntl

    path = Path(path)
    if not path.parent.resolve().is_dir():
        raise InputError(f"cannot write {str(path)!r}: its folder does not exist")
    lock = path.parent / f".{path.name}.lock"
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(f"cannot create the lock file {str(lock)!r} ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(f"another sweep is writing {str(path)!r} (lock {str(lock)!r} is held)") from None
        if _same_file(fd, lock):
            break
        os.close(fd)  # removed by its previous holder after we opened it: take the new one
    try:
        yield lock
    finally:
        try:
            lock.unlink()  # while we hold it: see above
        except OSError:
            pass
        os.close(fd)  # releases the flock


def _same_file(fd: int, path: Path) -> bool:
    """True when ``path`` still names the open file ``fd``."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def load_dataset(path: str | os.PathLike, kind: str = "sweep file"):
    """Read a netCDF file fully into memory (:func:`theory.io.load_netcdf`)."""
    return io.load_netcdf(path, kind=kind)


SWEEP_VARIABLES = ("success", "status", "cell_seed") + RESULT_FIELDS
#: Variables a format-1 file lacks (read as "" and NaN).
FORMAT_2_VARIABLES = ("message", "wall_seconds")


def read_sweep(path: str | os.PathLike) -> xr.Dataset:
    """A sweep file written by :func:`run_sweep` (any of :data:`FORMATS`), checked for
    format, variables, dims and status values (so a damaged or foreign file is refused,
    not silently extended). A format-1 file gets an empty ``message`` variable.

    Raises
    ------
    InputError
        Missing, unreadable, not a sweep, or structurally inconsistent.
    """
    ds = load_dataset(path)
    where = f"sweep file {str(path)!r}"
    if ds.attrs.get("format") not in FORMATS:
        raise InputError(f"{str(path)!r} is not a sweep file (format attribute {ds.attrs.get('format')!r}, "
                         f"expected {FORMAT!r})")
    missing = [v for v in SWEEP_VARIABLES + ("alpha", "n", "start") if v not in ds.variables]
    if ds.attrs["format"] == FORMAT:
        missing += [v for v in FORMAT_2_VARIABLES if v not in ds.variables]
    if missing:
        raise InputError(f"{where} lacks the variables {missing}")
    if "message" not in ds.variables:
        ds["message"] = (("alpha", "n", "start"), np.full(ds["status"].shape, "", dtype=object))
    if "wall_seconds" not in ds.variables:
        ds["wall_seconds"] = (("alpha", "n", "start"), np.full(ds["status"].shape, np.nan))
    if "initial_overlap" not in ds.variables:  # files written before the start overlap was stored
        ds["initial_overlap"] = (("alpha", "n", "start"), np.full(ds["status"].shape, np.nan),
                                 {"long_name": "overlap q(0) = <W0, W*>/N of the start (not stored: NaN)"})
    bad = [v for v in SWEEP_VARIABLES + FORMAT_2_VARIABLES if ds[v].dims != ("alpha", "n", "start")]
    if bad:
        raise InputError(f"{where}: variables {bad} do not have dims (alpha, n, start)")
    if not np.array_equal(ds["start"].values, np.arange(ds.sizes["start"])):
        raise InputError(f"{where}: coordinate start is not 0..{ds.sizes['start'] - 1}")
    status = np.asarray(ds["status"].values).astype(str)
    unknown = sorted(set(np.unique(status)) - set(STATUSES))
    if unknown:
        raise InputError(f"{where}: unknown status values {unknown[:3]}")
    if np.any(np.asarray(ds["success"].values, bool) != (status == "success")):
        raise InputError(f"{where}: variable success disagrees with status")
    ds["status"] = ds["status"].copy(data=status.astype(object))
    ds["message"] = ds["message"].copy(data=np.asarray(ds["message"].values).astype(str).astype(object))
    return ds


def _same(a, b) -> bool:
    """Attribute equality across the netCDF round trip (ints/floats by value, else text)."""
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def stored_identity(ds) -> dict:
    """The parameters a sweep file records; for a format-1 file, completed with the values
    that format used for the parameters it did not record (:data:`LEGACY_ATTRS`)."""
    attrs = dict(ds.attrs)
    if attrs.get("format") == FORMATS[0]:
        attrs = {**{k: _attr(v) for k, v in LEGACY_ATTRS.items()}, **attrs}
    return attrs


def open_sweep(path: str | os.PathLike, config: SweepConfig) -> xr.Dataset:
    """The existing sweep at ``path`` if it has exactly ``config``'s parameters (and seeds),
    else an InputError naming the first difference (the resume rule). A format-1 file that
    passes is upgraded in memory (format and attrs of this version), so the next write
    stores it in the current format."""
    ds = read_sweep(path)
    diffs = []
    if ds.sizes["start"] != config.starts:
        diffs.append(f"starts {ds.sizes['start']} vs {config.starts}")
    if not np.array_equal(ds["n"].values, np.array(config.n)):
        diffs.append(f"N {ds['n'].values.tolist()} vs {list(config.n)}")
    if ds.sizes.get("alpha") != len(config.alpha) or not np.array_equal(ds["alpha"].values, np.array(config.alpha)):
        diffs.append(f"alpha grid {_grid_text(ds['alpha'].values)} vs {_grid_text(config.alpha)}")
    stored = stored_identity(ds)
    start_kind = (stored.get("init", INITS[0]), stored.get("preprocess", "default"))
    if start_kind != (config.init, _attr(config.preprocess)):
        diffs.append(f"init {start_kind[0]!r} (preprocess {start_kind[1]!r}) vs {config.init!r} "
                     f"(preprocess {_attr(config.preprocess)!r})")
    for key, value in config.identity().items():
        if key in ("init", "preprocess"):
            continue  # compared above, also for random-start files that do not record them
        if key not in stored or not _same(stored[key], value):
            diffs.append(f"{key} {stored.get(key)!r} vs {value!r}")
    if not diffs and not np.array_equal(ds["cell_seed"].values, config.seed_table()):
        diffs.append("the seeds of the starts")
    if diffs:
        raise InputError(f"{str(path)!r} holds a sweep with other parameters ({diffs[0]}); "
                         "rerun with the same arguments to resume, or choose another --out")
    if ds.attrs.get("format") != FORMAT:
        ds.attrs.update({**stored, **config.identity(), "format": FORMAT,
                         "upgraded_from": f"{FORMATS[0]} by package version {io.package_version()}"})
    return ds


def _grid_text(values) -> str:
    v = [float(x) for x in values]
    return f"[{v[0]:g} .. {v[-1]:g}, {len(v)} values]" if len(v) > 4 else str([float(f"{x:g}") for x in v])


def done_mask(ds: xr.Dataset) -> np.ndarray:
    """True where a start has a stored result (errors included: they are not rerun)."""
    return np.asarray(ds["status"].values != PENDING)


def decided_mask(ds: xr.Dataset) -> np.ndarray:
    """True where a start ended by a stop rule (success, trapped, timeout): the starts a
    success probability counts (not pending, not an error)."""
    status = np.asarray(ds["status"].values)
    return (status != PENDING) & (status != ERROR)


def store_chunk(ds: xr.Dataset, chunk: Chunk, results: Iterable[StartResult]) -> None:
    """Put a chunk's results into ``ds`` (in place; ``ds`` is held in memory).

    Raises
    ------
    ValueError
        A result for a start that is already stored (it would be counted twice).
    """
    i, j = chunk.alpha_index, chunk.n_index
    results = tuple(results)
    again = [r.start for r in results if ds["status"].values[i, j, r.start] != PENDING]
    if again:
        raise ValueError(f"starts {again} of alpha={chunk.alpha:g}, N={chunk.n} are already stored")
    for r in results:
        ds["status"].values[i, j, r.start] = r.status
        ds["message"].values[i, j, r.start] = r.message
        ds["wall_seconds"].values[i, j, r.start] = r.wall_seconds
        ds["initial_overlap"].values[i, j, r.start] = r.initial_overlap
        ds["success"].values[i, j, r.start] = r.success
        for name in RESULT_FIELDS:
            ds[name].values[i, j, r.start] = getattr(r, name)
        ds["cell_seed"].values[i, j, r.start] = r.cell_seed


# ---------------------------------------------------------------------------- driver
@dataclass(frozen=True)
class SweepReport:
    """What a call of :func:`run_sweep` did."""

    path: str
    total: int
    previously_done: int
    completed: int
    chunks: int
    executor: str
    wall_seconds: float
    success_fraction: np.ndarray = field(repr=False)  # (alpha, n), NaN where nothing is decided
    errors: int = 0  # starts stored as "error" (the flow raised; see the message variable)

    @property
    def done(self) -> int:
        return self.previously_done + self.completed


def success_fraction(ds: xr.Dataset) -> np.ndarray:
    """Fraction of successful starts per (alpha, N) among the decided ones (NaN if none)."""
    done = decided_mask(ds)
    count = done.sum(axis=2)
    wins = (np.asarray(ds["success"].values, bool) & done).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, wins / np.maximum(count, 1), np.nan)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_sweep(config: SweepConfig, out: str | os.PathLike, *, scheduler: str | None = None,
              workers: int | None = None, chunk_size: int = 4, progress: bool = False) -> SweepReport:
    """Run (or resume) a sweep into ``out``; returns a :class:`SweepReport`.

    Parameters
    ----------
    config : SweepConfig
    out : path of the netCDF file (created, or resumed if it holds the same sweep)
    scheduler : address of a Dask distributed scheduler; None: local processes
    workers : local worker processes (default min(2, cpu count); 0: run in this process)
    chunk_size : starts per chunk (the unit of work and of writing)
    progress : tqdm bar over starts on stderr
    """
    t0 = time.perf_counter()
    out = io.output_path(out, "sweep file")  # writable, before any work or lock file
    if workers is None:
        workers = default_workers()
    if not isinstance(workers, (int, np.integer)) or workers < 0:
        raise InputError(f"workers must be an integer >= 0, got {workers!r}")
    every_chunk = plan_chunks(config, None, chunk_size)  # validates chunk_size (no work)
    if scheduler is not None:
        scheduler = check_scheduler(scheduler)  # fail before touching the file
    else:  # the largest start, in each local process at once, must fit before the file is written
        check_memory(max(config.n), max(config.alpha), 1, config.dtype,
                     processes=1 if workers == 0 else min(int(workers), len(every_chunk)))
    with sweep_lock(out):
        for tmp in _stale_temporaries(out):  # we hold the lock: nobody else is writing
            tmp.unlink(missing_ok=True)
        if out.exists():
            ds = open_sweep(out, config)
        else:
            ds = empty_dataset(config)
            write_dataset(ds, out)
        done = done_mask(ds)
        previously = int(done.sum())
        chunks = plan_chunks(config, done, chunk_size)
        executor = ("nothing to run" if not chunks else f"dask {scheduler}" if scheduler else
                    "in-process" if workers == 0 else f"{min(workers, len(chunks))} local process(es)")
        completed = _execute(config, chunks, ds, out, scheduler, workers, progress, previously)
    return SweepReport(path=str(out), total=int(done.size), previously_done=previously, completed=completed,
                       chunks=len(chunks), executor=executor, wall_seconds=time.perf_counter() - t0,
                       success_fraction=success_fraction(ds),
                       errors=int(np.sum(np.asarray(ds["status"].values) == ERROR)))


def _execute(config, chunks, ds, out, scheduler, workers, progress, previously) -> int:
    """Run ``chunks`` on the chosen executor, storing and writing ``ds`` after each one;
    returns the number of starts completed."""
    if not chunks:
        return 0
    from tqdm import tqdm

    completed = 0
    bar = tqdm(total=ds["status"].size, initial=previously, unit="start", desc="sweep", disable=not progress,
               dynamic_ncols=True)
    results = _dask_results(config, chunks, scheduler) if scheduler else _local_results(config, chunks, workers)
    try:
        for chunk, res in results:
            store_chunk(ds, chunk, res)
            write_dataset(ds, out)
            completed += len(res)
            bar.update(len(res))
            if _TERMINATE.is_set():  # a SIGTERM whose KeyboardInterrupt was lost (see _TERMINATE)
                raise KeyboardInterrupt
    finally:
        bar.close()
        results.close()  # stops the executor (and the chunks in flight) if we leave early
    return completed


# ---------------------------------------------------------------------------- command line
def add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    """``python -m simulation sweep``: register the subparser."""
    p = sub.add_parser(
        "sweep", help="success probability over (alpha, N): many starts, fresh data each, to a netCDF file",
        description="Run every (alpha, N, start) of a grid, each start on its own data drawn from a seed "
                    "derived from (--seed, N, alpha, start), and store the labelled results (xarray, netCDF4) "
                    "chunk by chunk. Rerunning the same command resumes; other arguments on an existing "
                    "file are refused.")
    p.add_argument("--n", type=io.integer_arg("N"), nargs="+", default=[128], metavar="N",
                   help="dimensions (default 128)")
    p.add_argument("--alpha", nargs="+", default=["3:8:1"], metavar="A",
                   help="values and/or inclusive ranges START:STOP:STEP (default 3:8:1)")
    p.add_argument("--starts", type=io.integer_arg("starts"), default=16, help="starts per (alpha, N) (default 16)")
    p.add_argument("--out", default="sweep.nc", help="netCDF file to create or resume (default sweep.nc)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask distributed scheduler, e.g. tcp://127.0.0.1:8786 (default: local processes)")
    p.add_argument("--workers", type=io.integer_arg("workers"), default=None,
                   help="local worker processes (default min(2, cpu count); 0 = in this process)")
    p.add_argument("--chunk", type=io.integer_arg("chunk"), default=4,
                   help="starts per chunk, the unit of work and of writing (default 4)")
    p.add_argument("--seed", type=io.integer_arg("seed"), default=0, help="base seed (default 0)")
    p.add_argument("--seeds", type=io.integer_arg("seeds"), nargs="+", default=None, metavar="S",
                   help="explicit seed of every start, in (alpha, N, start) order of the sorted grids "
                        "(alpha count x N count x --starts values; replaces the seeds derived from --seed)")
    p.add_argument("--init", default=INITS[0], choices=INITS,
                   help="start of every run: random on the sphere (default) or spectral, the top eigenvector "
                        "of its data's (1/M) sum T(y_m) a_m a_m^T (docs/theory.md §6)")
    p.add_argument("--preprocess", default=None, metavar="NAME",
                   help=f"T(y) of --init spectral: plain, trimmed, {DEFAULT_PREPROCESSING} (default), "
                        "luo-alghamdi-lu, mondelli-montanari:D or a formula in y")
    add_flow_options(p)
    p.add_argument("--json", action="store_true", help="print JSON only (no progress bar)")


def _default_text(value, f64, f32) -> str:
    """Help text of a default: the value, or the flow's dtype-dependent defaults."""
    return f"{value:g}" if value is not None else f"{f64:g}; {f32:g} in float32"


def add_flow_options(p: argparse.ArgumentParser) -> None:
    """Every stop rule and tolerance of the flow, named as in ``python -m simulation run``,
    with the flow's own defaults (StopRules, Integrator)."""
    stop, integ = StopRules(), Integrator()
    rtol64, atol64 = integ.tolerances("float64")
    rtol32, atol32 = integ.tolerances("float32")
    p.add_argument("--t-max", type=io.number_arg, default=stop.t_max,
                   help=f"timeout in flow time (default {stop.t_max:g})")
    p.add_argument("--success-overlap", type=io.number_arg, default=stop.success_overlap,
                   help=f"success when |q| >= this (default {stop.success_overlap:g})")
    p.add_argument("--energy-tol", type=io.number_arg, default=stop.energy_tol,
                   help=f"... or when e = L/N <= this (default {stop.energy_tol:g})")
    p.add_argument("--grad-tol", type=io.number_arg, default=stop.grad_tol,
                   help="trapped when rms gradient <= this (default "
                        f"{_default_text(stop.grad_tol, stop.gradient_tolerance('float64'), stop.gradient_tolerance('float32'))})")
    p.add_argument("--method", default=integ.method, help=f"flow (adaptive RKC) or gd (default {integ.method})")
    p.add_argument("--rtol", type=io.number_arg, default=integ.rtol,
                   help=f"flow relative tolerance (default {_default_text(integ.rtol, rtol64, rtol32)})")
    p.add_argument("--atol", type=io.number_arg, default=integ.atol,
                   help=f"flow absolute tolerance (default {_default_text(integ.atol, atol64, atol32)})")
    p.add_argument("--max-stages", type=io.integer_arg("max-stages"), default=integ.max_stages,
                   help=f"largest RKC stage count (default {integ.max_stages})")
    p.add_argument("--lr", type=io.number_arg, default=integ.lr, help=f"learning rate of gd (default {integ.lr:g})")
    p.add_argument("--dtype", default=resolve_dtype(None).name,
                   help=f"float64 or float32 (default {resolve_dtype(None).name})")
    p.add_argument("--loss", default=get_loss(None).name, help=f"loss name (default {get_loss(None).name})")
    p.add_argument("--time-grid", default=TIME_GRIDS[0], choices=TIME_GRIDS,
                   help="recording grid the flow's steps land on: log (as `run`, default) or none (only t = 0)")


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    """The :class:`SweepConfig` of parsed ``sweep`` arguments (``--seeds`` reshaped to
    (alpha, N, start) of the sorted grids)."""
    alpha = parse_alpha_grid(args.alpha)
    n = tuple(sorted(set(args.n)))
    seeds = None
    if args.seeds is not None:
        shape = (len(alpha), len(n), args.starts)
        if len(args.seeds) != int(np.prod(shape)):
            raise InputError(f"--seeds needs {int(np.prod(shape))} values ({shape[0]} alpha x {shape[1]} N x "
                             f"{shape[2]} starts), got {len(args.seeds)}")
        seeds = np.array(args.seeds, dtype=object).reshape(shape)
    return SweepConfig(n=n, alpha=alpha, starts=args.starts, seed=args.seed, t_max=args.t_max,
                       method=args.method, lr=args.lr, rtol=args.rtol, grad_tol=args.grad_tol, dtype=args.dtype,
                       loss=args.loss, success_overlap=args.success_overlap, energy_tol=args.energy_tol,
                       atol=args.atol, max_stages=args.max_stages, time_grid=args.time_grid, seeds=seeds,
                       init=args.init, preprocess=args.preprocess)


#: set by the SIGTERM handler of :func:`terminate_as_interrupt`; :func:`_execute` checks it
#: after each chunk, because the handler's KeyboardInterrupt is lost when the signal lands
#: while Python runs a weakref callback or finaliser (Python prints it and carries on)
_TERMINATE = threading.Event()


@contextlib.contextmanager
def terminate_as_interrupt() -> _Iterator[None]:
    """Treat SIGTERM like Ctrl-C while a sweep (or a run) goes on, so the workers are stopped and the
    command exits with one line (status 130) instead of dying with orphans."""
    import signal

    def handler(signum, frame):
        _TERMINATE.set()
        raise KeyboardInterrupt

    def quiet_lost_interrupt(unraisable):
        # the KeyboardInterrupt swallowed in a callback: not an error to print, the sweep
        # loop raises it again after the chunk in flight (see _TERMINATE)
        if not (_TERMINATE.is_set() and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            previous_hook(unraisable)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _TERMINATE.clear()
    previous, previous_hook = signal.signal(signal.SIGTERM, handler), sys.unraisablehook
    sys.unraisablehook = quiet_lost_interrupt
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook
        _TERMINATE.clear()


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``python -m simulation sweep``; prints a success-fraction table or JSON."""
    import json

    config = config_from_args(args)
    with terminate_as_interrupt():
        rep = run_sweep(config, args.out, scheduler=args.scheduler, workers=args.workers,
                        chunk_size=args.chunk, progress=not args.json)
    frac = [[None if not np.isfinite(v) else float(v) for v in row] for row in rep.success_fraction]
    if args.json:
        print(json.dumps(dict(out=rep.path, n=list(config.n), alpha=list(config.alpha), **config.identity(),
                              total=rep.total, previously_done=rep.previously_done, completed=rep.completed,
                              errors=rep.errors,
                              executor=rep.executor, success_fraction=frac,
                              wall_seconds=round(rep.wall_seconds, 3))))
        return 0
    print(f"sweep {rep.path}: {rep.done}/{rep.total} starts done ({rep.previously_done} before, "
          f"{rep.completed} now, {rep.executor}, {rep.wall_seconds:.1f} s)"
          + (f"; {rep.errors} error(s), see the message variable" if rep.errors else ""))
    print("success fraction   " + " ".join(f"{'N=' + str(n):>8}" for n in config.n))
    for a, row in zip(config.alpha, frac):
        print(f"alpha {a:<11g}  " + " ".join(f"{'-' if v is None else format(v, '.3f'):>8}" for v in row))
    return 0
