"""The finite-N study read from sweep files: success table, alpha_c(N), mechanism, fits."""
import json

import numpy as np
import pytest

from experiments import finite_n as study
from simulation.sweep import Chunk, StartResult, empty_dataset, store_chunk, write_dataset
from theory.errors import InputError
from theory.escape import MEDIAN_ABS_NORMAL, mechanism_probability
from theory.statistics import binomial_standard_error

# synthetic outcomes per alpha of N = 16: (successes, trapped, timeouts at |q| = 0.6, timeouts at |q| = 0.1)
OUTCOMES = {3.0: (1, 5, 1, 1), 5.0: (4, 2, 0, 2), 7.0: (7, 1, 0, 0)}


def synthetic_study_file(tmp_path, n=16, outcomes=OUTCOMES, name=None):
    """A study sweep of 8 starts per alpha with the given outcome counts (no flow run)."""
    config = study.study_config(n, 8, tuple(outcomes))
    ds = empty_dataset(config)
    for i, a in enumerate(config.alpha):
        kinds = [("success", 0.95)] * outcomes[a][0] + [("trapped", 0.2)] * outcomes[a][1] \
            + [("timeout", 0.6)] * outcomes[a][2] + [("timeout", 0.1)] * outcomes[a][3]
        res = [StartResult(s, config.start_seed(n, a, s), st, 1.0, q, 0.0, 10.0, wall_seconds=0.5)
               for s, (st, q) in enumerate(kinds)]
        store_chunk(ds, Chunk(i, 0, a, n, tuple(range(8))), res)
    return write_dataset(ds, tmp_path / (name or f"sweep_n{n}.nc"))


def test_study_config_is_the_protocol_with_the_studys_seeds():
    c = study.study_config(128, 4, (5.0,))
    assert c.seed_table().ravel().tolist() == [1280500000 + j for j in range(4)]
    stop, integ = c.stop_rules(), c.integrator()
    assert (stop.t_max, stop.success_overlap) == (100.0, 0.9) and (integ.rtol, integ.atol) == (1e-2, 1e-3)
    assert c.dtype == "float32" and c.time_grid == "none"
    assert study.study_config(512, 2).alpha == (4.0, 5.0, 6.0, 7.0)
    tight = study.study_config(128, 4, (5.0,), t_max=400.0, dtype="float64", rtol=None, atol=None)
    assert (tight.t_max, tight.dtype, tight.rtol, tight.atol, tight.success_overlap) == (400.0, "float64", None, None, 0.9)


def test_success_rows_count_by_hand(tmp_path):
    rows = study.success_rows([synthetic_study_file(tmp_path)])
    by_alpha = {r["alpha"]: r for r in rows}
    r = by_alpha[3.0]
    assert (r["starts"], r["successes"], r["timeouts"], r["ambiguous"], r["timeouts_successful"]) == (8, 1, 2, 1, 0)
    assert r["p"] == 1 / 8 and r["stderr"] == binomial_standard_error(1, 8) and r["wall"] == 4.0
    assert by_alpha[7.0]["successes"] == 7 and by_alpha[5.0]["ambiguous"] == 0


def test_success_rows_refuse_unfinished_cells(tmp_path):
    path = write_dataset(empty_dataset(study.study_config(16, 2, (3.0,))), tmp_path / "p.nc")
    with pytest.raises(InputError, match="undecided"):
        study.success_rows([path])


