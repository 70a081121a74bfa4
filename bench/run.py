"""``backprop-bench run``: load the data, run the harness over the chosen kernels, save results.

The results file is rewritten (atomically) after every kernel, so a crash or an
interrupt never costs the kernels already measured.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path

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


def new_document(config: RunConfig) -> dict:
    """Return an empty results document for ``config``."""
    return {
        "schema": SCHEMA,
        "kind": KIND,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config": asdict(config),
        "machine": None,
        "reference_check": None,
        "unavailable": implementations.unavailable(),
        "implementations": [],
    }


def execute(config: RunConfig, out: Path, reporter: Reporter, data: Dataset | None = None) -> tuple[dict, int]:
    """Return (results document, exit status) after running every kernel of ``config``.

    On KeyboardInterrupt the document is saved with the unfinished kernel marked
    ``interrupted`` and the exception propagates (``.document`` holds what was saved).
    """
    data = data if data is not None else load_dataset(config.dataset, config.data_dir, config.verify_data)
    validate(config, data)
    document = new_document(config)
    document["data_source"] = str(data.source)
    with pinned_threads(config.threads):
        document["machine"] = machine_info()
        document["roof"] = measure_roof(config.dtype)
        fd_error = reference_check(config.seed)
        document["reference_check"] = {"finite_difference_max_rel_error": fd_error, "rtol": FD_RTOL}
        write_atomic(out, document)
        if not fd_error <= FD_RTOL:
            for name in config.impls:
                message = f"the reference failed its finite-difference check ({fd_error:.2e} > {FD_RTOL:.0e})"
                document["implementations"].append(KernelResult(name, "parity-failed", message).to_json())
            write_atomic(out, document)
            return document, EXIT_KERNEL_FAILED
        work = prepare(config, data)
        try:
            for name in config.impls:
                result = run_kernel(name, work, config, reporter)
                document["implementations"].append(result.to_json())
                write_atomic(out, document)
        except KeyboardInterrupt as exc:
            done = {entry["name"] for entry in document["implementations"]}
            partial = getattr(exc, "result", None)
            if partial is not None:
                document["implementations"].append(partial.to_json())
                done.add(partial.name)
            for name in config.impls:
                if name not in done:
                    document["implementations"].append(KernelResult(name, "interrupted", "not started").to_json())
            write_atomic(out, document)
            exc.document = document
            raise
    all_ok = all(entry["status"] == "ok" for entry in document["implementations"])
    return document, EXIT_OK if all_ok else EXIT_KERNEL_FAILED
