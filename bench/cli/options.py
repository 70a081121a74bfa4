"""The command line's shared options (defined once for ``run`` and ``sweep``) and argument types.

Each argument type rejects bad input with one clear sentence.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from bench.run.config import WorkloadConfig
from bench.run.data import DATASETS
from implementations.core import DTYPES


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths like 784,30,10, got {text!r}"
        ) from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected at least two positive layer widths, got {text!r}")
    return sizes


def int_list(text: str) -> list[int]:
    try:
        return [positive_int(part) for part in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None


def add_workload_options(parser: argparse.ArgumentParser, defaults: type[WorkloadConfig]) -> None:
    """Add the options ``run`` and ``sweep`` share (the fields of WorkloadConfig), defined once here.

    Every option defaults to None, so a command can tell which were given (``--resume``
    checks them against the stored run); :func:`given` collects them and the config
    class fills the rest with its own defaults, shown in the help.
    """
    d = defaults
    parser.add_argument(
        "--impl", dest="impls", action="append", metavar="NAME", help="kernel (repeatable; default: all)"
    )
    parser.add_argument("--epochs", type=positive_int, help=f"epochs (default: {d.epochs})")
    parser.add_argument("--eta", type=positive_float, help=f"learning rate (default: {d.eta})")
    parser.add_argument(
        "--seed", type=integer, help=f"seed of the initial parameters and --shuffle (default: {d.seed})"
    )
    parser.add_argument("--shuffle", action="store_true", default=None, help="a seeded permutation every epoch")
    limit = "all" if d.train_limit is None else d.train_limit
    parser.add_argument(
        "--train-limit", type=positive_int, metavar="N", help=f"use the first N training images (default: {limit})"
    )
    parser.add_argument("--dataset", choices=DATASETS, help=f"(default: {d.dataset})")
    parser.add_argument("--data-dir", metavar="DIR", help="folder with the four IDX files (default: the shipped copy)")
    parser.add_argument(
        "--no-verify", dest="verify_data", action="store_false", default=None, help="skip the data's sha256 check"
    )
    parser.add_argument("--dtype", choices=DTYPES, help=f"(default: {d.dtype})")
    parser.add_argument(
        "--threads", type=positive_int, metavar="N", help="run every kernel on N cores and N threads (default: all)"
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        metavar="SECONDS",
        help=f"stop a kernel's worker after this long; it ends as 'timeout' (default: {d.timeout:.0f})",
    )


def given(args: argparse.Namespace, config: type[WorkloadConfig]) -> dict:
    """Return {field: value} for the options of ``config``'s fields that were given on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(config) if getattr(args, f.name, None) is not None}


def threshold(text: str) -> float:
    """Return a slowdown threshold (a ratio above 1, such as 1.25) for argparse, or raise ArgumentTypeError."""
    from bench.regress.stats import parse_threshold  # here, not at the top: run and sweep never need SciPy's stats

    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def threshold_for(text: str) -> tuple[str, float]:
    """Return (pattern, threshold) from PATTERN=RATIO for argparse, or raise ArgumentTypeError."""
    from bench.regress.stats import parse_threshold_for

    try:
        return parse_threshold_for(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
