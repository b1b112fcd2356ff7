"""Sphinx configuration of the phaseflow documentation.

Build: ``pip install -e '.[docs]'`` then ``python -m sphinx -W -b html docs docs/_build/html``
(warnings are errors, as in CI). The API reference is generated from the docstrings
(numpydoc), the theory, validation and numerics pages are the Markdown files of docs/
(MyST), and the notebooks are rendered with the outputs stored in them (not executed).
"""
from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from theory.io import package_version  # noqa: E402

project = "phaseflow"
author = "the phaseflow developers"
copyright = "2026, the phaseflow developers"
release = package_version()
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "notebooks/.ipynb_checkpoints", "**/.ipynb_checkpoints"]
root_doc = "index"

# notebooks: rendered with their stored outputs; the test suite executes them
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

autosummary_generate = True
autosummary_ignore_module_all = False   # document what __all__ exports, nothing else
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"          # numpydoc renders the documented types
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = "phaseflow"
html_static_path: list[str] = []


def _escape_bars(app, what, name, obj, options, lines):
    """Docstrings write norms and absolute values as |q|, which reStructuredText reads as a
    substitution reference; escape every bar so that the physics reads as written."""
    for i, line in enumerate(lines):
        lines[i] = line.replace("\\|", "|").replace("|", "\\|")


def setup(app):
    app.connect("autodoc-process-docstring", _escape_bars, priority=100)
