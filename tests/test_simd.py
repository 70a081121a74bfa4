"""implementations/kernels/simd.py: the exp against libm, and numba-sparse at other vector widths.

The exp is tested against NumPy's (libm's for float64, NumPy's own SIMD expf for float32)
over a wide range, the ends included: overflow to inf, underflow through the subnormals
to zero. The vector width follows the machine Numba compiles for; a subprocess pinned to
an x86-64 without AVX (16-byte vectors) and to Haswell (AVX2, 32 bytes) must train as the
reference does, whatever this machine has.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba")

from implementations.kernels import simd
from tests.conftest import ulp_distance

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("dtype", "limit"), [("float64", 760.0), ("float32", 110.0)])
def test_exp_is_within_2_ulp_of_libm(dtype, limit):
    rng = np.random.default_rng(50)
    edges = [0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, limit, -limit, 2 * limit, -2 * limit, 1e30, -1e30, np.inf, -np.inf]
    x = np.concatenate([rng.uniform(-limit, limit, 200_000), rng.uniform(-1, 1, 50_000), edges]).astype(dtype)
    got = np.empty_like(x)
    simd.exp_array(x, got)
    with np.errstate(over="ignore"):
        want = np.exp(x)
    assert got.dtype == x.dtype
    assert ulp_distance(got, want).max() <= 2
    assert got[x == np.inf][0] == np.inf and got[x == -np.inf][0] == 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exp_is_within_1_ulp_of_correctly_rounded_where_results_are_subnormal(dtype):
    tiny = np.finfo(dtype).tiny
    lo, hi = np.log(np.finfo(dtype).smallest_subnormal), np.log(tiny)
    x = np.random.default_rng(51).uniform(lo, hi, 50_000).astype(dtype)
    got = np.empty_like(x)
    simd.exp_array(x, got)
    exact = np.exp(x.astype(np.longdouble)).astype(dtype)
    assert (got < tiny).any() and ulp_distance(got, exact).max() <= 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_axpy_rounds_as_the_reference_update_bit_for_bit(dtype):
    """numba-sparse's per-example update of the dense layers: w - step * (delta * a), two roundings, no FMA."""
    rng = np.random.default_rng(52)
    L = simd.lanes(dtype)
    w, d = rng.standard_normal(3 * L + 5).astype(dtype), rng.standard_normal(3 * L).astype(dtype)
    step, a = np.dtype(dtype).type(0.37), np.dtype(dtype).type(0.81)
    got = w.copy()
    simd.axpy(got, 5, -step, a, d, 0, 3 * L, L)
    assert np.array_equal(got[:5], w[:5]) and np.array_equal(got[5:], w[5:] - step * (d * a))


def test_vector_width_is_read_from_the_feature_string():
    assert simd._vector_bytes("+64bit,+avx,+avx2,+avx512f,+fma") == 64
    assert simd._vector_bytes("+64bit,+avx,+avx2,-avx512f,+fma") == 32
    assert simd._vector_bytes("+64bit,+sse2,-avx,-avx2,-avx512f") == 16
    assert simd._vector_bytes("") == 16
    assert simd.VECTOR_BYTES in (16, 32, 64)


# Run in a fresh interpreter under NUMBA_CPU_NAME / NUMBA_CPU_FEATURES; prints the vector width
# and numba-sparse's errors against the reference, per case.
PROBE = """
import json
import numpy as np
from implementations.kernels import numba_sparse, simd, vectorized
from implementations.core import init_params, max_rel_error, train_epoch_with
from tests.conftest import sparse_batch

errors = {}
for sizes in ([784, 30, 10], [784, 70, 33, 10]):  # 70 and 33 units: partial chunks at every width
    params = init_params(sizes, seed=52)
    X, Y = sparse_batch(sizes, 130, seed=53)
    order = np.random.default_rng(54).permutation(130)
    for batch_size, n in ((100, 130), (10, 130), (1, 9)):
        want = train_epoch_with(vectorized.gradients, params, X[:n], Y[:n], batch_size, 3.0, order[order < n])
        got = numba_sparse.train_epoch(params, X[:n], Y[:n], batch_size, 3.0, order[order < n])
        errors[f"{sizes} batch {batch_size}"] = max_rel_error(got, want)
    got, want = numba_sparse.gradients(params, X, Y), vectorized.gradients(params, X, Y)
    errors[f"{sizes} gradients"] = max_rel_error(got, want)
print(json.dumps({"vector_bytes": simd.VECTOR_BYTES, "errors": errors}))
"""

TARGETS = {
    "x86-64": ("+64bit,+cmov,+cx8,+fxsr,+mmx,+sse,+sse2,-avx,-avx2,-avx512f,-fma", 16),
    "haswell": ("+64bit,+avx,+avx2,+fma,+sse4.2,+popcnt,-avx512f", 32),
}


@pytest.mark.slow  # each width compiles the kernels afresh the first time (about 20 s), then loads its cache
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="pins x86 CPU names")
@pytest.mark.parametrize("cpu", sorted(TARGETS))
def test_sparse_kernel_matches_reference_at_another_vector_width(cpu):
    features, vector_bytes = TARGETS[cpu]
    env = dict(os.environ, NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=features, NUMBA_NUM_THREADS="2", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["vector_bytes"] == vector_bytes
    wrong = {case: error for case, error in found["errors"].items() if not error <= 1e-10}
    assert not wrong, f"{cpu}: {wrong}"


@pytest.mark.skipif(platform.machine().lower() not in {"x86_64", "amd64"}, reason="reads x86-64 assembly")
def test_prefetch_lines_asks_for_every_cache_line_of_the_span():
    from numba import njit

    @njit
    def fetch(array, lo, hi):
        simd.prefetch_lines(array, lo, hi)

    x = np.arange(100, dtype=np.uint16)
    fetch(x, 3, 90)  # a hint only: nothing changes
    assert np.array_equal(x, np.arange(100, dtype=np.uint16))
    assembly = fetch.inspect_asm(fetch.signatures[0])
    assert "prefetcht0" in assembly  # x86's prefetch into every cache level: LLVM kept the hint
