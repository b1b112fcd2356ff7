"""``python -m theory``: see :mod:`theory.cli`."""
from .cli import main
from .errors import run_cli

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(run_cli(main))
