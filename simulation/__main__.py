"""``python -m simulation``: see :mod:`simulation.cli`."""
import sys

from .cli import entry

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(entry())
