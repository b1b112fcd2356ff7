"""Property-based test of every command line (issue 19 item 17).

Hypothesis draws a subcommand of ``python -m theory | simulation | experiments``, starts from
cheap valid arguments and mutates them: a value replaced by a hostile token (negative
numbers in every notation, 0, nan, inf, overflow, text, an empty string, an option name),
an unknown option, a required option dropped, or a file argument pointed at a malformed
file (garbage bytes, an empty file, a folder, a missing path, a file of another kind).
Whatever it draws, a command must

- end with exit status 0, 2 (bad input) or 3 (did not converge), never a traceback;
- on a non-zero status, write exactly one line on stderr;
- on a non-zero status, leave no output file (partial results, temporaries, locks).

Commands run in-process through the same ``run_cli`` wrapper as ``python -m``; the base
arguments keep every run small, so the whole property takes a minute or two.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from theory.errors import run_cli  # noqa: E402

#: Values that are wrong for most options, or valid and small.
TOKENS = ["-1", "-2e-1", "-1:5:1", "0", "nan", "inf", "-inf", "1e400", "abc", "", "0.5", "2", "--json", "1,2"]
#: Options whose value is a file the command reads.
FILE_OPTIONS = {"--measure", "--state", "--curve", "--sweep", "--data", "--theory"}
#: Options whose value is a file the command writes (all placed in the example's out/ folder).
OUTPUT_OPTIONS = {"--out", "--save", "--export-measure", "--density", "--plot"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Valid and malformed input files, made once."""
    from simulation.cli import main as sim_main
    from theory.cli import main as theory_main

    d = tmp_path_factory.mktemp("fuzz_inputs")
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet, contextlib.redirect_stderr(io.StringIO()):
        assert run_cli(sim_main, ["run", "--n", "24", "--alpha", "3", "--replicas", "2", "--t-max", "0.5",
                                  "--save", str(d / "state.npz"), "--json"]) == 0
        assert run_cli(sim_main, ["hessian", "--state", str(d / "state.npz"), "--k", "2",
                                  "--export-measure", str(d / "measure.npz"), "--json"]) == 0
        assert run_cli(theory_main, ["curve", "--alpha", "3", "--out", str(d / "curve.nc"), "--json"]) == 0
        assert run_cli(sim_main, ["sweep", "--n", "16", "--alpha", "3", "--starts", "2", "--t-max", "0.5",
                                  "--workers", "0", "--out", str(d / "sweep.nc"), "--json"]) == 0
    rng = np.random.default_rng(0)
    (d / "garbage.npz").write_bytes(rng.bytes(300))
    (d / "garbage.nc").write_bytes(rng.bytes(300))
    (d / "empty.npz").write_bytes(b"")
    np.savez(d / "wrong_keys.npz", a=np.arange(3))
    (d / "folder").mkdir()
    return d


def _commands(inp: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (package, cheap valid argv)."""
    return {
        "spectrum": ("theory", ["spectrum", "--measure", str(inp / "measure.npz"), "--json"]),
        "threshold": ("theory", ["threshold", "--alpha", "3", "--json"]),
        "curve": ("theory", ["curve", "--alpha", "3", "--out", "OUT/c.nc", "--json"]),
        "theory-plot": ("theory", ["plot", "--curve", str(inp / "curve.nc"), "--out", "OUT/p.png", "--json"]),
        "dmft": ("theory", ["dmft", "--alpha", "4", "--t-max", "0.02", "--samples", "200", "--seeds", "1", "--points", "2",
                           "--json"]),
        "spectral-init": ("theory", ["spectral-init", "--preprocess", "trimmed", "--alpha", "3", "--json"]),
        "run": ("simulation", ["run", "--n", "20", "--alpha", "3", "--replicas", "2", "--t-max", "0.5",
                               "--save", "OUT/r.npz", "--json"]),
        "hessian": ("simulation", ["hessian", "--state", str(inp / "state.npz"), "--k", "2",
                                   "--export-measure", "OUT/m.npz", "--json"]),
        "sweep": ("simulation", ["sweep", "--n", "16", "--alpha", "3", "--starts", "2", "--t-max", "0.5",
                                 "--workers", "0", "--out", "OUT/s.nc", "--json"]),
        "sim-plot": ("simulation", ["plot", "--sweep", str(inp / "sweep.nc"), "--out", "OUT/p.png", "--json"]),
        "track": ("experiments", ["track", "--n", "24", "--alpha", "3", "--seed", "1", "--times", "0", "0.05",
                                  "--k", "2", "--plot", "OUT/t.png", "--json"]),
    }


def _main(package: str):
    if package == "theory":
        from theory.cli import main
    elif package == "simulation":
        from simulation.cli import main
    else:
        from experiments.cli import main
    return main


@st.composite
def _argv(draw, inp: Path):
    commands = _commands(inp)
    name = draw(st.sampled_from(sorted(commands)))
    package, argv = commands[name]
    argv = list(argv)
    options = [i for i, a in enumerate(argv) if a.startswith("--") and a != "--json"]
    kind = draw(st.sampled_from(["value", "value", "file", "unknown", "drop"]))
    if kind == "value" and options:
        i = draw(st.sampled_from(options))
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            argv[i + 1] = draw(st.sampled_from(TOKENS))
        else:
            argv.insert(i + 1, draw(st.sampled_from(TOKENS)))
    elif kind == "file":
        files = [i for i in options if argv[i] in FILE_OPTIONS | OUTPUT_OPTIONS]
        if files:
            i = draw(st.sampled_from(files))
            bad = ["garbage.npz", "garbage.nc", "empty.npz", "wrong_keys.npz", "folder", "missing.npz",
                   "curve.nc", "sweep.nc", "state.npz", "measure.npz"]
            if argv[i] in OUTPUT_OPTIONS:
                argv[i + 1] = draw(st.sampled_from(["OUT/missing/x.npz", "OUT", "/proc/x.npz", "OUT/x"]))
            else:
                argv[i + 1] = str(inp / draw(st.sampled_from(bad)))
    elif kind == "unknown":
        argv.append(draw(st.sampled_from(["--nonsense", "--alpha", "-x", "extra"])))
    elif kind == "drop" and options:
        i = draw(st.sampled_from(options))
        del argv[i:i + 2]
    return package, argv


@settings(max_examples=50, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_command_fails_cleanly(inputs, tmp_path, data):
    package, argv = data.draw(_argv(inputs))
    out_dir = tmp_path / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir()
    argv = [a.replace("OUT", str(out_dir)) for a in argv]
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(out_dir)                   # default and relative outputs land in out/ too
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                rc = run_cli(_main(package), argv)
            except SystemExit as exc:   # argparse: --help, usage errors
                rc = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(cwd)
    err = stderr.getvalue()
    where = f"python -m {package} {' '.join(argv)}"
    assert "Traceback" not in err, f"{where}: traceback\n{err}"
    assert rc in (0, 2, 3), f"{where}: exit {rc}\n{err}"
    if rc != 0:
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert len(lines) == 1, f"{where}: {len(lines)} lines on stderr\n{err}"
        left = sorted(p.name for p in out_dir.rglob("*"))
        assert not left, f"{where}: exit {rc} left {left}"
