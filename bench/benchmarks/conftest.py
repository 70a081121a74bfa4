"""pytest-benchmark set-up: options, the shared workload, parity gating, machine metadata.

Settings (a command-line option wins over its environment variable):

=======================  =============================  ==========================================
option                   environment variable           meaning
=======================  =============================  ==========================================
``--bench-size``         ``BACKPROP_BENCH_SIZE``        training images per timed epoch: ``small``
                                                        (2,000, the default), ``full`` (60,000) or N
``--bench-dtype``        ``BACKPROP_BENCH_DTYPES``      comma list (default: every dtype the kernel
                                                        declares a tolerance for; float64 when smoke)
``--bench-threads``      ``BACKPROP_BENCH_THREADS``     N cores and N threads for every framework
``--bench-epoch-rounds`` ``BACKPROP_BENCH_EPOCH_ROUNDS`` timed epochs per kernel (default 5)
``--bench-impl``         ``BACKPROP_BENCH_IMPLS``       also a kernel from outside: a file, a module
                                                        or nielsen:FILE.py (repeatable; the variable
                                                        is separated like PATH)
=======================  =============================  ==========================================

Benchmarks are timed only under ``--benchmark-only`` (or ``--benchmark-enable``).
Otherwise, as in a plain ``pytest`` run, they are disabled and each runs once as a
smoke test on a tiny workload. This is decided in ``pytest_configure``, which runs
before pytest-benchmark's (that one is ``trylast``), because pytest-benchmark
refuses ``--benchmark-only`` together with ``--benchmark-disable`` and so the
disabling cannot live in ``addopts``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_benchmark.utils import get_tag

import implementations
from bench.errors import BenchError
from bench.run import machine as bench_machine
from bench.run.config import RunConfig
from bench.run.data import load_dataset
from bench.run.harness import FD_RTOL, KernelResult, Workload, get_ready, make_workload, reference_check
from bench.run.machine import pinned_threads, reset_peak_memory
from bench.run.parent import worker_env
from implementations.core import predict as core_predict

SIZES = [784, 30, 10]
SEED = 1
DEFAULT_STORAGE = "file://./.benchmarks"  # pytest-benchmark's own default
SIZE_PRESETS = {"small": 2_000, "full": 60_000}
# With benchmarks disabled (plain `pytest`) each benchmark runs once, on this many images.
SMOKE_SIZE = 300
DEFAULT_EPOCH_ROUNDS = 5
GRADIENT_BATCHES = (10, 100)
_OPTIONS = {
    "bench_size": ("--bench-size", "BACKPROP_BENCH_SIZE"),
    "bench_dtype": ("--bench-dtype", "BACKPROP_BENCH_DTYPES"),
    "bench_threads": ("--bench-threads", "BACKPROP_BENCH_THREADS"),
    "bench_epoch_rounds": ("--bench-epoch-rounds", "BACKPROP_BENCH_EPOCH_ROUNDS"),
    "bench_impl": ("--bench-impl", "BACKPROP_BENCH_IMPLS"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("backprop-bench")
    group.addoption("--bench-size", metavar="SIZE", help="training images per epoch: small, full or N")
    group.addoption("--bench-dtype", metavar="LIST", help="comma list of dtypes (default: all with a tolerance)")
    group.addoption("--bench-threads", metavar="N", help="N cores and N threads for every framework")
    group.addoption("--bench-epoch-rounds", metavar="N", help=f"timed epochs (default {DEFAULT_EPOCH_ROUNDS})")
    group.addoption(
        "--bench-impl",
        action="append",
        metavar="KERNEL",
        help="also benchmark this kernel: a file, a module or nielsen:FILE.py (repeatable)",
    )


def _setting(config: pytest.Config, dest: str) -> str | None:
    _, variable = _OPTIONS[dest]
    value = config.getoption(dest)
    return value if value is not None else (os.environ.get(variable) or None)


def _positive(config: pytest.Config, dest: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        option, variable = _OPTIONS[dest]
        raise pytest.UsageError(f"{option} / {variable} must be a positive integer, got {text!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """The resolved benchmark settings of this session."""

    timing: bool
    train_size: int
    dtypes: tuple[str, ...] | None
    threads: int | None
    epoch_rounds: int
    # Kernels from outside the package (--bench-impl), as given.
    impls: tuple[str, ...] = ()


def _settings(config: pytest.Config) -> Settings:
    timing = bool(config.getoption("benchmark_only") or config.getoption("benchmark_enable"))
    size = _setting(config, "bench_size") or "small"
    train_size = SIZE_PRESETS.get(size) or _positive(config, "bench_size", size)
    train_size = min(train_size, SIZE_PRESETS["full"])
    dtypes = _setting(config, "bench_dtype")
    if dtypes is not None:
        dtypes = tuple(d.strip() for d in dtypes.split(",") if d.strip())
        unknown = set(dtypes) - set(implementations.DTYPES)
        if unknown:
            raise pytest.UsageError(f"--bench-dtype: unknown {sorted(unknown)}; known: {list(implementations.DTYPES)}")
    threads = _setting(config, "bench_threads")
    rounds = _setting(config, "bench_epoch_rounds")
    return Settings(
        timing=timing,
        train_size=train_size if timing else min(train_size, SMOKE_SIZE),
        dtypes=dtypes,
        threads=_positive(config, "bench_threads", threads) if threads else None,
        epoch_rounds=_positive(config, "bench_epoch_rounds", rounds) if rounds else DEFAULT_EPOCH_ROUNDS,
        impls=tuple(config.getoption("bench_impl") or _split_paths(os.environ.get("BACKPROP_BENCH_IMPLS", ""))),
    )


def _split_paths(text: str) -> list[str]:
    """Return the kernels listed in BACKPROP_BENCH_IMPLS, separated like PATH (':' on Linux and macOS)."""
    return [part for part in text.split(os.pathsep) if part.strip()]


def pytest_configure(config: pytest.Config) -> None:
    config._backprop_bench = _settings(config)
    _apply_threads(config._backprop_bench.threads)
    try:
        config._backprop_bench_names = [implementations.resolve(spec) for spec in config._backprop_bench.impls]
    except implementations.UnknownImplementation as exc:
        raise pytest.UsageError(f"--bench-impl / BACKPROP_BENCH_IMPLS: {exc}") from None
    _configure_storage(config)


def _apply_threads(threads: int | None) -> None:
    """Limit this process to ``threads`` cores and threads before any kernel is imported (None: leave it)."""
    if threads is not None:
        # Before any kernel is imported (collection imports them): XLA sizes its pool at import,
        # from the CPUs the process may use and XLA_FLAGS, as every worker of `run` does.
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
        os.environ.update({k: v for k, v in worker_env(threads).items() if k not in ("PATH",)})


def _configure_storage(config: pytest.Config) -> None:
    """Decide where results go and whether this is a timed run or a smoke run."""
    if config.getoption("benchmark_storage") == DEFAULT_STORAGE:
        # --benchmark-save / --benchmark-autosave / --benchmark-compare use results/benchmarks/.
        config.option.benchmark_storage = f"file://{config.rootpath / 'results' / 'benchmarks'}"
    if not config._backprop_bench.timing:
        # A smoke run: every benchmark body runs once, untimed.
        config.option.benchmark_disable = True
    else:
        if not (
            config.getoption("benchmark_json")
            or config.getoption("benchmark_save")
            or config.getoption("benchmark_autosave")
        ):
            # A timed run is always kept: saved as pytest-benchmark JSON under results/benchmarks/,
            # named as --benchmark-autosave names it (counter, commit, time).
            config.option.benchmark_autosave = get_tag()
        # Raw timings make `backprop-bench compare` a statistical test, not a guess from summaries.
        config.option.benchmark_save_data = True


def settings_of(config: pytest.Config) -> Settings:
    """Return this session's Settings."""
    return config._backprop_bench


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every benchmark over (implementation, dtype), with ids like ``numba-float64``.

    A smoke run (benchmarks disabled) keeps it to a few seconds: float64 only (float32
    has its own tests) and the smallest gradient batch, unless --bench-dtype says otherwise.
    """
    settings = settings_of(metafunc.config)
    if not {"impl_name", "dtype"} <= set(metafunc.fixturenames):
        return
    wanted = settings.dtypes or (None if settings.timing else ("float64",))
    cases = [
        pytest.param(name, dtype, id=f"{name}-{dtype}")
        for name in dict.fromkeys([*implementations.available(), *metafunc.config._backprop_bench_names])
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


def _own_predict(name: str) -> bool:
    """Return True when the kernel brings a predict of its own rather than the shared core.predict."""
    return implementations.get(name).predict is not core_predict


def source_fingerprint() -> dict:
    """Return where the ``implementations`` package was imported from and a sha256 of its .py files.

    ``backprop-bench compare --against`` checks this to prove each side ran its own kernels.
    """
    folder = Path(implementations.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
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
        "unavailable": implementations.unavailable(),
    }


@pytest.fixture(scope="session")
def settings(request: pytest.FixtureRequest) -> Settings:
    return settings_of(request.config)


@pytest.fixture(scope="session", autouse=True)
def _pinned(settings: Settings):
    with pinned_threads(settings.threads):
        yield


@pytest.fixture(scope="session")
def dataset():
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
def checked_kernel(dataset, settings):
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
            config = RunConfig(impls=[], sizes=SIZES, seed=SEED, dtype=dtype, train_limit=settings.train_size, epochs=1)
            workloads[dtype] = config, make_workload(config, dataset)
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
