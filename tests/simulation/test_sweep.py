"""Sweeps: grid parsing, seeds, storage, resume after a kill, executors, command line."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from theory.errors import ConvergenceError, InputError
from simulation import sweep as sweep_module
from simulation.cli import entry, main
from simulation.data import make_problem, random_starts
from simulation.flow import Integrator, StopRules, run_dynamics
from simulation.sweep import (ERROR, FORMAT, Chunk, PENDING, StartResult, SweepConfig, cell_seed, decided_mask,
                              done_mask, empty_dataset, open_sweep, parse_alpha_grid, plan_chunks, read_sweep,
                              run_start, run_sweep, store_chunk, sweep_lock, write_dataset)

# A small grid (18 starts of ~0.1-0.2 s each, both outcomes present); the CLI arguments
# below describe the same sweep.
SMALL = dict(n=(16, 24), alpha=(3.0, 5.0, 7.0), starts=3, seed=3, t_max=50.0, grad_tol=1e-4)
SMALL_ARGS = ["--n", "16", "24", "--alpha", "3:7:2", "--starts", "3", "--seed", "3", "--t-max", "50",
              "--grad-tol", "1e-4"]
TOTAL = 18
VARIABLES = ("status", "success", "final_energy", "final_overlap", "final_grad_norm", "stop_time", "cell_seed")
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def assert_same_results(a, b, mask=None):
    """Bit-for-bit equality of every result variable (on ``mask`` if given)."""
    for v in VARIABLES:
        x, y = np.asarray(a[v].values), np.asarray(b[v].values)
        if mask is not None:
            x, y = x[mask], y[mask]
        assert np.array_equal(x, y), v


def assert_close_results(a, b):
    """Equality of the result variables up to rounding (relative 1e-8): for a file written on
    another machine, whose numpy / BLAS may round the last bits differently. A changed default
    (tolerance, stop rule) moves them by far more."""
    for v in VARIABLES:
        x, y = np.asarray(a[v].values), np.asarray(b[v].values)
        if x.dtype.kind == "f":
            assert np.allclose(x, y, rtol=1e-8, atol=1e-12, equal_nan=True), v
        else:
            assert np.array_equal(x, y), v


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The SMALL sweep run in this process, start after start."""
    path = tmp_path_factory.mktemp("ref") / "ref.nc"
    rep = run_sweep(SweepConfig(**SMALL), path, workers=0, chunk_size=2)
    assert rep.completed == rep.total == TOTAL and rep.previously_done == 0
    return read_sweep(path)


# ---------------------------------------------------------------- parameters and seeds
def test_alpha_grid_ranges_are_inclusive_and_merged():
    grid = parse_alpha_grid(["3:10:0.5"])
    assert len(grid) == 15 and grid[0] == 3.0 and grid[-1] == 10.0
    assert parse_alpha_grid(["0.1:0.3:0.1"]) == (0.1, 0.2, 0.3)  # STOP kept despite rounding
    assert parse_alpha_grid(["5", "4:5:0.5", "2"]) == (2.0, 4.0, 4.5, 5.0)


@pytest.mark.parametrize("token", ["3:10", "3:10:0.5:1", "a:b:c", "3::1", "3:10:0", "3:10:-1", "10:3:1",
                                   "0", "-1:2:1", "nan", "inf", "1:2:1e-9", "x"])
def test_malformed_alpha_grid_is_refused(token):
    with pytest.raises(InputError):
        parse_alpha_grid([token])


def test_config_validates_everything_up_front():
    for bad in (dict(n=(1,)), dict(n=(2.5,)), dict(n=("x",)), dict(starts=0), dict(seed=-1),
                dict(alpha=("x",)), dict(alpha=()), dict(method="sgd"), dict(dtype="float16"),
                dict(t_max=0.0), dict(loss="nope")):
        with pytest.raises(InputError):
            SweepConfig(**{**SMALL, **bad})
    c = SweepConfig(**{**SMALL, "n": (24, 16, 24)})
    assert c.n == (16, 24) and c.shape == (3, 2, 3)


