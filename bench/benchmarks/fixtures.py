"""The suite's fixtures, parametrization and machine metadata: the half of its plugin that imports the harness.

plugin.py registers this module only in a session that collects the suite, so its
fixtures and hooks reach no other test, and a session without the suite never
imports the harness or NumPy for it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import implementations
from bench.benchmarks.instructions import (
    COUNT_ROUNDS,
    COUNT_WARM_UP,
    COUNTING_VARIABLE,
    Counter,
    excluded,
    settings_record,
)
from bench.benchmarks.plugin import SUITE, Settings, settings_of
from bench.errors import BenchError
from bench.results.schema import KernelResult
from bench.run import machine as bench_machine
from bench.run.config import RunConfig
from bench.run.data import load_dataset
from bench.run.harness import get_ready
from bench.run.machine import pinned_threads, reset_peak_memory
from bench.run.probe import FD_RTOL, Workload, make_workload, reference_check
from implementations.core import predict as core_predict

SIZES = [784, 30, 10]
SEED = 1
GRADIENT_BATCHES = (10, 100)
# The suite's tests by node id -> the full name a run from the checkout gives them.
_FULLNAMES = pytest.StashKey[dict[str, str]]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every benchmark over (implementation, dtype), with ids like ``numba-float64``.

    A smoke run (benchmarks disabled) keeps it to a few seconds: float64 only (float32
    has its own tests) and the smallest gradient batch, unless --bench-dtype says otherwise.
    """
    if not {"checked_kernel", "impl_name", "dtype"} <= set(metafunc.fixturenames):
        return
    settings = settings_of(metafunc.config)
    wanted = settings.dtypes or (None if settings.timing else ("float64",))
    cases = [
        pytest.param(name, dtype, id=f"{name}-{dtype}", marks=_not_counted(settings, name))
        for name in dict.fromkeys([*implementations.registry.available(), *settings.impl_names])
        for dtype in implementations.DTYPES
        if dtype in implementations.get(name).dtypes and (wanted is None or dtype in wanted)
    ]
    if metafunc.function.__name__ == "test_predict":
        # Most kernels share core.predict: time it once (under the reference's name), plus any kernel's own.
        cases = [c for c in cases if c.values[0] == implementations.REFERENCE or _own_predict(c.values[0])]
    metafunc.parametrize(("impl_name", "dtype"), cases)
    if "batch_size" in metafunc.fixturenames:
        batches = GRADIENT_BATCHES if settings.timing else GRADIENT_BATCHES[:1]
        metafunc.parametrize("batch_size", batches, ids=[f"batch{b}" for b in batches])


def _not_counted(settings: Settings, name: str) -> tuple:
    """Return a skip mark, with its reason, for a kernel the instruction measure leaves out (else no mark)."""
    left_out = excluded()
    if settings.measure == "instructions" and name in left_out:
        return (pytest.mark.skip(reason=f"not counted under Valgrind: {left_out[name]}"),)
    return ()


def _own_predict(name: str) -> bool:
    """Return True when the kernel brings a predict of its own rather than the shared core.predict."""
    return implementations.get(name).predict is not core_predict


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    suite_file = SUITE / "test_benchmarks.py"
    config.stash[_FULLNAMES] = {
        item.nodeid: f"bench/benchmarks/test_benchmarks.py::{item.name}"
        for item in items
        if item.path.resolve() == suite_file
    }


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list, output_json: dict) -> None:
    """Give the suite's benchmarks the full name a run from the checkout gives them, whatever the rootdir.

    ``backprop-bench compare`` matches benchmarks by full name; run from a kernel's folder
    (``--pyargs bench.benchmarks``), pytest names them ``test_benchmarks.py::NAME`` instead.
    """
    fullnames = config.stash.get(_FULLNAMES, {})
    for bench in output_json["benchmarks"]:
        bench["fullname"] = fullnames.get(bench["fullname"], bench["fullname"])


def source_fingerprint() -> dict:
    """Return where the ``implementations`` package was imported from and a sha256 of its .py files.

    ``backprop-bench compare --against`` checks this to prove each side ran its own kernels.
    """
    folder = Path(implementations.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):  # the kernels are in kernels/, the loader in plugins/
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return {"path": str(folder), "sha256": digest.hexdigest()}


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add CPU flags, BLAS and Numba threading, versions and this run's settings to the saved JSON."""
    settings = settings_of(config)
    with pinned_threads(settings.threads):
        info = bench_machine.machine_info()
    machine_info["cpu_model"] = info["cpu_model"]
    machine_info["backprop_bench"] = {
        **info,
        "threads": settings.threads,
        "train_size": settings.train_size,
        "epoch_rounds": settings.epoch_rounds,
        "implementations_source": source_fingerprint(),
        "unavailable": implementations.registry.unavailable(),
        "measure": settings.measure,
    }
    if settings.measure == "instructions":
        machine_info["backprop_bench"]["instructions"] = settings_record(
            {n: why for n, why in excluded().items() if n in implementations.registry.available()}
        )


