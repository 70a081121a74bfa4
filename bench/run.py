"""``backprop-bench run``: load the data, run the harness over the chosen kernels, save results.

The results file is rewritten (atomically) after every kernel, so a crash or an
interrupt never costs the kernels already measured.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path

import numpy as np

import implementations
from bench.data import Dataset, load_dataset
from bench.errors import BenchError
from bench.harness import FD_RTOL, KernelResult, Reporter, RunConfig, prepare, reference_check, run_kernel
from bench.machine import machine_info, pinned_threads
from bench.results import KIND, SCHEMA, write_atomic
from bench.roof import measure_roof

EXIT_OK, EXIT_KERNEL_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def default_out_path() -> Path:
    """Return results/run-YYYYmmdd-HHMMSS.json under the current folder."""
    return Path("results") / f"run-{dt.datetime.now():%Y%m%d-%H%M%S}.json"


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


def _now() -> str:
    """Return the current UTC time in ISO 8601, to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def new_document(config: RunConfig) -> dict:
    """Return an empty results document for ``config``."""
    return {
        "schema": SCHEMA,
        "kind": KIND,
        "created": _now(),
        "config": asdict(config),
        "machine": None,
        "reference_check": None,
        "unavailable": implementations.unavailable(),
        "implementations": [],
    }


FINISHED = ("ok", "parity-failed", "error", "diverged")


def stamp(document: dict, config) -> float:
    """Record the machine, its roof and the reference's finite-difference check; return that check's error.

    ``config`` is a run's or a sweep's configuration: only its ``dtype`` and ``seed`` are read.

    Call it inside ``pinned_threads(config.threads)``, so the thread counts recorded are the run's.
    """
    document["machine"] = machine_info()
    document["roof"] = measure_roof(config.dtype)
    fd_error = reference_check(config.seed)
    document["reference_check"] = {"finite_difference_max_rel_error": fd_error, "rtol": FD_RTOL}
    return fd_error


def _finished(document: dict | None) -> dict[str, dict]:
    """Return {name: entry} for the kernels of a previous run that need not run again."""
    if document is None:
        return {}
    return {e["name"]: e for e in document["implementations"] if e.get("status") in FINISHED}


def execute(
    config: RunConfig,
    out: Path,
    reporter: Reporter,
    data: Dataset | None = None,
    previous: dict | None = None,
) -> tuple[dict, int]:
    """Return (results document, exit status) after running every kernel of ``config``.

    With ``previous`` (an interrupted run of the same configuration), its finished
    kernels are kept and the others are run again from their start. On
    KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the CLI) the document is
    saved with the unfinished kernels marked ``interrupted`` and the exception
    propagates, carrying ``.document`` and ``.where`` (the kernel it stopped in).
    """
    data = data if data is not None else load_dataset(config.dataset, config.data_dir, config.verify_data)
    validate(config, data)
    kept = _finished(previous)
    document = new_document(config)
    if previous is not None:
        document["created"] = previous.get("created")
        document["resumed"] = [*previous.get("resumed", []), _now()]
    document["data_source"] = str(data.source)
    document["n_train"] = len(data.train_images) if config.train_limit is None else config.train_limit
    with pinned_threads(config.threads):
        fd_error = stamp(document, config)
        if not fd_error <= FD_RTOL:
            for name in config.impls:
                message = f"the reference failed its finite-difference check ({fd_error:.2e} > {FD_RTOL:.0e})"
                document["implementations"].append(KernelResult(name, "parity-failed", message).to_json())
            write_atomic(out, document)
            return document, EXIT_KERNEL_FAILED
        results = {name: kept.get(name, KernelResult(name, "pending").to_json()) for name in config.impls}
        document["implementations"] = list(results.values())
        write_atomic(out, document)
        work = prepare(config, data) if len(kept) < len(results) else None
        name = None
        try:
            for name in config.impls:
                if name in kept:
                    continue
                results[name] = run_kernel(name, work, config, reporter).to_json()
                document["implementations"] = list(results.values())
                write_atomic(out, document)
        except KeyboardInterrupt as exc:
            partial = getattr(exc, "result", None)
            if partial is not None:
                results[partial.name] = partial.to_json()
            for key, entry in results.items():
                if entry["status"] == "pending":
                    results[key] = KernelResult(key, "interrupted", "not started").to_json()
            document["implementations"] = list(results.values())
            write_atomic(out, document)
            exc.document, exc.where = document, name
            raise
    all_ok = all(entry["status"] == "ok" for entry in document["implementations"])
    return document, EXIT_OK if all_ok else EXIT_KERNEL_FAILED
