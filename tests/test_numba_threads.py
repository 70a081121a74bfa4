"""Numba kernels keep BLAS on one thread, including SciPy's lazily loaded OpenBLAS.

Checked in a fresh interpreter: in this one other tests have long since loaded SciPy,
which would hide the bug this guards against (a controller built before SciPy's
OpenBLAS loads does not limit it, and an epoch of numba-parallel took 13 s, not 0.13 s).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("numba")

PROBE = """
from threadpoolctl import threadpool_info
import implementations
from implementations.kernels.numba_common import blas_single_threaded
with blas_single_threaded():
    implementations.get("numba-parallel").warm_up([20, 10], "float64")  # first compile loads SciPy's BLAS
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert any("scipy" in lib["filepath"] for lib in blas), blas
    assert all(lib["num_threads"] == 1 for lib in blas), blas
print("ok")
"""


def test_blas_is_single_threaded_inside_numba_kernels():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_evaluation_between_epochs_holds_blas_to_one_thread():
    from types import SimpleNamespace

    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    from bench.run.harness import evaluate
    from implementations import accuracy

    seen = []

    def predict(params, X):
        seen.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
        return np.zeros(len(X), np.int64)

    work = SimpleNamespace(X_test=np.zeros((4, 3)), y_test=np.array([0, 0, 1, 1]))
    blas_threads = lambda: {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}  # noqa: E731
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        assert accuracy(evaluate(SimpleNamespace(predict=predict), None, work), work.y_test) == 0.5
        after = blas_threads()
    assert seen and set(seen) == {1}  # OpenBLAS's spinning threads would take the next epoch's cores
    assert after == before  # and the run's own setting is back for the next epoch
