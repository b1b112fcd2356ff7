"""Finite-N simulation: data -> gradient flow -> Hessian probes (-> sweeps).

Conventions and equations: docs/theory.md §1.
"""
from .data import Problem, make_problem, problem_from_arrays, random_starts
from .flow import FlowResult, Integrator, StopRules, run_dynamics
from .landscape import LandscapePoint, evaluate, hessian_vector_product
from .probes import full_spectrum, lowest_eigenpairs, state_measure

__all__ = ["Problem", "make_problem", "problem_from_arrays", "random_starts", "FlowResult", "Integrator",
           "StopRules", "run_dynamics", "LandscapePoint", "evaluate", "hessian_vector_product",
           "full_spectrum", "lowest_eigenpairs", "state_measure"]
