"""experiments.finite_n_theory: the simulated success by a horizon from the stored sweeps, the
comparison with the law (7.13) on a synthetic q0_c table, the implied-q0_c diagnostic.

Slow: the two tests that read the six stored sweep files (results/finite_n_t100, ~5-30 s)."""
import json
import math

import pytest

from experiments import finite_n_theory as study
from theory.success import SuccessConfig, store_entry, success_probability_from


@pytest.mark.slow
def test_success_by_t100_is_the_stored_report():
    rows = {(r["n"], r["alpha"]): r for r in study.simulated_success(100.0)}
    report = json.loads((study.SWEEP_DIR / "report.json").read_text())
    for p in report["points"]:
        assert rows[(p["n"], p["alpha"])]["successes"] == p["successes"]
    early = {(r["n"], r["alpha"]): r["successes"] for r in study.simulated_success(2.0)}
    assert all(early[k] <= rows[k]["successes"] for k in early)
    assert early[(4096, 6.0)] < rows[(4096, 6.0)]["successes"]


def test_implied_q0c_inverts_the_law():
    q = study.implied_q0c(success_probability_from(0.03, 1024, 0.5), 1024, 0.5)
    assert q == pytest.approx(0.03, rel=1e-6)
    assert math.isnan(study.implied_q0c(0.0, 1024, 0.5))


@pytest.mark.slow
def test_compare_on_a_synthetic_table(tmp_path):
    path = tmp_path / "t.json"
    cfg = SuccessConfig(table=str(path))
    for a, q in ((5.0, 0.09), (6.0, 0.04), (7.0, 0.02)):
        store_entry(path, f"a{a}", {"alpha": a, "t_max": cfg.t_max, "converged": True, "lower": q, "upper": q,
                                    "ratio": 0.5, "runs": [],
                                    "config": {"level": cfg.level, "t_linear": cfg.t_linear,
                                               "samples": cfg.samples, "dt_max": cfg.dt_max}})
    out = study.compare(cfg)
    used = [r for r in out["rows"] if r.get("predicted") is not None]
    assert out["points"] == len(used) == sum(1 for r in out["rows"] if 5 <= r["alpha"] <= 7)
    assert math.isfinite(out["chi2"]) and 0 <= out["p_value"] <= 1
    assert "| N | alpha |" in study.markdown_rows(out, out)


def test_table_entry_is_refined_only_when_its_bracket_is_wider_than_asked(tmp_path, monkeypatch):
    import dataclasses
    import types

    from theory.dmft.critical import CriticalStartConfig
    from theory.success import entry_key

    path = tmp_path / "t.json"
    cfg = CriticalStartConfig(samples=16, width=0.005)
    key = entry_key(6.0, 2.0, cfg.samples, cfg.seed, cfg.dt_max, cfg.level, cfg.t_linear)
    store_entry(path, key, {"alpha": 6.0, "converged": True, "residual": 0.008})
    calls = []

    def fake(alpha, t_max, config, **kw):
        calls.append(config.width)
        return types.SimpleNamespace(as_dict=lambda: {"alpha": alpha, "converged": True, "residual": config.width / 2},
                                     q0_critical=0.04, lower=0.039, upper=0.041, shift=0.0, ratio=0.5, message="")

    monkeypatch.setattr(study, "critical_start", fake)
    study.compute_critical_table([6.0], 2.0, [0], path, cfg, progress=False)
    assert calls == [0.005]                                   # 0.008 > 0.005: refined
    study.compute_critical_table([6.0], 2.0, [0], path, cfg, progress=False)
    assert calls == [0.005]                                   # now 0.0025 <= 0.005: cached
    study.compute_critical_table([6.0], 2.0, [0], path, dataclasses.replace(cfg, width=0.001), progress=False)
    assert calls == [0.005, 0.001]


def test_fixed_start_prediction_on_a_synthetic_table(tmp_path):
    path = tmp_path / "t.json"
    cfg = SuccessConfig(table=str(path))
    for a, q in ((6.0, 0.04), (7.0, 0.02)):
        store_entry(path, f"a{a}", {"alpha": a, "t_max": cfg.t_max, "converged": True, "lower": q, "upper": q,
                                    "ratio": 0.5, "runs": [],
                                    "config": {"level": cfg.level, "t_linear": cfg.t_linear,
                                               "samples": cfg.samples, "dt_max": cfg.dt_max}})
    rows = study.fixed_start_prediction([6.0, 7.0], 1024, [0.5, 1.0, 2.0], cfg)
    assert [r["q0"] for r in rows[:3]] == pytest.approx([0.02, 0.04, 0.08])
    p = [r["success_probability"] for r in rows[:3]]
    assert p[0] < p[1] < p[2] and p[1] == pytest.approx(0.5, abs=0.01)


def test_fixed_start_runs_resume_and_refuse_other_parameters(tmp_path):
    from theory.errors import InputError

    out = tmp_path / "run.json"
    first = study.run_fixed_start(out, 64, 4.0, 0.3, clusters=1, per_cluster=3, t_max=0.5, progress=False)
    assert first["starts"] == 3 and 0 <= first["successes"] <= 3
    again = study.run_fixed_start(out, 64, 4.0, 0.3, clusters=2, per_cluster=3, t_max=0.5, progress=False)
    assert again["starts"] == 6
    assert list(again["clusters"].values())[0] == list(first["clusters"].values())[0]  # kept, not rerun
    with pytest.raises(InputError):
        study.run_fixed_start(out, 64, 4.0, 0.2, clusters=1, per_cluster=3, t_max=0.5, progress=False)
