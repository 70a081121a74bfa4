"""What ``goals`` measures, and the measuring: runs of settings, each setting's interleaved rounds, the cache.

A run measures every thread setting and dtype (:func:`measure_run`); :func:`measure`
makes ``runs`` independent runs, one after another, so that each verdict rests on more
than one (:mod:`bench.goals.verdicts`). Within a setting, each batch size is a set of
interleaved rounds with the roof beside the kernels (:func:`bench.goals.rounds.interleave`).
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
from bench.goals.rounds import ALONE, interleave
from bench.results.files import GOALS_KIND, SCHEMA
from bench.results.schema import KernelResult
from bench.run.config import RunConfig
from bench.run.data import load_dataset, resolve_data_dir, synthetic_name
from bench.run.machine import blas_info, machine_info, numba_info, pinned_threads
from bench.run.probe import FD_RTOL, reference_check

SIZES = [784, 30, 10]
KERNELS = ("numba", "numba-sparse", "numba-parallel", "vectorized", "torch", "torch-compile", "jax")
NUMBA = ("numba", "numba-sparse", "numba-parallel", "numba-fastmath")
PER_EXAMPLE = ("numba", "numba-fastmath", "numba-sparse", "loop")
PEERS = ("torch", "torch-compile", "jax")
BATCH_SIZES = (100, 10)
# Batch 1 on the first PER_EXAMPLE_SUBSET images, in as many rounds as the batches: on 3,000 images in
# half as many rounds, numba-sparse's float64 epoch (5 ms) took 5 and 8 ms in the two rounds of one run,
# and their median set goal 3's figure. 10,000 images also make an index (4.5 MB) that, like full
# MNIST's, does not fit in L2.
PER_EXAMPLE_SUBSET = 10_000
# Zero fractions of the synthetic inputs (MNIST's is about 0.81); DENSITY_SUBSET images each.
ZERO_FRACTIONS = (0.0, 0.25, 0.5, 0.65, 0.81, 0.9)
DENSITY_SUBSET = 20_000
# Real data sets of other densities, timed whole when found (Fashion-MNIST is about 50% zeros).
DATASETS = ("mnist", "fashion-mnist")
# What each goal is held to (bench.goals.verdicts._TARGET says which goal reads which); written into every file.
TARGETS = {
    "roof": 1.0,
    "roof_batch10": 1.3,
    "vs_peer": 0.5,
    "per_example": 50.0,
    "cache_s": 0.5,
    "numba_roof": 1.5,
    "two_threads": 0.6,
}
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


def _entry(result: KernelResult) -> dict:
    """Return what a goals file keeps of one kernel's rounds; ``seconds[r]`` was timed in round r."""
    threads = dict(result.threads or {})
    threads.pop("cores_used", None)  # its wall time includes the other kernels' turns: meaningless here
    return {
        "status": result.status,
        "seconds": result.epoch_seconds if result.status == "ok" else [],
        "message": result.message,
        "delegates_to": result.delegates_to,
        "threads": threads,
        "sparse_input": result.sparse_input,
        "input_density": result.input_density,
        "compile_seconds": result.compile_seconds,
    }


def _epoch_times(names: list[str], config: RunConfig, rounds: int, say: Callable[[str], None]) -> dict[str, dict]:
    """Return {name: entry}: ``rounds`` interleaved rounds of the kernels, without the roof."""
    timed = interleave(names, replace(config, epochs=rounds), False, say)
    return {name: _entry(result) for name, result in timed["results"].items()}


