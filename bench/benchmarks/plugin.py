"""The benchmark suite's pytest plugin: its options and settings, and the sessions it sets up.

It is registered through the ``pytest11`` entry point ``backprop_bench`` (pyproject.toml),
as pytest-benchmark registers its own, so the options below are known to pytest from any
folder: ``pytest --benchmark-only --pyargs bench.benchmarks --bench-impl my_kernel.py``
runs the suite from a kernel's own folder. It is not a conftest.py on purpose: a conftest's
options exist only where pytest finds it, and pytest took the value of
``--bench-impl /outside/k.py`` for a folder to root itself at, never found the conftest,
and stopped on an unknown option.

The plugin is loaded in every pytest session of the environment, so it changes a session
only when the session collects the suite (an argument at, in or above ``bench/benchmarks``,
or ``--pyargs bench.benchmarks``). Only then does it register fixtures.py: the fixtures,
the parametrization of the tests that ask for them, and the machine metadata. So
``pytest tests/`` is as it was without the plugin, and loading the plugin imports neither
NumPy nor the harness nor a kernel. ``-p no:backprop_bench`` turns it off.

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
``--bench-measure``      ``BACKPROP_BENCH_MEASURE``     ``time`` (the default) or ``instructions``:
                                                        counted under Valgrind, one thread
                                                        (:mod:`bench.benchmarks.instructions`)
=======================  =============================  ==========================================

Benchmarks are timed only under ``--benchmark-only`` (or ``--benchmark-enable``).
Otherwise, as in a plain ``pytest`` run, they are disabled and each runs once as a
smoke test on a tiny workload. This is decided in ``pytest_configure``, which runs
before pytest-benchmark's (that one is ``trylast``), because pytest-benchmark
refuses ``--benchmark-only`` together with ``--benchmark-disable`` and so the
disabling cannot live in ``addopts``.

Results kept by pytest-benchmark (``--benchmark-save``, ``--benchmark-autosave`` and the
autosave of every timed run) go to ``results/benchmarks/`` under the rootdir when pytest
found a configuration file there (the checkout's pyproject.toml, run from the checkout),
else under the current folder: the kernel's folder, run from there.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_benchmark.utils import get_tag

DEFAULT_STORAGE = "file://./.benchmarks"  # pytest-benchmark's own default
SIZE_PRESETS = {"small": 2_000, "full": 60_000}
# With benchmarks disabled (plain `pytest`) each benchmark runs once, on this many images.
SMOKE_SIZE = 300
DEFAULT_EPOCH_ROUNDS = 5
# The suite's folder: sessions that collect it, and only those, are set up for it.
SUITE = Path(__file__).resolve().parent
_OPTIONS = {
    "bench_size": ("--bench-size", "BACKPROP_BENCH_SIZE"),
    "bench_dtype": ("--bench-dtype", "BACKPROP_BENCH_DTYPES"),
    "bench_threads": ("--bench-threads", "BACKPROP_BENCH_THREADS"),
    "bench_epoch_rounds": ("--bench-epoch-rounds", "BACKPROP_BENCH_EPOCH_ROUNDS"),
    "bench_impl": ("--bench-impl", "BACKPROP_BENCH_IMPLS"),
    "bench_measure": ("--bench-measure", "BACKPROP_BENCH_MEASURE"),
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
    group.addoption(
        "--bench-measure",
        metavar="MEASURE",
        help="time (default) or instructions: each call's instructions counted under Valgrind, one thread",
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
    # Kernels from outside the package (--bench-impl), as given, and their names once loaded.
    impls: tuple[str, ...] = ()
    impl_names: tuple[str, ...] = ()
    # "time", or "instructions": counted under Valgrind (bench.benchmarks.instructions).
    measure: str = "time"


def _settings(config: pytest.Config) -> Settings:
    import implementations  # not at the plugin's import: it is loaded in every pytest session

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
    measure = _measure(config, timing)
    if measure == "instructions":
        if threads not in (None, "1"):
            raise pytest.UsageError("--bench-measure instructions counts one thread; drop --bench-threads")
        threads = "1"
    return Settings(
        timing=timing,
        train_size=train_size if timing else min(train_size, SMOKE_SIZE),
        dtypes=dtypes,
        threads=_positive(config, "bench_threads", threads) if threads else None,
        epoch_rounds=_positive(config, "bench_epoch_rounds", rounds) if rounds else DEFAULT_EPOCH_ROUNDS,
        impls=tuple(config.getoption("bench_impl") or _split_paths(os.environ.get("BACKPROP_BENCH_IMPLS", ""))),
        measure=measure,
    )


def _measure(config: pytest.Config, timing: bool) -> str:
    """Return the session's measure, "time" or "instructions", or raise UsageError."""
    from bench.benchmarks.instructions import MEASURES

    measure = _setting(config, "bench_measure") or "time"
    if measure not in MEASURES:
        raise pytest.UsageError(f"--bench-measure / BACKPROP_BENCH_MEASURE: {measure!r}; choose from {list(MEASURES)}")
    if measure == "instructions" and not timing:
        raise pytest.UsageError("--bench-measure instructions needs --benchmark-only")
    return measure


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Run this session again under Valgrind when it asks for instruction counts (and is not the one under it)."""
    from bench.benchmarks import instructions

    if instructions.counting() or not collects_the_suite(config):
        return None
    timing = bool(config.getoption("benchmark_only") or config.getoption("benchmark_enable"))
    try:
        if _measure(config, timing) != "instructions":
            return None
    except pytest.UsageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return pytest.ExitCode.USAGE_ERROR
    settings = settings_of(config)
    try:
        return instructions.relaunch(
            list(config.invocation_params.args),
            config.invocation_params.dir,
            lambda env: _warm_natively(config, settings, env),
        )
    except instructions.MeasureError as exc:
        # 2, as every command of this project exits on input it cannot use (pytest's 4 is for bad options).
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2


def _warm_natively(config: pytest.Config, settings: Settings, env: dict[str, str]) -> None:
    """Compile the kernels this session selects into Numba's cache, natively, in a subprocess with ``env``."""
    spec = {"args": list(config.invocation_params.args), "train_size": settings.train_size}
    print("backprop-bench: compiling the selected kernels natively for the pinned target (Numba's cache)", flush=True)
    subprocess.run(
        [sys.executable, "-m", "bench.benchmarks.warm", json.dumps(spec)],
        cwd=config.invocation_params.dir,
        env=env,
        check=False,
    )


