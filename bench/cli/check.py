"""The ``check`` subcommand: is one kernel right, and if not, what is wrong (see :mod:`bench.check`).

Exit statuses: 0 the kernel agrees with the reference everywhere, its timed MNIST epoch
included; 1 a step found a disagreement (the verdict names the first wrong array, or the
timed epoch's status and message); 2 it cannot be loaded at all (a missing file, a
syntax error, missing names), in one line. Both the printed steps and the exit status
come from one :class:`bench.check.steps.CheckResult`.
"""

from __future__ import annotations

import argparse
import contextlib

from rich.console import Console

from bench.check.speed import QUICK_TRAIN_LIMIT, add_speed
from bench.check.steps import CheckStep, check_kernel
from bench.cli.options import integer, positive_int
from bench.errors import EXIT_FAILED, EXIT_OK


def add_parser(commands) -> None:
    """Add ``check`` to the subcommands."""
    check = commands.add_parser(
        "check",
        help="check one kernel against the float64 reference and say what is wrong",
        description="Compare a kernel's gradients with the float64 reference array by array (several networks, "
        "batches of 7, 10, 64, 100 and 128, finite differences, batch size 1; SGD epochs in order, shuffled and "
        "with a short last batch at those batch sizes; float32), name the first wrong array and the mistake it "
        "looks like; when it passes, the harness times one MNIST epoch against the built-in kernels, and a kernel "
        "the harness does not record as ok there fails too (exit status 1).",
    )
    check.add_argument(
        "kernel",
        metavar="KERNEL",
        help="a kernel file (path/to/kernel.py), nielsen:network.py[:Network], an importable module, or a name",
    )
    check.add_argument("--no-speed", dest="speed", action="store_false", help="skip the speed step")
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

    def say_steps(steps: list[CheckStep]) -> None:
        for step in steps:
            detail = f": {step.detail}" if step.detail and step.status != "FAIL" else ""
            say(f"  {step.status:<4} {step.label}{detail}")

    say(f"{result.name}: {result.details or result.source}")
    # The steps so far are shown before the speed run, which takes a while.
    shown = len(result.steps)
    say_steps(result.steps)
    limit = args.train_limit or (QUICK_TRAIN_LIMIT if args.quick else None)
    # Progress bars only while the harness runs: a failed or --no-speed check writes nothing to stderr.
    timed = args.speed and result.passed
    with RichReporter(err) if timed else contextlib.nullcontext() as reporter:
        add_speed(result, args.kernel, limit, args.seed, args.threads, reporter, measure=args.speed)
    say_steps(result.steps[shown:])
    say(result.verdict)
    return EXIT_OK if result.passed else EXIT_FAILED
