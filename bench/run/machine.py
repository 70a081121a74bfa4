"""What a number was measured on: CPU, cores, library versions, BLAS and thread settings.

Every results file carries this, because a timing without its BLAS library and
thread count cannot be compared with anything.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from bench.run.cpus import usable_cpus

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "OPENBLAS_CORETYPE",
)
_PACKAGES = ("numpy", "numba", "llvmlite", "scipy", "threadpoolctl", "torch", "jax", "jaxlib")


def _cpuinfo() -> tuple[str, set[str]]:
    """Return (CPU model name, set of CPU flags) from /proc/cpuinfo, or from platform elsewhere."""
    model, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and value.strip():
                model = value.strip()
            elif key == "flags":
                flags = set(value.split())
            if model and flags:
                break
    return model, flags


def _version(package: str) -> str | None:
    """Return the installed version of ``package``, or None when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def blas_info() -> list[dict]:
    """Return one dict per BLAS/OpenMP library loaded in this process (threadpoolctl)."""
    keep = ("user_api", "internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{k: lib.get(k) for k in keep} | {"library": Path(lib["filepath"]).name} for lib in threadpool_info()]


def numba_info() -> dict:
    """Return Numba's thread count and configured threading layer (None when Numba is absent)."""
    try:
        import numba
    except ImportError:
        return {"num_threads": None, "threading_layer": None}
    return {"num_threads": numba.get_num_threads(), "threading_layer": numba.config.THREADING_LAYER}


def machine_info() -> dict:
    """Return a JSON-ready description of this machine and software stack."""
    model, flags = _cpuinfo()
    return {
        "hostname": platform.node(),
        "cpu_model": model,
        "cpu_flags": sorted(flags & {"avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile"}),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cpus(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {name: v for name in _PACKAGES if (v := _version(name)) is not None},
        "blas": blas_info(),
        "numba": numba_info(),
        "numpy_blas_config": _numpy_blas_name(),
        "thread_env": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
    }


def _numpy_blas_name() -> str | None:
    """Return the name of the BLAS NumPy was built against, where NumPy reports it."""
    with contextlib.suppress(Exception):
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    return None


@contextlib.contextmanager
def pinned_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP pools, Numba and PyTorch to ``n`` threads inside the block (no-op for None).

    JAX is not limited: XLA sizes its thread pool once, at import, from ``XLA_FLAGS``.
    """
    if n is None:
        yield
        return
    try:
        import numba
    except ImportError:
        numba = None
    previous = numba.get_num_threads() if numba else None
    # threadpoolctl limits only the libraries already loaded. Numba's np.dot calls
    # SciPy's own OpenBLAS, which loads lazily (at the first JIT compile), and left
    # unpinned it ran 2 threads on a busy 2-core machine: 30x slower per call.
    with contextlib.suppress(ImportError):
        import scipy.linalg  # noqa: F401
    # PyTorch keeps an intra-op pool of its own; only pin it where a kernel imported it.
    torch = sys.modules.get("torch")
    previous_torch = torch.get_num_threads() if torch else None
    with threadpool_limits(limits=n):
        if numba:
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        if torch:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if numba:
                numba.set_num_threads(previous)
            if torch:
                torch.set_num_threads(previous_torch)


def _status_kib(field: str) -> int | None:
    """Return a memory figure (VmRSS, VmHWM) of this process in KiB from /proc/self/status (Linux), or None."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    return None


def resident_bytes() -> int | None:
    """Return this process's resident memory in bytes, or None where it cannot be read."""
    kib = _status_kib("VmRSS")
    return None if kib is None else 1024 * kib


def reset_peak_memory() -> int | None:
    """Reset this process's peak resident memory to its current size (Linux); return that size in bytes."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return resident_bytes()


def peak_memory_above(baseline: int | None) -> int | None:
    """Return the peak resident memory (bytes) since the last reset, less ``baseline``; None if unknown."""
    peak = _status_kib("VmHWM")
    return None if peak is None or baseline is None else 1024 * peak - baseline
