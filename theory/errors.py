"""Errors shared by the whole package, and the command-line wrapper that turns them
into one-line messages with a non-zero exit status (never a traceback)."""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, Callable, Sequence, TypeVar

__all__ = ["InputError", "ConvergenceError", "raise_if_failed", "OneLineArgumentParser",
           "subcommand_parser", "dispatch", "run_cli"]


_Result = TypeVar("_Result")


class InputError(ValueError):
    """Bad user input: a parameter out of range, a malformed file, an unknown option."""


class ConvergenceError(RuntimeError):
    """A solver failed to converge; the message names the parameters and the residual.

    Solvers return their status as values (``converged``, ``iterations``, ``residual``,
    ``message`` fields of their result, as scipy's OptimizeResult); their ``strict`` path
    raises this error with the partial result attached as ``result`` (None where no
    partial result exists).
    """

    def __init__(self, message: str, result: Any = None):
        super().__init__(message)
        self.result = result


def raise_if_failed(result: _Result, strict: bool) -> _Result:
    """Return ``result``; with ``strict`` and ``result.converged`` false raise
    :class:`ConvergenceError` with ``result.message`` and the result attached."""
    if strict and not result.converged:
        raise ConvergenceError(result.message, result)
    return result


#: What argparse must read as a (negative) number, not an option: a minus sign followed by a
#: digit or by ".digit" -- "-2", "-0.5", "-.5", "-2e-1", "-1:5:1" (an alpha range). argparse's
#: own pattern knows only "-2" and "-0.5", so "--mu -2e-1" was read as a missing value. No
#: option of the package starts with a digit.
NEGATIVE_NUMBER = re.compile(r"^-\.?\d")


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse parser whose usage errors are a single line on stderr, exit status 2, and
    which reads every argument that starts like a negative number as a value
    (:data:`NEGATIVE_NUMBER`), so that the value's own check gives the error."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


#: A command-line subcommand: (name, add(subparsers) adding the subparser ``name``,
#: command(args) -> exit status). Each package's cli.py lists its own.
Subcommand = tuple[str, Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]


def subcommand_parser(prog: str, description: str, subcommands: Sequence[Subcommand]) -> OneLineArgumentParser:
    """The parser of ``python -m <package>``: one subparser per entry of ``subcommands``."""
    parser = OneLineArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)
    for _, add, _ in subcommands:
        add(sub)
    return parser


def dispatch(parser: argparse.ArgumentParser, subcommands: Sequence[Subcommand],
             argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns its exit status."""
    args = parser.parse_args(argv)
    return {name: command for name, _, command in subcommands}[args.command](args)


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)`` turning package errors and bad files into one-line messages.

    Exit status: 0 success, 2 bad input, 3 non-convergence, 130 interrupted, 141 closed pipe.
    """
    prog = "python -m " + main.__module__.split(".")[0]
    try:
        return main(argv)
    except InputError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except ConvergenceError as exc:
        print(f"{prog}: did not converge: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`... --json | head`): stop quietly, as Unix tools do;
        # stdout is pointed at /dev/null so the interpreter's final flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
