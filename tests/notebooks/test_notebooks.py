"""Every notebook in notebooks/ runs top to bottom (so the notebooks cannot rot).

Each is executed in a fresh kernel (nbclient, the ``python3`` kernel of this interpreter)
from the notebooks folder, importing this checkout's packages, with one BLAS thread; a
cell that raises fails the test with the cell's error. A notebook must leave nothing
behind: the kernel's temporary folder (TMPDIR) is a fresh folder that must be empty
afterwards, and the notebooks folder holds the same files before and after. New notebooks
are picked up without touching this file.
"""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Per-cell limit; the notebooks are meant to finish in < 3 minutes on 2 cores in total.
CELL_TIMEOUT = 180


def test_there_are_notebooks():
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")  # inherited by the kernel
    # the kernel imports this checkout's packages, not an installed (e.g. editable) copy elsewhere
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    kernel_tmp = tmp_path / "kernel-tmp"
    kernel_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(kernel_tmp))  # the kernel's tempfile.gettempdir()
    before = _files(path.parent)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed\n{exc}", pytrace=False)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    left = sorted(p.name for p in kernel_tmp.iterdir())
    assert not left, f"{path.name} left temporary files or folders behind: {left}"
    added = sorted(_files(path.parent) - before)
    assert not added, f"{path.name} wrote files into {path.parent.name}/: {added}"


def _files(folder: Path) -> set[str]:
    """Every file under ``folder`` (relative paths), checkpoints and caches excepted."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and not any(part in (".ipynb_checkpoints", "__pycache__") for part in p.parts)}