def test_cell_seed_is_pinned_and_distinct():
    # The rule is recorded in every sweep file: changing it would silently mix two rules
    # in a resumed file, so its value is pinned here.
    assert cell_seed(0, 32, 3.0, 0) == 7369819530674655443
    seeds = {cell_seed(0, n, a, s) for n in (32, 64) for a in (3.0, 3.5) for s in range(8)}
    assert len(seeds) == 32 and cell_seed(1, 32, 3.0, 0) not in seeds
    assert all(0 <= s < 2**63 for s in seeds)


def test_a_start_is_reproducible_with_the_run_command(capsys):
    config = SweepConfig(**SMALL)
    r = run_start(config, 24, 5.0, 2)
    assert main(["run", "--n", "24", "--alpha", "5", "--replicas", "1", "--seed", str(r.cell_seed),
                 "--t-max", "50", "--grad-tol", "1e-4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == [r.status] and out["final_overlap"] == [r.final_overlap]
    assert out["final_energy"] == [r.final_energy] and out["stop_time"] == [r.stop_time]


def test_plan_chunks_covers_each_pending_start_once():
    config = SweepConfig(**{**SMALL, "starts": 7})
    done = np.zeros(config.shape, bool)
    done[0, 1, [0, 3, 4]] = True
    done[2, 0, :] = True
    chunks = plan_chunks(config, done, chunk_size=3)
    seen = [(c.alpha_index, c.n_index, s) for c in chunks for s in c.starts]
    assert len(seen) == len(set(seen)) == int((~done).sum())
    assert all(not done[i, j, s] for i, j, s in seen)
    assert all(1 <= len(c.starts) <= 3 and c.alpha == config.alpha[c.alpha_index] and c.n == config.n[c.n_index]
               for c in chunks)
    with pytest.raises(InputError):
        plan_chunks(config, done, chunk_size=0)


# ---------------------------------------------------------------- storage
def test_dataset_round_trip_and_duplicate_refused(tmp_path):
    config = SweepConfig(**SMALL)
    ds = empty_dataset(config)
    chunk = Chunk(1, 0, 5.0, 16, (1, 2))
    res = [StartResult(s, cell_seed(3, 16, 5.0, s), st, 0.5, 0.25, 1e-9, 12.0)
           for s, st in ((1, "success"), (2, "trapped"))]
    store_chunk(ds, chunk, res)
    with pytest.raises(ValueError, match="already stored"):
        store_chunk(ds, chunk, res[:1])
    path = write_dataset(ds, tmp_path / "s.nc")
    back = open_sweep(path, config)
    assert dict(back.sizes) == {"alpha": 3, "n": 2, "start": 3}
    assert back["status"].values[1, 0, 1] == "success" and bool(back["success"].values[1, 0, 1])
    assert back["status"].values[1, 0, 2] == "trapped" and not back["success"].values[1, 0, 2]
    assert done_mask(back).sum() == 2 and back["status"].values[0, 0, 0] == PENDING
    assert np.isnan(back["final_energy"].values[0, 0, 0]) and back["final_energy"].values[1, 0, 1] == 0.5
    assert back["m"].values.tolist() == [[48, 72], [80, 120], [112, 168]]
    assert back["cell_seed"].values[2, 1, 2] == cell_seed(3, 24, 7.0, 2)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("change, words", [
    (dict(starts=5), "starts"), (dict(seed=4), "seed"), (dict(t_max=100.0), "t_max"),
    (dict(n=(16, 48)), "N"), (dict(alpha=(3.0, 5.0)), "alpha"), (dict(rtol=1e-7), "rtol"),
    (dict(grad_tol=None), "grad_tol"),
])
def test_existing_file_with_other_parameters_is_refused(tmp_path, change, words):
    path = write_dataset(empty_dataset(SweepConfig(**SMALL)), tmp_path / "s.nc")
    with pytest.raises(InputError, match=words):
        run_sweep(SweepConfig(**{**SMALL, **change}), path, workers=0)


def test_damaged_or_foreign_files_are_refused(tmp_path):
    import xarray as xr

    config = SweepConfig(**SMALL)
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"not a netCDF file at all")
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("a", [1.0, 2.0])}).to_netcdf(foreign, engine="h5netcdf")
    bad_status = tmp_path / "bad_status.nc"
    ds = empty_dataset(config)
    ds["status"].values[0, 0, 0] = "exploded"
    write_dataset(ds, bad_status)
    inconsistent = tmp_path / "inconsistent.nc"
    ds = empty_dataset(config)
    ds["success"].values[0, 0, 0] = True  # success without a status
    write_dataset(ds, inconsistent)
    missing = tmp_path / "missing.nc"
    write_dataset(empty_dataset(config).drop_vars("stop_time"), missing)
    for path, words in ((garbage, "not a readable netCDF"), (foreign, "not a sweep file"),
                        (bad_status, "unknown status"), (inconsistent, "disagrees"), (missing, "lacks")):
        with pytest.raises(InputError, match=words):
            run_sweep(config, path, workers=0)
        assert path.stat().st_size > 0  # never overwritten


