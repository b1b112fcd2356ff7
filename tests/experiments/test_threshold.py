"""experiments.threshold at tiny N: the point records, their files, the comparison pieces.

(Named test_threshold_experiment.py, not test_threshold.py: tests/ has no __init__.py, so
two test modules called test_threshold would collide under pytest's default import mode.)
"""
import json
import sys

import numpy as np
import pytest

from experiments import threshold as thr
from theory.errors import InputError

N, ALPHA, REPS, T_MAX = 40, 4.0, 2, 300.0


@pytest.fixture(scope="module")
def points():
    return {p: thr.simulate_point(N, ALPHA, REPS, t_max=T_MAX, protocol=p) for p in thr.PROTOCOLS}


def test_point_seed_and_path(tmp_path):
    assert thr.point_seed(500, 4.0) == thr.SEED + 40_000 + 500
    assert thr.point_seed(500, 4.0, "orthogonal") == thr.point_seed(500, 4.0) + 7
    assert thr.point_path(tmp_path, 500, 4.0).name == "n500_a4.nc"
    assert thr.point_path(tmp_path, 500, 4.5, "orthogonal", ".npz").name == "n500_a4.5_orth.npz"
    with pytest.raises(InputError):
        thr.point_seed(500, 4.0, "diagonal")


def test_point_record_is_consistent(points):
    """Energies recomputed from the stored laws, e = sum_m (yhat^2 - y^2)^2 / (2N) (eq. 1.1),
    and the Lanczos lowest eigenvalue against the dense spectrum."""
    for proto, rec in points.items():
        assert rec["protocol"] == proto and rec["status"].shape == (REPS,)
        tr = rec["trapped"]
        np.testing.assert_array_equal(tr, np.flatnonzero(rec["status"] == "trapped"))
        assert rec["laws"].shape == (tr.size, 2, int(round(ALPHA * N))) and rec["spectra"].shape == (tr.size, N - 1)
        for j, b in enumerate(tr):
            yhat, y = rec["laws"][j]
            e = np.sum((yhat**2 - y**2) ** 2) / (2 * N)
            np.testing.assert_allclose(rec["energy"][b], e, rtol=1e-5)
            np.testing.assert_allclose(rec["lowest"][j, 0], rec["spectra"][j].min(), atol=1e-8)
    assert points["orthogonal"]["trapped"].size >= 1
    assert np.abs(points["orthogonal"]["q"]).max() < 1e-12
    assert np.abs(points["free"]["q"]).max() > 1e-6  # the free flow is not confined


def test_simulate_writes_provenance_and_resumes(tmp_path):
    plan = [(30, (3.0,), 2)]
    logged = []
    written = thr.simulate(tmp_path, "orthogonal", plan=plan, t_max=50.0, log=logged.append)
    assert [p.name for p in written] == ["n30_a3_orth.nc"] and len(logged) == 1
    assert thr.simulate(tmp_path, "orthogonal", plan=plan, t_max=50.0, log=logged.append) == []
    # a file of the older layout (no protocol, no provenance) is read as free
    np.savez(tmp_path / "n30_a3.npz", n=30, alpha=3.0, status=np.array(["timeout"]), trapped=np.zeros(0, int))
    pts = thr.load_points(tmp_path)
    assert [p["protocol"] for p in pts] == ["free", "orthogonal"] and "provenance" not in pts[0]
    prov = pts[1]["provenance"]
    assert prov["protocol"] == "orthogonal" and prov["n"] == 30 and prov["seed"] == thr.point_seed(30, 3.0, "orthogonal")
    assert "package_version" in prov and prov["t_max"] == 50.0
    # an older .npz of a point counts as done
    np.savez(tmp_path / "n30_a4.npz", n=30, alpha=4.0, status=np.array(["timeout"]), trapped=np.zeros(0, int))
    assert thr.simulate(tmp_path, "free", plan=[(30, (4.0,), 2)], t_max=50.0, log=logged.append) == []


