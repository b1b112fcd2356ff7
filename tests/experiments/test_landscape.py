"""experiments/landscape.py: the table formatter and the phase-diagram figure on a small
synthetic dataset (no solves; the science is run by benchmarks/validate_kac_rice.py)."""
import numpy as np
import xarray as xr

from experiments.landscape import STOPPING_ENERGIES, format_rows, plot_phase_diagram


def test_format_rows():
    text = format_rows([{"alpha": 3.0, "e": 0.86089, "x": None, "l": [1.0, 2.0]}], ["alpha", "e", "x", "l"])
    lines = text.splitlines()
    assert lines[0] == "| alpha | e | x | l |"
    assert lines[2] == "| 3 | 0.8609 | - | 1 / 2 |"


def test_stopping_energies_table():
    assert sorted(STOPPING_ENERGIES) == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert all(len(v) == 4 for v in STOPPING_ENERGIES.values())


def test_plot_phase_diagram(tmp_path):
    alphas, betas = np.array([3.0, 4.0]), np.array([0.0, 0.2])
    ds = xr.Dataset({"energy": (("alpha", "beta"), [[0.86, 0.6], [1.63, 0.9]]),
                     "region": (("alpha", "beta"), np.array([[1, 0], [2, 1]], dtype=np.int8)),
                     "e_th": (("alpha",), [0.55, 1.16])}, coords={"alpha": alphas, "beta": betas})
    out = tmp_path / "pd.png"
    plot_phase_diagram(ds, str(out), {"alpha_bbp": 3.5})
    assert out.stat().st_size > 1000


def test_plot_critical(tmp_path):
    """The critical-points figure from two synthetic prediction rows (no solves)."""
    from experiments.landscape import plot_critical

    rows = [{"alpha": a, "curve": [{"energy": e, "sigma_tot": s, "index": i}
                                   for e, s, i in ((0.3 * a, -0.1, 1e-3), (0.5 * a, 0.1, 0.05), (0.6 * a, 0.2, 0.12))]}
            for a in (3.0, 4.0)]
    ds = xr.Dataset({"energy": (("alpha", "beta"), [[0.86, 0.6], [1.63, 0.9]]),
                     "complexity": (("alpha", "beta"), [[0.12, 0.05], [0.09, 0.02]])},
                    coords={"alpha": np.array([3.0, 4.0]), "beta": np.array([0.0, 0.2])})
    out = tmp_path / "crit.png"
    plot_critical(rows, str(out), ds)
    assert out.stat().st_size > 1000
