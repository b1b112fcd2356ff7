"""Finite-N success law from the DMFT (theory/success.py, docs/theory.md 7.8): the exact law of
the start overlap against Monte Carlo on the sphere, the law's monotonicity in alpha and N, the
table, bad input. (The q0_c values themselves come from DMFT solves: results/finite_n_theory.)"""
import json
import math

import numpy as np
import pytest
from scipy.special import erfc

from theory.dmft.critical import EscapeRun, bracket_at_horizon
from theory.errors import InputError
from theory.success import (SuccessConfig, alpha_c, fixed_start_success_from, load_table, start_overlap_sf,
                            store_entry, store_run, success_probability, success_probability_from)


def _sphere_overlaps(n, draws=100_000, seed=0):
    w = np.random.default_rng(seed).standard_normal((draws, n))
    return math.sqrt(n) * w[:, 0] / np.linalg.norm(w, axis=1)        # sqrt(N) q(0) of a uniform start


@pytest.mark.parametrize("n", [2, 8, 64])
def test_start_law_is_the_exact_law_of_a_uniform_start(n):
    z = _sphere_overlaps(n)
    for x in (0.3, 1.0, 2.0):
        emp = np.mean(np.abs(z) >= x)
        se = math.sqrt(emp * (1 - emp) / z.size) + 1e-4
        assert abs(start_overlap_sf(x, n) - emp) < 4 * se, (n, x)


def test_start_law_with_the_source_against_monte_carlo():
    n, r = 8, 0.5
    z = _sphere_overlaps(n, seed=1) + math.sqrt(r) * np.random.default_rng(2).standard_normal(100_000)
    for x in (0.5, 1.5, 3.0):
        emp = np.mean(np.abs(z) >= x)
        assert abs(start_overlap_sf(x, n, r) - emp) < 4 * math.sqrt(emp * (1 - emp) / z.size) + 1e-4


def test_fixed_start_law_against_monte_carlo_and_its_sharp_limit():
    n, r, qc = 1024, 0.6, 0.03
    g = math.sqrt(r) * np.random.default_rng(3).standard_normal(200_000)
    for q0 in (-0.02, 0.01, 0.03, 0.05):
        emp = np.mean(np.abs(q0 * math.sqrt(n) + g) >= qc * math.sqrt(n))
        se = math.sqrt(emp * (1 - emp) / g.size) + 1e-4
        assert abs(fixed_start_success_from(qc, q0, n, r) - emp) < 4 * se, q0
    assert fixed_start_success_from(qc, 0.031, n, 0.0) == 1.0
    assert fixed_start_success_from(qc, 0.029, n, 0.0) == 0.0
    # a start of the critical overlap succeeds with probability ~1/2 (the far branch adds a little)
    assert 0.5 <= fixed_start_success_from(qc, qc, n, r) < 0.5 + 0.01  # far branch: Phi(-2.5)
    with pytest.raises(InputError):
        fixed_start_success_from(qc, 1.5, n, r)


def test_large_n_limit_is_the_gaussian_law():
    for r in (0.0, 0.4):
        for x in (0.5, 1.0, 2.0):
            assert start_overlap_sf(x, 10**6, r) == pytest.approx(erfc(x / math.sqrt(2 * (1 + r))), abs=2e-4)


def _table(tmp_path, q0c=((4.0, 0.12), (6.0, 0.04), (8.0, 0.015)), ratio=0.4):
    path = tmp_path / "q0c.json"
    cfg = SuccessConfig(table=str(path))
    for a, q in q0c:
        store_entry(path, f"a{a}", {"alpha": a, "t_max": cfg.t_max, "converged": True, "lower": 0.9 * q,
                                    "upper": 1.1 * q, "ratio": ratio, "runs": [{"escape_time": 1.3}],
                                    "config": {"level": cfg.level, "t_linear": cfg.t_linear,
                                               "samples": cfg.samples, "dt_max": cfg.dt_max}})
    return cfg