def test_point_dataset_round_trip(points, tmp_path):
    """Every array of a record survives the labelled file bit for bit (also with no trapped
    state: zero-length dimensions)."""
    from theory.io import load_netcdf, write_netcdf

    recs = dict(points)
    empty = dict(points["free"])
    empty.update(trapped=np.zeros(0, int), laws=np.zeros((0, 2, 160)), lowest=np.zeros((0, 4)),
                 lowest_overlap2=np.zeros((0, 4)), spectra=np.zeros((0, N - 1)))
    recs["empty"] = empty
    for name, rec in recs.items():
        write_netcdf(thr.point_dataset(rec, {"package_version": "x"}), tmp_path / f"{name}.nc")
        back = thr.point_record(load_netcdf(tmp_path / f"{name}.nc"))
        for k, v in rec.items():
            assert np.array_equal(np.asarray(back[k]), np.asarray(v)), k
            assert np.asarray(back[k]).dtype.kind == np.asarray(v).dtype.kind, k
        assert back["provenance"]["package_version"] == "x"


def test_extrapolate_recovers_a_known_law():
    """Rows on e(N) = 1.3 + 3 N^(-1/2) exactly: x = 1/2 gives e_inf = 1.3 with chi^2 ~ 0,
    x = 2/3 does not fit; a protocol with one size is skipped."""
    ns = (250, 500, 1000, 2000)
    rows = [dict(n=n, alpha=4.0, protocol="free", trapped=3, energy_mean=1.3 + 3.0 / np.sqrt(n), energy_sem=0.001)
            for n in ns] + [dict(n=500, alpha=4.0, protocol="orthogonal", trapped=2, energy_mean=1.5, energy_sem=None)]
    fit = thr.extrapolate(rows, [4.0])
    assert list(fit) == ["4"] and fit["4"]["sizes"] == list(ns)
    assert abs(fit["4"]["x=0.5"]["e_inf"] - 1.3) < 1e-10 and fit["4"]["x=0.5"]["chi2_per_dof"] < 1e-12
    assert abs(fit["4"]["x=0.5"]["slope"] - 3.0) < 1e-8
    assert fit["4"]["x=0.667"]["chi2_per_dof"] > 1.0


def test_finite_m_edge_is_the_own_law_edge_of_a_sample():
    """One sample: the finite-M edge is the own-law edge of the atoms it drew."""
    from theory.threshold import solve_threshold

    state = solve_threshold(ALPHA)
    m = state.measure
    idx = np.random.default_rng(3).choice(m.size, size=int(round(ALPHA * N)), p=m.weights)
    law = np.stack([m.yhat[idx], m.y[idx]])
    assert thr.finite_m_edge(state, N, samples=1, seed=3) == pytest.approx(thr.own_law_edge(law, ALPHA, state.mu), abs=1e-12)


def test_compare_and_table(points, tmp_path):
    for proto, rec in points.items():
        np.savez(thr.point_path(tmp_path, N, ALPHA, proto, ".npz"), **rec)
    res = thr.compare(thr.load_points(tmp_path), grid_points=50, finite_m_samples=1)
    assert {r["protocol"] for r in res["simulation"]} == {"free", "orthogonal"}
    for r in res["simulation"]:
        rec = points[r["protocol"]]
        if r["trapped"]:
            assert r["energy_mean"] == pytest.approx(rec["energy"][rec["trapped"]].mean())
            assert all(0 <= r[k] <= 1 for k in ("ks_abs_yhat", "ks_D", "ks_V"))
    assert {t["closure"] for t in res["theory"]} == {"marginal", "stationary"}
    assert set(res["densities"]) <= {f"N{N}_a4", f"N{N}_a4_orth"} and res["densities"]
    assert all(0 <= v <= 1 for d in res["densities"].values() for v in d.values())
    text = thr.format_comparison(res)
    assert "orthogonal"[:5] in text and "theory: alpha closure" in text
    json.dumps(res)  # JSON-ready


def test_script_reports_an_empty_folder(tmp_path, capsys):
    sys.path.insert(0, "benchmarks")
    try:
        import validate_threshold
    finally:
        sys.path.remove("benchmarks")
    assert validate_threshold.main(["compare", "--states", str(tmp_path)]) == 2
    assert "no point files" in capsys.readouterr().err
