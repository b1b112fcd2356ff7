"""``python -m experiments``: see :mod:`experiments.cli`."""
from .cli import entry

raise SystemExit(entry())