def test_a_second_writer_is_refused_and_stale_temporaries_are_removed(tmp_path):
    config = SweepConfig(**{**SMALL, "n": (24,), "alpha": (7.0,), "starts": 1})
    path = tmp_path / "s.nc"
    stale = tmp_path / "s.nc.abc123.tmp"  # what a kill in the middle of a write leaves
    stale.write_bytes(b"half a file")
    with sweep_lock(path):
        with pytest.raises(InputError, match="another sweep"):
            run_sweep(config, path, workers=0)
    assert stale.exists()
    rep = run_sweep(config, path, workers=0)
    assert rep.completed == 1 and not stale.exists()


def test_in_process_sweep_and_rerun_skips_finished_work(reference, tmp_path):
    ds = reference
    assert not np.any(ds["status"].values == PENDING)
    assert set(np.unique(ds["status"].values)) <= {"success", "trapped", "timeout"}
    assert 0 < ds["success"].values.sum() < TOTAL  # both outcomes: the comparisons below are not vacuous
    # success is the stop rule's verdict: |q| >= 0.999 (or zero energy)
    succ = ds["success"].values
    assert np.all(np.abs(ds["final_overlap"].values[succ]) >= 0.999 - 1e-12)
    assert np.all(np.abs(ds["final_overlap"].values[~succ]) < 0.999)
    # rerunning a finished sweep does nothing and changes nothing
    path = tmp_path / "again.nc"
    write_dataset(ds, path)
    rep = run_sweep(SweepConfig(**SMALL), path, workers=0)
    assert rep.completed == 0 and rep.previously_done == TOTAL and rep.chunks == 0
    assert_same_results(read_sweep(path), ds)


