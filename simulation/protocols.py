"""Protocols of the flow: on which sphere the states move.

``free``: the flow of eq. (1.5) on the whole sphere |W|^2 = N.

``orthogonal``: the flow restricted to the sphere of W orthogonal to W* (teacher overlap
q = 0 exactly), whose stationary states are the spurious minima seen with the signal
direction switched off, the object of the threshold theory (docs/theory.md §3). It is run
exactly, in coordinates of the (N-1)-dim complement of u = W*/|W*|: a Householder
reflection H with H e_N = u maps that complement onto the first N-1 axes, and

    X'' = (X H)[:, :N-1] sqrt(N/(N-1)),   W'' = (H W)[:N-1] sqrt((N-1)/N)

give |W''|^2 = N-1 and <x''_m, W''> = <x_m, W>: the same loss on a sphere that the flow
cannot leave. (Projecting the rows of X on the complement instead leaks: the W* component
c of W then obeys dc/dt = mu c, and rounding grows it whenever mu > 0; it did at N = 500,
alpha = 7.) Labels y = X W* are unchanged.

Scales between the reduced and the original problem (the reduced one has dimension N-1):
energy e = e'' (N-1)/N, mu = mu'' (N-1)/N, the rms gradient in the complement
|P_u g|/sqrt(N) = |g''|/sqrt(N-1) (N-1)/N, and the reduced flow time t'' is the time of the
projected flow dW/dt = -P_u g run N/(N-1) times faster (t = t'' N/(N-1)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.errors import InputError

from .data import Problem, problem_from_arrays
from .probes import TangentBasis

__all__ = ["PROTOCOLS", "OrthogonalComplement", "check_protocol"]

#: the protocols ``run_dynamics`` knows
PROTOCOLS = ("free", "orthogonal")


def check_protocol(protocol: str) -> str:
    """Return ``protocol`` if it is one of :data:`PROTOCOLS`; InputError otherwise."""
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    return protocol


@dataclass(frozen=True)
class OrthogonalComplement:
    """Coordinates of the complement of the teacher direction and the reduced problem.

    Attributes
    ----------
    basis : TangentBasis
        Householder vector v = (u - e_N)/|u - e_N| (H e_N = u; this sign, not
        ``TangentBasis.at``'s, is the reflection the stored orthogonal runs were made with).
    n : int
        Dimension N of the original problem.
    problem : Problem
        The reduced problem (X'', y) of dimension N-1, in the original dtype. Its teacher is
        a placeholder (the first reduced axis): the flow's stop rule needs one, and the
        overlap rule is switched off for this protocol.
    """

    basis: TangentBasis
    n: int
    problem: Problem

    @classmethod
    def of(cls, problem: Problem) -> "OrthogonalComplement":
        """The complement of ``problem.w_star`` (computed in float64) and the reduced data."""
        if problem.w_star is None:
            raise InputError("the orthogonal protocol needs the teacher W*")
        n = problem.n
        u = problem.w_star.astype(np.float64) / np.linalg.norm(problem.w_star.astype(np.float64))
        v = u.copy()
        v[-1] -= 1.0
        basis = TangentBasis(v / np.linalg.norm(v))
        Xr = basis.coordinates(problem.X.astype(np.float64).T).T * np.sqrt(n / (n - 1))
        placeholder = np.zeros(n - 1)
        placeholder[0] = np.sqrt(n - 1)
        # C order as the other problems (a transposed X would change the BLAS path and rounding)
        reduced = problem_from_arrays(np.ascontiguousarray(Xr, dtype=problem.dtype), problem.y,
                                      w_star=placeholder)
        return cls(basis, n, reduced)

    @property
    def scale(self) -> float:
        """(N-1)/N: reduced energy, mu and rms gradient times this are the original ones."""
        return (self.n - 1) / self.n

    def reduce(self, W: np.ndarray) -> np.ndarray:
        """Full states (N, B) -> reduced ones (N-1, B) on |W''|^2 = N-1, in the problem's
        dtype (the W* component is dropped, the rest put on the sphere)."""
        Wr = self.basis.coordinates(np.asarray(W).astype(np.float64))
        Wr *= np.sqrt(self.n - 1) / np.linalg.norm(Wr, axis=0)
        return Wr.astype(self.problem.dtype)

    def lift(self, Wr: np.ndarray) -> np.ndarray:
        """Reduced states (N-1, B) -> full ones (N, B) in float64 on |W|^2 = N, orthogonal
        to W* to float64 rounding."""
        return self.basis.embed(np.asarray(Wr).astype(np.float64) * np.sqrt(self.n / (self.n - 1)))

    def teacher_unit(self) -> np.ndarray:
        """u = W*/|W*| = H e_N = e_N - 2 v v_N."""
        v = self.basis.u
        u = -2.0 * v[-1] * v
        u[-1] += 1.0
        return u

    def complement_component(self, V: np.ndarray) -> np.ndarray:
        """P_u V = V - u <u, V> columnwise (the part of V the orthogonal flow sees)."""
        u = self.teacher_unit()
        return V - np.outer(u, u @ V).reshape(V.shape)
