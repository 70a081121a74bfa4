"""Numba backprop that skips zero inputs: the first layer works on the non-zero pixels only.

An MNIST image has about 150 non-zero pixels of 784. A zero input adds exactly zero
to the forward product w^1 x and to the weight gradient delta^1 x^T, so leaving it
out changes nothing but the order of the sums. Every weight block is kept transposed,
w^lT of shape (n_(l-1), n_lp), one contiguous row per input, its width n_lp padded to
whole vectors with zeros; activations and errors are kept one row per example.

How it is made fast (figures in docs/performance.md):

- **Accumulators in vector registers.** The forward sum of an example, z = sum over its
  pixels of x_p w^1T[p], is held in LLVM vector values (:mod:`simd`) across the loop
  over pixels, and stored once; the first-layer gradient adds x_p delta to row p with
  the delta held in registers. Numba alone kept such sums in memory.
- **The batch in phases**: all first-layer sums, then all sigmoids, the dense layers,
  the errors, and only then the gradients, each phase a loop over the batch.
- **Compact input**: a pixel is a uint16 index and a uint8 code, its value read from a
  256-entry table (code k holds k / 255 in the dtype, bit for bit what
  ``scale_pixels`` gives), 3 bytes instead of 6 or 10. An array whose non-zero values
  are not all such values keeps them in full (``_build_index``): exact either way.
- **A vectorised sigmoid**: :func:`simd.exp`, within 2 ulp of libm, FMA throughout, in a
  loop compiled under NumPy's error model (Python's zero-divisor check kept it scalar).
- **Errors back through w^2 untransposed**: delta^1 of an example is one combination of
  the n_2 rows of a copy of w^2 (made once per batch), not n_1 dot products.
- **One pass over the gradient**: the w^1T gradient is zeroed as it is applied; a batch of
  ``_ALL_ROWS_BATCH`` or more applies every row, a smaller one only the rows it touched.
- **Prefetched input**: in a shuffled epoch an example's entries are in no cache when its
  turn comes, and each example's sum waited on them: the loops over a batch ask for the
  entries and targets ``_AHEAD`` examples ahead (``_fetch_ahead``), and for where the entries
  start twice as far.
- **Aligned**: theta, the gradient and the scratch start on 64-byte boundaries, so no
  vector load straddles two cache lines.
- **Float32 at batch 1**: errors of saturated units underflow to subnormal numbers,
  which cost some FPUs dearly (Intel's; not Zen 4's). There, a row's update is skipped
  lane by lane where it provably leaves the weight unchanged (``_skip_bounds``): bit for
  bit the same result, with subnormals still computed wherever they matter (nothing is
  flushed to zero). Whether this CPU is one of those is measured once per process
  (``_subnormals_slow``); where it is not, the skipping costs more than it saves.

The index of non-zero pixels (per example: pixels and codes, CSR-like) is built by
:func:`prepare` for the training set, timed apart from the epochs, and on the fly for
any other array.

Threads: with more than one Numba thread (``numba.get_num_threads()``), a mini-batch
of at least ``_MIN_PARALLEL_BATCH`` examples is split by blocks of pixel rows of w^1T
(``_Run.bounds``, equal shares of the index entries), one per thread: each thread sums
its block's part of every example's first-layer sum, then (one slice of examples per
thread) the parts are added and the rest of the forward and backward passes run, then
each thread computes and applies its block's gradient, every row's one shared sum over
the batch in example order. No thread reads rows another core has just written. One
thread also does the dense layers' step. The slices of examples and which thread does
the dense step follow each thread's measured speed (``_deal``): on a shared machine one
core can run 1.3-1.9x slower than the other for seconds, and what moves computes the
same whoever does it, so results stay bit for bit the same. Results differ from one
thread's only in the rounding of the parts' sum. The epoch is one ordinary ``nogil`` function
(``_train_epoch``), run once per thread on Python threads that meet at spin barriers
(:mod:`spin`): as a ``prange`` loop (Numba's parallel mode) the split took 4 of the
cold compile's 11 s, and one function for one and several threads is compiled once.

Float64 results match the reference within rtol 1e-10, like every kernel: only the
order of the sums and the rounding of FMA and exp differ.
"""

from __future__ import annotations

import functools
import time
import weakref

import numba
import numpy as np
from numba import njit

import implementations.kernels.numba_cache  # noqa: F401  (before any cached function: the shared stamp)
from implementations.core import Params, init_params, predict
from implementations.kernels import simd, spin
from implementations.kernels.simd import (
    column_sum,
    dense_rows,
    exp,
    scatter,
    scatter_skip,
    sparse_combine,
)

name = "numba-sparse"
description = "Numba, first layer over the non-zero pixels only (exact), vector registers, w^lT kept transposed"
# Skips zero inputs: the harness reports the multiply-adds it does beside the dense count.
sparse_input = True

# Smallest mini-batch whose w^1T gradient is applied (and zeroed) whole; below it only the
# rows its examples touch are tracked and applied. Measured at batch 10, one core: whole,
# the first-layer step took 33 ms an epoch in float32 against 44 tracked (float64 85 and
# 84); it was 64 while zeroing a row went through a slice, a view per row.
_ALL_ROWS_BATCH = 8
# Smallest mini-batch split over threads; a split batch applies its threads' blocks whole,
# so not below _ALL_ROWS_BATCH. Two threads against one, side by side in one process (9
# epochs each, full MNIST, spin barriers): batch 8 0.79-0.83x (float32), 0.83-0.87x
# (float64); batch 10 0.79x, 0.74-0.76x; batch 32 0.74-0.75x, 0.76-0.81x. (With a prange
# loop per phase, the split lost or tied up to batch 32.)
_MIN_PARALLEL_BATCH = _ALL_ROWS_BATCH
# Float32 errors below this may make subnormal products at batch 1: their lanes are the
# candidates for skipping (see _skip_bounds), on a CPU where subnormals are slow
# (_subnormals_slow). Float64 has no such trouble (0: none).
_TINY = {np.dtype("float32"): 2.0**-60, np.dtype("float64"): 0.0}
# Subnormals count as slow where simd.scatter takes longer than this many times its time with normal
# errors. Measured on a Zen 4 core: 0.99-1.01 (no penalty), where skipping cost float32 at batch 1
# 1.18x the time (0.849x without it); the Intel core that made skipping worth it took 5.6x as long
# for a whole epoch with IEEE subnormals, so its scatter alone far more.
_SLOW_SUBNORMALS = 2.0
# How many examples ahead the loops over a batch prefetch an example's entries (and twice as
# far, where they start). The first-layer sums of a shuffled epoch, float32, one core: 28.6 ms
# without, 14.6-14.9 with 1, 2 or 4 (13.2 in order, where the hardware prefetches); float64
# 47.0 and 25.7-25.9 (measured).
_AHEAD = 2


