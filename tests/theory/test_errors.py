"""Negative numbers in any form are values, not options."""
import pytest

from theory.errors import OneLineArgumentParser, run_cli


@pytest.mark.parametrize("text", ["-2", "-0.5", "-.5", "-2e-1", "-1E+3", "-1:5:1"])
def test_negative_numbers_are_values(text):
    p = OneLineArgumentParser(prog="t")
    p.add_argument("--mu")
    assert p.parse_args(["--mu", text]).mu == text


def test_options_still_options():
    p = OneLineArgumentParser(prog="t")
    p.add_argument("--mu")
    p.add_argument("--json", action="store_true")
    with pytest.raises(SystemExit):
        p.parse_args(["--mu", "--json"])


def test_negative_alpha_range_reaches_the_value_check(capsys):
    from theory.cli import main

    assert run_cli(main, ["curve", "--alpha", "-1:5:1", "--out", "unused.nc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "alpha must be > 0" in err[0]
