"""``backprop-bench goals``: the fast-kernel goals, measured side by side (see :mod:`bench.goals`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import goals as core
from bench.cli.options import positive_int
from bench.errors import EXIT_OK
from bench.results.files import check_writable, write_atomic
from implementations.core import DTYPES


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def add_parser(commands) -> None:
    """Add ``goals`` to the subcommands."""
    goals = commands.add_parser(
        "goals",
        help="measure the fast-kernel goals (roof, peers, per-example, cache, two threads, density) on full MNIST",
        description=core.__doc__.split("\n\n")[1],
    )
    goals.add_argument(
        "--threads", type=positive_int, action="append", help="thread setting (repeatable; default 1 and 2)"
    )
    goals.add_argument("--dtype", choices=DTYPES, action="append", help="default: both")
    goals.add_argument("--rounds", type=positive_int, default=5, help="timed epochs per kernel (default: %(default)s)")
    goals.add_argument("--no-density", action="store_true", help="skip the density sweep and the real data sets")
    goals.add_argument("--out", type=Path, default=Path("results/goals.json"), help="default: %(default)s")
    goals.set_defaults(handler=handle)


def handle(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run ``backprop-bench goals``; return its exit status."""
    path = check_writable(args.out)
    document = core.measure(
        args.threads or [1, 2],
        args.dtype or ["float32", "float64"],
        args.rounds,
        lambda line: err.print(line, markup=False, highlight=False),
        density=not args.no_density,
    )
    write_atomic(path, document)
    table = Table(
        title=f"median of {args.rounds} full-MNIST epochs per kernel, sizes 784,30,10 (dense-equivalent GFLOP/s)"
    )
    columns = (
        "kernel",
        "dtype",
        "threads",
        "batch",
        "median epoch ms",
        "spread ms",
        "x roof",
        "GFLOP/s",
        "done GFLOP/s",
    )
    for column in (*columns, "x best peer"):
        table.add_column(column, justify="left" if column in ("kernel", "dtype") else "right")
    for row in core.table_rows(document):
        table.add_row(
            row["kernel"] + (" (sparse)" if row["sparse_input"] else ""),
            row["dtype"],
            str(row["threads"]),
            str(row["batch_size"]),
            _fmt(row["median_epoch_ms"], ".1f") if row["status"] == "ok" else row["status"],
            _fmt(row["spread_ms"], ".1f"),
            _fmt(row["roof_multiple"], ".2f"),
            _fmt(row["gflops"], ".1f"),
            _fmt(row["actual_gflops"], ".1f"),
            _fmt(row["vs_best_peer"], ".2f"),
        )
    out.print(table)
    for line in core.verdicts(document):
        out.print(line, markup=False, highlight=False)
    err.print(f"results saved to {path}", markup=False, highlight=False)
    return EXIT_OK
