"""N -> infinity dynamics of gradient flow on the sphere: dynamical mean-field theory.

Equations and derivation: docs/theory.md section 5. The flow
dW/dt = -grad L + mu W is reduced to

* a single-measurement effective process (eq. 5.9, discretised as eq. 5.14)
  ``h(t) = q(t) y + g(t) - int_0^t R(t, s) V'(h(s), y) ds``, with g a centred Gaussian
  process of covariance C_perp(t, s) = C(t, s) - q(t) q(s), independent of y ~ N(0, 1);
* a single-weight effective process (eq. 5.10) that is *linear*, so that its response
  R, its correlation C_perp, the teacher overlap q and the multiplier mu obey closed
  Volterra recursions (eqs. 5.15-5.18) driven by the averages over the measurement
  process: the noise kernel M_C = alpha E[V'(t) V'(s)] and the memory kernel
  K = alpha E[V''(h(t)) dh(t)/dP(s)] (eq. 5.11-5.12).

Both processes are causal, so the solver marches in time: at step k the row k of all
kernels is found self-consistently (an inner fixed point, eq. 5.19) while rows < k are
final. Averages over the measurement process are Monte Carlo averages over S sampled
(y, Gaussian path) pairs, with common random numbers fixed by ``seed`` and antithetic
pairs (y, g) / (-y, -g) (the W -> -W symmetry), (y, z0) from a scrambled Sobol sequence.
The per-sample response dh(t)/dP(s) is propagated exactly for the discrete scheme
(eq. 5.16), which is what costs O(S n^2) memory and O(S n^3) time on n grid steps.

The time discretisation is backward Euler (eq. 5.13), the DMFT of which is exact for the
implicit scheme; the measurement step is then the proximal map of V (``Loss.prox_step``,
a cubic in closed form for the quartic loss; a loss without it is refused).

One room per concept:

* :mod:`~theory.dmft.grid` - ``DMFTGrid``, ``time_grid`` (eq. 5.13);
* :mod:`~theory.dmft.config` - ``DMFTConfig`` (problem, estimator, tolerances; every
  default), ``default_y_scale``;
* :mod:`~theory.dmft.state` - ``DMFTSamples`` (common random numbers), ``DMFTState``
  (kernels and paths up to step k);
* :mod:`~theory.dmft.step` - one time step (eqs. 5.14-5.19, the Stein projection 5.28);
* :mod:`~theory.dmft.solve` - the driver ``solve_dmft`` (status as value, ``strict``);
* :mod:`~theory.dmft.result` - ``DMFTResult`` (measure, spectrum, stein_residual),
  ``energy_rise``, ``alpha_bbp``;
* :mod:`~theory.dmft.limits` - ``t0_limits`` (eqs. 5.20-5.22).

The law of (yhat(t), y, s) (``DMFTResult.measure``) feeds the random-matrix core
(theory.spectrum) as the M equal-weight atoms that a system of M = alpha N measurements
sees, resampled from the (importance-weighted) samples (eq. 5.30, docs/theory.md 5.11).
"""
from .config import IMPORTANCE_SAMPLING_BELOW_Q0, VALIDATED_RUN, DMFTConfig, config_default, default_y_scale
from .grid import DMFTGrid, time_grid
from .limits import t0_limits
from .result import DMFTResult, alpha_bbp, energy_rise
from .solve import solve_dmft
from .state import DMFTSamples, DMFTState

__all__ = ["DMFTConfig", "DMFTGrid", "DMFTResult", "DMFTSamples", "DMFTState", "solve_dmft", "time_grid",
           "t0_limits", "default_y_scale", "config_default", "energy_rise", "alpha_bbp",
           "IMPORTANCE_SAMPLING_BELOW_Q0", "VALIDATED_RUN"]
