"""``backprop-bench sweep``: epoch time against batch size and against hidden width.

A sweep is a grid of small runs through the same parity-checking harness as
``backprop-bench run`` (every kernel is compiled, checked against the reference
and only then timed, at every point). Two lines through the grid are measured:
batch sizes at the base width, and hidden widths ([784, width, 10]) at the base
batch size; the point where they cross is measured once.

The results file has the envelope of a run file (``schema``, ``kind`` =
``"backprop-bench sweep"``, ``created``, ``config``, ``machine``, ``roof``,
``reference_check``, ``unavailable``, ``data_source``) and, instead of
``implementations``, a list ``points``: one object per grid point with
``batch_size``, ``width``, ``sizes``, ``n_train``, ``epoch_flops`` and
``implementations`` (the same per-kernel entries as a run file). It is rewritten
atomically after every point.

It is not a substitute for ``run``: its training subsets are small and its
accuracies mean little; only its times are meant to be compared.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

import implementations
from bench.argtypes import integer, positive_float, positive_int
from bench.data import DATASETS, Dataset, load_dataset
from bench.errors import BenchError
from bench.flops import epoch_flops
from bench.harness import FD_RTOL, KernelResult, RunConfig, SilentReporter, prepare, run_kernel
from bench.machine import pinned_threads
from bench.results import SCHEMA, check_document, check_writable, read_json, write_atomic
from bench.run import EXIT_INTERRUPTED, EXIT_KERNEL_FAILED, EXIT_OK, stamp, validate

KIND = "backprop-bench sweep"


@dataclass
class SweepConfig:
    """Every option of a sweep; stored verbatim in the results file's ``config``."""

    impls: list[str]
    batch_sizes: list[int] = field(default_factory=lambda: [1, 10, 100, 1000])
    widths: list[int] = field(default_factory=lambda: [30, 100, 300, 1000])
    base_batch_size: int = 100
    base_width: int = 30
    # 5000 images keep the slowest point (loop at width 1000, ~1 ms per example on one
    # core) near five seconds per epoch, so the default sweep takes a minute or two.
    train_limit: int | None = 5000
    epochs: int = 2
    eta: float = 3.0
    seed: int = 1
    dataset: str = "mnist"
    data_dir: str | None = None
    dtype: str = "float64"
    threads: int | None = None
    verify_data: bool = True

    def grid(self) -> list[tuple[int, int]]:
        """Return the (batch_size, width) points to measure, batch line first, without repeats."""
        points = [(b, self.base_width) for b in self.batch_sizes]
        points += [(self.base_batch_size, w) for w in self.widths]
        return list(dict.fromkeys(points))

    def run_config(self, batch_size: int, width: int) -> RunConfig:
        """Return the RunConfig of one grid point."""
        return RunConfig(
            impls=self.impls,
            sizes=[784, width, 10],
            epochs=self.epochs,
            batch_size=batch_size,
            eta=self.eta,
            seed=self.seed,
            train_limit=self.train_limit,
            dataset=self.dataset,
            data_dir=self.data_dir,
            dtype=self.dtype,
            threads=self.threads,
            verify_data=self.verify_data,
        )


class _PointReporter(SilentReporter):
    """Print one line per kernel and grid point (the harness's Reporter protocol)."""

    def __init__(self, console: Console):
        self.console, self.point = console, ""

    def kernel_done(self, result: KernelResult) -> None:
        times = sorted(result.epoch_seconds)
        timing = f"{times[len(times) // 2]:.4f} s/epoch" if result.status == "ok" and times else ""
        self.console.print(f"{self.point:<22} {result.name:<12} {result.status:<14} {timing}", markup=False)


def execute_sweep(config: SweepConfig, out: Path, reporter=None, data: Dataset | None = None) -> tuple[dict, int]:
    """Return (sweep document, exit status) after measuring every kernel at every grid point."""
    reporter = reporter if reporter is not None else SilentReporter()
    data = data if data is not None else load_dataset(config.dataset, config.data_dir, config.verify_data)
    grid = config.grid()
    for batch_size, width in grid:
        validate(config.run_config(batch_size, width), data)
    n_train = config.train_limit if config.train_limit is not None else len(data.train_images)
    document = {
        "schema": SCHEMA,
        "kind": KIND,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config": asdict(config),
        "machine": None,
        "roof": None,
        "reference_check": None,
        "unavailable": implementations.unavailable(),
        "data_source": str(data.source),
        "points": [],
    }
    with pinned_threads(config.threads):
        fd_error = stamp(document, config)
        if not fd_error <= FD_RTOL:
            write_atomic(out, document)
            raise BenchError(f"the reference failed its finite-difference check ({fd_error:.2e} > {FD_RTOL:.0e})")
        for batch_size, width in grid:
            run_config = config.run_config(batch_size, width)
            point = {
                "batch_size": batch_size,
                "width": width,
                "sizes": run_config.sizes,
                "n_train": n_train,
                "epoch_flops": epoch_flops(run_config.sizes, n_train),
                "implementations": [],
            }
            document["points"].append(point)
            if hasattr(reporter, "point"):
                reporter.point = f"batch {batch_size}, width {width}"
            work = prepare(run_config, data)
            for name in config.impls:
                point["implementations"].append(run_kernel(name, work, run_config, reporter).to_json())
                write_atomic(out, document)
    entries = [e for p in document["points"] for e in p["implementations"]]
    return document, EXIT_OK if all(e["status"] == "ok" for e in entries) else EXIT_KERNEL_FAILED


