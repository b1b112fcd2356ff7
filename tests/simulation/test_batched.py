"""Batched starts (simulation.batched): resumable point files (the cluster statistics are
tested in tests/theory/test_statistics.py)."""
import numpy as np
import pytest

from simulation.batched import point_success, read_point, run_point
from simulation.flow import Integrator, StopRules
from theory.errors import InputError

STOP = StopRules(t_max=100, success_overlap=0.9)
INTEG = Integrator(rtol=1e-2, atol=1e-3)


def test_run_point_resumes_and_refuses_other_parameters(tmp_path):
    out = tmp_path / "p.nc"
    ds = run_point(out, 32, 5.0, [11, 12], 3, STOP, INTEG)
    assert ds["status"].shape == (2, 3) and not np.any(ds["status"].values == "pending")
    again = run_point(out, 32, 5.0, [11, 12], 3, STOP, INTEG)  # nothing to run: same numbers
    assert np.array_equal(again["final_overlap"].values, ds["final_overlap"].values)
    res = point_success(read_point(out))
    assert res["starts"] == 6 and 0 <= res["p"] <= 1
    with pytest.raises(InputError):
        run_point(out, 32, 6.0, [11, 12], 3, STOP, INTEG)