def test_logistic_alpha_c_recovers_a_known_curve_and_the_timeout_bracket():
    alphas = np.arange(3.0, 8.0)
    m = 20000
    p = 1 / (1 + np.exp(-(alphas - 5.2) / 0.6))
    rows = [dict(alpha=a, successes=int(round(q * m)), starts=m, timeouts=0, timeouts_successful=0)
            for a, q in zip(alphas, p)]
    fit = study.alpha_c_fit(rows)
    assert abs(fit["alpha_c"] - 5.2) < 0.01 and abs(fit["width"] - 0.6) < 0.01 and fit["alpha_c_se"] < 0.02
    # timeouts such that successes + timeouts follow a logistic at 4.6: the bracket finds it
    p_up = 1 / (1 + np.exp(-(alphas - 4.6) / 0.6))
    rows_t = [dict(r, timeouts=int(round(q * m)) - r["successes"]) for r, q in zip(rows, p_up)]
    fit_t = study.alpha_c_fit(rows_t)
    assert abs(fit_t["alpha_c_if_timeouts_succeed"] - 4.6) < 0.01 and fit_t["alpha_c"] == fit["alpha_c"]
    assert fit_t["timeout_fraction"] == pytest.approx(sum(r["timeouts"] for r in rows_t) / (5 * m))


def test_extrapolations_recover_exact_lines():
    ns = [128, 256, 512, 1024]
    by_n = {n: dict(alpha_c=3.5 + 0.25 * np.log(n), alpha_c_se=0.1) for n in ns}
    _, lin = study.extrapolations(by_n)
    assert lin["a"] == pytest.approx(3.5) and lin["b"] == pytest.approx(0.25)
    by_n = {n: dict(alpha_c=6.7 - 10.0 / np.log(n), alpha_c_se=0.1) for n in ns}
    inv, _ = study.extrapolations(by_n)
    assert inv["alpha_inf"] == pytest.approx(6.7) and inv["c"] == pytest.approx(10.0) and inv["ns"] == ns


def test_mechanism_alpha_c_inverts_eq_4_8_on_a_linear_lambda():
    lam = {128: (np.array([2.0, 10.0]), np.array([0.8, 4.0]))}  # Lambda = 0.4 alpha
    q_star = 0.3
    expected = np.log(q_star * np.sqrt(128) / MEDIAN_ABS_NORMAL) / 0.4
    assert study.mechanism_alpha_c(lam, 128, q_star) == pytest.approx(expected)
    assert study.mechanism_alpha_c(lam, 4096, q_star) == pytest.approx(np.log(q_star * 64 / MEDIAN_ABS_NORMAL) / 0.4)
    assert np.isnan(study.mechanism_alpha_c(lam, 128, 100.0))  # outside the table


def test_fit_q_star_recovers_the_constant_of_eq_4_7():
    lam = {256: (np.array([2.0, 10.0]), np.array([0.5, 4.5]))}
    m = 100000
    rows = [dict(n=256, alpha=a, starts=m,
                 successes=int(round(float(mechanism_probability(0.5 * a - 0.5, 256, 0.3)) * m)))
            for a in (3.0, 4.0, 5.0, 6.0, 7.0)]
    assert study.fit_q_star(rows, lam) == pytest.approx(0.3, rel=1e-2)


def test_horizon_config_reruns_the_timeouts_seeds_to_400(tmp_path):
    from simulation.sweep import read_sweep

    ds = read_sweep(synthetic_study_file(tmp_path))
    c = study.horizon_config(ds, 3.0, 8)
    timeouts = [study.point_seed(16, 3.0) + j for j in (6, 7)]
    assert c.seed_table().ravel().tolist() == timeouts and c.t_max == 400.0
    assert (c.dtype, c.rtol, c.atol, c.success_overlap, c.time_grid) == ("float32", 1e-2, 1e-3, 0.9, "none")
    with pytest.raises(InputError, match="no timeout"):
        study.horizon_config(ds, 7.0, 8)


