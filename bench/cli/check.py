"""The ``check`` subcommand: is one kernel right, and if not, what is wrong (see :mod:`bench.check`).

Exit statuses: 0 the kernel agrees with the reference everywhere; 1 it does not (the
verdict names the first wrong array); 2 it cannot be loaded at all (a missing file, a
syntax error, missing names), in one line.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from bench.check import QUICK_TRAIN_LIMIT, check_kernel, speed, speed_line
from bench.cli.options import integer, positive_int
from bench.errors import EXIT_FAILED, EXIT_OK


def add_parser(commands) -> None:
    """Add ``check`` to the subcommands."""
    check = commands.add_parser(
        "check",
        help="check one kernel against the float64 reference and say what is wrong",
        description="Compare a kernel's gradients with the float64 reference array by array (several networks, "
        "finite differences, batch size 1, a short last batch, SGD epochs, float32), name the first wrong array "
        "and the mistake it looks like; when it passes, time one MNIST epoch against the built-in kernels.",
    )
    check.add_argument(
        "kernel",
        metavar="KERNEL",
        help="a kernel file (path/to/kernel.py), nielsen:network.py[:Network], an importable module, or a name",
    )
    check.add_argument("--no-speed", dest="speed", action="store_false", help="skip the speed line")
    check.add_argument(
        "--quick", action="store_true", help=f"time on the first {QUICK_TRAIN_LIMIT} training images, not all"
    )
    check.add_argument("--train-limit", type=positive_int, metavar="N", help="time on the first N training images")
    check.add_argument(
        "--threads", type=positive_int, metavar="N", help="time every kernel on N threads (default: library defaults)"
    )
    check.add_argument("--seed", type=integer, default=1, help="seed of the parameters and inputs (default: 1)")
    check.set_defaults(handler=handle)


def handle(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run ``backprop-bench check``; return its exit status."""
    from bench.cli.progress import RichReporter

    result = check_kernel(args.kernel, seed=args.seed)

    def say(text: str) -> None:
        out.print(text, markup=False, highlight=False, soft_wrap=True)

    say(f"{result.name}: {result.details or result.source}")
    for step in result.steps:
        say(f"  {step.status:<4} {step.label}" + (f": {step.detail}" if step.detail and step.status != "FAIL" else ""))
    say(result.verdict)
    if not result.passed:
        return EXIT_FAILED
    if args.speed:
        limit = args.train_limit or (QUICK_TRAIN_LIMIT if args.quick else None)
        with RichReporter(err) as reporter:
            timing = speed(args.kernel, result.name, limit, args.seed, args.threads, reporter)
        say(speed_line(timing))
    return EXIT_OK
