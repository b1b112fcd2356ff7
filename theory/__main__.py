"""``python -m theory``: see :mod:`theory.cli`."""
from .cli import main
from .errors import run_cli

raise SystemExit(run_cli(main))
