"""The ``run`` subcommand: options, resume, signals, and the closing table.

Exit statuses: 0 every kernel ``ok``; 1 at least one kernel was not ``ok``
(parity-failed, error, diverged); 2 bad input (options, data, paths, a results
file that cannot be resumed); 130 interrupted by Ctrl-C, 143 by SIGTERM, with
every finished epoch saved.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from rich.console import Console

import implementations
from bench.cli.options import add_workload_options, given, positive_int, sizes
from bench.errors import BenchError, interrupted_status, sigterm_interrupts
from bench.run.config import RunConfig
from bench.run.execute import default_out_path, execute, load_checked, select_kernels


def add_parser(commands) -> None:
    """Add ``run`` to the subcommands. Options default to None so --resume can tell which were given."""
    run = commands.add_parser(
        "run",
        help="check and train kernels, time every epoch, save a results file",
        description="Train each kernel from the same initial parameters in the same batch order, "
        "after checking its gradients against the float64 reference.",
    )
    add_workload_options(run, RunConfig)
    run.add_argument("--batch-size", type=positive_int, help=f"mini-batch size (default: {RunConfig.batch_size})")
    run.add_argument("--sizes", type=sizes, help="layer widths (default: 784,30,10)")
    run.add_argument("--out", type=Path, metavar="PATH", help="results JSON (default: results/run-<time>.json)")
    run.add_argument(
        "--resume",
        type=Path,
        metavar="PATH",
        help="continue an interrupted run: keep its finished kernels, rerun the others (writes back to PATH)",
    )
    run.set_defaults(handler=handle)


def note_unavailable(requested: list[str] | None, err: Console) -> None:
    """Say which built-in kernels a run without --impl skips, and why (once its options are known to be good)."""
    if requested is None:
        for name, reason in implementations.registry.unavailable().items():
            err.print(f"note: {name} is not available ({reason}); skipped", markup=False, highlight=False)


def _config(args: argparse.Namespace, previous: dict | None) -> RunConfig:
    """Return the run's configuration: the options given, or the resumed run's (which they must match)."""
    names = [f.name for f in fields(RunConfig)]
    options = given(args, RunConfig)
    if previous is None:
        return RunConfig(**{**options, "impls": select_kernels(options.get("impls"))})
    stored = previous.get("config")
    if not isinstance(stored, dict) or set(stored) != set(names):
        raise BenchError(f"{args.resume}: its configuration does not match this version's options; cannot resume")
    for name, value in options.items():
        if stored[name] != value:
            raise BenchError(
                f"--resume {args.resume}: configuration mismatch: the run used {name}={stored[name]!r}, "
                f"this command gives {value!r}"
            )
    select_kernels(stored["impls"])
    return RunConfig(**stored)


def handle(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run ``backprop-bench run``; return its exit status."""
    from bench.cli.progress import RichReporter
    from bench.cli.summary import run_table, warning_lines
    from bench.results.files import check_writable, read_run

    previous = read_run(args.resume) if args.resume else None
    config = _config(args, previous)
    path = check_writable(args.out or args.resume or default_out_path())
    data = load_checked(config)
    note_unavailable(args.impls if previous is None else config.impls, err)
    try:
        with sigterm_interrupts(), RichReporter(err) as reporter:
            document, status = execute(config, path, reporter, data=data, previous=previous)
    except KeyboardInterrupt as exc:
        where = getattr(exc, "where", None)
        if getattr(exc, "document", None) is None:
            err.print("interrupted before any kernel ran; nothing to save", markup=False, highlight=False)
        else:
            entry = next((e for e in exc.document["implementations"] if e["name"] == where), None)
            done = f" in {where} after {len(entry['epoch_seconds'])} of {config.epochs} epochs" if entry else ""
            err.print(
                f"interrupted{done}: results so far saved to {path}; continue with: backprop-bench run --resume {path}",
                markup=False,
                highlight=False,
            )
        return interrupted_status(exc)
    out.print(run_table(document))
    for line in warning_lines(document):
        err.print(line, markup=False, highlight=False)
    err.print(f"results saved to {path}", markup=False, highlight=False)
    return status
