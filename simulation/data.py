"""Problem instances (X, W*, y) and random starts, drawn from a seed.

Conventions (docs/theory.md §1): x_m ~ N(0, I_N/N), |W*|^2 = N, y_m = <x_m, W*>,
starts W(0) uniform on the sphere |W|^2 = N. A seed fixes every draw: the data come
from the first child of ``SeedSequence(seed)`` and the starts from the second, so the
same seed gives the same data whatever the number of replicas.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from theory.errors import InputError

__all__ = ["Problem", "make_problem", "problem_from_arrays", "random_starts", "check_size", "warm_start",
           "required_memory", "available_memory", "check_memory"]

DTYPES = {"float64": np.float64, "float32": np.float32}


def check_size(n: int, alpha: float) -> int:
    """Validate (N, alpha) and return M = round(alpha N); raise InputError otherwise."""
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise InputError(f"N must be an integer >= 2, got {n!r}")
    if not np.isfinite(alpha) or alpha <= 0:
        raise InputError(f"alpha must be > 0, got {alpha!r}")
    m = int(round(alpha * n))
    if m < 1:
        raise InputError(f"alpha * N = {alpha * n:g} gives no measurement")
    return m


def resolve_dtype(dtype: DTypeLike) -> np.dtype:
    """'float64' (default) or 'float32' -> numpy dtype; anything else is an InputError."""
    if dtype is None:
        return np.dtype(np.float64)
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in DTYPES:
        raise InputError(f"dtype must be float64 or float32, got {dtype!r}")
    return np.dtype(DTYPES[key])


@dataclass(frozen=True)
class Problem:
    """One data set: sensing matrix X (M, N), labels y (M,), teacher W* (N,) or None.

    Attributes
    ----------
    X : ndarray (M, N)
        Rows are the sensing vectors x_m.
    y : ndarray (M,)
        Labels y_m = <x_m, W*> (only y^2 enters the quartic loss).
    w_star : ndarray (N,) or None
        The teacher, when known (needed for the overlap q and the direction e).
    seed : int or None
        The seed the data came from (None for user-supplied data).
    """

    X: np.ndarray
    y: np.ndarray
    w_star: np.ndarray | None
    seed: int | None = None

    @property
    def n(self) -> int:
        return self.X.shape[1]

    @property
    def m(self) -> int:
        return self.X.shape[0]

    @property
    def alpha(self) -> float:
        return self.m / self.n

    @property
    def dtype(self) -> np.dtype:
        return self.X.dtype

    def astype(self, dtype) -> "Problem":
        dt = resolve_dtype(dtype)
        if dt == self.dtype:
            return self
        w = None if self.w_star is None else self.w_star.astype(dt)
        return Problem(self.X.astype(dt), self.y.astype(dt), w, self.seed)


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    data_ss, start_ss = np.random.SeedSequence(int(seed)).spawn(2)
    return np.random.default_rng(data_ss), np.random.default_rng(start_ss)


def make_problem(n: int, alpha: float, seed: int, dtype: DTypeLike = "float64") -> Problem:
    """Draw X with i.i.d. N(0, 1/N) entries, W* uniform on |W*|^2 = N, y = X W*.

    Parameters
    ----------
    n : int
        Dimension N >= 2.
    alpha : float
        Sample ratio M / N > 0 (M = round(alpha N)).
    seed : int
        Seed of the data stream.
    dtype : {"float64", "float32"}
        Storage and arithmetic precision (draws are made in float64 then cast, so the
        float32 problem is the float64 one rounded).
    """
    m = check_size(n, alpha)
    rng, _ = _streams(seed)
    X = rng.standard_normal((m, n)) / np.sqrt(n)
    w_star = rng.standard_normal(n)
    w_star *= np.sqrt(n) / np.linalg.norm(w_star)
    y = X @ w_star
    dt = resolve_dtype(dtype)
    return Problem(X.astype(dt, copy=False), y.astype(dt), w_star.astype(dt), int(seed))


def problem_from_arrays(X: ArrayLike, y: ArrayLike, w_star: ArrayLike | None = None) -> Problem:
    """Wrap user data: X (M, N) and labels y (M,) (signs are irrelevant to the quartic
    loss, so |y| from intensities y^2 will do); the teacher is optional."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] < 2:
        raise InputError(f"X must be a 2-d array (M, N) with N >= 2, got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise InputError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    dt = np.float32 if X.dtype == np.float32 else np.float64
    if w_star is not None:
        w_star = np.asarray(w_star, dtype=dt)
        if w_star.shape != (X.shape[1],):
            raise InputError(f"w_star must have shape ({X.shape[1]},), got {w_star.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise InputError("X and y must be finite")
    return Problem(X.astype(dt, copy=False), y.astype(dt, copy=False), w_star, None)


def random_starts(n: int, replicas: int, seed: int, dtype: DTypeLike = "float64") -> np.ndarray:
    """B starts uniform on the sphere |W|^2 = N, as the columns of an (N, B) array.

    Replica b is the same vector whatever the total number of replicas (column b of
    the start stream), so adding replicas never changes the earlier ones.
    """
    if not isinstance(replicas, (int, np.integer)) or replicas < 1:
        raise InputError(f"replicas must be an integer >= 1, got {replicas!r}")
    _, rng = _streams(seed)
    W = np.empty((n, replicas))
    for b in range(replicas):  # one draw per replica keeps replica b independent of B
        W[:, b] = rng.standard_normal(n)
    W *= np.sqrt(n) / np.linalg.norm(W, axis=0)
    return W.astype(resolve_dtype(dtype))


def warm_start(problem: Problem, q0: float, seed: int) -> np.ndarray:
    """A start on the sphere with overlap exactly q0 with the teacher, as an (N, 1) column.

    W0 = q0 W* + sqrt(1 - q0^2) P, with P the component of the random start of ``seed``
    (:func:`random_starts`) orthogonal to W*, rescaled to |P|^2 = N; computed in float64.
    """
    if problem.w_star is None:
        raise InputError("a warm start needs the teacher W*")
    if not (isinstance(q0, (int, float, np.floating)) and -1.0 <= q0 <= 1.0):
        raise InputError(f"q0 must be a number in [-1, 1], got {q0!r}")
    n = problem.n
    w = random_starts(n, 1, seed)[:, 0].astype(np.float64)
    ws = problem.w_star.astype(np.float64)
    perp = w - (w @ ws) / n * ws
    perp *= np.sqrt(n) / np.linalg.norm(perp)
    return (q0 * ws + np.sqrt(1 - q0 * q0) * perp)[:, None]


#: Arrays of the flow per replica, in the problem's dtype, counted from simulation.flow._run_rkc
#: at its peak (the step's merge): M-vectors (yhat of the current, the new and the merged
#: point, of a stage evaluation, and its loss temporaries) and N-vectors (start, finals,
#: state, power-iteration vector, F0, three RKC stages, gradients of three points and of a
#: stage, the error estimate and its temporaries).
FLOW_M_VECTORS = 6
FLOW_N_VECTORS = 24
#: float64 numbers per replica of the trajectory record (5 quantities on ~61 log-grid times).
RECORD_NUMBERS = 5 * 64
#: Bytes allowed for the small arrays and Python objects of a run.
RUN_OVERHEAD = 2**20


def required_memory(n: int, alpha: float, replicas: int = 1, dtype: DTypeLike = "float64") -> int:
    """Bytes a run of ``replicas`` starts on data drawn by :func:`make_problem` needs at its peak.

    With M = round(alpha N), s the dtype's item size and B = ``replicas``::

        bytes = max(8 M N + [s M N if s < 8],  s M N + s B (6 M + 24 N) + 8 B 320)

    The first term is the draw of X in :func:`make_problem`: the float64 normals (scaled in
    place by NumPy's temporary elision), plus their float32 copy; the second is the flow:
    X in the dtype, then the working vectors of the adaptive RKC flow at its peak, 6 of
    length M and 24 of length N per replica (:data:`FLOW_M_VECTORS`, :data:`FLOW_N_VECTORS`),
    and the trajectory record; plus :data:`RUN_OVERHEAD` (1 MiB) for the small arrays and
    objects of a run (y, W*, grids, coefficients, the step log). An upper bound within a
    factor 1.5 of the peak measured by tracemalloc (tests/simulation/test_data.py).
    """
    m = check_size(n, alpha)
    s = resolve_dtype(dtype).itemsize
    if not isinstance(replicas, (int, np.integer)) or replicas < 1:
        raise InputError(f"replicas must be an integer >= 1, got {replicas!r}")
    b = int(replicas)
    draw = 8 * m * n + (s * m * n if s < 8 else 0)
    flow = s * m * n + s * b * (FLOW_M_VECTORS * m + FLOW_N_VECTORS * n) + 8 * b * RECORD_NUMBERS
    return int(max(draw, flow)) + RUN_OVERHEAD


def _read_int(path: str) -> int | None:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable of /proc/meminfo (else the free
    pages of ``os.sysconf``), lowered to the cgroup's memory.max - memory.current when a
    cgroup limit is set; None when the system says nothing."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        avail = None
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        avail = limit - used if avail is None else min(avail, limit - used)
    return avail


def _gigabytes(nbytes: float) -> str:
    return f"{nbytes / 1e9:.3g} GB"


def check_memory(n: int, alpha: float, replicas: int = 1, dtype: DTypeLike = "float64",
                 processes: int = 1) -> int:
    """Refuse, before allocating, a run that cannot fit: ``processes`` x
    :func:`required_memory` against :func:`available_memory`.

    Returns the bytes required; raises InputError (one line naming both numbers) when they
    exceed what is available (no check when the system does not say).
    """
    need = required_memory(n, alpha, replicas, dtype) * max(1, int(processes))
    have = available_memory()
    if have is not None and need > have:
        who = f" ({processes} processes)" if processes > 1 else ""
        raise InputError(f"N={n}, alpha={alpha:g}, {replicas} replica(s) in {resolve_dtype(dtype).name} need about "
                         f"{_gigabytes(need)} of memory{who}, only {_gigabytes(have)} available")
    return need
