"""The sweep figure: success table, Wilson intervals, alpha_c from a theory file, command line."""
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from theory.errors import InputError
from simulation.cli import entry, main
from simulation.plot import read_alpha_c, success_figure, success_table
from theory.statistics import wilson_interval
from simulation.sweep import Chunk, StartResult, SweepConfig, empty_dataset, read_sweep, store_chunk, write_dataset

CONFIG = SweepConfig(n=(16, 32), alpha=(3.0, 4.0, 5.0), starts=4, seed=0)


def synthetic_sweep():
    """Alpha 3: 0/4 and 1/4 successes; alpha 4: 2/4 and 3/4; alpha 5: N=16 4/4, N=32 pending."""
    ds = empty_dataset(CONFIG)
    wins = {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3, (2, 0): 4}
    for (i, j), k in wins.items():
        res = [StartResult(s, 0, "success" if s < k else "trapped", 1.0, 0.999 if s < k else 0.2, 0.0, 5.0)
               for s in range(4)]
        store_chunk(ds, Chunk(i, j, CONFIG.alpha[i], CONFIG.n[j], tuple(range(4))), res)
    return ds


def test_success_table_counts_finished_starts_only():
    t = success_table(synthetic_sweep())
    assert t.successes.tolist() == [[0, 1], [2, 3], [4, 0]]
    assert t.finished.tolist() == [[4, 4], [4, 4], [4, 0]]
    frac = t.fraction
    assert frac[1, 1] == 0.75 and np.isnan(frac[2, 1]) and not t.complete


def test_wilson_interval():
    lo, hi = wilson_interval([5, 0, 10, 0], [10, 10, 10, 0], z=1.0)
    assert np.allclose([lo[0], hi[0]], [0.5 - 0.150756, 0.5 + 0.150756], atol=1e-6)
    assert lo[1] == 0 and 0 < hi[1] < 0.2  # no success: the interval does not collapse
    assert hi[2] == 1 and 0.8 < lo[2] < 1  # exactly 1: a negative error bar would be refused
    assert np.isnan(lo[3]) and np.isnan(hi[3])
    k = np.arange(11)
    lo, hi = wilson_interval(k, np.full(11, 10))
    assert np.all((lo <= k / 10) & (k / 10 <= hi) & (lo >= 0) & (hi <= 1))


def test_alpha_c_from_attribute_or_scalar_variable(tmp_path):
    a = tmp_path / "a.nc"
    xr.Dataset(attrs={"alpha_c": 4.5}).to_netcdf(a, engine="h5netcdf")
    v = tmp_path / "v.nc"
    xr.Dataset({"alpha_c": ((), 6.25), "e_th": ("alpha", [1.0, 2.0])}, coords={"alpha": [3.0, 4.0]}).to_netcdf(
        v, engine="h5netcdf")
    assert read_alpha_c(a) == 4.5 and read_alpha_c(v) == 6.25
    bad = {"none.nc": xr.Dataset({"x": ("a", [1.0])}), "vector.nc": xr.Dataset({"alpha_c": ("a", [1.0, 2.0])}),
           "negative.nc": xr.Dataset(attrs={"alpha_c": -1.0}), "text.nc": xr.Dataset(attrs={"alpha_c": "soon"})}
    for name, ds in bad.items():
        ds.to_netcdf(tmp_path / name, engine="h5netcdf")
        with pytest.raises(InputError, match="alpha_c"):
            read_alpha_c(tmp_path / name)
    (tmp_path / "garbage.nc").write_text("x")
    for path in (tmp_path / "garbage.nc", tmp_path / "absent.nc"):
        with pytest.raises(InputError, match="theory file"):
            read_alpha_c(path)


