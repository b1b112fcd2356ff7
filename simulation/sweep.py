"""Sweeps of gradient flow over (alpha, N, start), stored as a labelled netCDF dataset.

Every start of every cell (alpha, N) gets FRESH data and its own start, both drawn from a
cell seed derived from (base seed, N, alpha, start) by ``numpy.random.SeedSequence``
(:func:`cell_seed`), so the numbers do not depend on chunking, ordering or the executor.
Each start is one call of ``run_dynamics`` with one replica, and can be reproduced alone
with ``python -m simulation run --n N --alpha A --replicas 1 --seed <cell_seed>``.

Storage (netCDF4 through h5netcdf, one file): an ``xarray.Dataset`` with dims
(alpha, n, start), variables ``success``, ``final_energy``, ``final_overlap``,
``final_grad_norm``, ``stop_time``, ``status`` ("success" | "trapped" | "timeout" |
"pending") and ``cell_seed``, coordinate ``m`` (alpha, n) = round(alpha N), and attrs with
every parameter that fixes the numbers plus the package version. Work is split in chunks
(a few starts of one cell); after each finished chunk the whole file is rewritten to a
temporary file and moved into place with ``os.replace``, so a kill loses at most the
chunks in flight and the file on disk is always a complete, readable dataset. A rerun with
the same parameters skips the finished starts; one with different parameters is refused.

Only one sweep may write a file at a time: :func:`run_sweep` holds an exclusive
``flock`` on ``.<name>.lock`` next to it (released by the kernel even on SIGKILL).

Executors: local processes (``concurrent.futures.ProcessPoolExecutor``, spawn), in-process
(``workers=0``), or a Dask distributed cluster (``scheduler="tcp://host:port"``). All run
the same pure function :func:`run_chunk` with one BLAS thread (threadpoolctl), so the
numbers are bit-for-bit the same on every executor, given the same NumPy/BLAS build on
the machines that run the chunks.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from theory import io
from theory.errors import InputError

from .data import check_size, make_problem, random_starts, resolve_dtype
from .flow import Integrator, StopRules, run_dynamics

__all__ = ["SweepConfig", "Chunk", "StartResult", "parse_alpha_grid", "cell_seed", "plan_chunks",
           "run_start", "run_chunk", "empty_dataset", "open_sweep", "write_dataset", "run_sweep",
           "SweepReport", "FORMAT", "PENDING"]

FORMAT = "phaseflow-sweep-1"
PENDING = "pending"
#: alpha enters the seed as round(alpha * ALPHA_KEY_SCALE): grids finer than 1e-6 are refused.
ALPHA_KEY_SCALE = 10**6
RESULT_FIELDS = ("final_energy", "final_overlap", "final_grad_norm", "stop_time")


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


@dataclass(frozen=True)
class SweepConfig:
    """Everything that fixes the numbers of a sweep (the file's identity).

    Attributes
    ----------
    n : tuple of int
        Dimensions N (sorted, distinct, >= 2).
    alpha : tuple of float
        Ratios M/N (sorted, distinct, > 0); see :func:`parse_alpha_grid`.
    starts : int
        Starts per cell (>= 1); start k of a cell has its own data and start.
    seed : int
        Base seed (>= 0).
    t_max, method, lr, rtol, grad_tol, dtype, loss
        As in ``python -m simulation run`` (None: the package defaults).
    """

    n: tuple[int, ...]
    alpha: tuple[float, ...]
    starts: int
    seed: int = 0
    t_max: float = 2000.0
    method: str = "flow"
    lr: float = 0.01
    rtol: float | None = None
    grad_tol: float | None = None
    dtype: str = "float64"
    loss: str = "quartic"

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
        object.__setattr__(self, "n", ns)
        object.__setattr__(self, "alpha", alphas)
        object.__setattr__(self, "starts", int(self.starts))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "dtype", resolve_dtype(self.dtype).name)
        self.stop_rules()  # validate now, not in a worker
        self.integrator()
        from theory.loss import get_loss

        get_loss(self.loss)

    def stop_rules(self) -> StopRules:
        return StopRules(t_max=float(self.t_max), grad_tol=self.grad_tol)

    def integrator(self) -> Integrator:
        return Integrator(method=self.method, rtol=self.rtol, lr=float(self.lr))

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.alpha), len(self.n), self.starts

    def identity(self) -> dict:
        """Scalar parameters as netCDF-safe attrs (None -> "default")."""
        out = {}
        for key, value in asdict(self).items():
            if key in ("n", "alpha", "starts"):
                continue
            out[key] = "default" if value is None else value
        out["starts"] = self.starts
        return out


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
def run_start(config: SweepConfig, n: int, alpha: float, start: int) -> StartResult:
    """One start: fresh data and start from :func:`cell_seed`, run to its stop rule."""
    seed = cell_seed(config.seed, n, alpha, start)
    problem = make_problem(n, alpha, seed, config.dtype)
    W0 = random_starts(n, 1, seed, config.dtype)
    res = run_dynamics(problem, W0, config.stop_rules(), config.integrator(), config.loss)
    return StartResult(start=start, cell_seed=seed, status=str(res.status[0]),
                       final_energy=float(res.energy[0]), final_overlap=float(res.q[0]),
                       final_grad_norm=float(res.grad_norm[0]), stop_time=float(res.stop_time[0]))


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
def empty_dataset(config: SweepConfig):
    """A dataset of ``config.shape`` with every start pending (NaN results)."""
    import xarray as xr

    dims = ("alpha", "n", "start")
    shape = config.shape
    nan = lambda: np.full(shape, np.nan)  # noqa: E731
    m = np.array([[int(round(a * n)) for n in config.n] for a in config.alpha], dtype=np.int64)
    data = {
        "success": (dims, np.zeros(shape, bool), {"long_name": "the start reached |q| >= 0.999 or e <= 1e-10"}),
        "status": (dims, np.full(shape, PENDING, dtype=object),
                   {"long_name": "stop rule: success | trapped | timeout | pending (not run yet)"}),
        "final_energy": (dims, nan(), {"long_name": "energy per dimension e = L/N at the stop"}),
        "final_overlap": (dims, nan(), {"long_name": "overlap q = <W, W*>/N at the stop"}),
        "final_grad_norm": (dims, nan(), {"long_name": "rms Riemannian gradient |g|/sqrt(N) at the stop"}),
        "stop_time": (dims, nan(), {"long_name": "flow time (gd: steps x lr) at the stop"}),
        "cell_seed": (dims, np.array([[[cell_seed(config.seed, n, a, s) for s in range(config.starts)]
                                        for n in config.n] for a in config.alpha], dtype=np.int64),
                      {"long_name": "seed of this start's data and start (python -m simulation run --seed)"}),
    }
    coords = {"alpha": ("alpha", np.array(config.alpha), {"long_name": "M/N"}),
              "n": ("n", np.array(config.n, dtype=np.int64), {"long_name": "dimension N"}),
              "start": ("start", np.arange(config.starts, dtype=np.int64)),
              "m": (("alpha", "n"), m, {"long_name": "measurements M = round(alpha N)"})}
    attrs = {"format": FORMAT, "package_version": io.package_version(), **config.identity(),
             "seed_rule": "cell_seed = SeedSequence(seed, spawn_key=(N, round(alpha*1e6), start))"
                          ".generate_state(1, uint64) >> 1; data = make_problem(N, alpha, cell_seed), "
                          "start = random_starts(N, 1, cell_seed)",
             "conventions": "docs/theory.md section 1"}
    return xr.Dataset(data, coords=coords, attrs=attrs)


write_dataset = io.write_netcdf


def _stale_temporaries(path: Path) -> list[Path]:
    """Temporary files of :func:`write_dataset` for ``path`` (left by a kill mid-write)."""
    return sorted(path.parent.glob(path.name + ".*.tmp"))


@contextlib.contextmanager
def sweep_lock(path: str | os.PathLike):
    """Hold an exclusive lock for writing the sweep at ``path`` (``.<name>.lock`` next to
    it; flock, so the kernel releases it when the process dies, even by SIGKILL).

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
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another sweep is writing {str(path)!r} (lock {str(lock)!r} is held)") from None
        yield lock
    finally:
        os.close(fd)  # releases the flock


def load_dataset(path: str | os.PathLike, kind: str = "sweep file"):
    """Read a netCDF file fully into memory (:func:`theory.io.load_netcdf`)."""
    return io.load_netcdf(path, kind=kind)


SWEEP_VARIABLES = ("success", "status", "cell_seed") + RESULT_FIELDS
STATUSES = ("success", "trapped", "timeout", PENDING)


def read_sweep(path: str | os.PathLike):
    """A sweep file written by :func:`run_sweep`, checked for format, variables, dims and
    status values (so a damaged or foreign file is refused, not silently extended).

    Raises
    ------
    InputError
        Missing, unreadable, not a sweep, or structurally inconsistent.
    """
    ds = load_dataset(path)
    where = f"sweep file {str(path)!r}"
    if ds.attrs.get("format") != FORMAT:
        raise InputError(f"{str(path)!r} is not a sweep file (format attribute {ds.attrs.get('format')!r}, "
                         f"expected {FORMAT!r})")
    missing = [v for v in SWEEP_VARIABLES + ("alpha", "n", "start") if v not in ds.variables]
    if missing:
        raise InputError(f"{where} lacks the variables {missing}")
    bad = [v for v in SWEEP_VARIABLES if ds[v].dims != ("alpha", "n", "start")]
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
    return ds


def _same(a, b) -> bool:
    """Attribute equality across the netCDF round trip (ints/floats by value, else text)."""
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def open_sweep(path: str | os.PathLike, config: SweepConfig):
    """The existing sweep at ``path`` if it has exactly ``config``'s parameters, else an
    InputError naming the first difference (the resume rule)."""
    ds = read_sweep(path)
    diffs = []
    if ds.sizes["start"] != config.starts:
        diffs.append(f"starts {ds.sizes['start']} vs {config.starts}")
    if not np.array_equal(ds["n"].values, np.array(config.n)):
        diffs.append(f"N {ds['n'].values.tolist()} vs {list(config.n)}")
    if ds.sizes.get("alpha") != len(config.alpha) or not np.array_equal(ds["alpha"].values, np.array(config.alpha)):
        diffs.append(f"alpha grid {_grid_text(ds['alpha'].values)} vs {_grid_text(config.alpha)}")
    for key, value in config.identity().items():
        if key not in ds.attrs or not _same(ds.attrs[key], value):
            diffs.append(f"{key} {ds.attrs.get(key)!r} vs {value!r}")
    if diffs:
        raise InputError(f"{str(path)!r} holds a sweep with other parameters ({diffs[0]}); "
                         "rerun with the same arguments to resume, or choose another --out")
    return ds


def _grid_text(values) -> str:
    v = [float(x) for x in values]
    return f"[{v[0]:g} .. {v[-1]:g}, {len(v)} values]" if len(v) > 4 else str([float(f"{x:g}") for x in v])


def done_mask(ds) -> np.ndarray:
    """True where a start has a stored result."""
    return np.asarray(ds["status"].values != PENDING)


def store_chunk(ds, chunk: Chunk, results: Iterable[StartResult]) -> None:
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
    success_fraction: np.ndarray = field(repr=False)  # (alpha, n), NaN where nothing is done

    @property
    def done(self) -> int:
        return self.previously_done + self.completed


def success_fraction(ds) -> np.ndarray:
    """Fraction of successful starts per (alpha, N) among the finished ones (NaN if none)."""
    done = done_mask(ds)
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
    out = Path(out)
    if workers is None:
        workers = default_workers()
    if not isinstance(workers, (int, np.integer)) or workers < 0:
        raise InputError(f"workers must be an integer >= 0, got {workers!r}")
    plan_chunks(config, np.ones(config.shape, bool), chunk_size)  # validates chunk_size (no work)
    if scheduler is not None:
        scheduler = check_scheduler(scheduler)  # fail before touching the file
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
                       success_fraction=success_fraction(ds))


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
def add_sweep_parser(sub) -> None:
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
    p.add_argument("--t-max", type=io.number_arg, default=2000.0, help="timeout in flow time (default 2000)")
    p.add_argument("--method", default="flow", help="flow (adaptive RKC, default) or gd")
    p.add_argument("--lr", type=io.number_arg, default=0.01, help="learning rate of gd (default 0.01)")
    p.add_argument("--rtol", type=io.number_arg, default=None, help="flow tolerance (default 1e-6; 1e-4 in float32)")
    p.add_argument("--grad-tol", type=io.number_arg, default=None,
                   help="trapped when rms gradient <= this (default 1e-8; 1e-4 in float32)")
    p.add_argument("--dtype", default="float64", help="float64 (default) or float32")
    p.add_argument("--loss", default="quartic", help="loss name (default quartic)")
    p.add_argument("--json", action="store_true", help="print JSON only (no progress bar)")


