"""Measure what limits the fast kernels, loop by loop: the figures behind docs/performance.md.

Run it on a quiet machine, one core and one thread, the way ``goals`` runs its one-core
setting::

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 taskset -c 0 python scripts/limits.py --out limits.json

and, for the two-thread split, ``NUMBA_NUM_THREADS=2 taskset -c 0,1 python scripts/limits.py --threads``.

Each figure is the median of ``--repeats`` timings of the whole MNIST training set, with
the minimum beside it. Cycles are seconds times the clock the kernel reports
(``cpu MHz`` in /proc/cpuinfo), so on a VM they are approximate. The arithmetic limit
quoted beside them is one FMA per vector of a row per entry, at ``--fma-per-cycle`` vector
FMAs a cycle of the kernel's width (``simd.VECTOR_BYTES``): by default 1 on an AMD core
with 64-byte vectors (Zen 4 runs a 64-byte FMA on its two 32-byte pipes together), else 2
(two FMA pipes of the full width, as on Intel's AVX-512 servers and on AVX2 cores). The
file records the figure it used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
from numba import njit

import implementations
from bench.flops import epoch_flops
from bench.run.data import load_dataset, one_hot, scale_pixels
from bench.run.roof import measure_roof
from implementations.core import init_params
from implementations.kernels import numba_sparse as sparse
from implementations.kernels import simd

SIZES = [784, 30, 10]


def clock_hz() -> float:
    """Return the clock /proc/cpuinfo reports for the first CPU, in Hz (0 if unknown)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) * 1e6
    except OSError:
        pass
    return 0.0


def fma_per_cycle() -> int:
    """Return the vector FMAs of the kernel's width this CPU starts a cycle: 1 for AMD with 64-byte vectors, else 2."""
    try:
        amd = "AuthenticAMD" in Path("/proc/cpuinfo").read_text()
    except OSError:
        amd = False
    return 1 if amd and simd.VECTOR_BYTES == 64 else 2


def timed(call: Callable[[], object], repeats: int) -> dict:
    """Return {"median", "min"} seconds of ``repeats`` calls of ``call`` (after one untimed call)."""
    call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return {"median": statistics.median(seconds), "min": min(seconds)}


@njit
def _forward_all(W1T, starts, pixels, codes, table, full, z, width, lanes):
    for i in range(starts.size - 1):
        simd.sparse_combine(W1T, 0, width, pixels, codes, table, full, starts[i], starts[i + 1], z, 0, width, lanes, 0)


@njit
def _forward_order(W1T, index, Y, order, z, width, lanes, fetch):
    """The forward sums of the examples in ``order``, prefetching as the kernel does if ``fetch``."""
    starts, pixels, codes, table, full = index
    for e in range(order.size):
        if fetch:
            sparse._fetch_ahead(index, Y, 10, order, e)
        i = order[e]
        simd.sparse_combine(W1T, 0, width, pixels, codes, table, full, starts[i], starts[i + 1], z, 0, width, lanes, 0)


@njit
def _scatter_all(G, starts, pixels, codes, table, full, d, width, lanes):
    scale = d.dtype.type(1e-9)
    for i in range(starts.size - 1):
        simd.scatter(G, 0, width, pixels, codes, table, full, starts[i], starts[i + 1], scale, d, 0, width, lanes)


@njit
def _sigmoid_all(a, n):
    for _ in range(n):
        sparse._sigmoid(a, 0, a.size)


@njit
def _products_all(W1, X, Dt, n_batches, m):
    """The two input-sized products of ``numba`` per batch: (30, 784) x (784, m) and (30, m) x (m, 784)."""
    At = np.empty((W1.shape[0], m), W1.dtype)
    gW = np.empty_like(W1)
    for b in range(n_batches):
        Xb = X[b * m : (b + 1) * m]
        np.dot(W1, Xb.T, At)
        np.dot(Dt, Xb, gW)


