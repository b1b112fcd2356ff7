"""theory.io.output_path: a command checks its output path before it computes."""
import os

import pytest

from theory.errors import InputError
from theory.io import output_path


def test_output_path_appends_the_suffix_numpy_would(tmp_path):
    assert output_path(tmp_path / "run", "--save", ".npz") == tmp_path / "run.npz"
    assert output_path(tmp_path / "run.npz", "--save", ".npz") == tmp_path / "run.npz"
    assert output_path(tmp_path / "fig.png", "--plot") == tmp_path / "fig.png"
    assert not list(tmp_path.iterdir())        # nothing left behind by the check


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing" / "x.npz", "does not exist"),
    (lambda d: d, "is a folder"),
    (lambda d: "/proc/x.npz", "cannot write"),
])
def test_output_path_refuses_with_one_line(tmp_path, make, message):
    with pytest.raises(InputError, match=message) as exc:
        output_path(make(tmp_path), "--save")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "missing").exists()  # the folder is not created silently


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_output_path_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(InputError, match="cannot write"):
        output_path(ro / "x.npz", "--save")
