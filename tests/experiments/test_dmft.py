"""experiments/dmft.py: the DMFT-versus-simulation comparison (cache layout, provenance,
tables, finite-N extrapolation) on tiny systems and synthetic cache files."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from experiments import dmft as ex
from theory.errors import InputError

RESULTS = Path(__file__).resolve().parents[2] / "results" / "dmft"
TINY = dict(alpha=4.0, t_max=0.05, samples=200, seeds=2, n=40, starts=2, dt_max=0.01, rtol=1e-5)


def quiet(_):
    pass


def test_old_npz_seeds_are_read_as_before():
    # the cached alpha = 4 importance-sampled seeds without the Stein projection; seed 0
    # ran away and is stored as such (docs/validation.md, DMFT section)
    c3 = ex.DMFTComparison(alpha=4.0, t_max=8.0, samples=8000, dt_max=0.05, y_scale=2.0, stein_rcond=0, seeds=3)
    assert all(ex.dmft_cache_path(RESULTS, c3, s).exists() for s in range(3))   # never recompute here
    messages = []
    runs = ex.dmft_runs(c3, RESULTS, messages.append)
    assert len(runs) == 2 and "runaway at t=1.339" in messages[0]            # the stored failure
    assert runs[0]["t"][-1] == 8.0 and runs[0]["energy"].shape == runs[0]["t"].shape


def test_cache_names_are_those_of_the_stored_results():
    c = ex.DMFTComparison(alpha=4.0, t_max=8.0, samples=8000, dt_max=0.05)      # default estimator at q0 = 0
    assert c.y_scale == 2.0 and c.stein_rcond == 1e-3
    assert ex.dmft_cache_path(RESULTS, c, 0).name == "dmft_a4_q0_t8_dt0.05_ys2_st0.001_S8000_seed0.npz"
    fine = ex.DMFTComparison(alpha=4.0, t_max=1.0, dt_max=0.025, dt0=0.0025, growth=1.02, y_scale=1.0,
                             stein_rcond=0)
    assert fine.stein_rcond is None
    assert ex.dmft_cache_path(RESULTS, fine, 2).name == "dmft_a4_q0_t1_dt0.025_dt00.0025_g1.02_S8000_seed2.npz"
    for c_, s in ((c, 0), (fine, 2)):
        assert ex.dmft_cache_path(RESULTS, c_, s).exists()
    assert ex.simulation_cache_path(RESULTS, 4.0, 0.0, 4000, 8.0, 1e-5, 3).exists()


def test_dmft_runs_write_provenance_and_reuse_the_cache(tmp_path, monkeypatch):
    c = ex.DMFTComparison(**TINY, q0=0.1)
    runs = ex.dmft_runs(c, tmp_path, quiet, progress=False)
    assert len(runs) == 2
    from theory.io import load_netcdf

    assert not ex.dmft_cache_path(tmp_path, c, 1).exists()            # new seeds: netCDF
    d = load_netcdf(ex.dmft_cache_path(tmp_path, c, 1).with_suffix(".nc"))
    prov = d.attrs
    assert prov["kind"] == "dmft" and prov["seed"] == 1 and prov["y_scale"] == 2.0 and prov["samples"] == 200
    assert prov["stein_rcond"] == 1e-3 and prov["grid_dt_max"] == 0.01 and "package_version" in prov
    assert prov["converged"] == 1 and prov["loss"] == "quartic" and prov["q0"] == 0.1
    # the stored arrays are the solver's
    from theory.dmft import solve_dmft
    r = solve_dmft(c.dmft_config(1))
    np.testing.assert_array_equal(d["energy"].values, r.energy)
    np.testing.assert_array_equal(d["q"].values, r.q)
    # second call: read from the cache, no solve
    monkeypatch.setattr(ex, "solve_dmft", lambda *a, **k: pytest.fail("recomputed a cached seed"))
    again = ex.dmft_runs(c, tmp_path, quiet)
    np.testing.assert_array_equal(again[1]["mu"], runs[1]["mu"])


def test_a_failed_seed_is_stored_with_its_partial_solution_and_left_out(tmp_path):
    # plain sampling at alpha = 6, S = 1000: seed 0 runs away near t = 0.1 (tests/theory/test_dmft.py)
    c = ex.DMFTComparison(alpha=6.0, t_max=0.2, samples=1000, seeds=1, dt_max=0.1, y_scale=1.0, stein_rcond=0)
    messages = []
    assert ex.dmft_runs(c, tmp_path, messages.append, progress=False) == []
    from theory.io import load_netcdf

    d = load_netcdf(ex.dmft_cache_path(tmp_path, c, 0).with_suffix(".nc"))
    assert d.attrs["converged"] == 0 and "runaway" in d.attrs["message"] and 0 < float(d["t"][-1]) < 0.2
    assert any("ran away, left out" in m for m in messages)
    with pytest.raises(InputError, match="every DMFT seed ran away"):
        ex.compare(c, tmp_path, log=quiet)


def test_simulate_caches_and_reuses_a_longer_run(tmp_path):
    from theory.dmft import DMFTGrid, time_grid

    long_times = time_grid(DMFTGrid(0.1, dt_max=0.01))
    E, MU, Q, wall = ex.simulate(4.0, 40, 2, 0.1, 0.2, long_times, tmp_path, 1e-5, quiet)
    assert E.shape == (2, long_times.size) and wall > 0
    np.testing.assert_allclose(Q[:, 0], 0.2, atol=1e-6)                 # warm start: q(0) = q0
    d = np.load(ex.simulation_cache_path(tmp_path, 4.0, 0.2, 40, 0.1, 1e-5, 1))
    assert json.loads(str(d["provenance"]))["data_seed"] == 1001
    # a shorter comparison on another grid reads the longer file, interpolated
    times = np.linspace(0.0, 0.05, 7)
    E2, _, _, _ = ex.simulate(4.0, 40, 2, 0.05, 0.2, times, tmp_path, 1e-5, quiet)
    np.testing.assert_allclose(E2[1], np.interp(times, long_times, E[1]))
    assert not ex.simulation_cache_path(tmp_path, 4.0, 0.2, 40, 0.05, 1e-5, 0).exists()


def test_comparison_rows_are_means_and_standard_errors():
    times = np.array([0.0, 0.1, 0.3])
    sim = dict(energy=np.array([[8.0, 4.0, 2.0], [6.0, 2.0, 1.0]]), mu=np.zeros((2, 3)), q=np.ones((2, 3)))
    dm = dict(energy=np.array([[7.0, 3.0, 1.5], [7.0, 3.2, 1.5], [7.0, 3.4, 1.5]]), mu=np.zeros((3, 3)),
              q=np.ones((3, 3)), mu_multiplier=np.full((3, 3), 0.5))
    rows = ex.comparison_rows(times, sim, dm, t_max=0.3)
    # table times 0, 0.01, 0.03, 0.1, 0.2, 0.3 at their nearest grid times (0.2 is nearer 0.3 in floats)
    assert [r["t"] for r in rows] == [0.0, 0.0, 0.0, 0.1, 0.3, 0.3]
    r = rows[3]
    assert r["e_sim"] == 3.0 and r["e_sim_se"] == pytest.approx(1.0)     # (4, 2): std 1.414 / sqrt 2
    assert r["e_dmft"] == pytest.approx(3.2) and r["e_dmft_se"] == pytest.approx(0.2 / math.sqrt(3))
    assert r["mu_mult"] == 0.5 and r["q_sim_se"] == 0.0
    assert "3.000+-1.000" in ex.format_row(r)


def _fake_sim(cache, n, starts, times, energy_mean, spread):
    for b in range(starts):
        sign = 1 if b % 2 == 0 else -1
        e = np.full(times.shape, energy_mean + sign * spread)
        np.savez(ex.simulation_cache_path(cache, 4.0, 0.0, n, 0.5, 1e-5, b), t=times, energy=e,
                 mu=-e, q=np.zeros_like(times), wall_seconds=1.0)


def test_finite_n_table_extrapolates_exact_means_in_one_over_n(tmp_path):
    # means exactly 1 + 8 / N at N = 200, 400, 800: the fit must give a = 1 at every time
    from theory.dmft import time_grid

    c = ex.DMFTComparison(alpha=4.0, t_max=0.5, rtol=1e-5, sizes=((200, 2), (400, 2), (800, 2)))
    times = time_grid(c.grid)
    for n, starts in c.sizes:
        _fake_sim(tmp_path, n, starts, times, 1 + 8 / n, 0.01)
    dm = dict(energy=np.vstack([np.full(times.shape, 1.1), np.full(times.shape, 1.3)]),
              mu=np.vstack([np.full(times.shape, -1.1), np.full(times.shape, -1.3)]))
    rows = ex.finite_n_table(c, times, dm, tmp_path, quiet)
    assert [round(r["t"], 1) for r in rows] == [0.1, 0.3, 0.5]
    e = rows[0]["e"]
    assert e["sim_means"] == pytest.approx([1.04, 1.02, 1.01])
    assert e["a"] == pytest.approx(1.0, abs=1e-9) and e["b"] == pytest.approx(8.0, rel=1e-6)
    assert e["dmft"] == pytest.approx(1.2) and e["dmft_se"] == pytest.approx(0.1)
    assert e["sigma"] == pytest.approx(0.2 / math.hypot(0.1, e["a_se"]))


def test_compare_end_to_end_on_a_tiny_system(tmp_path):
    c = ex.DMFTComparison(**TINY)
    assert ex.compare(c, tmp_path, part="sim", log=quiet) is None
    assert ex.compare(c, tmp_path, part="dmft", log=quiet) is None
    fig = tmp_path / "cmp.png"
    report = ex.compare(c, tmp_path, figure=str(fig), log=quiet)
    assert fig.stat().st_size > 1000
    assert report["seeds_used"] == 2 and report["seeds_run_away"] == 0 and report["finite_n"] is None
    assert [r["t"] for r in report["rows"]][:2] == [0.0, pytest.approx(0.01, abs=0.003)]
    row0 = report["rows"][0]
    # t = 0: the DMFT energy is 2 alpha up to Monte Carlo error (eq. 5.20), the simulation's too
    assert row0["e_dmft"] == pytest.approx(8.0, rel=0.1) and row0["e_sim"] == pytest.approx(8.0, rel=0.5)
    with pytest.raises(InputError):
        ex.compare(c, tmp_path, part="nope")


@pytest.mark.parametrize("text", ["1000", "a:b", "1:8", "1000:1"])
def test_size_starts_rejects_bad_sizes(text):
    with pytest.raises(InputError):
        ex.size_starts(text)
    assert ex.size_starts("1000:64") == (1000, 64)
