"""``backprop-bench sweep``: epoch time against batch size and against hidden width.

A sweep is a grid of small runs through the same parity-checking harness as
``backprop-bench run`` (every kernel is compiled, checked against the reference
and only then timed, at every point). Two lines through the grid are measured:
batch sizes at the base width, and hidden widths ([784, width, 10]) at the base
batch size; the point where they cross is measured once. The file format is in
:mod:`bench.run.execute`.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from bench.cli.options import add_workload_options, given, int_list, positive_int
from bench.cli.run import note_unavailable
from bench.errors import EXIT_INTERRUPTED
from bench.results.files import check_writable
from bench.results.schema import KernelResult
from bench.run.config import SweepConfig
from bench.run.execute import default_out_path, execute_sweep, load_checked, select_kernels


class _PointLines:
    """Print one line per kernel and grid point."""

    def __init__(self, console: Console):
        self.console = console

    def point_done(self, point: str, result: KernelResult) -> None:
        times = sorted(result.epoch_seconds)
        timing = f"{times[len(times) // 2]:.4f} s/epoch" if result.status == "ok" and times else ""
        self.console.print(f"{point:<22} {result.name:<12} {result.status:<14} {timing}", markup=False)


def add_parser(commands) -> None:
    """Add the ``sweep`` subcommand to the CLI."""
    d = SweepConfig
    sweep = commands.add_parser(
        "sweep",
        help="time every kernel across batch sizes and hidden widths, save a sweep file",
        description="Measure epoch time against batch size (at the base width) and against the hidden width "
        "of [784, width, 10] (at the base batch size), parity-checking every kernel at every point.",
    )
    add_workload_options(sweep, SweepConfig)
    sweep.add_argument("--batch-sizes", type=int_list, help="default: " + ",".join(map(str, d().batch_sizes)))
    sweep.add_argument("--widths", type=int_list, help="default: " + ",".join(map(str, d().widths)))
    sweep.add_argument("--base-batch-size", type=positive_int, help=f"default: {d.base_batch_size}")
    sweep.add_argument("--base-width", type=positive_int, help=f"default: {d.base_width}")
    sweep.add_argument("--full", action="store_true", help="use every training image (overrides --train-limit)")
    sweep.add_argument("--out", metavar="PATH", help="sweep JSON (default: results/sweep-<time>.json)")
    sweep.set_defaults(handler=handle)


def handle(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run ``backprop-bench sweep``; return its exit status."""
    options = given(args, SweepConfig)
    options["impls"] = select_kernels(options.get("impls"))
    if args.full:
        options["train_limit"] = None
    config = SweepConfig(**options)
    path = check_writable(args.out or default_out_path("sweep"))
    data = load_checked(config)
    note_unavailable(args.impls, err)
    try:
        _, status = execute_sweep(config, path, _PointLines(err), data=data)
    except KeyboardInterrupt:
        err.print(f"interrupted: points so far saved to {path}", markup=False, highlight=False)
        return EXIT_INTERRUPTED
    err.print(f"sweep saved to {path}", markup=False, highlight=False)
    return status
