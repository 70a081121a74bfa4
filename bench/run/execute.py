"""Execute a run or a sweep: load the data, check and time every kernel, save the results file.

The results file is rewritten (atomically) after every kernel, so a crash or an
interrupt never costs the kernels already measured. Nothing here parses options or
prints: the commands in :mod:`bench.cli` do that.

A sweep file has the envelope of a run file and, instead of ``implementations``, a
list ``points``: one object per grid point with ``batch_size``, ``width``,
``sizes``, ``n_train``, ``epoch_flops`` and ``implementations`` (the same per-kernel
entries as a run file). It is not a substitute for ``run``: its training subsets
are small and its accuracies mean little; only its times are meant to be compared.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path

import numpy as np

import implementations
from bench.errors import EXIT_FAILED, EXIT_OK, BenchError
from bench.flops import epoch_flops
from bench.results.files import RUN_KIND, SWEEP_KIND, envelope, now, write_atomic
from bench.results.schema import KernelResult
from bench.run.config import RunConfig, SweepConfig
from bench.run.cpus import usable_cpus
from bench.run.data import Dataset, load_dataset
from bench.run.harness import Reporter, SilentReporter
from bench.run.machine import machine_info, pinned_threads
from bench.run.parent import run_in_worker
from bench.run.probe import FD_RTOL, reference_check
from bench.run.roof import measure_roof, measure_scipy_roof
from bench.run.trajectory import ensure_reference


def default_out_path(prefix: str = "run") -> Path:
    """Return results/<prefix>-YYYYmmdd-HHMMSS.json under the current folder."""
    return Path("results") / f"{prefix}-{dt.datetime.now():%Y%m%d-%H%M%S}.json"


def validate(config: RunConfig, data: Dataset) -> None:
    """Raise BenchError when the configuration does not fit the data."""
    if config.sizes[0] != data.n_inputs:
        raise BenchError(f"--sizes starts with {config.sizes[0]} inputs, but {data.name} images have {data.n_inputs}")
    if config.sizes[-1] != 10:
        raise BenchError(f"--sizes ends with {config.sizes[-1]} outputs, but {data.name} has 10 classes")
    n_train = len(data.train_images)
    if config.train_limit is not None and config.train_limit > n_train:
        raise BenchError(f"--train-limit {config.train_limit} exceeds the {n_train} training images of {data.name}")
    needed, available = memory_needed(config, data), available_memory()
    if available is not None and needed > available:
        raise BenchError(
            f"this configuration needs about {needed / 2**30:.1f} GiB of memory "
            f"(--sizes {','.join(map(str, config.sizes))}, --batch-size {config.batch_size}), "
            f"but only {available / 2**30:.1f} GiB is available"
        )


def select_kernels(requested: list[str] | None) -> list[str]:
    """Return the kernel specs to run: every listed kernel when none is requested, else the requested ones.

    Built-in names are checked without importing the kernel (the parent never loads a
    framework it does not time); a file, module or ``nielsen:`` spec is resolved here, so
    that a missing file or a syntax error is one line before anything runs. Raises
    UnknownImplementation for an unknown or unusable name.
    """
    registry = implementations.registry
    if requested is None:
        return registry.names()
    for spec in requested:
        if spec not in registry:
            registry.resolve(spec)
        elif (reason := registry.why_not(spec)) is not None:
            raise implementations.UnknownImplementation(f"implementation {spec!r} is not available here ({reason})")
    return list(dict.fromkeys(requested))


def load_checked(config: RunConfig | SweepConfig) -> Dataset:
    """Return the run's or sweep's data set once the configuration is known to fit it, else raise BenchError."""
    data = load_dataset(config.dataset, config.data_dir, config.verify_data)
    runs = [config] if isinstance(config, RunConfig) else [config.run_config(b, w) for b, w in config.grid()]
    for run in runs:
        validate(run, data)
    return data


def available_memory() -> int | None:
    """Return the bytes of memory available to this process (Linux MemAvailable), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_needed(config: RunConfig, data: Dataset) -> int:
    """Return a generous estimate of the peak bytes one kernel's training needs.

    Counted: the training and test inputs in the run's dtype, about eight copies of
    the parameters (parameters, gradients, per-example gradients, the reference's
    probe copies, a fused kernel's flat buffers) and the activations and errors of
    a mini-batch (three buffers per layer).
    """
    itemsize = np.dtype(config.dtype).itemsize
    n_train = len(data.train_images) if config.train_limit is None else config.train_limit
    n_params = sum(i * o + o for i, o in zip(config.sizes[:-1], config.sizes[1:]))
    batch = min(config.batch_size, n_train)
    inputs = (n_train + len(data.test_images)) * (config.sizes[0] + config.sizes[-1])
    return itemsize * (inputs + 8 * n_params + 3 * batch * sum(config.sizes))