def cache_warm_up() -> dict[str, float]:
    """Return the seconds a fresh process takes to warm up the Numba kernels from the cache, in parts.

    Keys: ``import_numba``, ``numba_setup``, one per Numba kernel (both dtypes), ``total`` (all of them).
    """
    subprocess.run([sys.executable, "-c", _WARM_UP_PROBE], check=True, capture_output=True)  # fill the cache
    done = subprocess.run([sys.executable, "-c", _WARM_UP_PROBE], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _setting(n_threads: int, dtype: str, rounds: int, say: Callable[[str], None], alone: tuple[str, ...] = ()) -> dict:
    """Return one setting: per batch size (100, 10) its rounds with the roof, and batch 1 against loop.

    The kernels of ``alone`` are also timed on one core in the rounds at batch 100, under
    ``one_core`` (goal 6 pairs each of their epochs with the one-core epoch of its round).
    """
    listed = implementations.registry.names()
    names = [name for name in KERNELS if name in listed]
    with pinned_threads(n_threads):
        setting = {"threads": n_threads, "dtype": dtype, "blas": blas_info(), "numba": numba_info()}
    setting["epochs"], setting["rounds"], setting["one_core"] = [], [], []
    for batch_size in BATCH_SIZES:
        label = f"threads={n_threads} {dtype} batch {batch_size}"
        config = RunConfig(impls=names, epochs=rounds, batch_size=batch_size, dtype=dtype, threads=n_threads)
        beside = tuple(name for name in alone if name in names) if batch_size == 100 else ()
        timed = interleave(names, config, True, lambda line, label=label: say(f"{label}: {line}"), beside)
        setting["roof"] = timed["roof"]
        setting["rounds"].append(
            {
                "batch_size": batch_size,
                "roof_gflops": timed["roof_gflops"],
                "order": timed["order"],
                "quiet_wait_seconds": timed["quiet_wait_seconds"],
            }
        )
        for key, result in timed["results"].items():
            where = "one_core" if key.endswith(ALONE) else "epochs"
            setting[where].append({"name": key.removesuffix(ALONE), "batch_size": batch_size, **_entry(result)})
    per_example = [name for name in PER_EXAMPLE if name in listed]
    label = f"threads={n_threads} {dtype} batch 1 on {PER_EXAMPLE_SUBSET} images"
    config = RunConfig(
        per_example, epochs=1, batch_size=1, dtype=dtype, train_limit=PER_EXAMPLE_SUBSET, threads=n_threads
    )
    setting["per_example"] = _epoch_times(per_example, config, rounds, lambda line: say(f"{label}: {line}"))
    return setting


def density_sweep(dtype: str, rounds: int, say: Callable[[str], None]) -> list[dict]:
    """Return numba and numba-sparse epoch times at batch 100, one thread, on synthetic inputs per zero fraction."""
    names = [name for name in ("numba", "numba-sparse") if name in implementations.registry.names()]
    points = []
    for zeros in ZERO_FRACTIONS:
        config = RunConfig(
            impls=names, epochs=1, dtype=dtype, threads=1, dataset=synthetic_name(zeros), train_limit=DENSITY_SUBSET
        )
        label = f"density {dtype}, {100 * zeros:.0f}% zero pixels"
        epochs = _epoch_times(names, config, rounds, lambda line, label=label: say(f"{label}: {line}"))
        points.append({"zero_fraction": zeros, "dtype": dtype, "epochs": epochs})
    return points


def dataset_points(dtype: str, rounds: int, say: Callable[[str], None]) -> list[dict]:
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
        config = RunConfig(impls=names, epochs=1, dtype=dtype, threads=1, dataset=dataset)
        label = f"{dataset} {dtype}, full training set"
        epochs = _epoch_times(names, config, rounds, lambda line, label=label: say(f"{label}: {line}"))
        # The harness counts the non-zero inputs of the training set it gave the sparse kernel.
        density = epochs.get("numba-sparse", {}).get("input_density")
        zero_fraction = None if density is None else 1.0 - density
        points.append({"dataset": dataset, "dtype": dtype, "zero_fraction": zero_fraction, "epochs": epochs})
    return points


def _fastest_on_one_core(settings: list[dict], dtype: str) -> tuple[str, ...]:
    """Return (the kernel with the fastest median epoch at batch 100 in the one-thread setting of dtype,), or ()."""
    timed = [
        (statistics.median(e["seconds"]), e["name"])
        for s in settings
        if (s["threads"], s["dtype"]) == (1, dtype)
        for e in s["epochs"]
        if e["batch_size"] == 100 and e["seconds"]
    ]
    return (min(timed)[1],) if timed else ()


def measure_run(threads: list[int], dtypes: list[str], rounds: int, say: Callable[[str], None], density: bool) -> dict:
    """Return one run: ``settings``, ``density``, ``datasets`` and ``cache_warm_up`` (see the goals file format).

    Settings run from fewest threads up. A setting of more threads also times, beside its
    kernels, the one-core epochs of the kernel that was fastest in this run's one-thread
    setting of its dtype (goal 6), when there was one.
    """
    settings: list[dict] = []
    for n_threads in sorted(threads):  # one thread first: it names the kernel timed alone beside the others
        for dtype in dtypes:
            alone = _fastest_on_one_core(settings, dtype) if n_threads > 1 else ()
            settings.append(_setting(n_threads, dtype, rounds, say, alone))
    run = {"settings": settings}
    run["density"] = [p for dtype in dtypes for p in density_sweep(dtype, rounds, say)] if density else []
    run["datasets"] = [p for dtype in dtypes for p in dataset_points(dtype, rounds, say)] if density else []
    say("warm-up from the Numba cache in a fresh process")
    run["cache_warm_up"] = cache_warm_up()
    return run


def measure(
    threads: list[int],
    dtypes: list[str],
    rounds: int,
    progress: Callable[[str], None],
    density: bool = True,
    runs: int = 2,
    checkpoint: Callable[[dict], None] | None = None,
) -> dict:
    """Return the goals document: ``runs`` independent runs, each of every setting, tagged with its ``run`` number.

    First the reference is checked against central finite differences, as ``run`` does;
    raises BenchError when it fails (every figure would be checked against a wrong oracle).
    ``checkpoint`` gets the document after each run, so a later failure loses nothing measured.
    """
    fd_error = reference_check(seed=1)
    if not fd_error <= FD_RTOL:
        raise BenchError(f"the reference failed its finite-difference check ({fd_error:.2e} > {FD_RTOL:.0e})")
    n_train = len(load_dataset("mnist").train_images)
    document = {"schema": SCHEMA, "kind": GOALS_KIND, "rounds": rounds, "runs": runs, "sizes": SIZES}
    document.update({"n_train": n_train, "per_example_images": PER_EXAMPLE_SUBSET, "targets": dict(TARGETS)})
    document["machine"] = machine_info()
    document["reference_check"] = {"finite_difference_max_rel_error": fd_error, "rtol": FD_RTOL}
    for key in ("settings", "density", "datasets", "cache_warm_up"):
        document[key] = []
    for number in range(1, runs + 1):
        run = measure_run(threads, dtypes, rounds, lambda line, n=number: progress(f"run {n}/{runs} {line}"), density)
        for key in ("settings", "density", "datasets"):
            document[key] += [{"run": number, **item} for item in run[key]]
        document["cache_warm_up"].append(run["cache_warm_up"])
        if checkpoint is not None:
            checkpoint(document)
    return document
