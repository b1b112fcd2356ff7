"""No result lost to an output path or to memory (issue 19 items 3, 4, 13): every command
checks where it writes, and whether the run fits in memory, before computing; sweeps leave
no lock file; a sweep with nothing finished is not plotted."""
import json
import sys
from pathlib import Path

import pytest

from simulation import cli as sim_cli
from simulation import sweep as sweep_module
from simulation.cli import entry
from simulation.sweep import SweepConfig, empty_dataset, run_sweep, sweep_lock, write_dataset
from theory.errors import InputError

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
TINY_RUN = ["run", "--n", "16", "--alpha", "3", "--replicas", "2", "--t-max", "20"]
TINY_SWEEP = SweepConfig(n=(16,), alpha=(6.0,), starts=1, seed=3, t_max=50.0)


def one_line_error(capsys, argv) -> str:
    status = entry(argv)
    captured = capsys.readouterr()
    assert status == 2 and captured.out == "", (status, captured)
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.fixture
def no_computing(monkeypatch):
    """Make the flow and the Hessian probe fail the test if they are reached."""
    def boom(*args, **kwargs):
        raise AssertionError("computed before checking the output")

    for name in ("run_dynamics", "lowest_eigenpairs", "full_spectrum", "make_problem"):
        monkeypatch.setattr(sim_cli, name, boom)
    monkeypatch.setattr(sweep_module, "_execute", boom)
    monkeypatch.setattr(sweep_module, "write_dataset", boom)


@pytest.fixture(scope="module")
def state_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("out") / "state.npz"
    assert entry(TINY_RUN + ["--save", str(path), "--json"]) == 0
    return path


# ----------------------------------------------------------------------------- item 3: output paths
@linux_only
def test_run_save_to_an_unwritable_place_fails_before_computing(capsys, no_computing):
    err = one_line_error(capsys, TINY_RUN + ["--save", "/proc/x.npz"])
    assert "--save" in err and "/proc" in err


def test_run_save_into_a_missing_folder_is_refused_and_not_created(capsys, tmp_path, no_computing):
    err = one_line_error(capsys, TINY_RUN + ["--save", str(tmp_path / "no" / "x.npz")])
    assert "does not exist" in err and not (tmp_path / "no").exists()


def test_run_save_reports_the_path_actually_written(capsys, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()  # `--save /tmp`: numpy's rule writes d.npz next to the folder
    assert entry(TINY_RUN + ["--save", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["saved"] == str(tmp_path / "d.npz") and (tmp_path / "d.npz").is_file()
    assert entry(TINY_RUN + ["--save", str(tmp_path / "s")]) == 0
    assert f"states saved to {tmp_path / 's.npz'}" in capsys.readouterr().out
    assert (tmp_path / "s.npz").is_file() and not (tmp_path / "s").exists()


@linux_only
def test_hessian_export_measure_is_checked_before_computing(capsys, state_file, no_computing):
    err = one_line_error(capsys, ["hessian", "--state", str(state_file), "--export-measure", "/proc/m.npz"])
    assert "--export-measure" in err


def test_hessian_reports_the_measure_file_written(capsys, state_file, tmp_path):
    assert entry(["hessian", "--state", str(state_file), "--k", "2", "--export-measure", str(tmp_path / "m"),
                  "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["measure"] == str(tmp_path / "m.npz") and (tmp_path / "m.npz").is_file()


def test_hessian_state_that_is_a_folder_says_so(capsys, tmp_path):
    err = one_line_error(capsys, ["hessian", "--state", str(tmp_path)])
    assert "is a folder" in err and "does not exist" not in err


@linux_only
def test_sweep_out_in_an_unwritable_place_fails_before_the_lock(capsys, no_computing):
    err = one_line_error(capsys, ["sweep", "--n", "16", "--starts", "1", "--out", "/proc/s.nc"])
    assert "sweep file" in err and "/proc" in err


# ----------------------------------------------------------------------------- item 4: memory
def test_run_too_large_for_memory_is_refused_naming_both_numbers(capsys, no_computing):
    err = one_line_error(capsys, ["run", "--n", "10000000"])
    assert "need about" in err and "GB available" in err


def test_sweep_too_large_for_memory_writes_no_file(capsys, tmp_path, no_computing):
    out = tmp_path / "s.nc"
    err = one_line_error(capsys, ["sweep", "--n", "16", "10000000", "--alpha", "6", "--starts", "1",
                                  "--out", str(out)])
    assert "N=10000000" in err and "available" in err
    assert list(tmp_path.iterdir()) == []  # neither the sweep file nor its lock


# ----------------------------------------------------------------------------- item 13: lock files, plot
def test_a_finished_sweep_leaves_no_lock_file(tmp_path):
    rep = run_sweep(TINY_SWEEP, tmp_path / "s.nc", workers=0)
    assert rep.completed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.nc"]


def test_an_interrupted_sweep_leaves_no_lock_file(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module, "_execute", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(TINY_SWEEP, tmp_path / "s.nc", workers=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.nc"]  # the all-pending file, resumable


def test_a_lock_held_by_another_writer_is_left_alone(tmp_path):
    path = tmp_path / "s.nc"
    with sweep_lock(path) as lock:  # a second open file description: a second writer
        with pytest.raises(InputError, match="another sweep"):
            run_sweep(TINY_SWEEP, path, workers=0)
        assert lock.exists()  # the refused writer did not remove the holder's lock
    assert not lock.exists()
    with sweep_lock(path) as again:  # and it can be taken again
        assert again.exists()


def test_plot_help_prints_a_single_percent(capsys):
    with pytest.raises(SystemExit):
        entry(["plot", "--help"])
    out = capsys.readouterr().out
    assert "68% Wilson" in out and "%%" not in out


def test_plot_of_a_sweep_with_nothing_finished_is_refused_and_writes_nothing(capsys, tmp_path):
    sweep = write_dataset(empty_dataset(TINY_SWEEP), tmp_path / "s.nc")
    png = tmp_path / "f.png"
    err = one_line_error(capsys, ["plot", "--sweep", str(sweep), "--out", str(png)])
    assert "no finished start" in err and not png.exists()


def test_plot_out_is_checked_before_reading_the_sweep(capsys, tmp_path):
    err = one_line_error(capsys, ["plot", "--sweep", str(tmp_path / "absent.nc"),
                                  "--out", str(tmp_path / "no" / "f.png")])
    assert "--out" in err and "does not exist" in err and not Path(tmp_path / "no").exists()
