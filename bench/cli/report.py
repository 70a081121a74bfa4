"""``backprop-bench report``: results files in, a report folder out (see :mod:`bench.report.build`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from bench.errors import EXIT_OK
from bench.report.build import DEFAULT_TARGET, write_report


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction like 0.9, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1] like 0.9 for 90%, got {text}")
    return value


def add_parser(commands) -> None:
    """Add the ``report`` subcommand to the CLI."""
    report = commands.add_parser(
        "report",
        help="turn results files into report.html, report.md, PNG plots and CSV tables",
        description="Read backprop-bench run and sweep files and pytest-benchmark JSON (files or folders, any mix) "
        "and write a self-contained HTML page, a Markdown page, the plots and the tables.",
    )
    report.add_argument("results", nargs="+", metavar="RESULTS", help="results files or folders of them")
    report.add_argument("--out", type=Path, default=Path("report"), metavar="DIR", help="default: ./report")
    report.add_argument(
        "--target-accuracy", type=_fraction, default=DEFAULT_TARGET, metavar="FRACTION", help="default: 0.9"
    )
    report.set_defaults(handler=handle)


def handle(args: argparse.Namespace, out: Console, err: Console) -> int:
    page = write_report(args.results, args.out, args.target_accuracy)
    out.print(f"report written to {page} (and report.md, PNG plots, CSV tables in {page.parent})", markup=False)
    return EXIT_OK
