"""The law of (yhat, y, s) that the random-matrix core of the Hessian needs.

A :class:`Measure` is a discrete probability law (atoms ``yhat, y, s`` with ``weights``
summing to 1) together with the sample ratio ``alpha = M / N``, the Lagrange multiplier
``mu`` and the loss. It is either the empirical law of a simulated state (equal weights)
or a theoretical law given by quadrature nodes. The Hessian curvatures are
``D = V''(yhat, y)`` (docs/theory.md eq. 1.6); the spectral functions of
:mod:`theory.spectrum` only see the reduced law of ``(D, s)``, a :class:`CurvatureLaw`,
which can also be built directly from curvatures (for laws not coming from a loss).

Measure files (the seam with the simulator, written with :func:`theory.io.atomic_savez`)
are ``.npz`` archives with

==========================  =========================================================
``yhat``, ``y``             1-d float arrays of equal length (required)
``s``                       component along the teacher direction e (default: ``y``)
``weights``                 non-negative, summing to 1 (default: equal weights)
``alpha``                   scalar M / N (required unless given on the command line)
``mu``                      scalar Lagrange multiplier (default: eq. 1.3 from the law)
``loss``                    string scalar, registry name in :data:`theory.loss.LOSSES`
``n``                       integer scalar, dimension N of the state
``eigenvalues``             the state's tangent-Hessian eigenvalues (all or lowest few)
``eigenvalues_complete``    bool scalar, True when ``eigenvalues`` is the full spectrum
==========================  =========================================================
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from numpy.polynomial.hermite_e import hermegauss

from .errors import InputError
from .io import atomic_savez, load_npz
from .loss import Loss, get_loss

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "CurvatureLaw",
    "Measure",
    "MeasureFile",
    "lagrange_multiplier",
    "read_measure_file",
    "write_measure_file",
]

#: Tolerance on ``|sum(weights) - 1|``.
WEIGHT_SUM_TOL = 1e-9


def _as_1d(name: str, values, *, allow_empty: bool = False) -> np.ndarray:
    """A read-only float64 copy of ``values``, checked 1-d and finite."""
    try:
        arr = np.array(values, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an array of real numbers") from None
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise InputError(f"{name} is empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(f"{name} has {int(bad.sum())} non-finite value(s) (first at index {int(np.argmax(bad))})")
    arr.setflags(write=False)
    return arr


def _as_scalar(name: str, value) -> float:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a real number, got {value!r}") from None
    if arr.size != 1:
        raise InputError(f"{name} must be a scalar, got shape {arr.shape}")
    x = float(arr.reshape(()))
    if not np.isfinite(x):
        raise InputError(f"{name} must be finite, got {x}")
    return x


def _check_alpha(alpha) -> float:
    alpha = _as_scalar("alpha", alpha)
    if alpha <= 0:
        raise InputError(f"alpha must be positive, got {alpha}")
    return alpha


def _check_weights(weights, size: int) -> np.ndarray:
    if weights is None:
        arr = np.full(size, 1.0 / size)
        arr.setflags(write=False)
        return arr
    arr = _as_1d("weights", weights)
    if arr.size != size:
        raise InputError(f"weights has {arr.size} entries but the law has {size} atoms")
    if (arr < 0).any():
        raise InputError(f"weights has {int((arr < 0).sum())} negative value(s)")
    total = float(arr.sum())
    if abs(total - 1.0) > WEIGHT_SUM_TOL:
        raise InputError(f"weights must sum to 1, they sum to {total!r}")
    return arr


def lagrange_multiplier(yhat: ArrayLike, y: ArrayLike, alpha: float, loss: Loss | str | None = None,
                        weights: ArrayLike | None = None) -> float:
    """Lagrange multiplier of the spherical constraint from the law (docs/theory.md eq. 1.3).

    ``mu = (1/N) sum_m V'(yhat_m, y_m) yhat_m = alpha E[V'(yhat, y) yhat]``, which holds
    for any state on the sphere (not only stationary ones).
    """
    loss = get_loss(loss)
    yhat = np.asarray(yhat, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    terms = loss.dV(yhat, y) * yhat
    if weights is None:
        return float(alpha * np.mean(terms))
    return float(alpha * np.dot(np.asarray(weights, dtype=np.float64), terms))


@dataclass(frozen=True, eq=False)
class CurvatureLaw:
    """The reduced law of (D, s) used by :mod:`theory.spectrum` (docs/theory.md §2).

    Attributes
    ----------
    D : ndarray
        Curvatures D_m (atoms of the law).
    s : ndarray
        Components s_m along the teacher direction e.
    weights : ndarray
        Non-negative probabilities summing to 1.
    alpha : float
        M / N > 0.
    mu : float
        Lagrange multiplier (the Hessian is shifted by ``-mu I``).
    """

    D: np.ndarray
    s: np.ndarray
    weights: np.ndarray
    alpha: float
    mu: float

    def __post_init__(self):
        D = _as_1d("D", self.D)
        s = _as_1d("s", self.s)
        if s.size != D.size:
            raise InputError(f"s has {s.size} entries but D has {D.size}")
        object.__setattr__(self, "D", D)
        object.__setattr__(self, "s", s)
        object.__setattr__(self, "weights", _check_weights(self.weights, D.size))
        object.__setattr__(self, "alpha", _check_alpha(self.alpha))
        object.__setattr__(self, "mu", _as_scalar("mu", self.mu))

    @classmethod
    def from_samples(cls, D, s, alpha: float, mu: float = 0.0, weights=None) -> "CurvatureLaw":
        """Law of (D, s) from samples (equal weights unless ``weights`` is given)."""
        D = np.asarray(D, dtype=np.float64)
        return cls(D=D, s=s, weights=None if weights is None else weights, alpha=alpha, mu=mu)

    def curvature_law(self) -> "CurvatureLaw":
        return self

    @property
    def size(self) -> int:
        return int(self.D.size)


@dataclass(frozen=True, eq=False)
class Measure:
    """Law of (yhat, y, s) of a state (or a theoretical law), with alpha, mu and the loss.

    Build with :meth:`empirical`, :meth:`quadrature`, :meth:`gauss_hermite_t0` or
    :meth:`from_npz` rather than directly. All arrays are stored as read-only float64
    copies; invalid input raises :class:`theory.errors.InputError`.

    Attributes
    ----------
    yhat, y, s : ndarray
        Atoms of the law: prediction, label, component along the teacher direction e.
    weights : ndarray
        Probabilities of the atoms (non-negative, summing to 1).
    alpha : float
        M / N > 0.
    mu : float
        Lagrange multiplier; ``None`` at construction means eq. 1.3 from the law.
    loss : Loss
        The loss; ``D = loss.d2V(yhat, y)``.
    """

    yhat: np.ndarray
    y: np.ndarray
    s: np.ndarray | None = None
    weights: np.ndarray | None = None
    alpha: float = 1.0
    mu: float | None = None
    loss: Loss | str | None = field(default=None)

    def __post_init__(self):
        yhat = _as_1d("yhat", self.yhat)
        y = _as_1d("y", self.y)
        if y.size != yhat.size:
            raise InputError(f"y has {y.size} entries but yhat has {yhat.size}")
        s = y if self.s is None else _as_1d("s", self.s)
        if s.size != yhat.size:
            raise InputError(f"s has {s.size} entries but yhat has {yhat.size}")
        weights = _check_weights(self.weights, yhat.size)
        alpha = _check_alpha(self.alpha)
        loss = get_loss(self.loss)
        for name, value in (("yhat", yhat), ("y", y), ("s", s), ("weights", weights),
                            ("alpha", alpha), ("loss", loss)):
            object.__setattr__(self, name, value)
        if self.mu is None:
            mu = lagrange_multiplier(yhat, y, alpha, loss, weights)
            if not np.isfinite(mu):
                raise InputError("mu from the law (eq. 1.3) is not finite")
        else:
            mu = _as_scalar("mu", self.mu)
        object.__setattr__(self, "mu", mu)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def empirical(cls, yhat, y, s=None, *, alpha: float, mu: float | None = None,
                  loss: Loss | str | None = None) -> "Measure":
        """Empirical law of a state: the M atoms (yhat_m, y_m, s_m) with equal weights 1/M."""
        return cls(yhat=yhat, y=y, s=s, weights=None, alpha=alpha, mu=mu, loss=loss)

    @classmethod
    def quadrature(cls, yhat, y, weights, s=None, *, alpha: float, mu: float | None = None,
                   loss: Loss | str | None = None, normalize: bool = False) -> "Measure":
        """Theoretical law given by quadrature nodes and weights.

        ``normalize=True`` divides positive weights by their sum (e.g. raw Gauss-Hermite
        weights); otherwise they must already sum to 1.
        """
        if normalize:
            w = _as_1d("weights", weights)
            total = float(w.sum())
            if not total > 0:
                raise InputError("weights must have a positive sum")
            weights = w / total
        return cls(yhat=yhat, y=y, s=s, weights=weights, alpha=alpha, mu=mu, loss=loss)

    @classmethod
    def gauss_hermite_t0(cls, n_nodes: int, *, alpha: float, mu: float | None = None,
                         loss: Loss | str | None = None) -> "Measure":
        """Law at t = 0: yhat, y independent N(0, 1), s = y, on an n_nodes^2 Gauss-Hermite grid.

        For the quartic loss mu from eq. 1.3 is ``alpha E[2 yhat^2 (yhat^2 - y^2)] = 4 alpha``
        (exact for n_nodes >= 3).
        """
        if not isinstance(n_nodes, (int, np.integer)) or n_nodes < 1:
            raise InputError(f"n_nodes must be a positive integer, got {n_nodes!r}")
        nodes, w = hermegauss(int(n_nodes))
        w = w / w.sum()
        yhat, y = (a.ravel() for a in np.meshgrid(nodes, nodes, indexing="ij"))
        weights = np.outer(w, w).ravel()
        weights = weights / weights.sum()
        return cls(yhat=yhat, y=y, s=None, weights=weights, alpha=alpha, mu=mu, loss=loss)

    @classmethod
    def from_npz(cls, path: str | os.PathLike, alpha: float | None = None, mu: float | None = None,
                 loss: Loss | str | None = None) -> "Measure":
        """Read a measure file (format in the module docstring); arguments override the file."""
        return read_measure_file(path, alpha=alpha, mu=mu, loss=loss).measure

    # ---------------------------------------------------------------- derived quantities
    @cached_property
    def D(self) -> np.ndarray:
        """Curvatures D = V''(yhat, y) of the atoms (docs/theory.md eq. 1.6)."""
        D = np.asarray(self.loss.d2V(self.yhat, self.y), dtype=np.float64)
        if not np.isfinite(D).all():
            raise InputError(f"loss {self.loss.name!r} gives non-finite curvatures D on this law")
        D.setflags(write=False)
        return D

    def curvature_law(self) -> CurvatureLaw:
        """The reduced law of (D, s) with the same weights, alpha and mu."""
        return CurvatureLaw(D=self.D, s=self.s, weights=self.weights, alpha=self.alpha, mu=self.mu)

    def resampled(self, atoms: int, seed: int | None = None) -> "Measure":
        """The law as M = ``atoms`` equal-weight atoms: the empirical law of M measurements.

        ``seed=None``: systematic resampling in the order of y, deterministic: atom j
        (j = 0..M-1) is the atom whose cumulative weight, atoms sorted by y, first exceeds
        u_j = (j + 1/2) / M (docs/theory.md eq. 5.30). The labels then reach the (1 - 1/2M)
        quantile, the *typical* largest label of eq. 4.1. ``seed`` an integer: M independent
        draws with probabilities ``weights``, one random system of M measurements, whose
        largest labels fluctuate as in a real data set (averages over draws are what an
        average over data sets sees, §4.1). Either way atoms of probability far below 1/M,
        which a weighted law can carry (the importance-sampled DMFT law, §5.11) and no
        finite-M state has, are left out. mu and alpha are kept.
        """
        if not isinstance(atoms, (int, np.integer)) or atoms < 1:
            raise InputError(f"atoms must be a positive integer, got {atoms!r}")
        if seed is None:
            order = np.argsort(self.y, kind="stable")
            cumulative = np.cumsum(self.weights[order])
            u = (np.arange(atoms) + 0.5) / atoms * cumulative[-1]
            pick = order[np.minimum(np.searchsorted(cumulative, u, side="right"), order.size - 1)]
        else:
            pick = np.random.default_rng(seed).choice(self.size, size=atoms, p=self.weights / self.weights.sum())
        return Measure.empirical(self.yhat[pick], self.y[pick], self.s[pick], alpha=self.alpha, mu=self.mu,
                                 loss=self.loss)

    @property
    def size(self) -> int:
        """Number of atoms."""
        return int(self.yhat.size)


@dataclass(frozen=True, eq=False)
class MeasureFile:
    """Contents of a measure file: the law plus what the simulator knows about the state.

    Attributes
    ----------
    measure : Measure
    n : int or None
        Dimension N of the state.
    eigenvalues : ndarray or None
        Tangent-Hessian eigenvalues of the state (sorted ascending).
    eigenvalues_complete : bool
        True when ``eigenvalues`` is the full spectrum (else the lowest few).
    """

    measure: Measure
    n: int | None = None
    eigenvalues: np.ndarray | None = None
    eigenvalues_complete: bool = False


def _file_scalar(data: dict, key: str, path) -> np.ndarray:
    arr = data[key]
    if arr.size != 1:
        raise InputError(f"measure file {str(path)!r}: {key!r} must be a scalar, got shape {arr.shape}")
    return arr.reshape(())


def read_measure_file(path: str | os.PathLike, alpha: float | None = None, mu: float | None = None,
                      loss: Loss | str | None = None) -> MeasureFile:
    """Read and validate a measure file; ``alpha``, ``mu``, ``loss`` override the file."""
    data = load_npz(path, required=("yhat", "y"), kind="measure file")

    def numeric(key):
        value = _file_scalar(data, key, path)
        if value.dtype.kind not in "iufb":
            raise InputError(f"measure file {str(path)!r}: {key!r} must be numeric, got dtype {value.dtype}")
        return float(value)

    if alpha is None:
        if "alpha" not in data:
            raise InputError(f"measure file {str(path)!r} has no 'alpha'; pass it explicitly")
        alpha = numeric("alpha")
    if mu is None and "mu" in data:
        mu = numeric("mu")
    if loss is None and "loss" in data:
        value = _file_scalar(data, "loss", path)
        if value.dtype.kind not in "US":
            raise InputError(f"measure file {str(path)!r}: 'loss' must be a string, got dtype {value.dtype}")
        loss = str(value.item() if value.dtype.kind == "U" else value.item().decode())
    n = None
    if "n" in data:
        n_value = numeric("n")
        if n_value != int(n_value) or n_value < 1:
            raise InputError(f"measure file {str(path)!r}: 'n' must be a positive integer, got {n_value}")
        n = int(n_value)
    eigenvalues = None
    if "eigenvalues" in data:
        eigenvalues = np.sort(_as_1d("eigenvalues", data["eigenvalues"].ravel(), allow_empty=True))
        if eigenvalues.size == 0:
            eigenvalues = None
    complete = bool(numeric("eigenvalues_complete")) if "eigenvalues_complete" in data else False
    measure = Measure(yhat=data["yhat"], y=data["y"], s=data.get("s"), weights=data.get("weights"),
                      alpha=alpha, mu=mu, loss=loss)
    return MeasureFile(measure=measure, n=n, eigenvalues=eigenvalues, eigenvalues_complete=complete)


def write_measure_file(path: str | os.PathLike, measure: Measure, *, n: int | None = None,
                       eigenvalues: ArrayLike | None = None, eigenvalues_complete: bool | None = None,
                       include_mu: bool = True) -> Path:
    """Write ``measure`` (and optional state data) atomically in the measure-file format."""
    arrays = dict(yhat=measure.yhat, y=measure.y, s=measure.s, weights=measure.weights,
                  alpha=np.float64(measure.alpha), loss=np.str_(measure.loss.name))
    if include_mu:
        arrays["mu"] = np.float64(measure.mu)
    if n is not None:
        arrays["n"] = np.int64(n)
    if eigenvalues is not None:
        arrays["eigenvalues"] = np.asarray(eigenvalues, dtype=np.float64)
    if eigenvalues_complete is not None:
        arrays["eigenvalues_complete"] = np.bool_(eigenvalues_complete)
    return atomic_savez(path, **arrays)
