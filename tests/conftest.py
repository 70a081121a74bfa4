"""Shared fixtures: one parametrized fixture gives every test each available kernel."""

from __future__ import annotations

import numpy as np
import pytest

import implementations
from bench.cli import main
from bench.data import one_hot
from implementations.core import Params


@pytest.fixture(params=implementations.available())
def impl(request) -> implementations.Implementation:
    """Each available kernel in turn; ids are the kernel names, so `pytest -k numba` selects one."""
    return implementations.get(request.param)


@pytest.fixture(scope="session")
def reference() -> implementations.Implementation:
    """The float64 reference kernel (the oracle)."""
    return implementations.get(implementations.REFERENCE)


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
