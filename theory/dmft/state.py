"""The DMFT solution up to step k: the common random numbers of the Monte Carlo
(docs/theory.md 5.5, eqs. 5.12 and 5.27) and the kernels and sample paths on the rows
already solved (eqs. 5.13-5.18).

:class:`DMFTSamples` is drawn once from the seed and never changes. :class:`DMFTState`
holds rows 0..k of every kernel and path; rows > k are zero. The time step
(:mod:`theory.dmft.step`) reads the state and returns row k + 1; the driver
(:mod:`theory.dmft.solve`) stores it with :meth:`DMFTState.store`. The arrays are
allocated once for the whole grid (the per-sample response alone is S (n+1)^2 / 2 numbers,
kept lower-triangular by :class:`ResponseStore`)
and filled row by row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..loss import Loss
from .config import DMFTConfig
from .grid import time_grid

__all__ = ["DMFTSamples", "ResponseStore", "DMFTState", "draw_samples", "draw_flip_symmetric_samples", "initial_state"]


@dataclass(frozen=True, eq=False)
class DMFTSamples:
    """Common random numbers of one DMFT solution (fixed by the seed).

    Attributes
    ----------
    y : (S,) labels, antithetic pairs (y, -y), drawn from N(0, y_scale^2) (eq. 5.27)
    z0 : (S,) t = 0 cavity field in units of sqrt(1 - q0^2), antithetic pairs
    weights : (S,) importance weights phi(y) / phi_{y_scale}(y), normalised to mean 1 (eq. 5.27)
    eta : (S/2, S/2) noise couplings sqrt(alpha / P) eta_{s s'} with eta_ss = 0, P = S/2 - 1 (eq. 5.12)
    sqrt_w : (S/2,) square roots of the weights of the first half (the noise partners)
    """

    y: np.ndarray
    z0: np.ndarray
    weights: np.ndarray
    eta: np.ndarray
    sqrt_w: np.ndarray

    @property
    def size(self) -> int:
        return int(self.y.size)

    def mean(self, f: np.ndarray) -> float:
        """Weighted Monte Carlo average E[f] = mean(w f) over the samples."""
        return float(np.mean(self.weights * f))

    def noise(self, v: np.ndarray) -> np.ndarray:
        """Noise paths xi_s = sqrt(alpha / P) sum_{s'} eta_{s s'} sqrt(w_s') V'_{s'} (eq. 5.12)
        from the V' values ``v`` of all samples: Gaussian, given the partners, with their
        empirical M_C; the second half is the antithetic -xi."""
        half = self.sqrt_w.size
        xi = self.eta @ (self.sqrt_w * v[:half])
        return np.concatenate([xi, -xi])


def _sobol_normal_pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n pairs of independent standard normals from a scrambled 2-d Sobol sequence.

    The t = 0 averages (polynomials of y and z0) then have errors far below the
    1/sqrt(n) of plain Monte Carlo; the later Monte Carlo noise comes from eta (eq. 5.12).
    """
    import warnings

    from scipy.special import ndtri
    from scipy.stats import qmc

    with warnings.catch_warnings():          # n need not be a power of 2
        warnings.simplefilter("ignore")
        u = qmc.Sobol(d=2, scramble=True, seed=rng).random(n)
    u = np.clip(u, 0.5 / n / 64, 1 - 0.5 / n / 64)
    return ndtri(u[:, 0]), ndtri(u[:, 1])


def draw_samples(config: DMFTConfig) -> DMFTSamples:
    """The common random numbers of ``config``: (y, z0) from a scrambled Sobol sequence,
    y scaled by y_scale with its importance weight (eq. 5.27), the dense noise couplings
    (eq. 5.12), antithetic pairs (y, g) / (-y, -g) (the W -> -W symmetry)."""
    rng = np.random.default_rng(config.seed)
    half = config.samples // 2
    y, z0 = _sobol_normal_pairs(rng, half)   # quasi-random: the t = 0 averages are nearly exact
    y = y * config.y_scale
    wt = np.exp(-0.5 * y * y * (1.0 - 1.0 / config.y_scale ** 2))
    wt = np.concatenate([wt, wt]) / wt.mean()
    sqrt_w = np.sqrt(wt[:half])
    # the partners of sample s are the other samples of the first half, never s itself
    partners = half - 1
    eta = rng.standard_normal((half, half))
    np.fill_diagonal(eta, 0.0)
    eta *= math.sqrt(config.alpha / partners)
    return DMFTSamples(y=np.concatenate([y, -y]), z0=np.concatenate([z0, -z0]), weights=wt, eta=eta,
                       sqrt_w=sqrt_w)


def draw_flip_symmetric_samples(config: DMFTConfig) -> DMFTSamples:
    """Common random numbers invariant under the label flip y -> -y at fixed cavity field
    (docs/theory.md 7.7 i): S/4 draws (y, z0) enter as (y, z0), (-y, z0) and their antithetic
    partners (-y, -z0), (y, -z0), and the two members of a flip pair share one noise path and
    one set of couplings (eta[s, s'] = eta[s~, s'] = eta[s, s'~], s~ the flip partner, zero
    between partners). The solution from -q0 is then exactly minus the one from q0: the
    sample's own overlap source vanishes, and so does the first-order change of the noise
    paths with q, which a Gaussian noise of covariance M_C (even in q) does not have at
    S = infinity. For checks of the linear response (7.6) against finite differences; not
    the validated estimator (S/4 independent draws and S/4 independent noise paths).

    Raises InputError unless S is a multiple of 4 and S >= 8."""
    from ..errors import InputError

    if config.samples % 4 or config.samples < 8:
        raise InputError(f"the flip-symmetric sample needs S divisible by 4 and >= 8, got {config.samples}")
    rng = np.random.default_rng(config.seed)
    half, quarter = config.samples // 2, config.samples // 4
    y1, z1 = _sobol_normal_pairs(rng, quarter)
    y1 = y1 * config.y_scale
    y = np.concatenate([y1, -y1])
    z0 = np.concatenate([z1, z1])
    wt = np.exp(-0.5 * y * y * (1.0 - 1.0 / config.y_scale ** 2))
    wt = np.concatenate([wt, wt]) / wt.mean()
    e = rng.standard_normal((quarter, quarter))
    np.fill_diagonal(e, 0.0)
    e *= 0.5 * math.sqrt(config.alpha / (quarter - 1))   # a pair enters twice: variance alpha E[w V'^2]
    eta = np.block([[e, e], [e, e]])
    return DMFTSamples(y=np.concatenate([y, -y]), z0=np.concatenate([z0, -z0]), weights=wt, eta=eta,
                       sqrt_w=np.sqrt(wt[:half]))


class ResponseStore:
    """The per-sample response B[j, l, s] = dt_j D_j(s) J_jl(s), l <= j (eq. 5.16), packed.

    J is lower triangular (a sample responds only to earlier perturbations), so only
    l <= j is stored: rows are kept in blocks of ``block`` consecutive j, block i a dense
    (block, width_i, S) array with width_i = min((i + 1) block, n + 1) columns, zero above
    the diagonal. Storage is S (n + 1)^2 / 2 (1 + block / n) numbers instead of the
    S (n + 1)^2 of a full (n + 1, S, n + 1) array, and :meth:`contract`, the sum
    sum_j c_j B[j, :, :] that every memory row (5.16) needs, is one matrix-vector product
    per block (each block is streamed once) instead of one over the zero upper triangle.
    The arrays are allocated lazily by the operating system (np.zeros): the resident
    memory grows with the rows written.
    """

    def __init__(self, n_rows: int, samples: int, dtype, block: int = 16):
        self.n_rows, self.samples, self.block = int(n_rows), int(samples), int(block)
        self.dtype = np.dtype(dtype)
        self.blocks = [np.zeros((min(block, n_rows - a), min(a + block, n_rows), samples), dtype=self.dtype)
                       for a in range(0, n_rows, block)]

    @property
    def nbytes(self) -> int:
        """Bytes of the (lazily allocated) storage for the whole grid."""
        return int(sum(b.nbytes for b in self.blocks))

    def store_row(self, j: int, values: np.ndarray) -> None:
        """Row j from ``values`` (S, j + 1) = B[j, :j + 1, :].T."""
        blk = self.blocks[j // self.block]
        blk[j % self.block, :j + 1, :] = values.T

    def row(self, j: int) -> np.ndarray:
        """B[j, :j + 1, :] as a (j + 1, S) view."""
        return self.blocks[j // self.block][j % self.block, :j + 1, :]

    def contract(self, coeffs: np.ndarray) -> np.ndarray:
        """Y[s, l] = sum_{j < k} coeffs[j] B[j, l, s] for l < k = coeffs.size, as (S, k).

        The coefficients are cast to the storage dtype (no upcast copy of the blocks)."""
        k = int(coeffs.size)
        c = np.asarray(coeffs, dtype=self.dtype)
        b, S = self.block, self.samples
        # rows j < k have no column l > j: the whole width of the blocks (contiguous, no
        # copy) is used and the columns >= k, zero, are cut at the end
        Y = np.zeros((min(self.n_rows, -(-k // b) * b), S), dtype=self.dtype)
        for i, a in enumerate(range(0, k, b)):
            rows = min(b, k - a)
            blk = self.blocks[i]
            w = blk.shape[1]
            Y[:w] += (c[a:a + rows] @ blk[:rows].reshape(rows, w * S)).reshape(w, S)
        return Y[:k].T


@dataclass(eq=False)
class DMFTState:
    """Rows 0..k of the DMFT kernels and sample paths (docs/theory.md 5.4-5.5).

    Attributes
    ----------
    config : DMFTConfig
    samples : DMFTSamples
    t, dts : (n+1,) grid times and steps (dts[0] = 0, dts[k] = t_k - t_{k-1})
    k : int, last row solved (0 after :func:`initial_state`)
    C : (n+1, n+1) C_perp(t_k, t_j), symmetric
    R : (n+1, n+1) response R(t_k, t_j), lower triangular
    K : (n+1, n+1) memory kernel alpha E[D_k J_kj] (eq. 5.16), K[k, k] the equal-time part
    M_C : (n+1, n+1) noise kernel alpha E[V'_k V'_j] (eq. 5.11), symmetric
    q, mu_multiplier : (n+1,) teacher overlap and norm multiplier (eq. 5.18)
    xi : (S, n+1) weight-side noise paths (eq. 5.12)
    h, g, dV : (S, n+1) effective prediction h(t_k), cavity field g(t_k) (eq. 5.17) and V'(h_k, y)
    Kq, Kq_raw : (n+1, n+1) y^2-weighted kernel of the overlap response (eq. 7.5), projected
        (eq. 7.8) and raw; lower triangular, meaningful at q0 = 0
    B : :class:`ResponseStore`, B[j, l, s] = dt_j D_j J_jl, the per-sample response (eq. 5.16)
    residual : largest last change of a kernel row over the rows solved
    multiplier_gap : largest |mu_multiplier - alpha E[V'h]| over the rows solved
    iterations : inner fixed-point iterations (eq. 5.19) over the rows solved
    """

    config: DMFTConfig
    samples: DMFTSamples
    t: np.ndarray
    dts: np.ndarray
    C: np.ndarray
    R: np.ndarray
    K: np.ndarray
    M_C: np.ndarray
    q: np.ndarray
    mu_multiplier: np.ndarray
    xi: np.ndarray
    h: np.ndarray
    g: np.ndarray
    dV: np.ndarray
    B: ResponseStore
    Kq: np.ndarray | None = None
    Kq_raw: np.ndarray | None = None
    k: int = 0
    residual: float = 0.0
    multiplier_gap: float = 0.0
    iterations: int = 0

    @property
    def n_steps(self) -> int:
        return int(self.t.size - 1)

    def store(self, row) -> None:
        """Write row k + 1 (a :class:`theory.dmft.step.StepRow`) into the kernels and paths."""
        k = row.k
        assert k == self.k + 1, (k, self.k)
        dt = self.dts[k]
        self.K[k, :k] = row.K_row
        self.K[k, k] = row.K_kk
        self.M_C[k, :k + 1] = row.M_C_row
        self.M_C[:k + 1, k] = row.M_C_row
        self.R[k, :k + 1] = row.R_row
        self.C[k, :k + 1] = row.C_row
        self.C[:k + 1, k] = row.C_row
        self.xi[:, k] = row.xi
        self.q[k] = row.q
        self.mu_multiplier[k] = row.mu_multiplier
        self.h[:, k] = row.h
        self.g[:, k] = row.g
        self.dV[:, k] = row.dV
        self.B.store_row(k, dt * row.D[:, None] * np.concatenate([row.J, row.J_kk[:, None]], axis=1))
        self.Kq[k, :k + 1] = row.Kq_row
        self.Kq_raw[k, :k + 1] = row.Kq_raw_row
        self.k = k
        self.residual = max(self.residual, row.residual)
        self.multiplier_gap = max(self.multiplier_gap, row.multiplier_gap)
        self.iterations += row.iterations


def initial_state(config: DMFTConfig, loss: Loss, samples: DMFTSamples | None = None) -> DMFTState:
    """The state at t = 0 (row 0 of eq. 5.13): C_perp = 1 - q0^2, R = 1, q = q0,
    h = q0 y + sqrt(1 - q0^2) z0, M_C and the multiplier from the samples."""
    samples = draw_samples(config) if samples is None else samples
    t = time_grid(config.grid)
    n, S = t.size - 1, samples.size
    y, z0 = samples.y, samples.z0
    state = DMFTState(config=config, samples=samples, t=t, dts=np.diff(t, prepend=0.0),
                      C=np.zeros((n + 1, n + 1)), R=np.zeros((n + 1, n + 1)), K=np.zeros((n + 1, n + 1)),
                      M_C=np.zeros((n + 1, n + 1)), q=np.zeros(n + 1), mu_multiplier=np.zeros(n + 1),
                      xi=np.zeros((S, n + 1)), h=np.zeros((S, n + 1)), g=np.zeros((S, n + 1)),
                      dV=np.zeros((S, n + 1)), B=ResponseStore(n + 1, S, config.dtype),
                      Kq=np.zeros((n + 1, n + 1)), Kq_raw=np.zeros((n + 1, n + 1)))
    q0 = config.q0
    state.C[0, 0] = 1.0 - q0 * q0
    state.R[0, 0] = 1.0
    state.q[0] = q0
    state.h[:, 0] = q0 * y + math.sqrt(state.C[0, 0]) * z0
    state.g[:, 0] = math.sqrt(state.C[0, 0]) * z0
    state.dV[:, 0] = loss.dV(state.h[:, 0], y)
    state.M_C[0, 0] = config.alpha * samples.mean(state.dV[:, 0] ** 2)
    state.mu_multiplier[0] = config.alpha * samples.mean(state.dV[:, 0] * state.h[:, 0])
    return state
