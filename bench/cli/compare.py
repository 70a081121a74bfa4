"""``backprop-bench compare``: is the candidate slower than the base, beyond noise and beyond a threshold?

``compare BASE CAND`` reads two pytest-benchmark files or folders of repeated runs
(:mod:`bench.regress.pytest_files`); ``compare --against REF`` first runs the suite on REF's
kernels and the working tree's, interleaved (:mod:`bench.regress.worktrees`). The verdicts
are :mod:`bench.regress.stats`'s; this module parses the options and prints the table.

Exit status: 0 nothing regressed; 1 at least one benchmark is a REGRESSION or is
MISSING from the candidate (each on a line starting with that word); 2 unusable
input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bench.cli.options import positive_int, threshold, threshold_for
from bench.errors import EXIT_FAILED, EXIT_OK, BenchError
from bench.regress.pytest_files import load_side
from bench.regress.stats import INSTRUCTIONS_THRESHOLD, PAIRWISE_THRESHOLD, Comparison, compare_sides
from bench.regress.worktrees import (
    DEFAULT_PYTEST_ARGS,
    DEFAULT_RUNS,
    DEFAULT_THREADS,
    INSTRUCTION_PYTEST_ARGS,
    benchmark_against,
)

MEASURES = ("time", "instructions")


def add_threshold_options(parser: argparse.ArgumentParser, default: float | None = PAIRWISE_THRESHOLD) -> None:
    """Add --threshold and --threshold-for (a glob on name or group; repeatable, last match wins).

    ``default`` None leaves the default to the measure (see :func:`default_threshold`).
    """
    parser.add_argument(
        "--threshold",
        type=threshold,
        default=default,
        metavar="RATIO",
        help="slowdown ratio that counts as a regression (default: "
        + (
            f"{default})"
            if default is not None
            else f"{PAIRWISE_THRESHOLD} for time, {INSTRUCTIONS_THRESHOLD} for instructions)"
        ),
    )
    parser.add_argument(
        "--threshold-for",
        type=threshold_for,
        action="append",
        default=[],
        metavar="GLOB=RATIO",
        help="threshold for benchmarks whose name or group matches GLOB, e.g. 'test_epoch*=1.5' "
        "(repeatable; the last match wins)",
    )


def add_parser(commands) -> None:
    """Add the ``compare`` subcommand to the CLI's subparsers."""
    parser = commands.add_parser(
        "compare",
        help="compare two pytest-benchmark results (or a git ref with the working tree) for regressions",
        description="Compare candidate with base timings: the ratio of typical times and its 95% interval "
        "(a t-interval on run medians with repeated runs, a bootstrap of the rounds with one run per side); a "
        "REGRESSION line for every benchmark whose interval lies above its threshold, a MISSING line for every "
        "benchmark of the base absent from the candidate. Exit 0 none, 1 regression or missing, 2 unusable "
        "input. BASE and CAND are pytest-benchmark JSON files, or folders of repeated runs.",
    )
    parser.add_argument("base", nargs="?", metavar="BASE", help="base results: a JSON file or a folder of them")
    parser.add_argument("cand", nargs="?", metavar="CAND", help="candidate results: a JSON file or a folder of them")
    parser.add_argument(
        "--measure",
        choices=MEASURES,
        default="time",
        help="compare wall times (default) or instruction counts (files from --bench-measure instructions)",
    )
    add_threshold_options(parser, default=None)
    group = parser.add_argument_group("same-machine check against a git ref")
    group.add_argument("--against", metavar="REF", help="benchmark git ref REF and the working tree, interleaved")
    group.add_argument(
        "--runs", type=positive_int, help=f"runs of each side (default: {DEFAULT_RUNS} for time, 1 for instructions)"
    )
    group.add_argument(
        "--threads",
        type=positive_int,
        default=DEFAULT_THREADS,
        metavar="N",
        help="pin BLAS and Numba to N threads in both sides (default: %(default)s)",
    )
    group.add_argument(
        "--pytest-args",
        metavar="ARGS",
        help=f"arguments for each pytest run, e.g. '-k numba' (default: {DEFAULT_PYTEST_ARGS!r} for time, "
        f"{INSTRUCTION_PYTEST_ARGS!r} for instructions)",
    )
    group.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the JSON of every run in DIR (default: results/against-...)"
    )
    parser.set_defaults(handler=handle)


