"""``python -m experiments``: see :mod:`experiments.cli`."""
from .cli import entry

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(entry())
