"""Theory-versus-simulation experiments: scenarios that run both halves side by side.

theory/ never imports simulation/ and simulation/ holds no theory; what compares them
lives here, as package code with tests (tests/experiments/), so that the scripts in
benchmarks/ stay thin (arguments -> an experiment's function -> a result file).

The main entry points, one per room (matplotlib and xarray are imported only by the
functions that draw or write):

* :mod:`~experiments.tracking` - ``track`` (theory vs Lanczos along one flow) -> ``Track``
  of ``TrackPoint``;
* :mod:`~experiments.bbp` - ``run_point`` (theory-only trajectories at (N, alpha)) and
  ``bbp_report`` (alpha_BBP(t) and the escape-mechanism predictions);
* :mod:`~experiments.dmft` - ``compare`` (DMFT against simulation for a ``DMFTComparison``);
* :mod:`~experiments.threshold` - ``simulate_point`` (trapped states at (N, alpha)); its
  own comparison is ``experiments.threshold.compare``;
* :mod:`~experiments.finite_n` - ``study_config`` (the finite-N study's sweep of one N),
  ``success_rows`` and ``alpha_c_fit`` (success probability and alpha_c(N) from sweep files),
  ``run_batched`` (several starts per data set, cluster-robust errors);
* :mod:`~experiments.spectral_success` - ``report`` (success from spectral vs random starts,
  from stored files), ``study_config``, ``paired_warm_starts``;
* :mod:`~experiments.landscape` - ``window_table`` and ``compare_states`` (the Kac-Rice landscape
  of theory.kac_rice against trapped states).
"""
from .bbp import bbp_report, run_point
from .dmft import DMFTComparison, compare
from .finite_n import alpha_c_fit, study_config, success_rows
from .threshold import simulate_point
from .tracking import Track, TrackPoint, track

__all__ = ["track", "Track", "TrackPoint", "run_point", "bbp_report", "DMFTComparison", "compare",
           "simulate_point", "study_config", "success_rows", "alpha_c_fit"]