def _time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _count(instructions: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if instructions >= scale:
            return f"{instructions / scale:.4g} {unit}"
    return f"{instructions:.0f}"


def default_threshold(measure: str) -> float:
    """Return the default regression threshold of a measure: 1.25x for time, 1.005x for instruction counts."""
    return INSTRUCTIONS_THRESHOLD if measure == "instructions" else PAIRWISE_THRESHOLD


def table(comparison: Comparison, base_label: str, cand_label: str, measure: str = "time") -> Table:
    """Return a rich table with one row per compared benchmark, a section per group.

    The threshold is in the title when every benchmark has the same one.
    """
    thresholds = {v.threshold for v in comparison.verdicts}
    uniform = len(thresholds) == 1
    title = f"candidate {cand_label} vs base {base_label}"
    out = Table(title=Text(title + (f", threshold {min(thresholds):.2f}x" if uniform else "")))
    out.add_column("benchmark", no_wrap=True)
    unit = " (instr)" if measure == "instructions" else ""
    show = _count if measure == "instructions" else _time
    for column in (f"base median{unit}", f"cand median{unit}", "ratio", "95% CI", *(() if uniform else ("threshold",))):
        out.add_column(column, justify="right", no_wrap=True)
    out.add_column("verdict", no_wrap=True)
    group = None
    for v in comparison.verdicts:
        if v.group != group:
            group = v.group
            if out.row_count:
                out.add_section()
            out.add_row(Text(group or "(no group)", style="bold"))
        style = "bold red" if v.regression else ("green" if v.label.startswith("faster") else None)
        cells = [
            Text(v.name),  # plain Text: rich would read "[numba-float64]" as markup
            show(v.base),
            show(v.cand),
            f"{v.ratio:.4f}x" if measure == "instructions" else f"{v.ratio:.3f}x",
            f"{v.low:.4f}-{v.high:.4f}" if measure == "instructions" else f"{v.low:.2f}-{v.high:.2f}",
            *(() if uniform else (f"{v.threshold:.2f}x",)),
            v.label,
        ]
        out.add_row(*cells, style=style)
    return out


def report(
    comparison: Comparison, base_label: str, cand_label: str, out: Console, err: Console, measure: str = "time"
) -> int:
    """Return the exit status, after printing the table, warnings, REGRESSION and MISSING lines and the summary."""
    say = lambda text: out.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    for line in comparison.warnings:
        err.print(f"warning: {line}", markup=False, highlight=False)
    out.print(table(comparison, base_label, cand_label, measure))
    if comparison.only_cand:
        say(f"only in the candidate (not compared): {', '.join(comparison.only_cand)}")
    say(
        f"geometric mean of candidate/base over {len(comparison.verdicts)} benchmarks: {comparison.geometric_mean:.3f}x"
    )
    what = "more instructions" if measure == "instructions" else "slower"
    digits = 4 if measure == "instructions" else 2
    for v in comparison.regressions:
        say(
            f"REGRESSION {v.name}: {v.ratio:.{digits}f}x {what} (95% CI {v.low:.{digits}f}-{v.high:.{digits}f}x, "
            f"threshold {v.threshold:.{digits}f}x; {v.method})"
        )
    for name in comparison.missing:
        say(f"MISSING {name}: in the base, absent from the candidate (did its kernel stop importing, or fail?)")
    if comparison.failed:
        return EXIT_FAILED
    say("no regression")
    return EXIT_OK


def handle(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run ``backprop-bench compare``; return its exit status."""
    measure = args.measure
    limit = args.threshold if args.threshold is not None else default_threshold(measure)
    if args.against is not None:
        if args.base is not None:
            raise BenchError("compare takes either BASE CAND or --against REF, not both")
        instructions = measure == "instructions"
        against = benchmark_against(
            args.against,
            runs=args.runs or (1 if instructions else DEFAULT_RUNS),
            threads=args.threads,
            pytest_args=args.pytest_args or (INSTRUCTION_PYTEST_ARGS if instructions else DEFAULT_PYTEST_ARGS),
            keep=args.keep,
            progress=lambda line: err.print(line, markup=False, highlight=False),
            measure=measure,
        )
        err.print(f"raw results kept in {against.keep}", markup=False, highlight=False)
        base, cand = load_side(against.files["ref"], measure), load_side(against.files["tree"], measure)
        comparison = compare_sides(base, cand, limit, args.threshold_for, measure)
        return report(comparison, against.ref_label, "working tree", out, err, measure)
    if args.base is None or args.cand is None:
        raise BenchError("compare needs BASE and CAND results files (or --against REF)")
    base, cand = load_side([args.base], measure), load_side([args.cand], measure)
    comparison = compare_sides(base, cand, limit, args.threshold_for, measure)
    return report(comparison, str(args.base), str(args.cand), out, err, measure)