#: set by the SIGTERM handler of :func:`_terminate_as_interrupt`; :func:`_execute` checks it
#: after each chunk, because the handler's KeyboardInterrupt is lost when the signal lands
#: while Python runs a weakref callback or finaliser (Python prints it and carries on)
_TERMINATE = threading.Event()


@contextlib.contextmanager
def _terminate_as_interrupt():
    """Treat SIGTERM like Ctrl-C while a sweep runs, so the workers are stopped and the
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


def cmd_sweep(args) -> int:
    """Run ``python -m simulation sweep``; prints a success-fraction table or JSON."""
    import json

    config = SweepConfig(n=tuple(args.n), alpha=parse_alpha_grid(args.alpha), starts=args.starts,
                         seed=args.seed, t_max=args.t_max, method=args.method, lr=args.lr, rtol=args.rtol,
                         grad_tol=args.grad_tol, dtype=args.dtype, loss=args.loss)
    with _terminate_as_interrupt():
        rep = run_sweep(config, args.out, scheduler=args.scheduler, workers=args.workers,
                        chunk_size=args.chunk, progress=not args.json)
    frac = [[None if not np.isfinite(v) else float(v) for v in row] for row in rep.success_fraction]
    if args.json:
        print(json.dumps(dict(out=rep.path, n=list(config.n), alpha=list(config.alpha), starts=config.starts,
                              seed=config.seed, t_max=config.t_max, total=rep.total,
                              previously_done=rep.previously_done, completed=rep.completed,
                              executor=rep.executor, success_fraction=frac,
                              wall_seconds=round(rep.wall_seconds, 3))))
        return 0
    print(f"sweep {rep.path}: {rep.done}/{rep.total} starts done ({rep.previously_done} before, "
          f"{rep.completed} now, {rep.executor}, {rep.wall_seconds:.1f} s)")
    print("success fraction   " + " ".join(f"{'N=' + str(n):>8}" for n in config.n))
    for a, row in zip(config.alpha, frac):
        print(f"alpha {a:<11g}  " + " ".join(f"{'-' if v is None else format(v, '.3f'):>8}" for v in row))
    return 0
