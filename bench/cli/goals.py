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
        help="measure the fast-kernel goals (roof, peers, per-example, cache, two threads, density) on MNIST, twice",
        description=core.__doc__.split("\n\n")[1],
    )
    goals.add_argument(
        "--threads", type=positive_int, action="append", help="thread setting (repeatable; default 1 and 2)"
    )
    goals.add_argument("--dtype", choices=DTYPES, action="append", help="default: both")
    goals.add_argument(
        "--rounds",
        type=positive_int,
        default=5,
        help="interleaved rounds per run; each times one epoch of every kernel and the roof (default: %(default)s)",
    )
    goals.add_argument(
        "--runs",
        type=positive_int,
        default=2,
        help="independent runs; a goal is met only if every run meets it, unstable if they disagree "
        "(default: %(default)s)",
    )
    goals.add_argument("--no-density", action="store_true", help="skip the density sweep and the real data sets")
    goals.add_argument("--out", type=Path, default=Path("results/goals.json"), help="default: %(default)s")
    goals.set_defaults(handler=handle)


def handle(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run ``backprop-bench goals``; return its exit status."""
    path = check_writable(args.out)
    document = core.measure(
        list(dict.fromkeys(args.threads or [1, 2])),
        list(dict.fromkeys(args.dtype or ["float32", "float64"])),
        args.rounds,
        lambda line: err.print(line, markup=False, highlight=False),
        density=not args.no_density,
        runs=args.runs,
        checkpoint=lambda partial: write_atomic(path, partial),  # a failed later run loses no earlier one
    )
    write_atomic(path, document)
    views = core.runs(document)
    for view in views:
        out.print(_table(view, args.rounds, len(views)))
    for line in core.verdicts(document):
        out.print(line, markup=False, highlight=False)
    verdicts = [cell["verdict"] for cell in core.cells(document)]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("met", "not met", "unstable"))
    out.print(f"goals over {len(views)} run{'s' * (len(views) > 1)}: {counts}", markup=False, highlight=False)
    err.print(f"results saved to {path}", markup=False, highlight=False)
    return EXIT_OK


def _table(view: dict, rounds: int, n_runs: int) -> Table:
    """Return one run's table: a row per setting, batch size and kernel."""
    which = f"run {view.get('run', 1)} of {n_runs}: " if n_runs > 1 else ""
    table = Table(
        title=f"{which}median of {rounds} interleaved full-MNIST epochs per kernel, sizes 784,30,10 "
        "(x roof: median of each epoch over its round's roof; dense-equivalent GFLOP/s)"
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
    for row in core.table_rows(view):
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
    return table
