"""torch-compile: compiled in warm-up, never in an epoch, and unavailable (with the reason) without a compiler.

Parity with the reference is the contract tests' job (tests/test_kernels.py,
tests/test_float32.py). A small network keeps inductor's compilations short.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
torch_compile = pytest.importorskip("implementations.kernels.torch_compile", reason="torch-compile is not available")

from torch._dynamo.utils import counters  # noqa: E402

from implementations.core import init_params, max_rel_error, train_epoch_with  # noqa: E402
from implementations.kernels import vectorized  # noqa: E402
from tests.conftest import random_batch  # noqa: E402

SIZES = [20, 9, 10]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "shuffled"])
def test_warm_up_compiles_every_shape_an_epoch_uses(dtype, shuffle):
    """23 examples in batches of 10: a full-batch shape and a last batch of 3, both compiled ahead."""
    torch_compile.warm_up(SIZES, dtype, n_train=23, batch_size=10, shuffle=shuffle)
    graphs = counters["stats"]["unique_graphs"]
    params = init_params(SIZES, seed=1, dtype=dtype)
    X, Y = random_batch(SIZES, 23, seed=2, dtype=dtype)
    order = np.random.default_rng(3).permutation(23) if shuffle else None
    got = torch_compile.train_epoch(params, X, Y, 10, 3.0, order)
    assert counters["stats"]["unique_graphs"] == graphs  # nothing compiled inside the epoch
    assert all(a.dtype == np.dtype(dtype) for a in got.arrays())
    X64, Y64 = X.astype("float64"), Y.astype("float64")
    expected = train_epoch_with(vectorized.gradients, params.astype("float64"), X64, Y64, 10, 3.0, order)
    assert max_rel_error(got, expected) <= (1e-10 if dtype == "float64" else 1e-5)


def test_params_are_not_modified():
    params = init_params(SIZES, seed=4)
    before = params.copy()
    X, Y = random_batch(SIZES, 5, seed=5)
    torch_compile.train_epoch(params, X, Y, 5, 3.0)
    assert all(np.array_equal(a, b) for a, b in zip(params.arrays(), before.arrays()))


def test_without_a_compiler_the_kernel_is_unavailable_with_the_reason():
    probe = (
        "import implementations\n"
        "registry = implementations.registry\n"
        "print('torch-compile' in registry.names())\n"
        "print(registry.why_not('torch-compile'))\n"
        "print('torch-compile' in registry.available())\n"
        "try:\n    implementations.get('torch-compile')\n"
        "except implementations.UnknownImplementation as exc:\n    print(exc)\n"
    )
    env = {**os.environ, "CXX": "/nonexistent/c++"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    in_names, reason, in_available, import_error = done.stdout.splitlines()
    assert in_names == "False"  # a run without --impl leaves it out instead of failing in its worker
    assert reason == "the C++ compiler /nonexistent/c++ ($CXX) is not found"
    assert in_available == "False"  # the module's own guard refuses to import
    assert "ImportError" in import_error and "C++ compiler" in import_error