def sparse_parts(dtype: str, X: np.ndarray, repeats: int, hz: float, fmas: int = 2) -> dict:
    """Return numba-sparse's first-layer loops and sigmoids over the training set, per non-zero entry.

    The forward sum of every example (vector accumulators, :func:`simd.sparse_combine`) and
    the scatter of its gradient rows (:func:`simd.scatter`), each over the whole index once;
    the ``_l1`` variants point every entry at one of 96 rows, which stay in L1, so what they
    cost is compute and loop overhead, not memory. Those go through the examples in order,
    where the hardware prefetches the index; an epoch takes them shuffled, so the forward
    sums are also timed in a random order (``_shuffled``), without and with the kernel's own
    prefetch of the entries examples ahead (``_fetch_ahead``).
    """
    starts, pixels, codes, table, full, _ = sparse._build_index(X)
    n, entries = len(X), int(starts[-1])
    layout = sparse._Layout(SIZES, np.dtype(dtype))
    width, lanes = int(layout.widths[1]), layout.lanes
    rng = np.random.default_rng(0)
    W1T = np.zeros(SIZES[0] * width + width, dtype)  # rows of w^1T, then a zero bias
    W1T[: SIZES[0] * width] = rng.standard_normal(SIZES[0] * width)
    z, d = np.zeros(width, dtype), rng.standard_normal(width).astype(dtype)
    index = (starts, pixels, codes, table, full)
    forward = timed(lambda: _forward_all(W1T, *index, z, width, lanes), repeats)
    scatter = timed(lambda: _scatter_all(W1T, *index, d, width, lanes), repeats)
    pixels_l1 = (np.arange(entries) % 96).astype(pixels.dtype)
    index_l1 = (starts, pixels_l1, codes, table, full)
    forward_l1 = timed(lambda: _forward_all(W1T, *index_l1, z, width, lanes), repeats)
    order, Y = rng.permutation(n).astype(np.int64), np.zeros(10 * n, dtype)
    shuffled = timed(lambda: _forward_order(W1T, index, Y, order, z, width, lanes, False), repeats)
    prefetched = timed(lambda: _forward_order(W1T, index, Y, order, z, width, lanes, True), repeats)
    scatter_l1 = timed(lambda: _scatter_all(W1T, *index_l1, d, width, lanes), repeats)
    units = sum(SIZES[1:])  # sigmoids per example
    a = rng.standard_normal(4096).astype(dtype)
    rounds = max(1, n * units // a.size)
    sigmoid = timed(lambda: _sigmoid_all(a, rounds), repeats)
    per_entry = lambda s: s / entries * hz  # noqa: E731
    return {
        "entries_per_example": entries / n,
        "padded_width": width,
        "lanes": lanes,
        "compact_index": not full,
        "forward_ms": 1e3 * forward["median"],
        "forward_cycles_per_entry": per_entry(forward["median"]),
        "scatter_ms": 1e3 * scatter["median"],
        "scatter_cycles_per_entry": per_entry(scatter["median"]),
        "forward_l1_cycles_per_entry": per_entry(forward_l1["median"]),
        "forward_shuffled_cycles_per_entry": per_entry(shuffled["median"]),
        "forward_shuffled_prefetched_cycles_per_entry": per_entry(prefetched["median"]),
        "scatter_l1_cycles_per_entry": per_entry(scatter_l1["median"]),
        # The arithmetic limit: one FMA per vector of a row per entry, ``fmas`` vector FMAs a cycle.
        "fma_vectors_per_cycle": fmas,
        "fma_limit_cycles_per_entry": width / lanes / fmas,
        "row_bytes": width * np.dtype(dtype).itemsize,
        "sigmoid_ms": 1e3 * sigmoid["median"] * n * units / (rounds * a.size),
        "sigmoid_cycles_each": sigmoid["median"] / (rounds * a.size) * hz,
    }


def epoch(name: str, dtype: str, X: np.ndarray, Y: np.ndarray, batch_size: int, repeats: int) -> dict:
    """Return a kernel's epoch times on (X, Y) at ``batch_size``."""
    kernel = implementations.get(name)
    kernel.warm_up(SIZES, dtype)
    if getattr(kernel, "prepare", None):
        kernel.prepare(X, Y)
    params = init_params(SIZES, seed=1, dtype=dtype)
    return timed(lambda: kernel.train_epoch(params, X, Y, batch_size, 3.0), repeats)


def dense_products(dtype: str, X: np.ndarray, repeats: int, roof_gflops: float) -> dict:
    """Return the time of numba's two input-sized products alone over an epoch at batch 100, and the roof's."""
    m = 100
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((SIZES[1], SIZES[0])).astype(dtype)
    Dt = rng.standard_normal((SIZES[1], m)).astype(dtype)
    products = timed(lambda: _products_all(W1, X, Dt, len(X) // m, m), repeats)
    flops = 2 * 2 * SIZES[0] * SIZES[1] * len(X)
    return {
        "products_ms": 1e3 * products["median"],
        "products_gflops": flops / products["median"] / 1e9,
        "roof_epoch_ms": 1e3 * epoch_flops(SIZES, len(X), m) / 1e9 / roof_gflops,
    }


def loop_per_example(dtype: str, X: np.ndarray, Y: np.ndarray, repeats: int) -> dict:
    """Return the loop kernel's and numba-sparse's seconds per example at batch size 1 (first 3,000 images)."""
    X, Y = X[:3000], Y[:3000]
    loop = epoch("loop", dtype, X, Y, 1, max(1, repeats // 2))
    fast = epoch("numba-sparse", dtype, X, Y, 1, repeats)
    return {
        "loop_us": 1e6 * loop["median"] / len(X),
        "numba_sparse_us": 1e6 * fast["median"] / len(X),
        "needed_for_50x_us": 1e6 * loop["median"] / len(X) / 50,
    }


def split_parts(dtype: str, X: np.ndarray, Y: np.ndarray, repeats: int) -> dict:
    """Return numba-sparse's batch-100 epoch split into the gradients (which threads share) and the update.

    With one thread: the forward and backward passes and both gradients, then the update of
    theta alone. With several, the gradients figure is the split epoch's batches
    (``_train_epoch`` on the threads, updates included: its threads apply their own rows).
    """
    params = init_params(SIZES, seed=1, dtype=dtype)
    sparse.prepare(X, Y)
    run = sparse._Run(params, X, Y, 100)
    n_threads = run.bounds.size - 1
    step, m = params.dtype.type(-1e-9), 100
    batches = [np.arange(start, start + m, dtype=np.int64) for start in range(0, len(X) - m + 1, m)]
    args = (run.theta, run.grad, run.net, run.index)

    def gradients_only():
        if n_threads > 1:
            in_order, eta = np.empty(0, np.int64), float(step) * m
            sparse._run_epoch(run, in_order, m, eta)
            return
        for ids in batches:
            sparse._forward_backward(
                run.theta, run.net, run.index, run.Y, ids, 0, m, run.acts, run.dels, run.w_up, False
            )
            sparse._first_layer_step(
                *args, ids, m, run.dels, 0, SIZES[0], run.marks, run.rows, False, step, False, run.splits[:0], 0
            )  # fmt: skip
            sparse._dense_step(run.theta, run.grad, run.net, m, run.acts, run.dels, step, False)

    def updates_only():
        for _ in batches:
            sparse._step(run.theta, run.grad, 0, run.theta.size, step)

    gradients, updates = timed(gradients_only, repeats), timed(updates_only, repeats)
    return {"slices": n_threads, "gradients_ms": 1e3 * gradients["median"], "updates_ms": 1e3 * updates["median"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtype", action="append", choices=("float32", "float64"))
    parser.add_argument("--threads", action="store_true", help="only the gradient/update split of numba-sparse")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--fma-per-cycle", type=int, choices=(1, 2), default=fma_per_cycle(),
        help="vector FMAs a cycle for the arithmetic limit (default: %(default)s, from this CPU)",
    )  # fmt: skip
    args = parser.parse_args()
    hz = clock_hz()
    images = load_dataset("mnist").train_images
    labels = load_dataset("mnist").train_labels
    out: dict = {"clock_hz": hz, "numba_threads": numba.get_num_threads(), "results": {}}
    for dtype in args.dtype or ["float32", "float64"]:
        X, Y = scale_pixels(images, dtype), one_hot(labels, dtype)
        X.flags.writeable = Y.flags.writeable = False
        found: dict = {"split": split_parts(dtype, X, Y, args.repeats)}
        if not args.threads:
            roof = measure_roof(dtype)["gflops"]
            found |= {
                "roof_gflops": roof,
                "numba_sparse": sparse_parts(dtype, X, args.repeats, hz, args.fma_per_cycle),
                "numba_sparse_epoch_ms": 1e3 * epoch("numba-sparse", dtype, X, Y, 100, args.repeats)["median"],
                "numba_epoch_ms": 1e3 * epoch("numba", dtype, X, Y, 100, args.repeats)["median"],
                "numba_dense": dense_products(dtype, X, args.repeats, roof),
                "batch_1": loop_per_example(dtype, X, Y, args.repeats),
            }
        out["results"][dtype] = found
        print(json.dumps({dtype: found}, indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
