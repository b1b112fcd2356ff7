"""Finite-N simulation: data -> gradient flow -> Hessian probes (-> sweeps).

Conventions and equations: docs/theory.md §1.
"""
from .data import Problem, make_problem, problem_from_arrays, random_starts, warm_start
from .flow import FlowResult, Integrator, StopRules, run_dynamics
from .landscape import LandscapePoint, evaluate, hessian_vector_product
from .probes import full_spectrum, lowest_eigenpairs, state_measure
from .protocols import PROTOCOLS
from .sweep import SweepConfig, read_sweep, run_sweep
from .tracking import law_at_state, states_at_times

__all__ = ["Problem", "make_problem", "problem_from_arrays", "random_starts", "warm_start", "FlowResult",
           "Integrator", "StopRules", "run_dynamics", "PROTOCOLS", "LandscapePoint", "evaluate",
           "hessian_vector_product", "full_spectrum", "lowest_eigenpairs", "state_measure",
           "SweepConfig", "run_sweep", "read_sweep", "states_at_times", "law_at_state"]
