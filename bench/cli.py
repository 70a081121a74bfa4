"""The ``backprop-bench`` command line: argument parsing, dispatch, and one-line errors.

Exit statuses of ``run``: 0 every kernel ``ok``; 1 at least one kernel was not
``ok`` (parity-failed, error, diverged); 2 bad input (options, data, paths);
130 interrupted (Ctrl-C), with the results measured so far saved.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from rich.console import Console

import implementations
from bench.argtypes import integer, positive_float, positive_int, sizes
from bench.data import DATASETS
from bench.errors import BenchError
from bench.harness import RunConfig
from bench.run import EXIT_BAD_INPUT, EXIT_INTERRUPTED, default_out_path, execute

# Modules that each define add_parser(commands) and set a handler(args, out, err) -> int.
_SUBCOMMANDS: tuple[str, ...] = ()


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not a usage block."""

    def error(self, message: str) -> None:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every subcommand."""
    parser = _Parser(prog="backprop-bench", description="Benchmark backpropagation kernels on MNIST.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="check and train kernels, time every epoch, save a results file",
        description="Train each kernel from the same initial parameters in the same batch order, "
        "after checking its gradients against the float64 reference.",
    )
    run.add_argument(
        "--impl", action="append", metavar="NAME", help="kernel to run (repeatable; default: all available)"
    )
    run.add_argument("--epochs", type=positive_int, default=RunConfig.epochs, help="epochs (default: %(default)s)")
    run.add_argument("--batch-size", type=positive_int, default=RunConfig.batch_size, help="default: %(default)s")
    run.add_argument("--eta", type=positive_float, default=RunConfig.eta, help="learning rate (default: %(default)s)")
    run.add_argument("--sizes", type=sizes, default=[784, 30, 10], help="layer widths (default: 784,30,10)")
    run.add_argument(
        "--seed", type=integer, default=RunConfig.seed, help="seed of the initial parameters (default: %(default)s)"
    )
    run.add_argument("--shuffle", action="store_true", help="shuffle the training set each epoch (seeded by --seed)")
    run.add_argument("--train-limit", type=positive_int, metavar="N", help="use the first N training images only")
    run.add_argument("--dataset", choices=DATASETS, default=RunConfig.dataset, help="default: %(default)s")
    run.add_argument("--data-dir", metavar="DIR", help="folder with the four IDX files (default: the shipped copy)")
    run.add_argument("--no-verify", action="store_true", help="skip the sha256 check of the data files")
    run.add_argument("--dtype", choices=implementations.DTYPES, default=RunConfig.dtype, help="default: %(default)s")
    run.add_argument("--threads", type=positive_int, metavar="N", help="pin BLAS and Numba to N threads")
    run.add_argument("--out", type=Path, metavar="PATH", help="results JSON (default: results/run-<time>.json)")
    run.set_defaults(handler=_cmd_run)
    # Other subcommands live in their own modules, each with add_parser(commands).
    for module in _SUBCOMMANDS:
        importlib.import_module(module).add_parser(commands)
    return parser


def _select(requested: list[str] | None, err: Console) -> list[str]:
    """Return the kernels to run, or raise BenchError for an unknown or unavailable name."""
    missing = implementations.unavailable()
    if requested is None:
        for name, reason in missing.items():
            err.print(f"note: {name} is not available ({reason}); skipped", markup=False, highlight=False)
        return implementations.available()
    for name in requested:
        implementations.get(name)  # raises UnknownImplementation with the known names
    return list(dict.fromkeys(requested))


def _cmd_run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from bench.progress import RichReporter
    from bench.results import check_writable
    from bench.summary import summary_table

    config = RunConfig(
        impls=_select(args.impl, err),
        sizes=args.sizes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        eta=args.eta,
        seed=args.seed,
        shuffle=args.shuffle,
        train_limit=args.train_limit,
        dataset=args.dataset,
        data_dir=args.data_dir,
        dtype=args.dtype,
        threads=args.threads,
        verify_data=not args.no_verify,
    )
    path = check_writable(args.out or default_out_path())
    try:
        with RichReporter(err) as reporter:
            document, status = execute(config, path, reporter)
    except KeyboardInterrupt:
        err.print(f"interrupted: results so far saved to {path}", markup=False, highlight=False)
        return EXIT_INTERRUPTED
    out.print(summary_table(document))
    err.print(f"results saved to {path}", markup=False, highlight=False)
    return status


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    # Off a terminal (a pipe, a file, CI logs) rich would wrap tables at 80 columns.
    out = Console() if sys.stdout.isatty() else Console(width=160)
    err = Console(stderr=True, soft_wrap=True)
    try:
        return args.handler(args, out, err)
    except (BenchError, implementations.UnknownImplementation) as exc:
        err.print(f"backprop-bench: error: {exc}", markup=False, highlight=False)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
