"""Shared fixtures: one parametrized fixture gives every test each available kernel."""

from __future__ import annotations

import numpy as np
import pytest

import implementations
from bench.cli import main
from bench.data import one_hot
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
