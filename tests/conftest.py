"""Shared fixtures: one parametrized fixture gives every test each available kernel."""

from __future__ import annotations

import numpy as np
import pytest

import implementations
from bench.cli import main
from bench.run.data import one_hot
from implementations.core import Params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give every test that asks for ``impl`` each available kernel, ids the kernel names (`pytest -k numba`).

    Done here rather than in the fixture's params so that kernels are imported at collection,
    after the benchmark conftest's pytest_configure has applied --bench-threads.
    """
    if "impl" in metafunc.fixturenames:
        metafunc.parametrize("impl", implementations.available(), indirect=True)


@pytest.fixture
def impl(request) -> implementations.Implementation:
    """Each available kernel in turn (see pytest_generate_tests)."""
    return implementations.get(request.param)


@pytest.fixture(scope="session")
def reference() -> implementations.Implementation:
    """The float64 reference kernel (the oracle)."""
    return implementations.get(implementations.REFERENCE)


# A tiny run: enough to exercise every path of the harness in a second or two per kernel.
SMALL = ["--train-limit", "300", "--epochs", "2", "--batch-size", "50"]


def idx_bytes(array: np.ndarray) -> bytes:
    """Return the IDX encoding of a uint8 array."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def random_batch(sizes: list[int], n: int, seed: int, dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """Return (X, Y): inputs uniform in [0, 1], shape (n, sizes[0]), and one-hot targets (n, sizes[-1])."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0])).astype(dtype)
    return X, one_hot(rng.integers(0, sizes[-1], n), dtype, sizes[-1])


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
