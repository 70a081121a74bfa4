"""``backprop-bench goals``: the fast-kernel goals, measured side by side on one machine in one command.

For each thread setting and dtype it measures the machine's dense roof (a large
GEMM, same dtype and threads), then times full-MNIST epochs of every kernel at
batch sizes 100 and 10, each kernel in its own worker with the setting's cores and
threads (median of ``rounds`` epochs); per-example SGD (batch size 1) of the Numba
kernels against ``loop`` on a subset; and, in a fresh process, how long the Numba
kernels take to load from the on-disk cache. Every timed epoch goes through the
run harness, so it is parity-checked against the float64 reference first and a
disagreeing kernel is reported, never timed. Finally, at batch 100 on one thread,
``numba`` against ``numba-sparse`` on synthetic inputs of chosen zero fractions,
to find the density where the dense kernel wins, and on each real data set that is
found here (MNIST, and Fashion-MNIST at about 50% zeros).

FLOPs are dense-equivalent (:func:`bench.flops.epoch_flops`), so a kernel that
skips zero inputs can exceed 100% of the dense roof; the multiply-adds such a
kernel actually does are given beside them (:func:`bench.flops.sparse_epoch_flops`).

The goals:

1. the fastest exact kernel takes at most 1.0x the dense roof's time per epoch at batch 100;
2. the best Numba kernel takes at most 0.5x the best of PyTorch (eager and compiled) and
   JAX, at batch 100 and at batch 10;
3. per-example SGD (batch 1) is at least 50x faster than ``loop``;
4. warm-up from the cache takes at most 0.5 s;
5. the dense ``numba`` kernel is at most 1.5x the roof on one core;
6. with two threads, the fastest kernel takes at most 0.6x its own one-core time.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace

import implementations
from bench.errors import BenchError, DataError
from bench.flops import epoch_flops, sparse_epoch_flops
from bench.results.files import GOALS_KIND, SCHEMA
from bench.run.config import RunConfig
from bench.run.data import load_dataset, resolve_data_dir, synthetic_name
from bench.run.harness import SilentReporter
from bench.run.machine import blas_info, machine_info, numba_info, pinned_threads
from bench.run.parent import run_in_worker
from bench.run.probe import FD_RTOL, reference_check
from bench.run.roof import measure_roof

SIZES = [784, 30, 10]
KERNELS = ("numba", "numba-sparse", "numba-parallel", "vectorized", "torch", "torch-compile", "jax")
NUMBA = ("numba", "numba-sparse", "numba-parallel", "numba-fastmath")
PER_EXAMPLE = ("numba", "numba-fastmath", "numba-sparse", "loop")
PEERS = ("torch", "torch-compile", "jax")
BATCH_SIZES = (100, 10)
PER_EXAMPLE_SUBSET = 3_000
# Zero fractions of the synthetic inputs (MNIST's is about 0.81); DENSITY_SUBSET images each.
ZERO_FRACTIONS = (0.0, 0.25, 0.5, 0.65, 0.81, 0.9)
DENSITY_SUBSET = 20_000
# Real data sets of other densities, timed whole when found (Fashion-MNIST is about 50% zeros).
DATASETS = ("mnist", "fashion-mnist")
TARGETS = {"roof": 1.0, "vs_peer": 0.5, "per_example": 50.0, "cache_s": 0.5, "numba_roof": 1.5, "two_threads": 0.6}
# Timed in a fresh process: importing Numba; Numba's first-use set-up (its typing and
# lowering registries, which also import SciPy's BLAS), which any Numba program pays once
# and which would otherwise land in the first kernel's load; then each kernel's own loads.
_WARM_UP_PROBE = """
import json, time
start = time.perf_counter()
import numba
seconds = {"import_numba": time.perf_counter() - start}
mark = time.perf_counter()
from numba.core.registry import cpu_target
cpu_target.typing_context.refresh()
cpu_target.target_context.refresh()
seconds["numba_setup"] = time.perf_counter() - mark
import implementations
for name in ("numba", "numba-parallel", "numba-fastmath", "numba-sparse"):
    if name in implementations.registry.names():
        mark = time.perf_counter()
        for dtype in ("float64", "float32"):
            implementations.get(name).warm_up([784, 30, 10], dtype)
        seconds[name] = time.perf_counter() - mark