def _split_paths(text: str) -> list[str]:
    """Return the kernels listed in BACKPROP_BENCH_IMPLS, separated like PATH (':' on Linux and macOS)."""
    return [part for part in text.split(os.pathsep) if part.strip()]


_SETTINGS = pytest.StashKey[Settings]()


def pytest_configure(config: pytest.Config) -> None:
    if collects_the_suite(config):
        settings = settings_of(config)
        _configure_storage(config, settings)
        _warn_if_rooted_at_a_kernel(config, settings)
        # The fixtures and the parametrization, which import the harness, join only such sessions.
        config.pluginmanager.import_plugin("bench.benchmarks.fixtures")


def collects_the_suite(config: pytest.Config) -> bool:
    """Return True when an argument of this session is the suite's folder, a file in it or a folder above it."""
    for arg in config.args:
        where = _location(arg.split("::", 1)[0], config.invocation_params.dir, config.option.pyargs)
        if where is not None and (where == SUITE or where in SUITE.parents or SUITE in where.parents):
            return True
    return False


def _location(arg: str, invocation_dir: Path, pyargs: bool) -> Path | None:
    """Return the file or folder a collection argument names: a path, or under --pyargs a module (as pytest does)."""
    if pyargs:
        try:
            spec = importlib.util.find_spec(arg)
        except (AttributeError, ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin not in (None, "namespace"):
            origin = Path(spec.origin).resolve()
            return origin.parent if spec.submodule_search_locations else origin
    path = invocation_dir / arg
    return path.resolve() if path.exists() else None


def settings_of(config: pytest.Config) -> Settings:
    """Return this session's Settings; the first call applies --bench-threads and loads the --bench-impl kernels.

    pytest_configure makes that call, before collection imports any kernel.
    """
    if _SETTINGS not in config.stash:
        import implementations

        settings = _settings(config)
        _apply_threads(settings.threads)
        try:
            names = tuple(implementations.resolve(spec) for spec in settings.impls)
        except implementations.UnknownImplementation as exc:
            raise pytest.UsageError(f"--bench-impl / BACKPROP_BENCH_IMPLS: {exc}") from None
        config.stash[_SETTINGS] = dataclasses.replace(settings, impl_names=names)
    return config.stash[_SETTINGS]


def _apply_threads(threads: int | None) -> None:
    """Limit this process to ``threads`` cores and threads before any kernel is imported (None: leave it)."""
    if threads is not None:
        from bench.run.cpus import limit_cpus
        from bench.run.parent import worker_env

        # Before any kernel is imported (collection imports them): XLA sizes its pool at import,
        # from the CPUs the process may use and XLA_FLAGS, as every worker of `run` does.
        limit_cpus(threads)
        os.environ.update({k: v for k, v in worker_env(threads).items() if k not in ("PATH",)})


def _configure_storage(config: pytest.Config, settings: Settings) -> None:
    """Decide where results go and whether this is a timed run or a smoke run."""
    if config.getoption("benchmark_storage") == DEFAULT_STORAGE:
        # --benchmark-save / --benchmark-autosave / --benchmark-compare use results/benchmarks/.
        config.option.benchmark_storage = f"file://{results_root(config) / 'results' / 'benchmarks'}"
    if not settings.timing:
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


def results_root(config: pytest.Config) -> Path:
    """Return the folder that holds results/: the rootdir where pytest found a configuration file, else the current one.

    Without a configuration file the rootdir is pytest's guess from the arguments, and a
    wrong one for ``--bench-impl /outside/k.py`` given with a space: pytest settles the
    rootdir before any plugin has said that the option takes a value, so it counts the
    value as a path and roots the session at the kernel's folder (pytest-dev/pytest#8846).
    """
    return config.rootpath if config.inipath is not None else config.invocation_params.dir


def _warn_if_rooted_at_a_kernel(config: pytest.Config, settings: Settings) -> None:
    """Warn when pytest rooted the session at the folder of a --bench-impl file, away from the current folder.

    The run itself is right (the option has its value), but the rootdir is the kernel's
    folder, so the current folder's pytest configuration (testpaths, addopts) is not read.
    """
    here = config.invocation_params.dir
    if config.inipath is not None or here.is_relative_to(config.rootpath):
        return
    for spec in settings.impls:
        if (here / spec).exists() and (here / spec).resolve().is_relative_to(config.rootpath.resolve()):
            message = (
                f"pytest took `--bench-impl {spec}` for a path and rooted this session at {config.rootpath}, "
                f"so it read no configuration from {here}; results still go under {results_root(config)}. "
                f"`--bench-impl={spec}` avoids it (pytest-dev/pytest#8846)."
            )
            config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)
            return
