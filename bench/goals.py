"""``backprop-bench goals``: the fast-kernel goals, measured side by side in one process.

For each thread setting and dtype it measures the machine's roof (a large GEMM,
same dtype and threads), then times one full-MNIST epoch of every kernel at
batch sizes 100 and 10, interleaved (A B C A B C ...) so that drift in the
machine's speed hits every kernel alike; per-example SGD (batch size 1) of
``numba`` against ``loop`` on a subset; and, in a fresh process, how long Numba
takes to load its compiled kernels from the on-disk cache. Every timed epoch goes
through the run harness, so it is parity-checked against the float64 reference
first and a disagreeing kernel is reported, never timed.

The goals (issue 6): (1) the fastest kernel within 1.5x the roof's time per epoch;
(2) numba at most 0.8x the faster of torch and jax at batch sizes 100 and 10;
(3) numba at batch size 1 at least 30x faster than loop; (4) warm-up from cache at
most 0.5 s; (5) all of it with one thread and with two.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace

import implementations
from bench.config import RunConfig
from bench.data import load_dataset
from bench.flops import epoch_flops
from bench.harness import SilentReporter
from bench.machine import blas_info, machine_info, numba_info, pinned_threads
from bench.results import GOALS_KIND, SCHEMA
from bench.roof import measure_roof
from bench.spawn import run_in_worker

KERNELS = ("numba", "numba-parallel", "vectorized", "torch", "jax")
NUMBA = ("numba", "numba-parallel", "numba-fastmath")
# numba-fastmath differs from numba only at batch size 1, so it is timed only there.
PER_EXAMPLE = ("numba", "numba-fastmath", "loop")
PEERS = ("torch", "jax")
BATCH_SIZES = (100, 10)
PER_EXAMPLE_SUBSET = 3_000
_WARM_UP_PROBE = """
import time, implementations
start = time.perf_counter()
for name in ("numba", "numba-parallel"):
    for dtype in ("float64", "float32"):
        implementations.get(name).warm_up([784, 30, 10], dtype)
