"""Theory side: the loss, the random-matrix core of the Hessian, threshold states and
the critical alpha, the finite-M corrections, the escape mechanism, spectral starts and
the DMFT of the flow. Equations: docs/theory.md."""
from .curve import read_curve, threshold_curve
from .dmft import DMFTConfig, DMFTGrid, DMFTResult, solve_dmft
from .errors import ConvergenceError, InputError
from .escape import growth_exponent, mechanism_probability
from .finite_m import label_cutoff, split_theory, t0_cutoff_law
from .kac_rice import KacRicePoint, Landscape, landscape, solve_kac_rice
from .loss import LOSSES, QUARTIC, Loss, get_loss, make_loss
from .measure import Measure, read_measure_file, write_measure_file
from .spectral_start import get_preprocessing, spectral_prediction, weak_recovery_threshold
from .spectrum import (SpectrumSummary, bulk_density, bulk_lower_edge, eigenvector_overlap2,
                       isolated_eigenvalue, spectrum_summary, stieltjes)
from .threshold import CLOSURES, CriticalAlpha, Quadrature, ThresholdState, critical_alpha, solve_threshold

__all__ = ["ConvergenceError", "InputError", "LOSSES", "QUARTIC", "Loss", "get_loss", "make_loss",
           "Measure", "read_measure_file", "write_measure_file", "bulk_density", "bulk_lower_edge",
           "eigenvector_overlap2", "isolated_eigenvalue", "spectrum_summary", "stieltjes",
           "SpectrumSummary", "CLOSURES", "Quadrature", "critical_alpha", "solve_threshold",
           "ThresholdState", "CriticalAlpha", "threshold_curve", "read_curve",
           "solve_dmft", "DMFTConfig", "DMFTResult", "DMFTGrid",
           "split_theory", "label_cutoff", "t0_cutoff_law",
           "growth_exponent", "mechanism_probability",
           "spectral_prediction", "weak_recovery_threshold", "get_preprocessing",
           "landscape", "solve_kac_rice", "Landscape", "KacRicePoint"]
