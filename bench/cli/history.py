"""``backprop-bench history``: a history store in, a page of charts and steps out, and the gate ``--fail-since``.

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
from bench.regress.history import HISTORY_THRESHOLD, describe, load_history, new_steps, steps_by_size
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
        "steps.csv and series.csv. With --fail-since REF, exit 1 when a slowdown whose 95% interval lies "
        "above the threshold begins after REF (a commit id or unique prefix in the history, else a git ref).",
    )
    parser.add_argument(
        "stores", nargs="*", type=Path, metavar="STORE", help=f"history folders or files (default: {DEFAULT_STORE})"
    )
    parser.add_argument("--out", type=Path, default=Path("history"), metavar="DIR", help="default: ./history")
    parser.add_argument("--fail-since", metavar="REF", help="exit 1 on a slowdown beyond the threshold after REF")
    parser.add_argument(
        "--threshold",
        type=threshold,
        default=HISTORY_THRESHOLD,
        metavar="RATIO",
        help="a step counts for --fail-since when its interval's lower end is above RATIO (default: %(default)s)",
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
    history = load_history(args.stores or [DEFAULT_STORE], tree)
    for line in history.notes:
        err.print(f"note: {line}", markup=False, highlight=False)
    failing = new_steps(history, args.fail_since, args.threshold, tree) if args.fail_since else []
    page = write_page(history, args.out, args.threshold)
    steps, unconfirmed = steps_by_size(history), steps_by_size(history, confirmed=False)
    say(
        f"history written to {page} (and history.md, charts, steps.csv, series.csv): {len(history.series)} series, "
        f"{len(steps)} step(s)"
    )
    several = len({(s.machine, str(s.config)) for s in history.series}) > 1
    for s, step in steps:
        say(describe(s, step) + (f" [{s.where}]" if several else ""))
    for s, step in unconfirmed:
        say("unconfirmed: " + describe(s, step) + (f" [{s.where}]" if several else ""))
    if not args.fail_since:
        return EXIT_OK
    for s, step in failing:
        say(f"STEP {describe(s, step)} [{s.where}]: beyond {args.threshold:.2f}x, after {args.fail_since}")
    if failing:
        return EXIT_FAILED
    say(f"no slowdown beyond {args.threshold:.2f}x begins after {args.fail_since}")
    return EXIT_OK
