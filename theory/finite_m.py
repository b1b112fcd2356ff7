"""Finite-M random-matrix theory: the cutoff law at t = 0 and the split of extreme atoms.

docs/theory.md §4.1-4.2. A system of M measurements sees its law of (yhat, y, s) as M
atoms; the few extreme ones (largest labels at t = 0, unfitted measurements later) sit
far below the rest of D = l''(yhat, y) and carry outlier eigenvalues of their own:

    M P(|y| > y_c) = 1,   y_c = sqrt(2) erfcinv(1/M)                            (4.1)
    lambda_j = lambda_rest(rho = 1/D_j),   rho_e(rest) < 1/D_j < 0               (4.2)
    lambda_min ~ D_min + 96 alpha / D_min,   D_min ~ -2 y_c^2 ~ -4 log M          (4.3)

The edge, isolated eigenvalue and overlap of the law without its extreme atoms (the
*split law*) come from the random-matrix core (theory.spectrum, eqs. 2.3-2.9).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from scipy.special import erfcinv

from .errors import InputError
from .loss import Loss
from .measure import CurvatureLaw, Measure
from .spectrum import SpectrumSummary, bulk_lower_edge, inverse_stieltjes, spectrum_summary

__all__ = ["SplitTheory", "split_extreme_atoms", "outlier_eigenvalues", "split_theory",
           "label_cutoff", "t0_cutoff_law", "T0Prediction", "t0_prediction"]


# ---------------------------------------------------------------------------- extreme atoms (§4.2)
@dataclass(frozen=True)
class SplitTheory:
    """Random-matrix prediction for a finite-M empirical law, extreme atoms split off.

    Attributes
    ----------
    summary : SpectrumSummary
        Edge, isolated eigenvalue and overlap^2 of the law without the split atoms
        (docs/theory.md eqs. 2.3-2.9; eq. 4.3).
    outliers : tuple of float
        Predicted eigenvalues carried by the split atoms, eq. (4.2): lambda_rest(1/D_j)
        for each split atom j whose 1/D_j lies above the rest's rho_e (ascending).
    outlier_D : tuple of float
        The curvatures D_j of the split atoms (ascending).
    """

    summary: SpectrumSummary
    outliers: tuple
    outlier_D: tuple

    @property
    def n_split(self) -> int:
        return len(self.outlier_D)


def split_extreme_atoms(law: CurvatureLaw, max_split: int | None = None) -> tuple[CurvatureLaw, np.ndarray]:
    """Remove the lowest-D atoms of an equal-weight law while they alone set the edge.

    The empirical law of M atoms has a lower tail of D controlled by a few extreme
    measurements (at t = 0, D_min ~ -4 log M). While the root of eq. 2.4 exists only
    because of the lowest atom (``set_by_lowest_atom``), that atom is an outlier, not part
    of the bulk: it is removed and the test repeated (docs/theory.md §4.2).

    Parameters
    ----------
    law : CurvatureLaw with equal weights (an empirical law)
    max_split : int or None
        At most this many atoms are removed (default: ceil(sqrt(M))).

    Returns
    -------
    (rest, D_split): the law of the remaining atoms, with alpha scaled by
    (M - k)/M (same N) and the same mu, and the removed curvatures (ascending).
    """
    D, s = np.asarray(law.D), np.asarray(law.s)
    m = D.size
    if not np.allclose(law.weights, 1.0 / m, rtol=1e-9, atol=0):
        raise InputError("split_extreme_atoms needs an empirical (equal-weight) law")
    cap = int(math.ceil(math.sqrt(m))) if max_split is None else int(max_split)
    order = np.argsort(D, kind="stable")
    k = 0
    rest = law
    while k < min(cap, m - 2):
        edge = bulk_lower_edge(rest)
        if not (edge.set_by_lowest_atom and rest.D.min() < 0):
            break
        k += 1
        keep = order[k:]
        rest = CurvatureLaw.from_samples(D[keep], s[keep], alpha=law.alpha * (m - k) / m, mu=law.mu)
    return rest, np.sort(D[order[:k]])


def outlier_eigenvalues(rest: CurvatureLaw, D_split: ArrayLike) -> np.ndarray:
    """Eigenvalues carried by split atoms, eq. (4.2): lambda = lambda_rest(rho = 1/D_j).

    A rank-one term (D_j / N) a_j a_j^T added to the rest gives an eigenvalue below the
    rest's spectrum where g_rest(lambda) = 1/D_j, i.e. lambda = inverse_stieltjes(1/D_j)
    of the rest (eq. 2.3); it exists iff rho_e(rest) < 1/D_j < 0. Returns those
    eigenvalues, ascending (atoms absorbed in the bulk are dropped).
    """
    D_split = np.asarray(D_split, dtype=np.float64)
    if D_split.size == 0:
        return np.empty(0)
    edge = bulk_lower_edge(rest)
    rho = 1.0 / D_split[D_split < 0]
    rho = rho[rho > edge.rho_edge]
    if rho.size == 0:
        return np.empty(0)
    return np.sort(np.atleast_1d(inverse_stieltjes(rho, rest)))


def split_theory(measure: Measure | CurvatureLaw, max_split: int | None = None) -> SplitTheory:
    """Edge / isolated eigenvalue / overlap^2 of the law without its extreme atoms, plus
    the outliers those atoms carry (docs/theory.md §4.2, eqs. 4.2-4.3).

    ``measure`` is an empirical law: anything with ``curvature_law()`` giving equal weights
    (:class:`theory.measure.Measure`, a DMFT law drawn as M atoms).
    """
    law = measure.curvature_law()
    rest, D_split = split_extreme_atoms(law, max_split)
    return SplitTheory(summary=spectrum_summary(rest), outliers=tuple(float(x) for x in outlier_eigenvalues(rest, D_split)),
                       outlier_D=tuple(float(x) for x in D_split))


# ---------------------------------------------------------------------------- t = 0 (§4.1)
def label_cutoff(m: int) -> float:
    """Typical largest |y| of M labels, the finite-M cutoff of the label law (docs/theory.md
    eq. 4.1; used at t = 0 and by the plain spectral start, §6): y_c with
    M P(|y| > y_c) = 1, i.e. y_c = sqrt(2) erfcinv(1/M); y_c^2 = 2 log M - log log M - log pi + o(1)."""
    if not (isinstance(m, (int, np.integer)) and m >= 2):
        raise InputError(f"M must be an integer >= 2, got {m!r}")
    return float(math.sqrt(2.0) * erfcinv(1.0 / m))


def t0_cutoff_law(alpha: float, m: int, n_nodes: int = 80, loss: Loss | str | None = None) -> Measure:
    """The t = 0 law with its finite-M cutoff, docs/theory.md §4.1 (after eq. 4.1).

    yhat ~ N(0, 1) independent of y ~ N(0, 1) conditioned on |y| <= y_c(M)
    (:func:`label_cutoff`), s = y (q = 0): a tensor quadrature of ``n_nodes``
    Gauss-Hermite nodes in yhat and ``n_nodes`` Gauss-Legendre nodes on [-y_c, y_c] in y
    (weights times the Gaussian density, normalised). mu is eq. 1.3 on this law
    (4 alpha + O(y_c e^{-y_c^2/2}) for the quartic loss).

    Without the cutoff, D = 6 yhat^2 - 2 y^2 is unbounded below and the lower edge of the
    N -> infinity spectrum is at -infinity; with it the edge and the lowest eigenvalues
    move like -c log M (eq. 4.3).
    """
    y_c = label_cutoff(m)
    if not (isinstance(n_nodes, (int, np.integer)) and n_nodes >= 4):
        raise InputError(f"n_nodes must be an integer >= 4, got {n_nodes!r}")
    a, wa = hermegauss(int(n_nodes))
    x, wx = leggauss(int(n_nodes))
    y = y_c * x
    wy = wx * np.exp(-0.5 * y * y)
    yhat, yy = (v.ravel() for v in np.meshgrid(a, y, indexing="ij"))
    w = np.outer(wa / wa.sum(), wy / wy.sum()).ravel()
    return Measure.quadrature(yhat, yy, w / w.sum(), alpha=alpha, loss=loss)


@dataclass(frozen=True)
class T0Prediction:
    """Lowest tangent-Hessian eigenvalue at t = 0 from the cutoff law (eqs. 4.1-4.3).

    Attributes
    ----------
    m : int
        Number of measurements M.
    y_cut2 : float
        y_c^2 (~ 2 log M).
    edge : float
        Bulk lower edge of the cutoff law.
    iso : float or None
        Isolated eigenvalue toward e of the cutoff law (None below BBP).
    overlap2 : float
    lowest : float
        min(edge, iso): the predicted lowest eigenvalue.
    """

    m: int
    y_cut2: float
    edge: float
    iso: float | None
    overlap2: float
    lowest: float


def t0_prediction(alpha: float, m: int, n_nodes: int = 80) -> T0Prediction:
    """Edge, spike and lowest eigenvalue at t = 0 for M measurements (docs/theory.md eq. 4.3)."""
    law = t0_cutoff_law(alpha, m, n_nodes)
    s = spectrum_summary(law)
    lowest = s.bulk_edge if s.isolated_eigenvalue is None else min(s.bulk_edge, s.isolated_eigenvalue)
    return T0Prediction(m=int(m), y_cut2=label_cutoff(m) ** 2, edge=float(s.bulk_edge),
                        iso=s.isolated_eigenvalue, overlap2=float(s.overlap2), lowest=float(lowest))