def _shown(path: Path) -> str:
    """Return ``path`` relative to the current folder when it lies below it (no machine's folders in results)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def new_document(kind: str, config: RunConfig | SweepConfig, data: Dataset) -> dict:
    """Return an empty results document of ``kind`` for ``config``."""
    entries = "implementations" if kind == RUN_KIND else "points"
    return {
        **envelope(kind, asdict(config)),
        "machine": None,
        "roof": None,
        "reference_check": None,
        "unavailable": implementations.registry.unavailable(),
        "data_source": _shown(data.source),
        entries: [],
    }


FINISHED = ("ok", "parity-failed", "mismatch", "error", "diverged", "crashed", "timeout")


def stamp(document: dict, config) -> float:
    """Record the machine, its roof and the reference's finite-difference check; return that check's error.

    ``config`` is a run's or a sweep's configuration: only its ``dtype`` and ``seed`` are read.

    Call it inside ``pinned_threads(config.threads)``, so the thread counts recorded are the run's.
    """
    document["machine"] = machine_info()
    document["roof"] = measure_roof(config.dtype)
    # Numba's np.dot calls SciPy's BLAS, which may be another build than NumPy's: give its roof too.
    document["roof_scipy"] = measure_scipy_roof(config.dtype)
    fd_error = reference_check(config.seed)
    document["reference_check"] = {"finite_difference_max_rel_error": fd_error, "rtol": FD_RTOL}
    return fd_error


def _finished(document: dict | None) -> dict[str, dict]:
    """Return {spec: entry} for the kernels of a previous run that need not run again.

    Entries follow the order of ``config.impls``, the specs as given (a file path's entry
    is named after its kernel, not its path).
    """
    if document is None:
        return {}
    pairs = zip(document["config"]["impls"], document["implementations"])
    return {spec: entry for spec, entry in pairs if entry.get("status") in FINISHED}


def check_resumable(previous: dict, config: RunConfig) -> None:
    """Raise BenchError when ``previous`` was measured on another machine or under another thread setting."""
    here, there = machine_info(), previous.get("machine") or {}
    for key in ("hostname", "cpu_model", "usable_cores"):
        if there.get(key) != here.get(key):
            raise BenchError(
                f"cannot resume a run measured on another machine ({key} {there.get(key)!r}, here {here.get(key)!r}): "
                "its timings would not compare with this machine's"
            )
    threads_then = (previous.get("threads") or {}).get("effective")
    threads_now = config.threads or usable_cpus()
    if threads_then is not None and threads_then != threads_now:
        raise BenchError(f"cannot resume a run measured with {threads_then} threads under {threads_now} threads")


def execute(
    config: RunConfig,
    out: Path,
    reporter: Reporter,
    data: Dataset | None = None,
    previous: dict | None = None,
) -> tuple[dict, int]:
    """Return (results document, exit status) after running every kernel of ``config``, each in its own worker.

    With ``previous`` (an interrupted run of the same configuration, on this machine),
    its finished kernels are kept and the others are run again from their start. On
    KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the CLI) the worker is
    stopped, the document is saved with the unfinished kernels marked ``interrupted``
    and the exception propagates, carrying ``.document`` and ``.where`` (the kernel
    it stopped in).
    """
    data = data if data is not None else load_checked(config)
    if previous is not None:
        check_resumable(previous, config)
    kept = _finished(previous)
    document = new_document(RUN_KIND, config, data)
    if previous is not None:
        document["created"] = previous.get("created")
        document["resumed"] = [*previous.get("resumed", []), now()]
    document["n_train"] = len(data.train_images) if config.train_limit is None else config.train_limit
    document["threads"] = {"requested": config.threads, "effective": config.threads or usable_cpus()}
    with pinned_threads(config.threads or usable_cpus()):
        fd_error = stamp(document, config)
    if not fd_error <= FD_RTOL:
        for spec in config.impls:
            message = f"the reference failed its finite-difference check ({fd_error:.2e} > {FD_RTOL:.0e})"
            document["implementations"].append(KernelResult(spec, "parity-failed", message).to_json())
        write_atomic(out, document)
        return document, EXIT_FAILED
    # Once, outside every timing and before any worker: the reference's trajectory that each
    # timed epoch is checked against (loaded from the cache when an earlier run made it).
    document["reference_trajectory"] = ensure_reference(config, data).to_json()
    results = {spec: kept.get(spec, KernelResult(spec, "pending").to_json()) for spec in config.impls}
    document["implementations"] = list(results.values())
    write_atomic(out, document)
    spec = None
    try:
        for spec in config.impls:
            if spec in kept:
                continue
            results[spec] = run_in_worker(spec, config, reporter).to_json()
            document["implementations"] = list(results.values())
            write_atomic(out, document)
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "result", None)
        if partial is not None:
            results[spec] = partial.to_json()
        for key, entry in results.items():
            if entry["status"] == "pending":
                results[key] = KernelResult(entry["name"], "interrupted", "not started").to_json()
        document["implementations"] = list(results.values())
        write_atomic(out, document)
        exc.document, exc.where = document, results[spec]["name"] if spec else None
        raise
    all_ok = all(entry["status"] == "ok" for entry in document["implementations"])
    return document, EXIT_OK if all_ok else EXIT_FAILED


class _PointReporter(SilentReporter):
    """Pass kernel_done on to the caller's reporter with the grid point attached."""

    def __init__(self, reporter, point: str):
        self.reporter, self.point = reporter, point

    def kernel_done(self, result: KernelResult) -> None:
        point_done = getattr(self.reporter, "point_done", None)
        if point_done is not None:
            point_done(self.point, result)


