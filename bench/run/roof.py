"""This machine's matrix-multiply roof: the GFLOP/s of one large GEMM, through NumPy's BLAS and SciPy's.

The roof is what a BLAS sustains on a large square product in the
run's dtype and under the run's thread limit (call it inside ``pinned_threads``).
The report divides each kernel's achieved GFLOP/s by it. It is a practical
ceiling for dense work on this machine, not the CPU's theoretical peak.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from bench.flops import gemm_flops
from bench.run.machine import blas_info

# 2 * 1536^3 ~ 7.2 GFLOP per product: large enough to run at full BLAS speed, small
# enough that warm-up plus five repeats stay near a second on a 2-core machine.
SIZE = 1536
REPEATS = 5


def _time_products(product, repeats: int) -> list[float]:
    """Return the seconds of ``repeats`` calls of ``product()``, after one warm-up call."""
    product()  # warm-up: page in the buffers, start the BLAS threads
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        product()
        seconds.append(time.perf_counter() - start)
    return seconds


def measure_roof(dtype: str = "float64", size: int = SIZE, repeats: int = REPEATS, seed: int = 0) -> dict:
    """Return the median GFLOP/s of ``repeats`` (size, size) @ (size, size) NumPy products, after one warm-up."""
    rng = np.random.default_rng(seed)
    A = rng.random((size, size)).astype(dtype)
    B = rng.random((size, size)).astype(dtype)
    C = np.empty((size, size), dtype=dtype)
    seconds = _time_products(lambda: np.matmul(A, B, out=C), repeats)
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


def measure_scipy_roof(dtype: str = "float64", size: int = SIZE, repeats: int = REPEATS, seed: int = 0) -> dict | None:
    """Return the roof through SciPy's BLAS (the one Numba's np.dot calls), or None without SciPy."""
    try:
        from scipy.linalg import blas
    except ImportError:
        return None
    routine = "dgemm" if dtype == "float64" else "sgemm"
    gemm = getattr(blas, routine)
    rng = np.random.default_rng(seed)
    # Fortran order: SciPy's gemm then needs no copies, as Numba's calls need none.
    A = np.asfortranarray(rng.random((size, size)).astype(dtype))
    B = np.asfortranarray(rng.random((size, size)).astype(dtype))
    seconds = _time_products(lambda: gemm(1.0, A, B), repeats)
    flops = gemm_flops(size, size, size)
    libraries = sorted({lib["library"] for lib in blas_info() if lib["user_api"] == "blas"})
    return {
        "gflops": flops / statistics.median(seconds) / 1e9,
        "method": f"scipy.linalg.blas.{routine}",
        "shape": [size, size, size],
        "dtype": dtype,
        "flops": flops,
        "seconds": seconds,
        "libraries": libraries,
    }