def test_report_end_to_end_on_synthetic_files(tmp_path):
    paths = [synthetic_study_file(tmp_path, 16),
             synthetic_study_file(tmp_path, 32, {3.0: (0, 6, 1, 1), 5.0: (3, 4, 0, 1), 7.0: (7, 1, 0, 0)})]
    bbp = tmp_path / "bbp.json"
    bbp.write_text(json.dumps({"by_n": {"16": {"alphas": [2, 4, 6, 8], "Lambda": [0.5, 1.5, 1.4, 3.5]}}}))
    out = tmp_path / "report.json"
    res = study.report(paths, bbp, tmp_path, out, theory=dict(alpha_threshold_theory=13.8))
    back = json.loads(out.read_text())
    assert set(back["by_n"]) == {"16", "32"} and back["by_n"]["32"]["lambda_from_n"] == 16
    assert len(back["points"]) == 6 and back["alpha_threshold_theory"] == 13.8
    assert res["by_n"][16]["alpha_c"] == study.alpha_c_fit([r for r in res["points"] if r["n"] == 16])["alpha_c"]
    assert (tmp_path / "finite_n_success_curves.png").stat().st_size > 10_000
    assert (tmp_path / "alpha_c_vs_log_n.png").stat().st_size > 10_000


def _synthetic_log():
    """Four logged starts (two data sets): a fast success, a trap, a success that passed a
    small-gradient state with positive curvature, a trap that first reached |q| = 0.6."""
    from simulation.decide import GRAD_LEVELS

    nq, ng = len(study.Q_LEVELS), len(GRAD_LEVELS)

    def probes(rows):
        p = np.full((ng, 6), np.nan)
        for k, (t, ev, theta) in rows.items():
            p[k] = (t, ev, 0.1, theta, 0.0, theta)
        return p

    qt = np.full((4, nq), np.nan)
    qe = np.full((4, nq), np.nan)
    qt[0], qe[0] = np.linspace(1, 2, nq), np.linspace(100, 200, nq)
    qt[2], qe[2] = np.linspace(50, 60, nq), np.linspace(700, 800, nq)
    qt[3, :3], qe[3, :3] = (5, 6, 7), (50, 60, 70)
    pr = np.stack([probes({}), probes({0: (10, 300, 0.5), 1: (12, 350, 0.4)}),
                   probes({0: (20, 400, 0.3)}), probes({0: (30, 500, 0.05)})])
    return dict(n=np.array([64] * 4), alpha=np.array([5.0] * 4), seed=np.array([1, 1, 2, 2]),
                status=np.array(["success", "trapped", "success", "trapped"]), evals=np.array([210, 900, 810, 1000.]),
                q_time=qt, q_evals=qe, probes=pr, q_levels=np.array(study.Q_LEVELS),
                grad_levels=np.array(GRAD_LEVELS))


def test_early_rule_table_counts_by_hand():
    rec = _synthetic_log()
    everything = np.ones(4, bool)
    # early success at 0.5: start 3 reached 0.5 (level index 2) and was trapped: one false success
    tab = study.early_rule_table(rec, everything, 0.5, None, 1.0)
    assert tab["false_successes"] == 1 and tab["early"] == 3
    assert tab["evaluations_rule"] == pytest.approx((qe := rec["q_evals"])[0, 2] / 4 + 900 / 4 + qe[2, 2] / 4
                                                    + 70 / 4)
    # trap at 1e-2 with c = 0.2: start 1 (theta 0.5) and start 2 (0.3, a success: wrong) fire
    tab = study.early_rule_table(rec, everything, None, 1e-2, 0.2)
    assert tab["false_failures"] == 1 and tab["early"] == 2
    assert tab["evaluations_rule"] == pytest.approx((210 + 300 + 20 + 400 + 20 + 1000 + 20) / 4)
    # at c = 0.35 only start 1 fires; the probe of start 2 still costs its Lanczos steps
    tab = study.early_rule_table(rec, everything, None, 1e-2, 0.35)
    assert tab["false_failures"] == 0 and tab["early"] == 1


def test_cluster_seeds_are_apart_from_the_studys():
    seeds = study.cluster_seeds(1024, 5.0, 4)
    assert seeds[0] == study.point_seed(1024, 5.0) + study.BATCH_SEED_OFFSET and len(set(seeds)) == 4
    assert min(seeds) - study.point_seed(1024, 5.0) >= 64  # the stored study uses point_seed + j, j < 64