seconds["total"] = time.perf_counter() - start
print(json.dumps(seconds))
"""


def _epoch_times(names: list[str], config: RunConfig, rounds: int) -> dict[str, dict]:
    """Return {name: {"status", "seconds", ...}}: ``rounds`` epochs of each kernel, each in its own worker.

    Every worker goes through the run harness (warm-up, prepare, parity probe) before it times anything.
    """
    out = {}
    for name in names:
        result = run_in_worker(name, replace(config, epochs=rounds), SilentReporter())
        out[name] = {
            "status": result.status,
            "seconds": result.epoch_seconds if result.status == "ok" else [],
            "message": result.message,
            "delegates_to": result.delegates_to,
            "threads": result.threads,
            "sparse_input": result.sparse_input,
            "input_density": result.input_density,
        }
    return out


def cache_warm_up() -> dict[str, float]:
    """Return the seconds a fresh process takes to warm up the Numba kernels from the cache, in parts.

    Keys: ``import_numba``, ``numba_setup``, one per Numba kernel (both dtypes), ``total`` (all of them).
    """
    subprocess.run([sys.executable, "-c", _WARM_UP_PROBE], check=True, capture_output=True)  # fill the cache
    done = subprocess.run([sys.executable, "-c", _WARM_UP_PROBE], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _setting(n_threads: int, dtype: str, rounds: int, n_train: int, progress: Callable[[str], None]) -> dict:
    """Return one setting's roof and its kernels' epoch times at batch 100, 10 and 1."""
    listed = implementations.registry.names()
    names = [name for name in KERNELS if name in listed]
    with pinned_threads(n_threads):
        setting = {"threads": n_threads, "dtype": dtype, "roof": measure_roof(dtype), "epochs": []}
        setting["blas"], setting["numba"] = blas_info(), numba_info()
    setting["roof_epoch_seconds"] = epoch_flops(SIZES, n_train, 100) / 1e9 / setting["roof"]["gflops"]
    for batch_size in BATCH_SIZES:
        progress(f"threads={n_threads} {dtype} batch {batch_size}: {', '.join(names)}")
        config = RunConfig(impls=names, epochs=1, batch_size=batch_size, dtype=dtype, threads=n_threads)
        for name, timing in _epoch_times(names, config, rounds).items():
            setting["epochs"].append({"name": name, "batch_size": batch_size, **timing})
    per_example = [name for name in PER_EXAMPLE if name in listed]
    progress(f"threads={n_threads} {dtype} batch 1: {', '.join(per_example)} on {PER_EXAMPLE_SUBSET} images")
    config = RunConfig(
        per_example, epochs=1, batch_size=1, dtype=dtype, train_limit=PER_EXAMPLE_SUBSET, threads=n_threads
    )
    setting["per_example"] = _epoch_times(per_example, config, max(1, rounds // 2))
    return setting


def density_sweep(dtype: str, rounds: int, progress: Callable[[str], None]) -> list[dict]:
    """Return numba and numba-sparse epoch times at batch 100, one thread, on synthetic inputs per zero fraction."""
    names = [name for name in ("numba", "numba-sparse") if name in implementations.registry.names()]
    points = []
    for zeros in ZERO_FRACTIONS:
        progress(f"density: {dtype}, {100 * zeros:.0f}% zero pixels: {', '.join(names)}")
        config = RunConfig(
            impls=names, epochs=1, dtype=dtype, threads=1, dataset=synthetic_name(zeros), train_limit=DENSITY_SUBSET
        )
        points.append({"zero_fraction": zeros, "dtype": dtype, "epochs": _epoch_times(names, config, rounds)})
    return points


def dataset_points(dtype: str, rounds: int, progress: Callable[[str], None]) -> list[dict]:
    """Return numba and numba-sparse full-set epoch times at batch 100, one thread, per real data set of DATASETS.

    A data set that cannot be found here is kept as a point with ``skipped`` (the reason) and no epochs.
    """
    names = [name for name in ("numba", "numba-sparse") if name in implementations.registry.names()]
    points = []
    for dataset in DATASETS:
        try:
            resolve_data_dir(dataset, None)
        except DataError as exc:
            points.append({"dataset": dataset, "dtype": dtype, "skipped": str(exc), "epochs": {}})
            continue
        progress(f"{dataset}: {dtype}, full training set: {', '.join(names)}")
        config = RunConfig(impls=names, epochs=1, dtype=dtype, threads=1, dataset=dataset)
        epochs = _epoch_times(names, config, rounds)
        # The harness counts the non-zero inputs of the training set it gave the sparse kernel.
        density = epochs.get("numba-sparse", {}).get("input_density")
        zero_fraction = None if density is None else 1.0 - density
        points.append({"dataset": dataset, "dtype": dtype, "zero_fraction": zero_fraction, "epochs": epochs})
    return points


def measure(
    threads: list[int], dtypes: list[str], rounds: int, progress: Callable[[str], None], density: bool = True
) -> dict:
    """Return the goals document: per setting the roof and every kernel's epoch times; the density sweep.

    First the reference is checked against central finite differences, as ``run`` does;
    raises BenchError when it fails (every figure would be checked against a wrong oracle).
    """
    fd_error = reference_check(seed=1)
    if not fd_error <= FD_RTOL:
        raise BenchError(f"the reference failed its finite-difference check ({fd_error:.2e} > {FD_RTOL:.0e})")
    n_train = len(load_dataset("mnist").train_images)
    document = {"schema": SCHEMA, "kind": GOALS_KIND, "rounds": rounds, "sizes": SIZES, "n_train": n_train}
    document["reference_check"] = {"finite_difference_max_rel_error": fd_error, "rtol": FD_RTOL}
    document["settings"] = [_setting(t, dtype, rounds, n_train, progress) for t in threads for dtype in dtypes]
    document["density"] = [p for dtype in dtypes for p in density_sweep(dtype, rounds, progress)] if density else []
    document["datasets"] = [p for dtype in dtypes for p in dataset_points(dtype, rounds, progress)] if density else []
    document["machine"] = machine_info()
    progress("warm-up from the Numba cache in a fresh process")
    document["cache_warm_up"] = cache_warm_up()
    document["cache_warm_up_seconds"] = document["cache_warm_up"]["total"]
    return document


def _median(entry: dict) -> float | None:
    return statistics.median(entry["seconds"]) if entry.get("seconds") else None


def table_rows(document: dict) -> list[dict]:
    """Return one row per (setting, kernel, batch size): median ms, roof multiple, GFLOP/s, ratio to the best peer.

    ``gflops`` is dense-equivalent; ``actual_gflops`` counts the multiply-adds a sparse-input
    kernel really does. A kernel that ran another's code (``delegates_to``) gets no ratio.
    """
    rows = []
    n_train = document.get("n_train", 60_000)
    for setting in document["settings"]:
        for batch_size in BATCH_SIZES:
            entries = [e for e in setting["epochs"] if e["batch_size"] == batch_size]
            peers = [m for e in entries if e["name"] in PEERS and (m := _median(e)) is not None]
            best_peer = min(peers) if peers else None
            dense = epoch_flops(SIZES, n_train, batch_size)
            for entry in entries:
                median = _median(entry)
                density = entry.get("input_density") if entry.get("sparse_input") else None
                actual = dense if density is None else sparse_epoch_flops(SIZES, n_train, batch_size, density)
                rows.append(
                    {
                        "kernel": entry["name"],
                        "dtype": setting["dtype"],
                        "threads": setting["threads"],
                        "batch_size": batch_size,
                        "sparse_input": bool(entry.get("sparse_input")),
                        "median_epoch_ms": None if median is None else 1e3 * median,
                        "spread_ms": None if median is None else 1e3 * (max(entry["seconds"]) - min(entry["seconds"])),
                        "roof_multiple": None if median is None else median / setting["roof_epoch_seconds"],
                        "gflops": None if median is None else dense / median / 1e9,
                        "actual_gflops": None if median is None else actual / median / 1e9,
                        "vs_best_peer": None if median is None or best_peer is None else median / best_peer,
                        "status": entry["status"],
                    }
                )
    return rows


def _fastest(rows: list[dict], batch_size: int, names: tuple[str, ...] | None = None) -> dict | None:
    timed = [r for r in rows if r["batch_size"] == batch_size and r["median_epoch_ms"] is not None]
    timed = [r for r in timed if names is None or r["kernel"] in names]
    return min(timed, key=lambda r: r["median_epoch_ms"], default=None)


def goal_figures(document: dict) -> list[dict]:
    """Return one figure per goal and setting: goal, threads, dtype, batch_size, kernel, value, unit, met.

    ``threads`` and ``dtype`` are None for goal 4 (measured once); ``batch_size`` is None
    but for goal 2. ``value`` is a multiple ("x") or seconds ("s").
    """
    figures, rows = [], table_rows(document)

    def add(goal: int, setting: tuple, kernel: str | None, value: float, unit: str, batch_size=None) -> None:
        threads, dtype = setting
        met = value >= TARGETS[_TARGET[goal]] if goal == 3 else value <= TARGETS[_TARGET[goal]]
        figures.append(
            {"goal": goal, "threads": threads, "dtype": dtype, "batch_size": batch_size, "kernel": kernel,
             "value": value, "unit": unit, "met": met}
        )  # fmt: skip

    for setting in document["settings"]:
        key = (setting["threads"], setting["dtype"])
        mine = [r for r in rows if (r["threads"], r["dtype"]) == key]
        fastest = _fastest(mine, 100)
        if fastest:
            add(1, key, fastest["kernel"], fastest["roof_multiple"], "x")
        for batch_size in BATCH_SIZES:
            best = _fastest(mine, batch_size, NUMBA)
            if best and best["vs_best_peer"] is not None:
                add(2, key, best["kernel"], best["vs_best_peer"], "x", batch_size)
        per_example = {name: _median(entry) for name, entry in setting["per_example"].items()}
        loop = per_example.pop("loop", None)
        timed = [(seconds, name) for name, seconds in per_example.items() if seconds]
        if loop and timed:
            seconds, name = min(timed)
            add(3, key, name, loop / seconds, "x")
        numba = _fastest(mine, 100, ("numba",))
        if key[0] == 1 and numba:
            add(5, key, "numba", numba["roof_multiple"], "x")
        one_core = [r for r in rows if (r["threads"], r["dtype"]) == (1, key[1])]
        if key[0] == 2 and fastest and one_core:
            alone = next((r for r in one_core if r["kernel"] == fastest["kernel"] and r["batch_size"] == 100), None)
            if alone and alone["median_epoch_ms"]:
                add(6, key, fastest["kernel"], fastest["median_epoch_ms"] / alone["median_epoch_ms"], "x")
    add(4, (None, None), None, document["cache_warm_up_seconds"], "s")
    return figures


# Which entry of TARGETS each goal is held to.
_TARGET = {1: "roof", 2: "vs_peer", 3: "per_example", 4: "cache_s", 5: "numba_roof", 6: "two_threads"}
_VERDICT = {
    1: "fastest {kernel} at {value:.2f}x roof",
    2: "{kernel} {value:.2f}x best peer",
    3: "{kernel} {value:.1f}x faster than loop at batch 1",
    5: "numba at {value:.2f}x roof",
    6: "{kernel} takes {value:.2f}x its one-core time",
}


def verdicts(document: dict) -> list[str]:
    """Return one line per goal and setting saying whether it was met, with the measured figure."""
    lines = []
    for f in goal_figures(document):
        if f["goal"] == 4:
            parts = document.get("cache_warm_up", {})
            own = [f"{name} {seconds:.2f}" for name, seconds in parts.items() if name != "total"]
            shown = f" ({', '.join(own)})" if own else ""
            lines.append(f"goal 4: warm-up from cache {f['value']:.2f} s{shown} {_met(f['met'])}")
            continue
        batch = f" batch {f['batch_size']}" if f["batch_size"] else ""
        text = _VERDICT[f["goal"]].format(**f)
        lines.append(f"goal {f['goal']} threads={f['threads']} {f['dtype']}{batch}: {text} {_met(f['met'])}")
    return lines + density_lines(document) + dataset_lines(document)


# The rows of goal_table: (goal, batch size, what, target).
_GOAL_ROWS = (
    (1, None, "fastest exact kernel / dense roof, batch 100", "<= 1.0x"),
    (2, 100, "best Numba kernel / best peer, batch 100", "<= 0.5x"),
    (2, 10, "best Numba kernel / best peer, batch 10", "<= 0.5x"),
    (3, None, "batch-1 SGD speed-up over loop", ">= 50x"),
    (5, None, "dense numba / roof, one core", "<= 1.5x"),
    (6, None, "fastest kernel, two threads / its one core", "<= 0.6x"),
)


def goal_table(document: dict) -> str:
    """Return the goals as a Markdown table: a row per goal, a column per setting, each cell kernel and figure."""
    figures = goal_figures(document)
    settings = list(dict.fromkeys((s["threads"], s["dtype"]) for s in document["settings"]))
    head = ["goal", "target", *(f"{t} thread{'s' * (t > 1)}, {d}" for t, d in settings)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for goal, batch_size, what, target in _GOAL_ROWS:
        cells = []
        for threads, dtype in settings:
            found = [
                f for f in figures
                if (f["goal"], f["threads"], f["dtype"], f["batch_size"]) == (goal, threads, dtype, batch_size)
            ]  # fmt: skip
            digits = 1 if goal == 3 else 2
            cells.append(
                f"{found[0]['kernel']} {found[0]['value']:.{digits}f}x{'' if found[0]['met'] else ' ✗'}"
                if found
                else "-"
            )
        lines.append(f"| {goal}. {what} | {target} | " + " | ".join(cells) + " |")
    warm = next(f for f in figures if f["goal"] == 4)
    cell = f"{warm['value']:.2f} s{'' if warm['met'] else ' ✗'}"
    lines.append(f"| 4. warm-up from the Numba cache | <= 0.5 s | {cell} |" + " |" * (len(settings) - 1))
    return "\n".join(lines) + "\n"


def density_lines(document: dict) -> list[str]:
    """Return one line per dtype: numba-sparse's time over numba's at each zero fraction, and where dense wins."""
    lines = []
    for dtype in dict.fromkeys(p["dtype"] for p in document.get("density", [])):
        ratios = []
        for point in (p for p in document["density"] if p["dtype"] == dtype):
            dense, sparse = _median(point["epochs"].get("numba", {})), _median(point["epochs"].get("numba-sparse", {}))
            if dense and sparse:
                ratios.append((point["zero_fraction"], sparse / dense))
        if ratios:
            shown = ", ".join(f"{100 * z:.0f}% zeros {r:.2f}x" for z, r in ratios)
            dense_wins = [z for z, r in ratios if r >= 1.0]
            where = (
                f"dense wins up to {100 * max(dense_wins):.0f}% zeros" if dense_wins else "sparse wins at every density"
            )
            lines.append(f"density {dtype}: numba-sparse / numba at batch 100: {shown}; {where}")
    return lines


def dataset_lines(document: dict) -> list[str]:
    """Return one line per real data set and dtype: its zero share and numba-sparse's time over numba's."""
    lines = []
    for point in document.get("datasets", []):
        label = f"{point['dataset']} {point['dtype']}"
        if point.get("skipped"):
            lines.append(f"{label}: not measured: {point['skipped']}")
            continue
        dense, sparse = _median(point["epochs"].get("numba", {})), _median(point["epochs"].get("numba-sparse", {}))
        if dense and sparse:
            winner = "sparse wins" if sparse < dense else "dense wins"
            lines.append(
                f"{label}: {100 * point['zero_fraction']:.0f}% zeros, numba-sparse / numba at batch 100 "
                f"{sparse / dense:.2f}x ({winner})"
            )
    return lines


def _met(ok: bool) -> str:
    return "(met)" if ok else "(NOT met)"