def test_success_is_monotone_in_alpha_and_n(tmp_path):
    cfg = _table(tmp_path)
    alphas = np.linspace(4, 8, 9)
    for n in (128, 1024, 8192):
        p = [success_probability(a, n, cfg).success_probability for a in alphas]
        assert np.all(np.diff(p) > 0), n
    for a in (4.5, 6.0, 7.5):
        p = [success_probability(a, n, cfg).success_probability for n in (64, 256, 1024, 4096)]
        assert np.all(np.diff(p) < 0), a
    ac = [alpha_c(n, cfg)["alpha_c"] for n in (128, 256, 1024)]
    assert np.all(np.diff(ac) > 0)
    pr = success_probability(6.0, 1024, cfg)
    assert pr.low < pr.success_probability < pr.high
    assert pr.success_probability == pytest.approx(success_probability_from(0.04, 1024, 0.4))
    # at the median: q0_c sqrt(N) = 0.6745 sqrt(1 + r) at large N (eq. 7.13)
    n = 2000
    a = alpha_c(n, cfg)
    q = np.exp(np.interp(math.log(a["alpha_c"]), np.log([4, 6, 8]), np.log([0.12, 0.04, 0.015])))
    assert q * math.sqrt(n) == pytest.approx(0.6745 * math.sqrt(1.4), rel=5e-3)


def test_without_the_source_success_is_rarer_above_the_median(tmp_path):
    cfg = _table(tmp_path)
    start_only = SuccessConfig(table=cfg.table, with_source=False)
    assert (success_probability(7.0, 4096, start_only).success_probability
            < success_probability(7.0, 4096, cfg).success_probability)


def test_bad_input(tmp_path):
    cfg = _table(tmp_path)
    for args in ((0.0, 100), (-1.0, 100), (6.0, 1), (math.nan, 100)):
        with pytest.raises(InputError):
            success_probability(*args, cfg)
    with pytest.raises(InputError):
        success_probability(6.0, 100, SuccessConfig(t_max=-1.0, table=cfg.table))
    with pytest.raises(InputError):
        success_probability(20.0, 100, cfg)               # outside the tabulated alphas
    with pytest.raises(InputError):
        alpha_c(1, cfg)
    with pytest.raises(InputError):
        success_probability(6.0, 100, SuccessConfig(t_max=3.0, table=cfg.table))  # horizon not tabulated


def test_table_is_resumable_and_refuses_foreign_files(tmp_path):
    path = tmp_path / "t.json"
    assert load_table(path)["entries"] == {}
    store_run(path, "k", {"q0": 0.1})
    store_run(path, "k", {"q0": 0.2})
    table = load_table(path)
    assert [r["q0"] for r in table["runs"]["k"]] == [0.1, 0.2] and "version" in json.dumps(table["provenance"])
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "other"}')
    with pytest.raises(InputError):
        load_table(bad)
    bad.write_text("not json")
    with pytest.raises(InputError):
        load_table(bad)


def test_bracket_at_horizon_uses_the_escape_times():
    run = lambda q, t, t_end=2.0: EscapeRun(q0=q, q_eff=q, escape_time=t, q_end=0.5, t_end=t_end,  # noqa: E731
                                            converged=True, message="")
    runs = [run(0.01, None), run(0.02, None), run(0.04, 1.8), run(0.08, 0.9), run(0.03, None, t_end=1.0)]
    assert bracket_at_horizon(runs, 2.0) == (0.02, 0.04)
    assert bracket_at_horizon(runs, 1.0) == (0.04, 0.08)      # 0.04 escaped only at 1.8 > 1
    lo, up = bracket_at_horizon(runs, 0.5)
    assert lo == 0.08 and math.isnan(up)


def test_critical_start_bisects_in_q_eff_and_resumes():
    # a real (tiny) q0 = 0 solve for the shift, a stub nonlinear flow that escapes iff q_eff > 0.03
    import types

    from theory.dmft import solve_dmft
    from theory.dmft.critical import CriticalStartConfig, critical_start

    calls, base = [], []

    def solver(cfg, strict=False, progress=False, stop_overlap=None):
        if cfg.q0 == 0.0:
            if not base:
                base.append(solve_dmft(cfg, strict=False))
            return base[0]
        calls.append(cfg.q0)
        t = np.linspace(0, cfg.t_max, 11)
        esc = cfg.q0 + shift[0] > 0.03
        q = np.where(t >= 0.8 * cfg.t_max, 0.95, 0.2) if esc else np.full(11, 0.2)
        return types.SimpleNamespace(t=t, q=q, converged=True, message="")

    shift = [0.0]
    cfg = CriticalStartConfig(samples=16, dt_max=0.1, lo=0.01, hi=0.08, width=0.002, max_solves=12)
    first = critical_start(3.0, 0.6, cfg, solver=solver, strict=False)
    shift[0] = first.shift
    res = critical_start(3.0, 0.6, cfg, solver=solver)
    assert res.converged and res.lower <= 0.03 <= res.upper and res.upper - res.lower <= 0.002
    assert all(abs(r.q_eff - r.q0 - res.shift) < 1e-12 for r in res.runs)
    n_calls = len(calls)
    again = critical_start(3.0, 0.6, cfg, solver=solver, known_runs=list(res.runs))
    assert len(calls) == n_calls and again.q0_critical == res.q0_critical      # resumed, nothing re-solved