print(time.perf_counter() - start)
"""


def _epoch_times(names: list[str], config: RunConfig, rounds: int) -> dict[str, dict]:
    """Return {name: {"status", "seconds": [...]}}: ``rounds`` epochs of each kernel, each kernel in its own worker.

    Every worker goes through the run harness (warm-up, prepare, parity probe) before it times anything.
    """
    out = {}
    for name in names:
        result = run_in_worker(name, replace(config, epochs=rounds), SilentReporter())
        seconds = result.epoch_seconds if result.status == "ok" else []
        out[name] = {"status": result.status, "seconds": seconds, "message": result.message}
        out[name]["delegates_to"] = result.delegates_to
        out[name]["threads"] = result.threads
    return out


def _cache_warm_up_seconds() -> float:
    """Return the seconds a fresh process takes to warm up the Numba kernels (from the cache)."""
    subprocess.run([sys.executable, "-c", _WARM_UP_PROBE], check=True, capture_output=True)  # fill the cache
    done = subprocess.run([sys.executable, "-c", _WARM_UP_PROBE], check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def measure(threads: list[int], dtypes: list[str], rounds: int, progress: Callable[[str], None]) -> dict:
    """Return the goals document: per setting, the roof and every kernel's epoch times and ratios."""
    data = load_dataset("mnist")
    names = [name for name in KERNELS if name in implementations.listed()]
    document = {"schema": SCHEMA, "kind": GOALS_KIND, "rounds": rounds, "settings": []}
    for n_threads in threads:
        with pinned_threads(n_threads):
            for dtype in dtypes:
                setting = {"threads": n_threads, "dtype": dtype, "roof": measure_roof(dtype), "epochs": []}
                setting["blas"], setting["numba"] = blas_info(), numba_info()
                roof_seconds = epoch_flops([784, 30, 10], len(data.train_images), 100) / 1e9 / setting["roof"]["gflops"]
                setting["roof_epoch_seconds"] = roof_seconds
                for batch_size in BATCH_SIZES:
                    progress(f"threads={n_threads} {dtype} batch {batch_size}: {', '.join(names)}")
                    config = RunConfig(impls=names, epochs=1, batch_size=batch_size, dtype=dtype, threads=n_threads)
                    for name, timing in _epoch_times(names, config, rounds).items():
                        setting["epochs"].append({"name": name, "batch_size": batch_size, **timing})
                per_example = [name for name in PER_EXAMPLE if name in implementations.listed()]
                names_1 = ", ".join(per_example)
                progress(f"threads={n_threads} {dtype} batch 1: {names_1} on {PER_EXAMPLE_SUBSET} images")
                config = RunConfig(
                    per_example, epochs=1, batch_size=1, dtype=dtype, train_limit=PER_EXAMPLE_SUBSET, threads=n_threads
                )
                setting["per_example"] = _epoch_times(per_example, config, max(1, rounds // 2))
                document["settings"].append(setting)
    document["machine"] = machine_info()
    progress("warm-up from the Numba cache in a fresh process")
    document["cache_warm_up_seconds"] = _cache_warm_up_seconds()
    return document


def _median(entry: dict) -> float | None:
    return statistics.median(entry["seconds"]) if entry.get("seconds") else None


def table_rows(document: dict) -> list[dict]:
    """Return one row per (setting, kernel, batch size): median ms, fraction of roof, ratio to the best peer."""
    rows = []
    for setting in document["settings"]:
        for batch_size in BATCH_SIZES:
            entries = [e for e in setting["epochs"] if e["batch_size"] == batch_size]
            peers = [m for e in entries if e["name"] in PEERS and (m := _median(e)) is not None]
            best_peer = min(peers) if peers else None
            for entry in entries:
                median = _median(entry)
                rows.append(
                    {
                        "kernel": entry["name"],
                        "dtype": setting["dtype"],
                        "threads": setting["threads"],
                        "batch_size": batch_size,
                        "median_epoch_ms": None if median is None else 1e3 * median,
                        "spread_ms": None if median is None else 1e3 * (max(entry["seconds"]) - min(entry["seconds"])),
                        "roof_multiple": None if median is None else median / setting["roof_epoch_seconds"],
                        "vs_best_peer": None if median is None or best_peer is None else median / best_peer,
                        "status": entry["status"],
                    }
                )
    return rows


def verdicts(document: dict) -> list[str]:
    """Return one line per goal and setting saying whether it was met, with the measured figure."""
    lines, rows = [], table_rows(document)
    for setting in document["settings"]:
        key = (setting["threads"], setting["dtype"])
        label = f"threads={key[0]} {key[1]}"
        mine = [r for r in rows if (r["threads"], r["dtype"]) == key and r["median_epoch_ms"] is not None]
        fastest = min((r for r in mine if r["batch_size"] == 100), key=lambda r: r["median_epoch_ms"], default=None)
        if fastest:
            ok = fastest["roof_multiple"] <= 1.5
            lines.append(
                f"goal 1 {label}: fastest {fastest['kernel']} at {fastest['roof_multiple']:.2f}x roof {_met(ok)}"
            )
        for batch_size in BATCH_SIZES:
            candidates = [r for r in mine if r["kernel"] in NUMBA and r["batch_size"] == batch_size]
            best = min(candidates, key=lambda r: r["median_epoch_ms"], default=None)
            if best and best["vs_best_peer"] is not None:
                ratio = best["vs_best_peer"]
                verdict = _met(ratio <= 0.8)
                lines.append(f"goal 2 {label} batch {batch_size}: {best['kernel']} {ratio:.2f}x best peer {verdict}")
        per_example = {name: _median(entry) for name, entry in setting["per_example"].items()}
        loop = per_example.pop("loop", None)
        timed = [(seconds, name) for name, seconds in per_example.items() if seconds]
        fastest_numba = min(timed) if timed else None
        if loop and fastest_numba:
            speedup = loop / fastest_numba[0]
            lines.append(
                f"goal 3 {label}: {fastest_numba[1]} {speedup:.1f}x faster than loop at batch 1 {_met(speedup >= 30)}"
            )
    warm = document["cache_warm_up_seconds"]
    lines.append(f"goal 4: warm-up from cache {warm:.2f} s {_met(warm <= 0.5)}")
    return lines


def _met(ok: bool) -> str:
    return "(met)" if ok else "(NOT met)"
