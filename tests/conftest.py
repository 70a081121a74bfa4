"""Shared fixtures and helpers: every kernel for each test that asks, the fixture kernels' folders, tiny runs.

Tests import helpers from here only, never from one another. The test tiers (``slow``,
see pyproject.toml) are decided per test; here, the fast tier's roof is made small, and a
test that needs more cores than this process may use gets a skip saying so.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import implementations
from bench.cli import main
from bench.run import roof
from bench.run.data import one_hot
from implementations import BUILTIN, Registry
from implementations.core import Params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give every test that asks for ``impl`` each available kernel, ids the kernel names (`pytest -k numba`).

    Done here rather than in the fixture's params so that kernels are imported at collection,
    after the benchmark plugin's pytest_configure (bench/benchmarks/plugin.py) has applied --bench-threads.
    """
    if "impl" in metafunc.fixturenames:
        metafunc.parametrize("impl", implementations.registry.available(), indirect=True)


@pytest.fixture
def impl(request) -> implementations.Implementation:
    """Each available kernel in turn (see pytest_generate_tests)."""
    return implementations.get(request.param)


@pytest.fixture(scope="session")
def reference() -> implementations.Implementation:
    """The float64 reference kernel (the oracle)."""
    return implementations.get(implementations.REFERENCE)


@contextlib.contextmanager
def fresh_registry(*names: str) -> Iterator[Registry]:
    """Install a fresh Registry of the built-in kernels (only those named, if any) as ``implementations.registry``.

    Whatever is registered or resolved inside the block is gone after it, when the previous
    registry is put back; a kernel another test resolved is not seen inside.
    """
    with pytest.MonkeyPatch.context() as patch:
        fresh = Registry(row for row in BUILTIN if not names or row.name in names)
        patch.setattr(implementations, "registry", fresh)
        yield fresh


@pytest.fixture
def registry() -> Iterator[Registry]:
    """A fresh registry of the built-in kernels, ``implementations.registry`` for this test (see fresh_registry)."""
    with fresh_registry() as fresh:
        yield fresh