# ---------------------------------------------------------------- kill, resume, executors
def _done_on_disk(path: Path, _cache={}) -> int:  # noqa: B006 - a deliberate memo
    """Finished starts in the sweep file (re-read only when the file was replaced)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return 0
    key = (str(path), st.st_ino, st.st_mtime_ns)
    if key not in _cache:
        _cache[key] = int(done_mask(read_sweep(path)).sum())
    return _cache[key]


def _live_group_members(pgid: int) -> list[int]:
    """Processes of a process group that are alive (zombies excluded), from /proc."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _kill_after(cmd, out: Path, at_least: int, sig) -> subprocess.CompletedProcess:
    """Start the sweep ``cmd`` in its own process group, send ``sig`` to the sweep process
    (not its workers) once ``at_least`` starts are on disk, and check that the workers do
    not outlive it (no orphan finishing a chunk nobody will store)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _done_on_disk(out) < at_least:
            assert proc.poll() is None, "the sweep ended before it could be killed: " + proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while _live_group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _live_group_members(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see the worker processes")
def test_killed_sweep_resumes_with_nothing_lost_or_duplicated(reference, tmp_path):
    out = tmp_path / "k.nc"
    cmd = [sys.executable, "-m", "simulation", "sweep", *SMALL_ARGS, "--chunk", "1", "--workers", "2",
           "--out", str(out), "--json"]
    # 1. SIGKILL: no cleanup at all; what is on disk must be right and readable
    killed = _kill_after(cmd, out, 3, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    first = done_mask(read_sweep(out))
    assert 3 <= first.sum() < TOTAL
    assert_same_results(read_sweep(out), reference, first)
    # 2. resume, then SIGTERM: one line, status 130, nothing finished is forgotten
    stopped = _kill_after(cmd, out, int(first.sum()) + 3, signal.SIGTERM)
    assert stopped.returncode == 130
    assert stopped.stderr.strip().splitlines() == ["python -m simulation: interrupted"]
    second = done_mask(read_sweep(out))
    assert np.all(second[first]) and first.sum() + 3 <= second.sum() < TOTAL
    assert_same_results(read_sweep(out), reference, second)
    # 3. resume to the end
    again = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert again.returncode == 0, again.stderr
    rep = json.loads(again.stdout)
    assert rep["previously_done"] == int(second.sum())  # nothing lost ...
    assert rep["completed"] == TOTAL - int(second.sum())  # ... nothing run twice
    assert_same_results(read_sweep(out), reference)  # local processes == in-process, bit for bit
    assert not list(tmp_path.glob("*.tmp"))


def test_local_dask_cluster_gives_the_same_numbers(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        # alpha = 3, 5 taken from the in-process run, alpha = 7 computed on the cluster: a
        # resume may change executor and the file stays one sweep
        config = SweepConfig(**SMALL)
        path = tmp_path / "d.nc"
        ds = empty_dataset(config)
        for v in VARIABLES:
            ds[v].values[:2] = reference[v].values[:2]
        write_dataset(ds, path)
        rep = run_sweep(config, path, scheduler=cluster.scheduler_address, chunk_size=2)
    assert rep.previously_done == 12 and rep.completed == 6 and rep.executor.startswith("dask tcp://127.0.0.1")
    assert_same_results(read_sweep(path), reference)


# ---------------------------------------------------------------- command line
def test_sweep_cli_json_and_table(tmp_path, capsys):
    out = tmp_path / "c.nc"
    args = ["sweep", "--n", "16", "--alpha", "7", "--starts", "2", "--t-max", "50", "--workers", "0",
            "--out", str(out)]
    assert entry(args + ["--json"]) == 0
    cap = capsys.readouterr()
    res = json.loads(cap.out)
    assert res["total"] == 2 and res["completed"] == 2 and len(res["success_fraction"]) == 1
    assert cap.err == ""  # no progress bar under --json
    assert entry(args) == 0
    cap = capsys.readouterr()
    assert "2/2 starts done (2 before, 0 now" in cap.out and "alpha 7" in cap.out


@pytest.mark.parametrize("args, words", [
    (["--alpha", "3:10"], "malformed"), (["--alpha", "3:x:1"], "not a number"), (["--alpha", "10:3:1"], "STOP"),
    (["--alpha", "3:10:0"], "STEP"), (["--n", "1"], "N must be"), (["--n", "ten"], "N must be an integer"),
    (["--starts", "0"], "starts"), (["--chunk", "0"], "chunk"), (["--workers", "-1"], "workers"),
    (["--scheduler", "nonsense"], "malformed scheduler"), (["--scheduler", "tcp://127.0.0.1:1"], "cannot reach"),
    (["--out", "/nonexistent/dir/s.nc"], "does not exist"),
])
def test_bad_sweep_input_is_one_line_status_2(tmp_path, capsys, args, words):
    base = ["sweep", "--n", "24", "--alpha", "3", "--starts", "1", "--workers", "0", "--out", str(tmp_path / "e.nc")]
    try:
        status = entry(base + args)
    except SystemExit as exc:  # argparse usage errors
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e.nc").exists()


def test_bad_existing_file_from_a_real_process(tmp_path):
    bad = tmp_path / "bad.nc"
    bad.write_text("garbage")
    out = subprocess.run([sys.executable, "-m", "simulation", "sweep", "--out", str(bad)], capture_output=True,
                         text=True, env=ENV, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [f"python -m simulation: error: sweep file {str(bad)!r} is not a "
                                               "readable netCDF file (OSError)"]
    assert bad.read_text() == "garbage"


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and all(w in out for w in ("--scheduler", "--starts", "START:STOP:STEP", "--json"))


# ---------------------------------------------------------------- every flow option reaches the flow
def _direct(n, alpha, seed, stop, integ, dtype="float64", times=None):
    """The same start run by the flow itself (independent of the sweep's plumbing)."""
    problem = make_problem(n, alpha, seed, dtype)
    return run_dynamics(problem, random_starts(n, 1, seed, dtype), stop, integ, times=times)


def test_config_defaults_are_the_flows():
    c = SweepConfig(n=(16,), alpha=(3.0,), starts=1)
    assert c.stop_rules() == StopRules() and c.integrator() == Integrator()
    ident = c.identity()
    for key in ("t_max", "success_overlap", "energy_tol", "grad_tol", "method", "rtol", "atol", "lr", "max_stages",
                "dtype", "loss", "time_grid", "seed_source"):
        assert key in ident
    for bad in (dict(success_overlap=0.0), dict(success_overlap=1.5), dict(atol=2.0), dict(max_stages=1),
                dict(energy_tol=-1.0), dict(time_grid="dense")):
        with pytest.raises(InputError):
            SweepConfig(n=(16,), alpha=(3.0,), starts=1, **bad)


def test_success_overlap_flag_changes_the_status_of_a_start_between_half_and_0_9(tmp_path, capsys):
    # a start that succeeds: with --success-overlap 0.5 it stops as soon as |q| >= 0.5
    seed = cell_seed(3, 16, 7.0, 0)
    half = _direct(16, 7.0, seed, StopRules(t_max=50.0, success_overlap=0.5), Integrator())
    assert half.status[0] == "success" and 0.5 <= abs(half.q[0]) < 0.9
    # a horizon just after that time: the default rule (0.999) leaves it a timeout there
    t_max = float(half.stop_time[0]) * 1.01
    args = ["sweep", "--n", "16", "--alpha", "7", "--starts", "1", "--seed", "3", "--t-max", repr(t_max),
            "--workers", "0", "--json"]
    assert entry(args + ["--out", str(tmp_path / "default.nc")]) == 0
    assert entry(args + ["--success-overlap", "0.5", "--out", str(tmp_path / "half.nc")]) == 0
    capsys.readouterr()
    default, flagged = read_sweep(tmp_path / "default.nc"), read_sweep(tmp_path / "half.nc")
    q = abs(float(default["final_overlap"].values[0, 0, 0]))
    assert default["status"].values[0, 0, 0] == "timeout" and 0.5 <= q < 0.9
    assert flagged["status"].values[0, 0, 0] == "success" and bool(flagged["success"].values[0, 0, 0])
    assert float(flagged.attrs["success_overlap"]) == 0.5 and "0.5" in flagged["success"].attrs["long_name"]
    ref = _direct(16, 7.0, seed, StopRules(t_max=t_max, success_overlap=0.5), Integrator())
    assert float(flagged["final_overlap"].values[0, 0, 0]) == float(ref.q[0])


@pytest.mark.parametrize("option, value, stop, integ", [
    ("--atol", "1e-3", {}, dict(atol=1e-3)),
    ("--rtol", "1e-3", {}, dict(rtol=1e-3)),
    ("--energy-tol", "0.05", dict(energy_tol=0.05), {}),
])
def test_each_flow_option_reaches_the_flow(tmp_path, capsys, option, value, stop, integ):
    seed = cell_seed(0, 16, 5.0, 0)
    out = tmp_path / "o.nc"
    assert entry(["sweep", "--n", "16", "--alpha", "5", "--starts", "1", "--t-max", "20", "--workers", "0",
                  "--out", str(out), "--json", option, value]) == 0
    capsys.readouterr()
    got = read_sweep(out)
    ref = _direct(16, 5.0, seed, StopRules(t_max=20.0, **stop), Integrator(**integ))
    plain = _direct(16, 5.0, seed, StopRules(t_max=20.0), Integrator())
    assert float(got["final_overlap"].values[0, 0, 0]) == float(ref.q[0])
    assert float(got["stop_time"].values[0, 0, 0]) == float(ref.stop_time[0])
    assert (ref.q[0], ref.stop_time[0]) != (plain.q[0], plain.stop_time[0])  # the option matters here


def test_max_stages_reaches_the_integrator(tmp_path):
    from simulation.cli import build_parser
    from simulation.sweep import config_from_args

    args = build_parser().parse_args(["sweep", "--max-stages", "7", "--out", str(tmp_path / "x.nc")])
    assert config_from_args(args).integrator() == Integrator(max_stages=7)


def test_time_grid_none_and_float32_run_like_the_flow_recording_only_t0():
    config = SweepConfig(n=(16,), alpha=(5.0,), starts=1, t_max=20.0, dtype="float32", rtol=1e-2, atol=1e-3,
                         success_overlap=0.9, time_grid="none")
    r = run_start(config, 16, 5.0, 0)
    ref = _direct(16, 5.0, r.cell_seed, StopRules(t_max=20.0, success_overlap=0.9), Integrator(rtol=1e-2, atol=1e-3),
                  "float32", times=np.array([0.0]))
    assert (r.status, r.final_overlap, r.final_energy, r.stop_time) == \
        (ref.status[0], float(ref.q[0]), float(ref.energy[0]), float(ref.stop_time[0]))


# ---------------------------------------------------------------- explicit seeds
def test_explicit_seeds_run_those_seeds_and_are_part_of_the_identity(tmp_path, capsys):
    seeds = [[[11, 12]], [[13, 14]]]
    config = SweepConfig(n=(16,), alpha=(3.0, 5.0), starts=2, t_max=5.0, seeds=seeds)
    assert config.seed_table().tolist() == seeds and config.identity()["seed_source"] == "explicit"
    r = run_start(config, 16, 5.0, 1)
    ref = _direct(16, 5.0, 14, StopRules(t_max=5.0), Integrator())
    assert r.cell_seed == 14 and r.final_overlap == float(ref.q[0])
    out = tmp_path / "s.nc"
    args = ["sweep", "--n", "16", "--alpha", "3", "5", "--starts", "2", "--t-max", "5", "--workers", "0",
            "--out", str(out), "--json", "--seeds"]
    assert entry(args + ["11", "12", "13", "14"]) == 0
    assert read_sweep(out)["cell_seed"].values.tolist() == seeds
    assert entry(args + ["11", "12", "13", "15"]) == 2  # other seeds on the same file: refused
    assert entry(args + ["11", "12", "13"]) == 2  # wrong count
    err = capsys.readouterr().err
    assert "the seeds of the starts" in err and "--seeds needs 4 values" in err
    with pytest.raises(InputError, match="sorted"):
        SweepConfig(n=(16,), alpha=(5.0, 3.0), starts=2, seeds=seeds)
    with pytest.raises(InputError, match="2 x 1 x 2"):
        SweepConfig(n=(16,), alpha=(3.0, 5.0), starts=2, seeds=[[[1, 2]]])


# ---------------------------------------------------------------- failed starts are rows
def test_a_start_whose_flow_raises_is_an_error_row_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real = sweep_module.run_dynamics
    bad_seed = cell_seed(0, 16, 5.0, 1)

    def flaky(problem, W0, *args, **kwargs):
        if problem.seed == bad_seed:
            raise ConvergenceError("step size collapsed at t = 1.5")
        return real(problem, W0, *args, **kwargs)

    monkeypatch.setattr(sweep_module, "run_dynamics", flaky)
    config = SweepConfig(n=(16,), alpha=(5.0,), starts=3, t_max=5.0)
    out = tmp_path / "e.nc"
    rep = run_sweep(config, out, workers=0, chunk_size=3)
    ds = read_sweep(out)
    assert rep.completed == 3 and rep.errors == 1
    assert ds["status"].values[0, 0].tolist()[1] == ERROR and not ds["success"].values[0, 0, 1]
    assert ds["message"].values[0, 0, 1] == "ConvergenceError: step size collapsed at t = 1.5"
    assert ds["message"].values[0, 0, 0] == "" and ds["status"].values[0, 0, 0] != ERROR
    assert np.isnan(ds["final_overlap"].values[0, 0, 1]) and done_mask(ds).all()
    assert decided_mask(ds).tolist() == [[[True, False, True]]]
    again = run_sweep(config, out, workers=0)  # an error is a stored result: not rerun
    assert again.completed == 0 and again.previously_done == 3


# ---------------------------------------------------------------- files of the first format
FORMAT1 = Path(__file__).parent / "data" / "sweep_format1.nc"  # written by the format-1 code
FORMAT1_ARGS = ["sweep", "--n", "16", "--alpha", "3", "5", "--starts", "2", "--seed", "0", "--t-max", "5",
                "--workers", "0", "--json"]


def test_a_format1_file_resumes_with_its_old_default_values(tmp_path, capsys):
    import shutil

    out = shutil.copy(FORMAT1, tmp_path / "old.nc")
    before = read_sweep(out)
    assert before.attrs["format"] == "phaseflow-sweep-1" and (before["message"].values == "").all()
    assert entry(FORMAT1_ARGS + ["--out", str(out)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["previously_done"] == 4 and res["completed"] == 0
    # the same numbers; the in-process sweep with today's code gives them too (to rounding: the
    # file was written on another machine; with numpy 2.4.6 / OpenBLAS 0.3.31 the energies differ by
    # up to 5e-13 and the stop times by 1e-10)
    fresh = tmp_path / "fresh.nc"
    assert entry(FORMAT1_ARGS + ["--out", str(fresh)]) == 0
    assert_close_results(read_sweep(fresh), before)


@pytest.mark.parametrize("extra, words", [(["--success-overlap", "0.9"], "success_overlap"),
                                          (["--atol", "1e-3"], "atol"), (["--time-grid", "none"], "time_grid"),
                                          (["--seeds", "1", "2", "3", "4"], "seed_source")])
def test_a_format1_file_is_refused_when_the_new_options_differ(tmp_path, capsys, extra, words):
    import shutil

    out = shutil.copy(FORMAT1, tmp_path / "old.nc")
    assert entry(FORMAT1_ARGS + ["--out", str(out)] + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "other parameters" in err[0]
    assert read_sweep(out).attrs["format"] == "phaseflow-sweep-1"  # untouched


def test_a_resumed_format1_file_is_written_in_the_current_format(tmp_path):
    import shutil

    out = shutil.copy(FORMAT1, tmp_path / "old.nc")
    ds = open_sweep(out, SweepConfig(n=(16,), alpha=(3.0, 5.0), starts=2, t_max=5.0))
    write_dataset(ds, out)
    back = read_sweep(out)
    assert back.attrs["format"] == FORMAT and float(back.attrs["success_overlap"]) == StopRules().success_overlap
    assert "upgraded_from" in back.attrs
    open_sweep(out, SweepConfig(n=(16,), alpha=(3.0, 5.0), starts=2, t_max=5.0))  # still resumes


def test_sweep_files_carry_provenance(tmp_path):
    path = write_dataset(empty_dataset(SweepConfig(**SMALL), note="x"), tmp_path / "p.nc")
    attrs = read_sweep(path).attrs
    assert attrs["format"] == FORMAT and attrs["note"] == "x"
    assert {"package_version", "created", "success_overlap", "atol", "max_stages"} <= set(attrs)


def test_help_names_every_flow_option_with_the_flows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for option in ("--t-max", "--success-overlap", "--energy-tol", "--grad-tol", "--method", "--rtol", "--atol",
                   "--max-stages", "--lr", "--dtype", "--loss", "--time-grid", "--seeds"):
        assert option in out
    stop = StopRules()
    assert f"(default {stop.success_overlap:g})" in out and f"(default {stop.energy_tol:g})" in out