def test_the_committed_table_gives_a_law_monotone_in_alpha_and_n():
    # results/finite_n_theory/q0c_table.json (DMFT solves, T = 2): P rises with alpha, falls with N
    from theory.success import DEFAULT_TABLE

    if not DEFAULT_TABLE.exists():
        pytest.skip("no committed q0_c table")
    cfg = SuccessConfig()
    alphas = np.linspace(5, 7, 9)
    grid = np.array([[success_probability(a, n, cfg).success_probability for a in alphas]
                     for n in (128, 512, 2048, 8192)])
    assert np.all(np.diff(grid, axis=1) > 0) and np.all(np.diff(grid, axis=0) < 0)


def test_a_one_seed_band_says_so_and_a_second_seed_widens_it(tmp_path):
    from theory.success import SINGLE_SEED_CAVEAT

    cfg = _table(tmp_path)
    one = success_probability(6.0, 1024, cfg)
    assert one.seeds == 1 and one.message == SINGLE_SEED_CAVEAT
    assert alpha_c(1024, cfg)["message"] == SINGLE_SEED_CAVEAT
    for a, q in ((4.0, 0.10), (6.0, 0.03), (8.0, 0.012)):  # a second seed with smaller q0_c
        store_entry(cfg.table, f"a{a}_seed1", {"alpha": a, "t_max": cfg.t_max, "converged": True,
                                               "lower": 0.9 * q, "upper": 1.1 * q, "ratio": 0.4, "runs": [],
                                               "config": {"level": cfg.level, "t_linear": cfg.t_linear,
                                                          "samples": cfg.samples, "dt_max": cfg.dt_max}})
    two = success_probability(6.0, 1024, cfg)
    assert two.seeds == 2 and two.message == ""
    assert two.q0_lower == pytest.approx(0.027) and two.q0_upper == pytest.approx(0.044)
    assert two.low <= one.low and two.high > one.high


def test_alpha_c_caveat_looks_only_at_the_alphas_around_its_root(tmp_path):
    # one seed at alpha = 4 only: the alpha_c roots that lie between 6 and 8 carry no caveat
    from theory.success import SINGLE_SEED_CAVEAT

    cfg = _table(tmp_path)
    for a, q in ((6.0, 0.03), (8.0, 0.012)):
        store_entry(cfg.table, f"a{a}_seed1", {"alpha": a, "t_max": cfg.t_max, "converged": True,
                                               "lower": 0.9 * q, "upper": 1.1 * q, "ratio": 0.4, "runs": [],
                                               "config": {"level": cfg.level, "t_linear": cfg.t_linear,
                                                          "samples": cfg.samples, "dt_max": cfg.dt_max}})
    assert success_probability(4.5, 1024, cfg).message == SINGLE_SEED_CAVEAT
    # the same rule for one prediction: alpha = 5.9 interpolates between 4 (one seed) and 6 (two)
    # although 6 is the nearest node; alpha = 6 itself and 7 lean on two-seed nodes only
    assert success_probability(5.9, 1024, cfg).seeds == 1
    assert success_probability(5.9, 1024, cfg).message == SINGLE_SEED_CAVEAT
    assert success_probability(6.0, 1024, cfg).seeds == 2
    assert success_probability(7.0, 1024, cfg).message == ""
    far = [n for n in (1024, 4096, 16384, 65536) if alpha_c(n, cfg)["lower"] >= 6.0]
    assert far, [alpha_c(n, cfg) for n in (1024, 4096, 16384, 65536)]
    assert alpha_c(far[0], cfg)["message"] == ""
    near = alpha_c(128, cfg)
    assert near["lower"] < 6.0 and near["message"] == SINGLE_SEED_CAVEAT
