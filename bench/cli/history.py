"""``backprop-bench history``: a history store in, a page of charts and steps out, and the gate ``--fail-since``.

``--measure`` picks the series that are printed and gated: wall time (the default) or
instruction counts; the page shows every measure the store holds, one part each.

Exit statuses: 0 the page is written (and, with ``--fail-since REF``, no slowdown
beyond the threshold begins after REF); 1 at least one does, each on a line
starting ``STEP``; 2 unusable input (no records, a broken file, an unknown REF).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from bench.cli.options import threshold
from bench.errors import EXIT_FAILED, EXIT_OK, BenchError
from bench.regress.history import (
    MEASURE_WORDS,
    MEASURES,
    THRESHOLDS,
    describe,
    load_histories,
    new_steps,
    select,
    steps_by_size,
)
from bench.regress.track import DEFAULT_STORE
from bench.regress.worktrees import tree_root
from bench.report.history_page import write_page


def add_parser(commands) -> None:
    """Add the ``history`` subcommand to the CLI."""
    parser = commands.add_parser(
        "history",
        help="chart a history store per benchmark and machine, find steps and drifts, gate on new ones",
        description="Read a history store (backprop-bench track) or folders of pytest-benchmark files with commit "
        "ids, and write history.html (self-contained), history.md, a PNG chart per benchmark and machine, "
        "steps.csv and series.csv (steps-instructions.csv and series-instructions.csv for instruction counts). "
        "With --fail-since REF, exit 1 when a slowdown whose 95% interval lies above the threshold begins after "
        "REF (a commit id or unique prefix in the history, else a git ref). --measure picks the series printed "
        "and gated; the page shows both measures where the store holds both.",
    )
    parser.add_argument(
        "stores", nargs="*", type=Path, metavar="STORE", help=f"history folders or files (default: {DEFAULT_STORE})"
    )
    parser.add_argument("--out", type=Path, default=Path("history"), metavar="DIR", help="default: ./history")
    parser.add_argument(
        "--measure",
        choices=MEASURES,
        default="time",
        help="series to print and gate: wall time (default) or instruction counts (records of "
        "track --measure instructions)",
    )
    parser.add_argument("--fail-since", metavar="REF", help="exit 1 on a slowdown beyond the threshold after REF")
    parser.add_argument(
        "--threshold",
        type=threshold,
        metavar="RATIO",
        help="a step counts for --fail-since when its interval's lower end is above RATIO (default: "
        f"{THRESHOLDS['time']} for time, {THRESHOLDS['instructions']} for instructions)",
    )
    parser.set_defaults(handler=handle)


def _git_tree() -> Path | None:
    """Return the current git working tree's top folder, or None outside one."""
    try:
        return tree_root()
    except BenchError:
        return None


def handle(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run ``backprop-bench history``; return its exit status."""
    say = lambda text: out.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    tree = _git_tree()
    stores = args.stores or [DEFAULT_STORE]
    histories = load_histories(stores, tree)
    history = select(histories, args.measure, stores)
    limit = THRESHOLDS[args.measure] if args.threshold is None else args.threshold
    ratio = f"{limit:.2f}" if args.measure == "time" else f"{limit:.4g}"
    for line in history.notes:
        err.print(f"note: {line}", markup=False, highlight=False)
    failing = new_steps(history, args.fail_since, limit, tree) if args.fail_since else []
    # The page shows every measure the store holds, the one asked for first, each gated at its own threshold.
    shown = [history, *(h for m, h in histories.items() if m != args.measure)]
    page = write_page(shown, args.out, {**THRESHOLDS, args.measure: limit})
    steps, unconfirmed = steps_by_size(history), steps_by_size(history, confirmed=False)
    files = "steps.csv, series.csv" if history.measure == "time" else "steps-instructions.csv, series-instructions.csv"
    other = "".join(f"; the page also shows {MEASURE_WORDS[h.measure]}" for h in shown[1:])
    say(
        f"history written to {page} (and history.md, charts, {files}{other}): {len(history.series)} series"
        f"{'' if history.measure == 'time' else ' of instruction counts'}, {len(steps)} step(s)"
    )
    several = len({(s.machine, str(s.config)) for s in history.series}) > 1
    for s, step in steps:
        say(describe(s, step) + (f" [{s.where}]" if several else ""))
    for s, step in unconfirmed:
        say("unconfirmed: " + describe(s, step) + (f" [{s.where}]" if several else ""))
    if not args.fail_since:
        return EXIT_OK
    for s, step in failing:
        say(f"STEP {describe(s, step)} [{s.where}]: beyond {ratio}x, after {args.fail_since}")
    if failing:
        return EXIT_FAILED
    say(f"no slowdown beyond {ratio}x begins after {args.fail_since}")
    return EXIT_OK
