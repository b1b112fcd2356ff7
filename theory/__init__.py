"""Theory side: the loss, the random-matrix core of the Hessian, threshold states and
the critical alpha. Equations: docs/theory.md."""
from .errors import ConvergenceError, InputError
from .loss import LOSSES, QUARTIC, Loss, get_loss, make_loss
from .measure import Measure, read_measure_file, write_measure_file
from .spectrum import (bulk_density, bulk_lower_edge, eigenvector_overlap2, isolated_eigenvalue,
                       spectrum_summary, stieltjes)
from .threshold import CLOSURES, Quadrature, critical_alpha, solve_threshold

__all__ = ["ConvergenceError", "InputError", "LOSSES", "QUARTIC", "Loss", "get_loss", "make_loss",
           "Measure", "read_measure_file", "write_measure_file", "bulk_density", "bulk_lower_edge",
           "eigenvector_overlap2", "isolated_eigenvalue", "spectrum_summary", "stieltjes",
           "CLOSURES", "Quadrature", "critical_alpha", "solve_threshold"]
