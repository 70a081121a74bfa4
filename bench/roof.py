"""This machine's matrix-multiply roof: the GFLOP/s of one large NumPy GEMM.

The roof is what the BLAS behind NumPy sustains on a large square product in the
run's dtype and under the run's thread limit (call it inside ``pinned_threads``).
The report divides each kernel's achieved GFLOP/s by it. It is a practical
ceiling for dense work on this machine, not the CPU's theoretical peak.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from bench.flops import gemm_flops
from bench.machine import blas_info

# 2 * 1536^3 ~ 7.2 GFLOP per product: large enough to run at full BLAS speed, small
# enough that warm-up plus five repeats stay near a second on a 2-core machine.
SIZE = 1536
REPEATS = 5


def measure_roof(dtype: str = "float64", size: int = SIZE, repeats: int = REPEATS, seed: int = 0) -> dict:
    """Return the median GFLOP/s of ``repeats`` (size, size) @ (size, size) products, after one warm-up."""
    rng = np.random.default_rng(seed)
    A = rng.random((size, size)).astype(dtype)
    B = rng.random((size, size)).astype(dtype)
    C = np.empty((size, size), dtype=dtype)
    np.matmul(A, B, out=C)  # warm-up: page in the buffers, start the BLAS threads
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(A, B, out=C)
        seconds.append(time.perf_counter() - start)
    flops = gemm_flops(size, size, size)
    return {
        "gflops": flops / statistics.median(seconds) / 1e9,
        "method": "numpy.matmul",
        "shape": [size, size, size],
        "dtype": dtype,
        "flops": flops,
        "seconds": seconds,
        "blas_threads": [lib["num_threads"] for lib in blas_info() if lib["user_api"] == "blas"],
    }
