"""The ``backprop-bench`` command line: argument parsing, dispatch, and one-line errors.

Every subcommand lives in its own module of this package (``bench.cli.run`` for
``run``), which parses its options, calls the core in ``bench`` and does the talking
(rich lives here only); the core never imports this package. A user error raised as
BenchError anywhere becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rich.console import Console

import implementations
from bench.errors import EXIT_BAD_INPUT, BenchError

# Modules that each define add_parser(commands) and set a handler(args, out, err) -> int.
_SUBCOMMANDS: tuple[str, ...] = (
    "bench.cli.run",
    "bench.cli.sweep",
    "bench.cli.goals",
    "bench.cli.report",
    "bench.compare",
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not a usage block."""

    def error(self, message: str) -> None:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every subcommand."""
    parser = _Parser(prog="backprop-bench", description="Benchmark backpropagation kernels on MNIST.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in _SUBCOMMANDS:
        importlib.import_module(module).add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    # Off a terminal (a pipe, a file, CI logs) rich would wrap tables at 80 columns.
    out = Console() if sys.stdout.isatty() else Console(width=160)
    err = Console(stderr=True, soft_wrap=True)
    try:
        return args.handler(args, out, err)
    except (BenchError, implementations.UnknownImplementation) as exc:
        err.print(f"backprop-bench: error: {exc}", markup=False, highlight=False)
        return EXIT_BAD_INPUT
