"""Sweeps from spectral starts (``--init spectral``) and the stored start overlap q(0)."""
import json

import numpy as np
import pytest

from simulation.cli import entry, main
from simulation.data import make_problem, random_starts
from simulation.landscape import teacher_overlap
from simulation.spectral_start import spectral_start
from simulation.sweep import SweepConfig, open_sweep, read_sweep, run_sweep
from theory.errors import InputError
from theory.spectral_start import DEFAULT_PREPROCESSING

SPECTRAL = dict(n=(64,), alpha=(3.0,), starts=2, seed=5, t_max=5.0, grad_tol=1e-4, init="spectral",
                preprocess="trimmed")


def test_spectral_sweep_starts_from_the_spectral_start_of_each_starts_data(tmp_path):
    config = SweepConfig(**SPECTRAL)
    path = tmp_path / "s.nc"
    run_sweep(config, path, workers=0)
    ds = read_sweep(path)
    assert ds.attrs["init"] == "spectral" and ds.attrs["preprocess"] == "trimmed"
    assert "spectral_start(data, 'trimmed'" in ds.attrs["seed_rule"]
    for k in range(2):
        seed = int(ds["cell_seed"].values[0, 0, k])
        start = spectral_start(make_problem(64, 3.0, seed, config.dtype), "trimmed", 1, seed=seed)
        # the stored q(0) is the independent Lanczos start's overlap (float64 vs the dtype's rounding)
        assert ds["initial_overlap"].values[0, 0, k] == pytest.approx(start.q0, abs=1e-6)
        assert abs(start.q0) > 0.3  # alpha = 3 is far above the weak-recovery threshold: informed start
    assert set(ds["status"].values.ravel()) <= {"success", "trapped", "timeout"}
    open_sweep(path, config)  # same arguments resume
    with pytest.raises(InputError, match="init"):
        open_sweep(path, SweepConfig(**{**SPECTRAL, "init": "random", "preprocess": None}))
    with pytest.raises(InputError, match="preprocess"):
        open_sweep(path, SweepConfig(**{**SPECTRAL, "preprocess": "plain"}))


def test_random_sweeps_keep_their_identity_and_store_q0_of_the_random_start(tmp_path):
    config = SweepConfig(n=(32,), alpha=(4.0,), starts=2, seed=1, t_max=5.0, grad_tol=1e-4)
    assert "init" not in config.identity() and "preprocess" not in config.identity()
    run_sweep(config, tmp_path / "r.nc", workers=0)
    ds = read_sweep(tmp_path / "r.nc")
    for k in range(2):
        seed = int(ds["cell_seed"].values[0, 0, k])
        problem = make_problem(32, 4.0, seed, config.dtype)
        q0 = teacher_overlap(problem, random_starts(32, 1, seed, config.dtype))[0]
        assert ds["initial_overlap"].values[0, 0, k] == q0


def test_stored_finite_n_file_still_opens_with_its_random_start_config():
    ds = read_sweep("results/finite_n_t100/sweep_n128.nc")
    a = ds.attrs
    config = SweepConfig(n=(128,), alpha=tuple(ds["alpha"].values), starts=int(a["starts"]), t_max=a["t_max"],
                         rtol=a["rtol"], atol=a["atol"], dtype=a["dtype"], success_overlap=a["success_overlap"],
                         time_grid=a["time_grid"], grad_tol=None, seeds=ds["cell_seed"].values.tolist())
    open_sweep("results/finite_n_t100/sweep_n128.nc", config)


def test_default_preprocessing_and_bad_preprocessing():
    assert SweepConfig(n=(16,), alpha=(3.0,), starts=1, init="spectral").preprocess == DEFAULT_PREPROCESSING
    with pytest.raises(InputError, match="needs init 'spectral'"):
        SweepConfig(n=(16,), alpha=(3.0,), starts=1, preprocess="plain")
    with pytest.raises(InputError, match="unknown preprocessing"):
        SweepConfig(n=(16,), alpha=(3.0,), starts=1, init="spectral", preprocess="bogus")
    with pytest.raises(InputError, match="init must be one of"):
        SweepConfig(n=(16,), alpha=(3.0,), starts=1, init="warm")


@pytest.mark.parametrize("args, words", [(["--init", "spectral", "--preprocess", "bogus"], "unknown preprocessing"),
                                         (["--preprocess", "plain"], "needs init 'spectral'")])
def test_sweep_cli_bad_preprocessing_is_one_line(tmp_path, capsys, args, words):
    code = entry(["sweep", "--n", "16", "--alpha", "3", "--starts", "1", "--out", str(tmp_path / "x.nc"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0]
    assert not (tmp_path / "x.nc").exists()


def test_sweep_cli_spectral_json(tmp_path, capsys):
    code = main(["sweep", "--n", "32", "--alpha", "4", "--starts", "1", "--t-max", "5", "--init", "spectral",
                 "--out", str(tmp_path / "j.nc"), "--workers", "0", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["init"] == "spectral" and out["preprocess"] == DEFAULT_PREPROCESSING
    assert np.isfinite(read_sweep(tmp_path / "j.nc")["initial_overlap"].values).all()