def execute_sweep(config: SweepConfig, out: Path, reporter=None, data: Dataset | None = None) -> tuple[dict, int]:
    """Return (sweep document, exit status) after measuring every kernel at every grid point, each in a worker.

    ``reporter`` may define ``point_done(point: str, result: KernelResult)``, called after each kernel.
    """
    reporter = reporter if reporter is not None else SilentReporter()
    data = data if data is not None else load_checked(config)
    grid = config.grid()
    n_train = config.train_limit if config.train_limit is not None else len(data.train_images)
    document = new_document(SWEEP_KIND, config, data)
    document["threads"] = {"requested": config.threads, "effective": config.threads or usable_cpus()}
    with pinned_threads(config.threads or usable_cpus()):
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
            "epoch_flops": epoch_flops(run_config.sizes, n_train, batch_size),
            "implementations": [],
        }
        document["points"].append(point)
        point["reference_trajectory"] = ensure_reference(run_config, data).to_json()
        point_reporter = _PointReporter(reporter, f"batch {batch_size}, width {width}")
        for spec in config.impls:
            point["implementations"].append(run_in_worker(spec, run_config, point_reporter).to_json())
            write_atomic(out, document)
    entries = [e for p in document["points"] for e in p["implementations"]]
    return document, EXIT_OK if all(e["status"] == "ok" for e in entries) else EXIT_FAILED
