"""``backprop-bench track``: record benchmark results per commit into a history store (see :mod:`bench.regress.track`).

``--measure instructions`` records instruction counts instead of wall times (the suite
under Valgrind, one thread): a series of its own, read by ``history --measure instructions``.

Exit statuses: 0 recorded (or nothing left to record); 1 a commit's suite failed
(the others are recorded); 2 bad input; 130 interrupted by Ctrl-C, 143 by SIGTERM,
every finished commit kept (run the same command again to resume).
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from rich.console import Console

from bench.cli.options import positive_int
from bench.errors import EXIT_FAILED, EXIT_OK, EXIT_TERMINATED, BenchError, interrupted_status
from bench.regress.track import (
    DEFAULT_EPOCH_ROUNDS,
    DEFAULT_PYTEST_ARGS,
    DEFAULT_SIZE,
    DEFAULT_STORE,
    Backfill,
    SuiteSettings,
    backfill,
    import_files,
    resolve_commits,
    track_tree,
)
from bench.regress.worktrees import DEFAULT_THREADS, tree_root

MACHINE_VARIABLE = "BACKPROP_BENCH_MACHINE"
FULL_SIZE = 60_000


def _size(text: str) -> int:
    value = positive_int(text)
    if value > FULL_SIZE:
        raise argparse.ArgumentTypeError(f"at most {FULL_SIZE} training images, got {value}")
    return value


def add_parser(commands) -> None:
    """Add the ``track`` subcommand to the CLI."""
    parser = commands.add_parser(
        "track",
        help="record the benchmark suite's results for this commit (or past commits) into a history store",
        description="Run the benchmark suite on the working tree (clean, at HEAD) and record its results under "
        "STORE/<machine>/<commit>-<time>.json. With --commits, run it at each commit of a range or list, in "
        "commit order, in git worktrees (the working tree's suite on each commit's kernels), skipping commits "
        "already recorded for this machine and configuration; Ctrl-C keeps every finished commit. With --from, "
        "copy existing pytest-benchmark files (e.g. .benchmarks/ or results/benchmarks/) into the store. With "
        "--measure instructions, each run counts instructions under Valgrind (--bench-measure instructions, one "
        "thread) instead of timing: those records are series of their own, never mixed with times.",
    )
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, metavar="DIR", help="default: %(default)s")
    parser.add_argument(
        "--machine",
        default=os.environ.get(MACHINE_VARIABLE) or None,
        metavar="NAME",
        help=f"machine id for the records (default: ${MACHINE_VARIABLE}, else host name and CPU fingerprint); "
        "set it in CI, where host names change from run to run",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--commits",
        action="append",
        metavar="A..B|REF[,REF...]",
        help="backfill: a range as in git log A..B (A excluded), or commits (repeatable)",
    )
    source.add_argument(
        "--from", dest="sources", nargs="+", type=Path, metavar="PATH", help="import pytest-benchmark files or folders"
    )
    parser.add_argument(
        "--measure",
        choices=("time", "instructions"),
        default="time",
        help="wall time (default) or instruction counts under Valgrind (one thread; minutes per commit)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=DEFAULT_THREADS,
        metavar="N",
        help="pin BLAS and Numba (default: 1; instruction counts always run one thread)",
    )
    parser.add_argument(
        "--size", type=_size, default=DEFAULT_SIZE, metavar="N", help="training images per timed epoch (default: 1000)"
    )
    parser.add_argument(
        "--epoch-rounds",
        type=positive_int,
        default=DEFAULT_EPOCH_ROUNDS,
        metavar="N",
        help=f"timed epochs per kernel (default: {DEFAULT_EPOCH_ROUNDS})",
    )
    parser.add_argument(
        "--runs",
        type=positive_int,
        default=1,
        metavar="N",
        help="runs per commit; with --commits, N passes over the commits (default: 1; 3 on a busy machine for "
        "time, 1 is enough for instructions)",
    )
    parser.add_argument(
        "--pytest-args",
        default=DEFAULT_PYTEST_ARGS,
        metavar="ARGS",
        help="other options of each suite run, e.g. '-k numba' (default: %(default)r)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run ``backprop-bench track``; return its exit status."""
    say = lambda text: out.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    note = lambda text: err.print(text, markup=False, highlight=False)  # noqa: E731
    if args.sources:
        outcomes = import_files(args.sources, args.store, args.machine)
        for path, outcome in outcomes:
            say(f"{path}: {outcome}")
        imported = sum(outcome.startswith("imported") for _, outcome in outcomes)
        say(f"{imported} of {len(outcomes)} file(s) imported into {args.store}")
        return EXIT_OK
    try:
        pytest_args = tuple(shlex.split(args.pytest_args))
    except ValueError as exc:
        raise BenchError(f"--pytest-args: {exc}") from None
    settings = SuiteSettings(args.threads, args.size, args.epoch_rounds, pytest_args, args.measure)
    tree = tree_root()
    if not args.commits:
        for path in track_tree(tree, args.store, settings, args.machine, args.runs):
            say(f"recorded {path}")
        return EXIT_OK
    commits = resolve_commits(tree, args.commits)
    runs = f", {args.runs} passes" if args.runs > 1 else ""
    note(f"{len(commits)} commit(s) to record, oldest first{runs}, into {args.store}")
    result = Backfill()
    try:
        backfill(tree, commits, args.store, settings, args.machine, note, result, args.runs)
    except KeyboardInterrupt as exc:
        how = "terminated" if interrupted_status(exc) == EXIT_TERMINATED else "interrupted"
        say(f"{how}: {len(result.recorded)} run(s) recorded this time; run the same command to resume")
        return interrupted_status(exc)
    say(
        f"{len(result.recorded)} run(s) recorded, {len(result.skipped)} already recorded, "
        f"{len(result.failed)} commit(s) failed"
    )
    for sha, message in result.failed:
        say(f"FAILED {sha[:10]}: {message}")
    return EXIT_FAILED if result.failed else EXIT_OK