def read_sweep(path: str | Path, document: dict | None = None) -> dict:
    """Return a sweep document (parsed from ``path`` unless given), or raise BenchError naming the file."""
    return check_document(read_json(path) if document is None else document, path, KIND, "points")


def _int_list(text: str) -> list[int]:
    try:
        return [positive_int(part) for part in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None


def add_parser(commands) -> None:
    """Add the ``sweep`` subcommand to the CLI."""
    base = SweepConfig(impls=[])
    sweep = commands.add_parser(
        "sweep",
        help="time every kernel across batch sizes and hidden widths, save a sweep file",
        description="Measure epoch time against batch size (at the base width) and against the hidden width "
        "of [784, width, 10] (at the base batch size), parity-checking every kernel at every point.",
    )
    sweep.add_argument("--impl", action="append", metavar="NAME", help="kernel (repeatable; default: all available)")
    sweep.add_argument("--batch-sizes", type=_int_list, default=base.batch_sizes, help="default: 1,10,100,1000")
    sweep.add_argument("--widths", type=_int_list, default=base.widths, help="default: 30,100,300,1000")
    sweep.add_argument("--base-batch-size", type=positive_int, default=base.base_batch_size, help="default: 100")
    sweep.add_argument("--base-width", type=positive_int, default=base.base_width, help="default: 30")
    sweep.add_argument("--epochs", type=positive_int, default=base.epochs, help="epochs per point (default: 2)")
    sweep.add_argument(
        "--train-limit", type=positive_int, default=base.train_limit, metavar="N", help="images (default: 5000)"
    )
    sweep.add_argument("--full", action="store_true", help="use every training image (overrides --train-limit)")
    sweep.add_argument("--eta", type=positive_float, default=base.eta, help="learning rate (default: 3.0)")
    sweep.add_argument("--seed", type=integer, default=base.seed, help="seed of the initial parameters (default: 1)")
    sweep.add_argument("--dataset", choices=DATASETS, default=base.dataset, help="default: %(default)s")
    sweep.add_argument("--data-dir", metavar="DIR", help="folder with the four IDX files (default: the shipped copy)")
    sweep.add_argument("--no-verify", action="store_true", help="skip the sha256 check of the data files")
    sweep.add_argument("--dtype", choices=implementations.DTYPES, default=base.dtype, help="default: %(default)s")
    sweep.add_argument("--threads", type=positive_int, metavar="N", help="pin BLAS and Numba to N threads")
    sweep.add_argument("--out", type=Path, metavar="PATH", help="sweep JSON (default: results/sweep-<time>.json)")
    sweep.set_defaults(handler=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace, out: Console, err: Console) -> int:
    from bench.cmd_run import select_impls

    config = SweepConfig(
        impls=select_impls(args.impl, err),
        batch_sizes=args.batch_sizes,
        widths=args.widths,
        base_batch_size=args.base_batch_size,
        base_width=args.base_width,
        train_limit=None if args.full else args.train_limit,
        epochs=args.epochs,
        eta=args.eta,
        seed=args.seed,
        dataset=args.dataset,
        data_dir=args.data_dir,
        dtype=args.dtype,
        threads=args.threads,
        verify_data=not args.no_verify,
    )
    path = check_writable(args.out or Path("results") / f"sweep-{dt.datetime.now():%Y%m%d-%H%M%S}.json")
    try:
        _, status = execute_sweep(config, path, _PointReporter(err))
    except KeyboardInterrupt:
        err.print(f"interrupted: points so far saved to {path}", markup=False, highlight=False)
        return EXIT_INTERRUPTED
    err.print(f"sweep saved to {path}", markup=False, highlight=False)
    return status