# The fixtures' names start with bench_: a plugin's fixtures are visible to every test of the session.
@pytest.fixture(scope="session")
def bench_settings(request: pytest.FixtureRequest) -> Settings:
    return settings_of(request.config)


@pytest.fixture(scope="session")
def _bench_pinned(bench_settings: Settings):
    # Not autouse, which in a plugin reaches every test: checked_kernel asks for it, and so every benchmark.
    with pinned_threads(bench_settings.threads):
        yield


@pytest.fixture(scope="session")
def bench_dataset():
    try:
        return load_dataset("mnist")
    except BenchError as exc:
        pytest.fail(str(exc), pytrace=False)


@dataclass(frozen=True)
class Checked:
    """A kernel that passed its parity check, with the numbers measured on the way."""

    impl: implementations.Implementation
    work: Workload
    config: RunConfig
    result: KernelResult
    # Resident memory (bytes) before the kernel was readied; see bench.run.machine.peak_memory_above.
    memory_baseline: int | None


@pytest.fixture(scope="session")
def checked_kernel(_bench_pinned, bench_dataset, bench_settings):
    """Return check(name, dtype) -> Checked; readies and parity-checks each kernel once per session.

    This is the harness's own check-then-time path (:func:`bench.run.harness.get_ready`):
    warm-up on the exact workload timed (its shape, batch size and order), ``prepare``
    timed, then the parity probe on the kernel's own train_epoch. A kernel that
    disagrees with the reference fails every benchmark that asks for it, so nothing
    wrong is ever timed. The reference itself is first checked against central finite
    differences, and the workload carries the reference's trajectory of one epoch, so
    each benchmark can check what its timed call returned.
    """
    workloads: dict[str, tuple[RunConfig, Workload]] = {}
    outcomes: dict[tuple[str, str], Checked | str] = {}
    fd_error = reference_check(SEED)
    if not fd_error <= FD_RTOL:
        pytest.fail(f"the reference failed its finite-difference check ({fd_error:.2e} > {FD_RTOL:.0e})", pytrace=False)

    def check(name: str, dtype: str) -> Checked:
        if dtype not in workloads:
            config = RunConfig(
                impls=[], sizes=SIZES, seed=SEED, dtype=dtype, train_limit=bench_settings.train_size, epochs=1
            )
            workloads[dtype] = config, make_workload(config, bench_dataset)
        config, work = workloads[dtype]
        if (name, dtype) not in outcomes:
            impl = implementations.get(name)
            result = KernelResult(name=name, dtype=dtype)
            baseline = reset_peak_memory()
            ok = get_ready(impl, work, config, result)
            outcomes[name, dtype] = (
                Checked(impl, work, config, result, baseline) if ok else f"{name} ({dtype}) {result.message}; not timed"
            )
        outcome = outcomes[name, dtype]
        if isinstance(outcome, str):
            pytest.fail(outcome, pytrace=False)
        return outcome

    return check


class Measure:
    """Times a benchmark's calls with pytest-benchmark, and under ``--bench-measure instructions`` also counts them.

    Counting: ``COUNT_WARM_UP`` uncounted calls, then ``COUNT_ROUNDS`` calls, each counted on
    its own (:class:`bench.benchmarks.instructions.Counter`) and timed by pytest-benchmark;
    ``extra_info`` gets ``instructions`` (their minimum: see the instructions module) and
    ``instructions_rounds``.
    """

    def __init__(self, counter: Counter | None) -> None:
        self.counter = counter

    def __call__(self, benchmark, fn: Callable, *args, rounds: int | None = None, warmup_rounds: int = 0):
        """Return what the last measured call of ``fn(*args)`` returned.

        ``rounds`` None lets pytest-benchmark calibrate (time); a number fixes the rounds, one call each.
        """
        if self.counter is None:
            if rounds is None:
                return benchmark(fn, *args)
            return benchmark.pedantic(fn, args=args, rounds=rounds, iterations=1, warmup_rounds=warmup_rounds)
        counts: list[int] = []
        calls = [0]

        def counted(*call_args):
            calls[0] += 1
            if calls[0] <= COUNT_WARM_UP:  # pytest-benchmark's warm-up rounds: not counted
                return fn(*call_args)
            result, count = self.counter.count(fn, *call_args)
            counts.append(count)
            return result

        result = benchmark.pedantic(counted, args=args, rounds=COUNT_ROUNDS, iterations=1, warmup_rounds=COUNT_WARM_UP)
        benchmark.extra_info["instructions"] = min(counts)
        benchmark.extra_info["instructions_rounds"] = counts
        return result


@pytest.fixture(scope="session")
def bench_measure(bench_settings: Settings) -> Measure:
    """Return the session's Measure: timing only, or timing and counting under Valgrind."""
    if bench_settings.measure != "instructions":
        return Measure(None)
    return Measure(Counter(Path(os.environ[COUNTING_VARIABLE])))