def test_figure_has_one_curve_per_n_the_threshold_and_labels():
    fig = success_figure(success_table(synthetic_sweep()), alpha_c=4.2, title="t")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["N = 16", "N = 32"] and "4.2" in labels[2]
    assert "20/24 starts finished" in ax.get_legend().get_title().get_text()
    assert "alpha" in ax.get_xlabel() and "success" in ax.get_ylabel()
    vertical = [ln for ln in ax.get_lines() if np.allclose(ln.get_xdata(), 4.2)]
    assert len(vertical) == 1
    curves = [c.lines[0] for c in ax.containers]  # the data line of each errorbar
    assert len(curves) == 2
    assert np.allclose(curves[0].get_ydata(), [0.0, 0.5, 1.0])
    # the N = 32 curve skips alpha = 5 (nothing finished) and plots 1/4, 3/4 near alpha 3, 4
    assert np.allclose(curves[1].get_ydata(), [0.25, 0.75])
    assert np.allclose(curves[1].get_xdata(), [3.0, 4.0], atol=0.1)


def test_plot_command_writes_the_figure(tmp_path, capsys):
    sweep = write_dataset(synthetic_sweep(), tmp_path / "s.nc")
    theory = tmp_path / "t.nc"
    xr.Dataset(attrs={"alpha_c": 4.5}).to_netcdf(theory, engine="h5netcdf")
    png = tmp_path / "f.png"
    assert main(["plot", "--sweep", str(sweep), "--out", str(png), "--theory", str(theory), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["alpha_c"] == 4.5 and res["success_fraction"][2] == [1.0, None] and res["finished"][2] == [4, 0]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert main(["plot", "--sweep", str(sweep), "--out", str(tmp_path / "f.pdf")]) == 0
    assert "figure written to" in capsys.readouterr().out and (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("args, words", [
    (["--sweep", "{tmp}/absent.nc"], "does not exist"),
    (["--sweep", "{tmp}/t.nc"], "not a sweep file"),
    (["--sweep", "{tmp}/s.nc", "--theory", "{tmp}/s.nc"], "no alpha_c"),
    (["--sweep", "{tmp}/s.nc", "--out", "{tmp}/f.jpg"], "png, pdf or svg"),
    (["--sweep", "{tmp}/s.nc", "--out", "{tmp}/no/dir/f.png"], "does not exist"),
])
def test_bad_plot_input_is_one_line_status_2(tmp_path, capsys, args, words):
    write_dataset(synthetic_sweep(), tmp_path / "s.nc")
    xr.Dataset(attrs={"alpha_c": 4.5}).to_netcdf(tmp_path / "t.nc", engine="h5netcdf")
    status = entry(["plot"] + [a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert status == 2 and words in err and len(err.strip().splitlines()) == 1


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["plot", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "--theory" in out and "alpha_c" in out


def test_error_starts_are_not_counted_as_finished():
    ds = synthetic_sweep()
    store_chunk(ds, Chunk(2, 1, 5.0, 32, (0, 1)),
                [StartResult(0, 0, "success", 1.0, 0.999, 0.0, 5.0),
                 StartResult(1, 0, "error", np.nan, np.nan, np.nan, np.nan, message="ConvergenceError: x")])
    t = success_table(ds)
    assert t.successes[2, 1] == 1 and t.finished[2, 1] == 1 and t.fraction[2, 1] == 1.0


STUDY_FILES = sorted(Path(__file__).resolve().parents[2].glob("results/finite_n_t100/sweep_n*.nc"))
FORMAT1 = Path(__file__).parent / "data" / "sweep_format1.nc"


@pytest.mark.parametrize("path", [FORMAT1] + STUDY_FILES[:1], ids=lambda p: p.name)
def test_plot_reads_first_format_and_converted_files(tmp_path, capsys, path):
    png = tmp_path / "f.png"
    assert main(["plot", "--sweep", str(path), "--out", str(png), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    ds = read_sweep(path)
    expected = np.asarray(ds["success"].values, bool).sum(axis=2) / ds.sizes["start"]
    assert np.allclose(res["success_fraction"], expected) and png.stat().st_size > 10_000
