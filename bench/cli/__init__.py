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
from bench.errors import EXIT_BAD_INPUT, BenchError, interrupted_status

# Command name -> the module that defines add_parser(commands) and sets handler(args, out, err) -> int.
_SUBCOMMANDS: dict[str, str] = {
    "run": "bench.cli.run",
    "sweep": "bench.cli.sweep",
    "goals": "bench.cli.goals",
    "report": "bench.cli.report",
    "compare": "bench.cli.compare",
    "track": "bench.cli.track",
    "history": "bench.cli.history",
    "check": "bench.cli.check",
}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not a usage block."""

    def error(self, message: str) -> None:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Return the parser for every subcommand, or for ``only`` that one (importing no other command's core)."""
    parser = _Parser(prog="backprop-bench", description="Benchmark backpropagation kernels on MNIST.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, module in _SUBCOMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    # A command's module imports its core (pandas, matplotlib, ruptures...): load only the one asked for.
    only = argv[0] if argv and argv[0] in _SUBCOMMANDS else None
    args = build_parser(only).parse_args(argv)
    # Off a terminal (a pipe, a file, CI logs) rich would wrap tables at 80 columns.
    out = Console() if sys.stdout.isatty() else Console(width=160)
    err = Console(stderr=True, soft_wrap=True)
    try:
        return args.handler(args, out, err)
    except (BenchError, implementations.UnknownImplementation) as exc:
        err.print(f"backprop-bench: error: {exc}", markup=False, highlight=False)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:  # a command that saves nothing on the way: one line, no traceback
        err.print("backprop-bench: interrupted", markup=False, highlight=False)
        return interrupted_status(exc)