# A tiny run: enough to exercise every path of the harness in a second or two per kernel.
SMALL = ["--train-limit", "300", "--epochs", "2", "--batch-size", "50"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# The fixture kernels, one folder per role: honest (they agree with the reference), wrong on
# purpose (they run cleanly and compute something else) and faulty on purpose (they raise,
# hang, crash, return the wrong dtype or shape, or lack a name the harness needs).
KERNELS = ROOT / "tests" / "kernels"


def load_script(name: str):
    """Return the module of scripts/<name>.py, loaded from its file (scripts/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HONEST, WRONG, FAULTY = KERNELS / "honest", KERNELS / "wrong", KERNELS / "faulty"

# The roof (bench/run/roof.py) is two 1536-square matrix products timed six times each, about
# 4 s of every in-process run on two cores. The fast tier's runs check only that it was
# measured, so there it is measured once on 128-square products; the slow tier keeps it whole.
SMALL_ROOF = {"size": 128, "repeats": 1}


@pytest.fixture(autouse=True)
def small_roof(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the slow tier, give the roof's measurements SMALL_ROOF's defaults, wherever they are called from."""
    if request.node.get_closest_marker("slow") is not None:
        return
    for measure in (roof.measure_roof, roof.measure_scipy_roof):
        parameters = inspect.signature(measure).parameters.values()
        defaults = tuple(SMALL_ROOF.get(p.name, p.default) for p in parameters if p.default is not p.empty)
        monkeypatch.setattr(measure, "__defaults__", defaults)


def usable_cores() -> int:
    """Return how many CPUs this process may run on (its affinity: `taskset -c 1 pytest` gives one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def needs_cores(n: int) -> pytest.MarkDecorator:
    """Return a mark that skips a test, with the reason, where this process may use fewer than ``n`` CPUs."""
    return pytest.mark.skipif(usable_cores() < n, reason=f"needs {n} usable CPUs, this process has {usable_cores()}")


def idx_bytes(array: np.ndarray) -> bytes:
    """Return the IDX encoding of a uint8 array."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def random_batch(sizes: list[int], n: int, seed: int, dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """Return (X, Y): inputs uniform in [0, 1], shape (n, sizes[0]), and one-hot targets (n, sizes[-1])."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0])).astype(dtype)
    return X, one_hot(rng.integers(0, sizes[-1], n), dtype, sizes[-1])


def sparse_batch(sizes: list[int], n: int, seed: int, dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """Return (X, Y) like random_batch, with rows of every density: all zero, 1-3 non-zeros, ~20%, dense."""
    X, Y = random_batch(sizes, n, seed, dtype)
    rng = np.random.default_rng(seed + 1000)
    for i in range(n):
        kind = i % 5
        if kind == 0:
            X[i] = 0
        elif kind == 1:
            keep = rng.choice(sizes[0], size=1 + i % 3, replace=False)  # fewer than a block of 4
            row = np.zeros(sizes[0], dtype)
            row[keep] = X[i, keep]
            X[i] = row
        elif kind in (2, 3):
            X[i, rng.random(sizes[0]) < 0.8] = 0  # about MNIST's density
    return X, Y


def params_equal(a: Params, b: Params) -> bool:
    """Return True when every array of a equals b's exactly."""
    return all(np.array_equal(x, y) for x, y in zip(a.arrays(), b.arrays(), strict=True))


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Return (exit status, stdout, stderr) of the CLI called in-process."""
    try:
        status = main(list(args))
    except SystemExit as exc:  # argparse exits for option errors
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# Simulated benchmark files, shared by the regression-gate and history simulations. The noise
# modelled, per simulated pytest-benchmark file (one process of the suite):
# - within a run, each round is lognormal with a 3% spread, and 2% of rounds are hit by an
#   interrupt that makes them 1.5-4x slower;
# - between runs, the whole process gets a machine-state factor (lognormal 3%) and each
#   benchmark its own (lognormal 4%), so a benchmark's run median moves about 5% from process
#   to process; and 5% of processes run beside a busy neighbour that slows every benchmark in
#   them by 1.1-1.4x.
SIM_KERNELS = ("loop", "vectorized", "numba", "numba-fastmath", "numba-parallel")
# (name, group, typical seconds, rounds): the suite's shape, one shared predict benchmark.
SIM_SUITE = [
    entry
    for kernel, base in zip(SIM_KERNELS, (1.0, 0.1, 0.06, 0.06, 0.07))
    for entry in (
        (f"test_gradients[{kernel}-float64-batch10]", "gradients batch=10 float64", 440e-6 * base, 100),
        (f"test_gradients[{kernel}-float64-batch100]", "gradients batch=100 float64", 4.3e-3 * base, 100),
        (f"test_epoch[{kernel}-float64]", "epoch n=1000 float64", 45e-3 * base, 5),
    )
] + [("test_predict[float64]", "predict n=10000 float64", 14.6e-3, 20)]


def simulated_run(
    rng: np.random.Generator, slower: dict[str, float], raw: bool = False, suite: list[tuple] = SIM_SUITE
) -> dict:
    """Return one simulated pytest-benchmark document (one process) with the noise described above.

    ``slower`` multiplies the typical time of the benchmarks it names. Raw round times are
    kept only when ``raw`` (with several runs a side only the run medians are used).
    """
    machine = rng.lognormal(0.0, 0.03) * (rng.uniform(1.1, 1.4) if rng.random() < 0.05 else 1.0)
    own = rng.lognormal(0.0, 0.04, len(suite))
    most = max(n for *_, n in suite)
    rounds = rng.lognormal(0.0, 0.03, (len(suite), most))
    rounds *= np.where(rng.random(rounds.shape) < 0.02, rng.uniform(1.5, 4.0, rounds.shape), 1.0)
    benchmarks = []
    for i, (name, group, seconds, n) in enumerate(suite):
        data = np.sort(seconds * slower.get(name, 1.0) * machine * own[i] * rounds[i, :n])
        q1, median, q3 = np.interp([0.25, 0.5, 0.75], np.linspace(0, 1, n), data)
        stats = {"median": median, "q1": q1, "q3": q3, "min": data[0], "max": data[-1], "rounds": n}
        benchmarks.append(
            {
                "name": name,
                "group": group,
                "fullname": f"bench/benchmarks/test_benchmarks.py::{name}",
                "stats": {k: float(v) for k, v in stats.items()} | ({"data": data.tolist()} if raw else {}),
            }
        )
    return {"machine_info": {"node": "sim"}, "commit_info": {}, "benchmarks": benchmarks}


# pytest-benchmark files for compare and the results frame. (name, group, typical seconds):
# shaped like the real suite's entries.
BENCHMARKS = [
    ("test_gradients[vectorized-float64-batch10]", "gradients batch=10 float64", 45e-6),
    ("test_gradients[loop-float64-batch10]", "gradients batch=10 float64", 430e-6),
    ("test_epoch[loop-float64]", "epoch n=1000 float64", 0.05),
    ("test_predict[numba-float64]", "predict n=10000 float64", 0.015),
]


def benchmark_document(seed: int, slower: dict[str, float] | None = None, raw: bool = True) -> dict:
    """Return a pytest-benchmark JSON document with skewed, noisy round times (a seeded draw)."""
    rng = np.random.default_rng(seed)
    benchmarks = []
    for name, group, seconds in BENCHMARKS:
        scale = (slower or {}).get(name, 1.0)
        # Lognormal body (5% spread) plus a few slow outliers, as a busy machine gives.
        data = seconds * scale * rng.lognormal(0.0, 0.05, 200) * np.where(rng.random(200) < 0.03, 3.0, 1.0)
        q1, median, q3 = np.percentile(data, [25, 50, 75])
        stats = {
            "min": data.min(),
            "max": data.max(),
            "mean": data.mean(),
            "stddev": data.std(ddof=1),
            "rounds": data.size,
            "median": median,
            "iqr": q3 - q1,
            "q1": q1,
            "q3": q3,
            "iterations": 1,
        }
        if raw:
            stats["data"] = data.tolist()
        impl, dtype = name.split("[")[1].split("-")[:2]
        benchmarks.append(
            {
                "group": group,
                "name": name,
                "fullname": f"bench/benchmarks/test_benchmarks.py::{name}",
                "params": {"impl_name": impl, "dtype": dtype},
                "extra_info": {"implementation": impl, "benchmark": name.split("[")[0][5:], "dtype": dtype},
                "stats": {k: v if k == "data" else float(v) for k, v in stats.items()},
            }
        )
    return {
        "machine_info": {"node": "testbox", "cpu_model": "Test CPU", "backprop_bench": {"threads": 1}},
        "commit_info": {},
        "benchmarks": benchmarks,
        "datetime": "2026-01-02T03:04:05.000000+00:00",
        "version": "5.3.1",
    }


def write_json(path: Path, document: dict | list) -> Path:
    """Return ``path`` after writing ``document`` to it as JSON."""
    path.write_text(json.dumps(document))
    return path


# A real pytest-benchmark file of counted calls (pytest --benchmark-only --bench-measure instructions
# -k "numba-float64 and gradients and batch10"): numba's float64 gradients at batch 10 and 100, made on
# this project's 2-core VM. The template of every synthetic counted file; tests never run Valgrind.
INSTRUCTIONS_FILE = ROOT / "tests" / "data" / "instructions-numba-gradients.json"


def counted_document(
    factors: dict[str, float] | None = None, rng: np.random.Generator | None = None, noise: float = 0.0
) -> dict:
    """Return the counted template with each benchmark's counts times ``factors[name]`` and lognormal ``noise``.

    Every counted call gets its own noise draw; ``instructions`` is their minimum, as the suite records it.
    """
    document = json.loads(INSTRUCTIONS_FILE.read_text())
    for bench in document["benchmarks"]:
        info = bench["extra_info"]
        factor = (factors or {}).get(bench["name"], 1.0)
        draws = rng.lognormal(0.0, noise, len(info["instructions_rounds"])) if rng is not None else 1.0
        info["instructions_rounds"] = (
            np.rint(np.asarray(info["instructions_rounds"]) * factor * draws).astype(int).tolist()
        )
        info["instructions"] = min(info["instructions_rounds"])
    return document


def ulp_distance(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Return how many representable numbers of want's dtype lie between got and want, element-wise (int64)."""
    signed = np.int64 if want.dtype == np.float64 else np.int32
    a, b = got.astype(want.dtype).view(signed).astype(np.int64), want.view(signed).astype(np.int64)
    # Map the sign-magnitude bit patterns onto one ordered line, -0.0 and +0.0 both at 0.
    lowest = np.iinfo(signed).min
    a, b = np.where(a < 0, lowest - a, a), np.where(b < 0, lowest - b, b)
    return np.abs(a - b)