# ---------------------------------------------------------------------------------------
# The index of non-zero pixels
# ---------------------------------------------------------------------------------------


def _build_index(X: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return (starts (n + 1,), pixels (nnz,), codes (nnz,), table, full, counts (n_in,)): the non-zero entries of X.

    Row i's entries are [starts[i], starts[i + 1]), in pixel order; entry p has the value
    table[codes[p] + full * p]. When every non-zero value is some k / 255 as
    ``scale_pixels`` rounds it in X's dtype, codes are those k and table has 256 entries
    (full 0); otherwise table holds every entry's value and codes are zero (full 1), so
    one compiled kernel serves both. pixels are uint16 where n_in allows.
    counts[k] is how many rows have pixel k non-zero.
    """
    X = np.ascontiguousarray(X)
    n, n_in = X.shape
    rows, pixels = np.nonzero(X)
    values = X[rows, pixels]
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=starts[1:])
    levels = np.arange(256, dtype=X.dtype) / np.asarray(255, X.dtype)
    codes = np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)
    full = not np.array_equal(levels[codes], values)
    if full:
        codes, levels = np.zeros_like(codes), values
    counts = np.bincount(pixels, minlength=n_in).astype(np.int64)
    pixels = pixels.astype(np.uint16 if n_in <= 1 << 16 else np.int32)
    return starts, pixels, codes, levels, np.int64(full), counts


def _bounds(counts: np.ndarray, n_threads: int) -> np.ndarray:
    """Return bounds (n_threads + 1,): blocks [bounds[t], bounds[t + 1]) of pixel rows, one per thread, with equal
    shares of the index's entries (counts (n_in,) as :func:`_build_index` gives them)."""
    share = np.searchsorted(np.cumsum(counts), np.arange(1, n_threads) * counts.sum() / n_threads)
    return np.concatenate([[0], share, [counts.size]]).astype(np.int64)


def _splits(starts: np.ndarray, pixels: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Return splits (n (T + 1),), T = bounds.size - 1: splits[i (T + 1) + t] is example i's first entry whose pixel is
    at least bounds[t], so its entries in block t are [splits[i (T + 1) + t], splits[i (T + 1) + t + 1]).

    Once per index and thread count: each split epoch's thread then reads where its block
    starts instead of searching for it, a binary search per example and thread (two-thread
    epochs at batch 100, side by side: 0.99x float32, 0.97x float64). NumPy, not Numba: nothing more
    to compile on a newcomer's first run. An example's entries are in pixel order, so the
    first at least bounds[t] comes after its entries below bounds[t], which are counted.
    """
    n_threads = bounds.size - 1
    splits = np.empty((starts.size - 1, n_threads + 1), np.int64)
    splits[:, 0], splits[:, n_threads] = starts[:-1], starts[1:]
    for t in range(1, n_threads):
        below = np.concatenate([[0], np.cumsum(pixels < bounds[t])])  # entries below bounds[t] before each entry
        splits[:, t] = starts[:-1] + below[starts[1:]] - below[starts[:-1]]
    return splits.reshape(-1)


# id(X) -> (weak reference to the read-only array, its index, {n_threads: (bounds, splits)}).
_indexes: dict[int, tuple[weakref.ref, tuple[np.ndarray, ...], dict]] = {}


def _index_of(X: np.ndarray) -> tuple[tuple[np.ndarray, ...], dict]:
    """Return (X's index, its splits by thread count), reusing what :func:`prepare` built when X is that same
    read-only array (else a fresh index and an empty dict)."""
    entry = _indexes.get(id(X))
    if entry is not None and entry[0]() is X:
        return entry[1], entry[2]
    return _build_index(X), {}


def _split(index: tuple[np.ndarray, ...], known: dict, n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (bounds (n_threads + 1,), splits) for n_threads threads (:func:`_bounds`, :func:`_splits`),
    from ``known`` or made and kept there. One thread has no splits (an empty array)."""
    if n_threads not in known:
        starts, pixels, counts = index[0], index[1], index[-1]
        bounds = _bounds(counts, n_threads)
        splits = _splits(starts, pixels, bounds) if n_threads > 1 else np.zeros(0, np.int64)
        known[n_threads] = (bounds, _read_only(splits))
    return known[n_threads]


def prepare(X: np.ndarray, Y: np.ndarray) -> None:
    """Build and keep the index of non-zero pixels of X (n, n_in) for the epochs that follow, with where each
    thread's block of pixels starts in every example, for as many Numba threads as this process runs now.

    Kept only for a read-only array, which cannot change behind the index's back (the
    harness passes its training set read-only); keyed by the array's identity and dropped
    when the array goes, so a later array at the same address is not mistaken for it.
    """
    if X.flags.writeable:
        return
    key = id(X)
    index, known = _build_index(X), {}
    _split(index, known, numba.get_num_threads())  # where each thread's block starts, for as many as run now
    _indexes[key] = (weakref.ref(X, lambda _, key=key: _indexes.pop(key, None)), index, known)


# ---------------------------------------------------------------------------------------
# Parameters in the kernel's layout
# ---------------------------------------------------------------------------------------


class _Layout:
    """Where each layer's blocks sit in theta, the flat parameter vector the kernels use.

    Layer l (0-based) is w^(l+1)T, shape (n_l, n_(l+1)p), then its bias (n_(l+1)p,); the
    widths n_lp are padded to whole vectors with zeros. One row of activations (or errors)
    holds every layer's, layer l's at columns [col_off[l], col_off[l] + n_(l+1)p).
    """

    def __init__(self, sizes: list[int], dtype: np.dtype):
        lanes = simd.lanes(dtype)
        self.lanes = lanes
        self.sizes = np.array(sizes, np.int64)
        self.widths = np.array([sizes[0]] + [-(-s // lanes) * lanes for s in sizes[1:]], np.int64)
        w_off, b_off, offset = [], [], 0
        for l in range(len(sizes) - 1):
            w_off.append(offset)
            offset += sizes[l] * int(self.widths[l + 1])
            b_off.append(offset)
            offset += int(self.widths[l + 1])
        self.w_off = np.array(w_off, np.int64)
        self.b_off = np.array(b_off, np.int64)
        self.size = offset
        self.col_off = np.concatenate([[0], np.cumsum(self.widths[1:])]).astype(np.int64)

    def untransposed_size(self) -> int:
        """Return the sum of n_(l+1) * n_lp over the dense layers (l >= 1): room for each w^(l+1) untransposed."""
        sizes, widths = self.sizes, self.widths
        return max(sum(int(sizes[l + 1] * widths[l]) for l in range(1, len(sizes) - 1)), 1)

    def weights(self, theta: np.ndarray, l: int) -> np.ndarray:
        """Return the view of theta holding w^(l+1)T, shape (n_l, n_(l+1)p)."""
        return theta[self.w_off[l] : self.b_off[l]].reshape(self.sizes[l], self.widths[l + 1])


def _subnormal_ratio(dtype: np.dtype, rows: int = 4096, repeats: int = 7) -> float:
    """Return how many times longer :func:`simd.scatter` takes on this CPU to add subnormal errors to rows of
    ones than normal ones (the best of ``repeats`` calls each, after one untimed): what a float32 update
    with tiny errors costs here. The same compiled scatter as the kernel's, on arrays of the same types."""
    width, lanes = 2 * simd.lanes(dtype), simd.lanes(dtype)
    W = _aligned_zeros(rows * width, dtype)
    W[:] = 1.0
    pixels, codes = _read_only(np.arange(rows, dtype=np.uint16)), _read_only(np.zeros(rows, np.uint8))
    table, full, zero, scale = _read_only(np.ones(1, dtype)), np.int64(0), np.int64(0), dtype.type(-0.01)
    tiny, best = np.finfo(dtype).tiny, {}
    for kind, value in (("normal", tiny * 2**12), ("subnormal", tiny / 4)):
        d = _aligned_zeros(width, dtype)
        d[:] = value
        seconds = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            scatter(W, zero, np.int64(width), pixels, codes, table, full, zero, np.int64(rows), scale, d, zero,
                    np.int64(width), np.int64(lanes))  # fmt: skip
            seconds.append(time.perf_counter() - start)
        best[kind] = min(seconds[1:])
    return best["subnormal"] / best["normal"]


@functools.cache
def _subnormals_slow(dtype: np.dtype) -> bool:
    """Return whether subnormal errors slow this CPU's updates in ``dtype`` enough to skip their lanes (measured
    once per process: :func:`_subnormal_ratio` above _SLOW_SUBNORMALS)."""
    return _subnormal_ratio(np.dtype(dtype)) > _SLOW_SUBNORMALS


def _aligned_zeros(size: int, dtype: np.dtype) -> np.ndarray:
    """Return a zero array of ``size`` elements starting on a 64-byte boundary.

    Rows of w^1T and of the scratch are whole vectors, so on an aligned base no vector
    load straddles two cache lines. NumPy only promises 16 bytes: the float64 epoch then
    varied between 81 and 105 ms from one process to the next (measured).
    """
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(size + 64 // itemsize, dtype)
    skip = (-raw.ctypes.data % 64) // itemsize
    return raw[skip : skip + size]


def _theta(params: Params, layout: _Layout) -> np.ndarray:
    """Return params packed into theta (zeros in every padding slot), 64-byte aligned."""
    theta = _aligned_zeros(layout.size, params.dtype)
    for l, (w, b) in enumerate(zip(params.weights, params.biases)):
        layout.weights(theta, l)[:, : w.shape[0]] = w.T
        theta[layout.b_off[l] : layout.b_off[l] + b.size] = b
    return theta


def _params(theta: np.ndarray, layout: _Layout) -> Params:
    """Return Params holding C-contiguous copies of the real (unpadded) parts of theta."""
    sizes = layout.sizes
    weights, biases = [], []
    for l in range(len(sizes) - 1):
        weights.append(np.ascontiguousarray(layout.weights(theta, l)[:, : sizes[l + 1]].T))
        biases.append(theta[layout.b_off[l] : layout.b_off[l] + sizes[l + 1]].copy())
    return Params(weights, biases)


# ---------------------------------------------------------------------------------------
# Kernels. ``net`` is the tuple (sizes, widths, w_off, b_off, col_off, lanes) of _Layout,
# ``index`` the tuple (starts, pixels, codes, table, full) of _build_index; acts and dels are
# flat (m, col_off[-1]) scratch, one row per example of the batch; ids lists the batch's
# examples.
#
# Every kernel here and in simd is compiled with ``_nrt=False``: no reference counts. Numba
# otherwise counts a reference (an atomic add, then a subtract) for each array taken out of
# a tuple or passed on, in every call and in some loops (read in the generated code: 9 on
# entry to _first_layer_part, 2 more per example), and its pruning pass left them in.
# Without them an epoch took 0.75x the time at batch 100 and 0.82x at batch 1 (float32, one
# core, side by side; 0.91x at batch 100 an hour later, with the VM twice as slow). It is
# safe only because these kernels allocate nothing and return no array: every array is
# made, and kept alive, by the Python caller (_Run) for the whole call. The option is
# Numba's own, but private (numba/numba#1204): a Numba that drops it raises KeyError
# ("Unrecognized options") when compiling, not silently.
# ---------------------------------------------------------------------------------------


# error_model="numpy": under Python's error model Numba checks every division for a zero divisor
# (to raise ZeroDivisionError), and that branch kept LLVM from vectorising the loop: 11 cycles a
# unit in float32 against 2 without it (measured). 1 + exp(-z) is at least 1, never zero.
@njit(cache=True, error_model="numpy", _nrt=False)
def _sigmoid(A, lo, hi):
    """Set A[lo:hi] = sigmoid(A[lo:hi]). (Numba JIT-compiled; one long loop, vectorised, exp included)"""
    one = A.dtype.type(1.0)
    a = A[lo:hi]  # a slice, then a loop from 0: no negative-index checks, so it vectorises
    for q in range(a.size):
        a[q] = one / (one + exp(-a[q]))


@njit(cache=True, _nrt=False)
def _fetch_ahead(index, Y, n_out, ids, e):
    """Prefetch the entries and the target row of example ids[e + _AHEAD], and where the entries of ids[e + 2 _AHEAD]
    start; ids past the array's end or below zero are none. (Numba JIT-compiled)"""
    starts, pixels, codes, table, full = index
    if e + 2 * _AHEAD < ids.size and ids[e + 2 * _AHEAD] >= 0:
        simd.prefetch(starts, ids[e + 2 * _AHEAD])
    if e + _AHEAD < ids.size and ids[e + _AHEAD] >= 0:
        i = ids[e + _AHEAD]
        simd.prefetch_lines(Y, i * n_out, (i + 1) * n_out)
        lo, hi = starts[i], starts[i + 1]
        if lo < hi:
            simd.prefetch_lines(pixels, lo, hi)
            if full:
                simd.prefetch_lines(table, lo, hi)
            else:
                simd.prefetch_lines(codes, lo, hi)


@njit(cache=True, _nrt=False)
def _forward_backward(theta, net, index, Y, ids, lo, hi, acts, dels, w_up, kept):
    """Fill rows lo..hi-1 of acts and dels with a^l and delta^l, l = 1..L, of examples ids[lo:hi].
    (Numba JIT-compiled)

    acts and dels hold one block per layer, block l (cap, n_(l+1)p) at cap * col_off[l],
    cap = acts.size // col_off[-1] rows. Phase by phase over the rows: the first layer's
    sparse sums plus bias and its sigmoids (one long loop over the block), then the rest
    (:func:`_upper_layers`).
    """
    widths, w_off, b_off, L = net[1], net[2], net[3], net[5]
    starts, pixels, codes, table, full = index
    w = widths[1]
    for e in range(lo, hi):
        _fetch_ahead(index, Y, net[0][-1], ids, e)
        i = ids[e]
        sparse_combine(
            theta, w_off[0], w, pixels, codes, table, full, starts[i], starts[i + 1], acts, e * w, w, L, b_off[0]
        )
    _sigmoid(acts, lo * w, hi * w)
    _upper_layers(theta, net, Y, ids, lo, hi, acts, dels, w_up, kept)


@njit(cache=True, _nrt=False)
def _untranspose(theta, net, w_up):
    """Copy each dense layer's w^(l+1) (n_(l+1), n_lp), l >= 1, untransposed into w_up, one after another;
    padding columns zero. (Numba JIT-compiled)"""
    sizes, widths, w_off = net[0], net[1], net[2]
    u = 0
    for l in range(1, sizes.size - 1):
        w_prev, w = widths[l], widths[l + 1]
        for k in range(sizes[l]):
            for j in range(sizes[l + 1]):
                w_up[u + j * w_prev + k] = theta[w_off[l] + k * w + j]
        u += sizes[l + 1] * w_prev


@njit(cache=True, _nrt=False)
def _upper_layers(theta, net, Y, ids, lo, hi, acts, dels, w_up, kept):
    """Fill rows lo..hi-1 of acts' blocks 2..L and of every block of dels, from a^1 in acts' first block.
    (Numba JIT-compiled)

    Each dense layer, the output errors, then the errors back to the first layer. Padding
    columns of dels are zero, so they add nothing to any gradient. w_up holds the dense
    layers' weights untransposed (:meth:`_Layout.untransposed_size` elements, as
    :func:`_untranspose` lays them out): copied here first unless ``kept`` says it already
    holds them (batch size 1 keeps the copy up to date, :func:`_sgd_one`).
    """
    sizes, widths, w_off, b_off, col_off, L = net
    cap = acts.size // col_off[-1]
    n_layers = sizes.size - 1
    zero, one = theta.dtype.type(0.0), theta.dtype.type(1.0)
    for l in range(1, n_layers):
        w_in, w = widths[l], widths[l + 1]
        a_in, z_out = cap * col_off[l - 1], cap * col_off[l]
        dense_rows(theta, w_off[l], w, acts, a_in, w_in, 1, sizes[l], acts, z_out, w, w, L, theta, b_off[l], lo, hi)
        _sigmoid(acts, z_out + lo * w, z_out + hi * w)
    # delta^L = (a^L - y) * sigma'(z^L), with sigma'(z) = a * (1 - a), in the reference's order.
    n_out, w = sizes[n_layers], widths[n_layers]
    c = cap * col_off[n_layers - 1]
    for e in range(lo, hi):
        i = ids[e]
        for j in range(w):
            a = acts[c + e * w + j]
            dels[c + e * w + j] = (a - Y[i * n_out + j]) * a * (one - a) if j < n_out else zero
    # delta^l = (w^(l+1)T delta^(l+1)) * sigma'(z^l), from a copy of w^(l+1) untransposed: each example's
    # sum is then one combination of n_(l+1) rows held in vector registers, where n_l dot products,
    # each ending in a horizontal sum, took a third of this function's time (measured).
    if not kept:
        _untranspose(theta, net, w_up)
    u = 0
    for l in range(1, n_layers):
        u += sizes[l + 1] * widths[l]
    for l in range(n_layers - 1, 0, -1):
        w_prev, w = widths[l], widths[l + 1]
        c_prev, c = cap * col_off[l - 1], cap * col_off[l]
        u -= sizes[l + 1] * w_prev  # w^(l+1) untransposed starts here
        no_bias = np.int64(-1)
        dense_rows(w_up, u, w_prev, dels, c, w, 1, sizes[l + 1], dels, c_prev, w_prev, w_prev, L, w_up, no_bias, lo, hi)
        # Times sigma'(z^l), over the rows' whole block at once: slices, then a loop from 0, which
        # vectorises (from a variable start Numba keeps its negative-index checks, and it does not).
        # Padding columns of w_up are zero: their errors stay zero.
        d, a = dels[c_prev + lo * w_prev : c_prev + hi * w_prev], acts[c_prev + lo * w_prev : c_prev + hi * w_prev]
        for k in range(d.size):
            d[k] = d[k] * a[k] * (one - a[k])


@njit(cache=True, _nrt=False)
def _first_layer_part(theta, net, index, Y, ids, m, splits, k, parts):
    """Set parts[(k cap + e) n_1p :][:n_1p] to example ids[e]'s first-layer sum over its pixels in block k only, for
    e < m (no bias; splits as :func:`_splits` sets it; cap = parts.size // n_blocks // n_1p).
    (Numba JIT-compiled; Y only for _fetch_ahead)"""
    widths, w_off, L = net[1], net[2], net[5]
    starts, pixels, codes, table, full = index
    w, stride = widths[1], splits.size // (starts.size - 1)
    cap = parts.size // (stride - 1) // w
    for e in range(m):
        _fetch_ahead(index, Y, net[0][-1], ids, e)
        if e + _AHEAD < ids.size and ids[e + _AHEAD] >= 0:
            simd.prefetch(splits, ids[e + _AHEAD] * stride + k)
        q = ids[e] * stride + k
        lo, hi = splits[q], splits[q + 1]
        o = (k * cap + e) * w
        sparse_combine(theta, w_off[0], w, pixels, codes, table, full, lo, hi, parts, o, w, L, np.int64(-1))


@njit(cache=True, _nrt=False)
def _first_layer_join(theta, net, parts, n_parts, lo, hi, acts):
    """Set rows lo..hi-1 of acts' first block to a^1 = sigmoid(sum of the n_parts partial sums + b^1).
    (Numba JIT-compiled; part k of row e at parts[(k * cap + e) * n_1p :], cap = parts.size // n_parts // n_1p)"""
    widths, b_off, L = net[1], net[3], net[5]
    w = widths[1]
    cap = parts.size // n_parts // w
    for e in range(lo, hi):
        for col in range(0, w, L):
            z = simd.vload(parts, e * w + col)
            for k in range(1, n_parts):
                z = simd.vadd(z, simd.vload(parts, (k * cap + e) * w + col))
            simd.vstore(acts, e * w + col, simd.vadd(z, simd.vload(theta, b_off[0] + col)))
    _sigmoid(acts, lo * w, hi * w)


@njit(cache=True, _nrt=False)
def _first_layer_step(theta, grad, net, index, ids, m, dels, p_lo, p_hi, marks, rows, tracked, step, apply, splits, t):
    """Apply w^1T[p] -= step * (sum over the m examples of x_p delta^1) for pixel rows p in [p_lo, p_hi).
    (Numba JIT-compiled)

    The sums are built in grad's w^1T block, example by example; its rows [p_lo, p_hi) must
    be zero on entry, and an applied step leaves them zero again (zeroed as they are
    applied: one pass over the block, not two). Untracked, every row of the block is
    applied; tracked, only the rows the examples touch (marked in marks, which must be
    all zero on entry, and listed in rows): the others have a zero gradient. Without
    ``apply`` nothing is applied and the gradient stays in grad. With splits empty, the
    block must be every row; else it is block t of :func:`_splits`.
    """
    widths, w_off, b_off, L = net[1], net[2], net[3], net[5]
    starts, pixels, codes, table, full = index
    width, stride = widths[1], splits.size // (starts.size - 1)
    one = theta.dtype.type(1.0)
    G = grad[w_off[0] : b_off[0]]
    count = 0
    for e in range(m):
        i = ids[e]
        lo, hi = (splits[i * stride + t], splits[i * stride + t + 1]) if stride else (starts[i], starts[i + 1])
        if tracked:
            for p in range(lo, hi):
                k = np.int64(pixels[p])
                if marks[k] == 0:
                    marks[k] = 1
                    rows[count] = k
                    count += 1
        scatter(G, np.int64(0), width, pixels, codes, table, full, lo, hi, one, dels, e * width, width, L)
    if not apply:
        return
    W = theta[w_off[0] : b_off[0]]
    if tracked:
        for c in range(count):
            k = rows[c]
            marks[k] = 0
            _apply_zero(W, G, k * width, width, step, L)
    else:
        _apply_zero(W, G, p_lo * width, (p_hi - p_lo) * width, step, L)


@njit(cache=True, _nrt=False)
def _apply_zero(W, G, o, size, step, L):
    """Apply W[o : o + size] -= step * G[o : o + size] (bit for bit as :func:`_step`), then zero G there.
    (Numba JIT-compiled; size a multiple of the lanes L)"""
    s, zero = simd.vsplat(-step), simd.vsplat(W.dtype.type(0.0))
    for q in range(o, o + size, L):  # w + (-step * g) is w - step * g exactly: negation rounds nothing
        simd.vstore(W, q, simd.vadd(simd.vload(W, q), simd.vmul(s, simd.vload(G, q))))
        simd.vstore(G, q, zero)


@njit(cache=True, _nrt=False)
def _dense_step(theta, grad, net, m, acts, dels, step, apply):
    """Write the biases' and the dense layers' gradients over the m examples into grad, then apply
    theta -= step * grad there if ``apply``. (Numba JIT-compiled)"""
    sizes, widths, w_off, b_off, col_off, L = net
    cap = acts.size // col_off[-1]
    for l in range(sizes.size - 1):
        w, d = widths[l + 1], cap * col_off[l]
        column_sum(dels, d, w, m, grad, b_off[l], w, L)
        if l > 0:  # row k of w^(l+1)T's gradient: the sum over the examples of a_k delta, four rows at a time
            a, no_bias, k_rows = cap * col_off[l - 1], np.int64(-1), sizes[l]
            dense_rows(dels, d, w, acts, a, 1, widths[l], m, grad, w_off[l], w, w, L, grad, no_bias, 0, k_rows)
    if apply:
        _step(theta, grad, b_off[0], theta.size, step)


@njit(cache=True, _nrt=False)
def _step(theta, g, lo, hi, step):
    """Apply theta[lo:hi] -= step * g[lo:hi], the shared update's rounding. (Numba JIT-compiled)"""
    # Slices first, then loops from 0: a loop from a variable start keeps Numba's negative-index
    # checks and does not vectorise (measured 6x slower).
    dense, g = theta[lo:hi], g[lo:hi]
    for q in range(dense.size):
        dense[q] -= step * g[q]


@njit(cache=True, _nrt=False)
def _skip_bounds(net, dels, step, vmax, tiny, bound):
    """Set bound (n_1p,) for one example's first-layer update and return whether any lane may be skipped.
    (Numba JIT-compiled)

    The update of w in lane j is w + u with u = fl(-step * x) * delta_j, one FMA, |x| <= vmax.
    If |u| < |w| 2**-26 the sum rounds back to w (a float32 ulp of w is at least |w| 2**-24,
    and a subnormal w's ulp exceeds 4 |u| too), so where |w| > bound_j = |delta_j| step vmax
    2**27 (the extra factor 2 covers the rounding of fl and of bound itself) the lane can be
    left out, bit for bit. Only lanes with |delta_j| < tiny get a finite bound; the others
    are always updated.
    """
    widths, col_off = net[1], net[4]
    skip, scale = False, np.float64(step) * vmax * 2.0**27
    for j in range(widths[1]):  # no branch inside: LLVM vectorises it
        d = abs(np.float64(dels[col_off[0] + j]))
        candidate = (d < tiny) & (d != 0)
        bound[j] = d * scale if candidate else np.inf
        skip |= candidate
    return skip


# Inlined into its one caller: compiled on its own, all it calls was optimised once more (0.7 s per dtype).
@njit(cache=True, inline="always", _nrt=False)
def _sgd_one(theta, net, index, Y, ids, acts, dels, w_up, step, vmax, tiny, bound):
    """Apply one per-example SGD step (batch size 1) on example ids[0] to theta in place. (Numba JIT-compiled)

    All errors are computed with the old weights first, as in the reference; then each
    weight gets w -= step * (x delta), only the rows of w^1T of the example's non-zero
    pixels touched, lanes that provably stay unchanged skipped (_skip_bounds). w_up must
    hold the dense layers' weights untransposed (:func:`_untranspose`); it gets the same
    updates, bit for bit, so it need not be copied again for the next example (the copy
    was an eighth of an example's time, float32).
    """
    sizes, widths, w_off, b_off, col_off, L = net
    starts, pixels, codes, table, full = index
    # Every integer argument an int64 variable, as in the batch path's calls: a literal 0 would make
    # Numba compile these functions once more, for that literal (2 s more of a cold compile, measured).
    zero, one_row = np.int64(0), np.int64(1)
    _fetch_ahead(index, Y, sizes[-1], ids, zero)
    i = ids[0]
    sparse_combine(theta, w_off[0], widths[1], pixels, codes, table, full, starts[i], starts[i + 1], acts, zero,
                   widths[1], L, b_off[0])  # fmt: skip
    # The rows just summed (more than L1 holds in float64) have evicted the dense layers' weights, which
    # come next: ask for them now, while the sigmoid runs.
    simd.prefetch_lines(theta, b_off[0], theta.size)
    simd.prefetch_lines(w_up, zero, w_up.size)
    _sigmoid(acts, zero, widths[1])
    _upper_layers(theta, net, Y, ids, zero, one_row, acts, dels, w_up, np.bool_(True))
    # The dense layers first, while the rows the errors have just read are in L1; the first layer's
    # rows would evict them (measured: 0.989x / 0.981x the time an example, float32 / float64).
    # Whole padded rows, a vector at a time: padding lanes of dels are zero, so padding weights stay zero.
    cap, one = acts.size // col_off[-1], theta.dtype.type(1.0)  # example 0's rows: one per layer's block
    s, u = -step, 0
    for l in range(sizes.size - 1):
        w, d = widths[l + 1], cap * col_off[l]
        simd.axpy(theta, b_off[l], s, one, dels, d, w, L)
        if l > 0:
            a, n_in = cap * col_off[l - 1], sizes[l]
            for k in range(n_in):
                simd.axpy(theta, w_off[l] + k * w, s, acts[a + k], dels, d, w, L)
            # The copy's row j: the same w + s * (delta_j a_k), each product rounded, whole vectors;
            # acts' padding is not zero, so the row's padding columns are set back to zero after.
            for j in range(sizes[l + 1]):
                r = u + j * widths[l]
                simd.axpy(w_up, r, s, dels[d + j], acts, a, widths[l], L)
                for k in range(n_in, widths[l]):
                    w_up[r + k] = 0
            u += sizes[l + 1] * widths[l]
    lo, hi, width = starts[i], starts[i + 1], widths[1]
    if tiny > 0 and _skip_bounds(net, dels, step, vmax, tiny, bound):
        scatter_skip(theta, w_off[0], width, pixels, codes, table, full, lo, hi, -step, dels, zero, width, L, bound)
    else:
        scatter(theta, w_off[0], width, pixels, codes, table, full, lo, hi, -step, dels, zero, width, L)


# ---------------------------------------------------------------------------------------
# Sharing a split batch's work between threads that run at different speeds. On a shared
# machine one core can run slower than another for seconds at a time: on this project's VM
# the second thread's every phase sometimes took 1.3-1.9x the first's (measured), and with
# even shares the fast thread then waits at every barrier. So each thread measures its own
# phases, and every thread deals the next batch's movable work from those figures, the same
# for all: the dense layers and errors, examples in proportion to each thread's speed at
# them; the dense layers' step, to the thread whose step and sums take least. The first
# layer's rows stay where they are: a thread that summed rows another had just updated
# paid more in moving them between caches than it saved (measured: dropped). What a thread
# computes does not depend on which thread it is, so results are bit for bit the same
# whatever the shares.
#
# tune holds _SLOTS rows of n_threads rows of _COSTS smoothed figures, then n_threads floats of
# scratch per thread. Batch b's figures go to slot b % 3 and shares are dealt from slot
# (b + 1) % 3, batch b - 2's: every thread wrote those before batch b - 1's first barrier, and
# nobody writes that slot again until every thread has passed batch b's first barrier.
# ---------------------------------------------------------------------------------------

_SLOTS = 3
# Per thread, cycles: its first-layer sums of a batch, an example's dense layers and errors,
# and its first-layer step of a batch.
_FORWARD, _UPPER, _STEP = 0, 1, 2
_COSTS = 3
# Weight of a batch's measurement in the smoothed figures.
_SMOOTH = 0.25


def _tune_array(n_threads: int) -> np.ndarray:
    """Return the figures :func:`_deal` starts from: equal costs, so even shares, the dense step on the last thread."""
    tune = np.zeros(_SLOTS * n_threads * _COSTS + n_threads * n_threads)
    tune[: _SLOTS * n_threads * _COSTS] = 1.0
    return tune


@njit(cache=True, _nrt=False)
def _cut(weights, n, t, total):
    """Return thread t's range [lo, hi) of total units dealt out in proportion to weights[:n], in order.
    (Numba JIT-compiled; every thread computes the same edges, so the ranges tile [0, total))"""
    before, whole = 0.0, 0.0
    for s in range(n):
        whole += weights[s]
        if s < t:
            before += weights[s]
    lo = np.int64(np.floor(total * before / whole + 0.5)) if t > 0 else np.int64(0)
    hi = np.int64(np.floor(total * (before + weights[t]) / whole + 0.5)) if t < n - 1 else np.int64(total)
    return min(max(lo, 0), total), min(max(hi, lo), total)


@njit(cache=True, _nrt=False)
def _deal(tune, slot, t, n, m):
    """Return thread t's examples [e_lo, e_hi) of a split batch of m for the dense layers and errors, in proportion
    to each thread's speed at them, and the thread that does the dense layers' step: the one whose sums and step
    take least (the last on a tie). (Numba JIT-compiled; figures from tune's slot)"""
    rate = tune[_SLOTS * n * _COSTS + t * n : _SLOTS * n * _COSTS + (t + 1) * n]
    top = 0.0
    for s in range(n):
        rate[s] = 1.0 / max(tune[(slot * n + s) * _COSTS + _UPPER], 1e-9)
        top = max(top, rate[s])
    for s in range(n):  # none below a quarter of the fastest: a thread measured slow still gets examples
        rate[s] = max(rate[s], top / 4)
    e_lo, e_hi = _cut(rate, n, t, m)
    dense, least = n - 1, np.inf
    for s in range(n - 1, -1, -1):
        row = (slot * n + s) * _COSTS
        cycles = tune[row + _FORWARD] + tune[row + _STEP]
        if cycles < least:
            dense, least = s, cycles
    return e_lo, e_hi, dense


@njit(cache=True, _nrt=False)
def _learn(tune, slot, t, n, q, cycles, units):
    """Write thread t's cost q into slot: its last figure smoothed with cycles / units, or kept where it did
    no units (or the machine has no cycle counter). (Numba JIT-compiled)"""
    last = tune[(((slot + _SLOTS - 1) % _SLOTS) * n + t) * _COSTS + q]
    now = last
    if units > 0 and cycles > 0:
        now = (1.0 - _SMOOTH) * last + _SMOOTH * cycles / units
    tune[(slot * n + t) * _COSTS + q] = now


@njit(cache=True, _nrt=False)
def _check_scratch(net, Y, batch_size, acts, dels, ids):
    """Raise ValueError unless acts, dels and ids hold a batch of batch_size rows. (Numba JIT-compiled)"""
    n = Y.size // net[0][-1]
    if acts.size < min(batch_size, n) * net[4][-1] or dels.size < acts.size or ids.size < min(batch_size, n):
        raise ValueError("scratch too short for the batch")
    return n


@njit(cache=True, nogil=True, _nrt=False)
def _train_epoch(
    t, sync, theta, grad, net, index, Y, order, batch_size, eta, acts, dels, w_up, ids, marks, rows, bounds, splits,
    parts, skip, tune,
):  # fmt: skip
    """Run thread t's share of an epoch of mini-batch SGD on theta in place; order is empty for in-order
    batches. (Numba JIT-compiled; one call per thread, each on a thread of its own: :func:`spin.run_threads`)

    With one thread (bounds.size == 2) each batch runs whole: forward and backward
    passes, then the steps. With n > 1 threads, a batch of at least _MIN_PARALLEL_BATCH
    examples runs in three phases, the threads meeting at a :func:`spin.barrier` after
    the first two. Thread t owns the block of pixel rows [bounds[t], bounds[t + 1]) of
    w^1T: first it sums those rows' part of every example's first-layer sum into parts;
    then, one slice of examples per thread, the parts are added, and the sigmoids, dense
    layers and errors follow; last, thread t computes and applies its block's gradient,
    one thread the dense layers' step too. So no thread reads rows of
    w^1T that another core has just written: with the forward sums split by examples,
    every thread read them all, and two threads took 0.72-0.76x of one (measured). No
    barrier follows the last phase: the next batch's first phase touches only the
    thread's own rows and parts, and the dense step is done before its thread reaches the
    next barrier. The slices of examples and the thread of the dense step follow the
    threads' measured speeds (:func:`_deal`, figures in tune). A shorter last batch runs
    whole on thread 0, once every thread is done.

    acts and dels must hold batch_size rows (else ValueError, before anything is
    written); splits is :func:`_splits`' for these bounds (empty with one thread);
    ids, w_up and parts hold one block per thread, ids' of at least batch_size + 2 _AHEAD:
    the batch's examples, then the next ones, for _fetch_ahead; skip is (vmax, tiny,
    bound) for _sgd_one; tune as :func:`_tune_array` makes it for n threads.
    """
    n_threads = bounds.size - 1
    cap, part = ids.size // n_threads, w_up.size // n_threads
    ids, w_up = ids[t * cap : (t + 1) * cap], w_up[t * part : (t + 1) * part]
    n = _check_scratch(net, Y, batch_size, acts, dels, ids)
    vmax, tiny, bound = skip
    yes, no = np.bool_(True), np.bool_(False)
    real = theta.dtype.type
    p_lo, p_hi, arrived, split = bounds[t], bounds[t + 1], 0, 0
    kept = False  # whether w_up holds the dense layers untransposed (batch size 1 only)
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        step = real(eta / m)  # rounded to theta's dtype first, as the shared update does
        whole = n_threads == 1 or m < _MIN_PARALLEL_BATCH
        if whole and n_threads > 1:  # the short last batch of a split epoch: thread 0 alone, after all others
            arrived += n_threads
            if not spin.barrier(sync, arrived) or t > 0:
                return
        for e in range(ids.size):  # the batch, then the examples after it (-1 past the end)
            k = start + e
            ids[e] = -1 if k >= n else k if order.size == 0 else order[k]
        if whole and m == 1:
            if not kept:  # the first example of a batch-size-1 epoch: its copy of the dense layers
                _untranspose(theta, net, w_up)
                kept = True
            _sgd_one(theta, net, index, Y, ids, acts, dels, w_up, step, vmax, tiny, bound)
        elif whole:
            _forward_backward(theta, net, index, Y, ids, np.int64(0), m, acts, dels, w_up, no)
            tracked, n_in = m < _ALL_ROWS_BATCH, net[0][0]  # every row: thread 0 alone here
            _first_layer_step(
                theta, grad, net, index, ids, m, dels, np.int64(0), n_in, marks, rows, tracked, step, yes, splits[:0], t
            )
            _dense_step(theta, grad, net, m, acts, dels, step, yes)
        else:
            slot = split % _SLOTS
            e_lo, e_hi, dense = _deal(tune, (split + 1) % _SLOTS, t, n_threads, m)
            split += 1
            c0 = spin.cycles()
            _first_layer_part(theta, net, index, Y, ids, m, splits, t, parts)
            _learn(tune, slot, t, n_threads, np.int64(_FORWARD), spin.cycles() - c0, np.int64(1))
            arrived += n_threads
            if not spin.barrier(sync, arrived):
                return
            c0 = spin.cycles()
            _first_layer_join(theta, net, parts, n_threads, e_lo, e_hi, acts)
            _upper_layers(theta, net, Y, ids, e_lo, e_hi, acts, dels, w_up, no)
            _learn(tune, slot, t, n_threads, np.int64(_UPPER), spin.cycles() - c0, e_hi - e_lo)
            arrived += n_threads
            if not spin.barrier(sync, arrived):
                return
            c0 = spin.cycles()
            _first_layer_step(theta, grad, net, index, ids, m, dels, p_lo, p_hi, marks, rows, no, step, yes, splits, t)
            _learn(tune, slot, t, n_threads, np.int64(_STEP), spin.cycles() - c0, np.int64(1))
            if t == dense:
                _dense_step(theta, grad, net, m, acts, dels, step, yes)


# ---------------------------------------------------------------------------------------
# Public interface
# ---------------------------------------------------------------------------------------


def _read_only(array: np.ndarray) -> np.ndarray:
    """Return a read-only view of ``array``: the kernels are then compiled once, for read-only inputs."""
    view = array.view()
    view.flags.writeable = False
    return view


class _Run:
    """What one call needs: theta, the index of X, Y, and scratch space for batches of up to m examples."""

    def __init__(self, params: Params, X: np.ndarray, Y: np.ndarray, m: int):
        dtype = params.dtype
        sizes = params.sizes
        X = np.ascontiguousarray(X, dtype)  # the same object when it already is, so prepare's index is found
        if X.ndim != 2 or X.shape[1] != sizes[0] or len(Y) != len(X):
            raise ValueError(f"X {X.shape} and Y {np.shape(Y)} do not fit a network of sizes {sizes}")
        self.layout = layout = _Layout(sizes, dtype)
        self.theta = _theta(params, layout)
        self.grad = _aligned_zeros(layout.size, dtype)
        self.net = (layout.sizes, layout.widths, layout.w_off, layout.b_off, layout.col_off, layout.lanes)
        index, known = _index_of(X)
        *arrays, full, _ = index
        self.index = (*(_read_only(a) for a in arrays), full)
        self.Y = _read_only(np.ascontiguousarray(Y, dtype).reshape(-1))
        m = max(1, min(m, len(X)))
        self.acts = _aligned_zeros(m * int(layout.col_off[-1]), dtype)
        self.dels = _aligned_zeros(self.acts.size, dtype)
        threads = numba.get_num_threads() if m >= _MIN_PARALLEL_BATCH else 1
        self.w_up = np.zeros(threads * layout.untransposed_size(), dtype)  # one per thread
        # Per thread, its block's part of every example's first-layer sum (only with threads).
        self.parts = _aligned_zeros(threads * m * int(layout.widths[1]) if threads > 1 else 0, dtype)
        self.ids = np.zeros(threads * (m + 2 * _AHEAD), np.int64)  # one block per thread, with the examples ahead
        self.marks = np.zeros(sizes[0], np.uint8)
        self.rows = np.zeros(sizes[0], np.int64)
        self.bounds, self.splits = _split(index, known, threads)  # each thread's block of pixel rows
        table = self.index[3]
        vmax = float(np.abs(table).max()) if table.size else 0.0
        tiny = _TINY[dtype] if _TINY[dtype] > 0 and _subnormals_slow(dtype) else 0.0
        self.skip = (vmax, tiny, _aligned_zeros(int(layout.widths[1]), dtype))


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the n examples; X has shape (n, in), Y (n, out)."""
    run = _Run(params, X, Y, len(X))
    if len(X):
        # The pieces of a batch step, without the step: each is compiled once, for train_epoch too.
        m, ids, zero = len(X), np.arange(len(X), dtype=np.int64), params.dtype.type(0.0)
        _forward_backward(run.theta, run.net, run.index, run.Y, ids, 0, m, run.acts, run.dels, run.w_up, False)
        args = (run.theta, run.grad, run.net, run.index, ids, m, run.dels, 0, params.sizes[0], run.marks, run.rows)
        _first_layer_step(*args, False, zero, False, run.splits[:0], np.int64(0))
        _dense_step(run.theta, run.grad, run.net, m, run.acts, run.dels, zero, False)
    return _params(run.grad, run.layout)


def _run_epoch(run: _Run, order: np.ndarray, batch_size: int, eta: float, tune: np.ndarray | None = None) -> None:
    """Run one epoch on run.theta in place, on as many threads as run.bounds has blocks, the threads' costs
    starting from tune (default :func:`_tune_array`'s: equal)."""
    n_threads = run.bounds.size - 1
    tune = _tune_array(n_threads) if tune is None else tune
    args = (run.theta, run.grad, run.net, run.index, run.Y, order, batch_size, eta, run.acts, run.dels, run.w_up,
            run.ids, run.marks, run.rows, run.bounds, run.splits, run.parts, run.skip, tune)  # fmt: skip
    spin.run_threads(_train_epoch, run.bounds.size - 1, *args)


def train_epoch(
    params: Params, X: np.ndarray, Y: np.ndarray, batch_size: int, eta: float, order: np.ndarray | None = None
) -> Params:
    """Return the parameters after one epoch of mini-batch SGD, fused into one compiled call.

    Same batches and update as the shared loop over :func:`gradients`; ``params`` is not modified.
    """
    run = _Run(params, X, Y, batch_size)
    n = len(X)
    if order is not None and (len(order) != n or (n and not 0 <= np.min(order) <= np.max(order) < n)):
        raise ValueError(f"order must hold {n} indices into X")  # the kernels index without bounds checks
    order = _read_only(np.empty(0, np.int64) if order is None else np.ascontiguousarray(order, np.int64))
    _run_epoch(run, order, int(batch_size), float(eta))
    return _params(run.theta, run.layout)


def warm_up(sizes: list[int], dtype: str) -> None:
    """Compile (or load from the on-disk cache) every kernel, and run an epoch on as many threads as Numba has.

    Compiled per dtype only: any sizes, any batch size, and both kinds of index (compact
    and full share every compiled type; the warm-up runs both, so both are exercised).
    One compiled epoch serves every thread count; the warm-up runs it on this process's.
    """
    n = 2 * _MIN_PARALLEL_BATCH
    params = init_params(sizes, seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (n, sizes[0])) * (rng.random((n, sizes[0])) < 0.3)  # some zeros, as in real images
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    for X in (pixels.astype(dtype) / np.asarray(255, dtype), rng.random((n, sizes[0])).astype(dtype)):
        prepare(_read_only(X), Y)
        gradients(params, X, Y)
        for batch_size in (1, 2, n):  # per example, tracked rows, and split over the threads
            train_epoch(params, X, Y, batch_size, 1.0, order=np.arange(n))


__all__ = ["name", "description", "gradients", "train_epoch", "predict", "prepare", "sparse_input", "warm_up"]
