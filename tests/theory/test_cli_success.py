"""``python -m theory success`` and ``python -m theory alpha-c --n`` (docs/theory.md 7.8):
JSON with plain numbers, one-line errors on bad input."""
import json

import pytest

from theory.cli import main
from theory.errors import run_cli

from .test_success import _table


def test_success_json(tmp_path, capsys):
    cfg = _table(tmp_path)
    assert main(["success", "--alpha", "6", "--n", "1024", "--table", cfg.table, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out["success_probability"], float) and 0 < out["success_probability"] < 1
    assert out["q0_critical"] == pytest.approx(0.04) and out["escape_times"] == [1.3]
    assert main(["success", "--alpha", "6", "--n", "1024", "--table", cfg.table]) == 0
    assert "success_probability" in capsys.readouterr().out


def test_alpha_c_finite_n_json(tmp_path, capsys):
    cfg = _table(tmp_path)
    assert main(["alpha-c", "--n", "1024", "--table", cfg.table, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out["alpha_c"], float) and 4 < out["alpha_c"] < 8 and out["converged"]
    assert out["lower"] < out["alpha_c"] < out["upper"]


@pytest.mark.parametrize("argv", [
    ["success", "--alpha", "0", "--n", "100"],
    ["success", "--alpha", "-1", "--n", "100"],
    ["success", "--alpha", "6", "--n", "1"],
    ["success", "--alpha", "6", "--n", "100", "--t-max", "0"],
    ["success", "--alpha", "6", "--n", "1.5"],
    ["success", "--alpha", "6"],
    ["alpha-c", "--n", "1"],
    ["alpha-c", "--n", "100", "--t-max", "-2"],
])
def test_bad_input_is_one_line(argv, capsys, tmp_path):
    cfg = _table(tmp_path)
    try:
        code = run_cli(main, argv + ["--table", cfg.table])
    except SystemExit as exc:      # argparse usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err
