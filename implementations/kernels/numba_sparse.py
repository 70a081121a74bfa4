"""Numba backprop that skips zero inputs: the first layer works on the non-zero pixels only.

An MNIST image has about 150 non-zero pixels of 784. A zero input adds exactly zero
to the forward product w^1 x and to the weight gradient delta^1 x^T, so leaving it
out changes nothing but the order of the sums. Inside an epoch the first layer's
weights are kept transposed, w^1T of shape (784, n_1), one contiguous row per pixel:
each non-zero pixel is one contiguous multiply-add forward and one backward, and an
update touches only the rows of the pixels that are non-zero in its batch (at batch
size 1, about 150 of 784). The other layers stay dense.

The index of non-zero pixels (per example: pixel numbers and values, CSR-like) is
built by :func:`prepare` for the training set, timed apart from the epochs, and on
the fly for any other array. Each example's list is padded to a multiple of
``_BLOCK`` entries with value 0, pointing at ``_BLOCK`` extra all-zero rows of w^1T,
so the kernels take four pixels at a time with no remainder loop.

How it is made fast. Numba runs LLVM's loop vectoriser but not its SLP vectoriser
(``NUMBA_SLP_VECTORIZE`` is 0), so sums kept in scalar variables (several independent
accumulators) stay scalar: measured 2-3x slower than a loop over the row. What
vectorises is a loop over a row, which LLVM guards with runtime alias checks; those
and the row set-up are paid once per pass, so each pass takes four pixel rows and
adds their products, summed as a tree, to the row once (``_sparse_product``,
``_add_rows``). Every width is padded to whole 64-byte vectors (zero weights, zero
activations, zero errors), so no loop has a remainder. In a mini-batch the dense
layers work on activations and errors kept transposed, (width, examples), so their
loops run along the batch rather than along 10- or 30-wide rows. The per-example
helpers are inlined into their callers (``inline="always"``), which saves the calls and
the reference counting of the array views they pass: 7-9% of a batch-1 epoch, 5% at
batch 10, nothing at batch 100 (one core, both dtypes, 21 and 7 alternating epochs in one
process; results bit for bit the same).

What limits it now (``scripts/limits.py`` on one core of a 2-core AMD EPYC, full MNIST,
``results/reference/limits-1core-1.json`` and ``-2.json``): the two first-layer loops, 9-15
cycles (forward) and 13-24 (gradient) per index entry, 2.5-5x what their multiply-adds and
loads need; it is the set-up per pass, not memory (rows held in L1 cut only 7-34% of the
time). Then the sigmoid's exp, a libm call per unit and example (no SVML here), about 9
cycles each in float32 and 15 in float64. Against ``numba`` (``results/reference/goals.json``
and ``goals-repeat.json``, medians of full-MNIST epochs, 3,000 images at batch 1) an epoch
takes 0.6-0.8x as long at batch 100 and 0.3-0.6x at batch 1; batch 10, where the dense
layers' loops are short and touched rows are tracked, gains least and least reliably
(0.5-1.5x). docs/performance.md says what limits each goal.

Threads: with more than one Numba thread (``numba.get_num_threads()``), a mini-batch of
at least ``_MIN_PARALLEL_BATCH`` examples is split into one contiguous slice per thread
(``prange``); each slice writes its own gradient buffer, and the buffers are summed in
slice order, each thread summing and applying its own chunk of the parameters
(``_parallel_apply``), so results are deterministic for a given thread count. A shorter
batch (an epoch's short last batch, say) is not split, as the per-batch start and the sum
of the buffers would cost more than the split saves: it goes whole to one slice. The
slices' activations and errors share one scratch buffer, sized for the widest slice of
either path and viewed batch by batch (``_scratch``). There is no BLAS here: every product
is a loop in this file. On two cores the split part, the gradients, took 65 ms (float32)
and 107 ms (float64) an epoch against 126-141 and 184-188 on one, and the summed update 3
and 7 ms (full MNIST, batch 100, ``results/reference/limits-2threads.json`` against the
one-core files above); whole epochs at batch 100 on two threads took 0.71-0.96x of one
thread's in the goals files. The buffers are summed slice by slice: a loop over slices
inside the loop over entries does not vectorise and had cost more than the split saved
(docs/performance.md, goal 6).

Float64 results match the reference within rtol 1e-10, like every kernel: only the order
of the sums differs. Over every batch-remainder path, in order and shuffled, at 1, 2, 4
and 8 threads (tests/test_numba_scratch.py), the worst relative error was 1.7e-15 after
one epoch and 4.8e-15 for a gradient, the same at every thread count.
"""

from __future__ import annotations

import weakref

import numba
import numpy as np
from numba import njit, prange

from implementations.core import Params, init_params, predict

name = "numba-sparse"
description = "Numba, first layer over the non-zero pixels only (exact), w^1 kept transposed"
# Skips zero inputs: the harness reports the multiply-adds it does beside the dense count.
sparse_input = True

# Pixels per block of the index: the kernels below are unrolled for exactly four.
_BLOCK = 4
# Widths are padded to a whole number of these, in bytes: one AVX-512 vector, two AVX2.
_VECTOR_BYTES = 64
# Smallest mini-batch split over threads. Measured side by side on two cores (noisy,
# shared machine): at batch 32 the split lost or tied; at 64-200 it won in most pairs.
_MIN_PARALLEL_BATCH = 64
# Smallest mini-batch whose w^1T gradient is zeroed and applied whole; below it only the
# rows its examples touch are tracked, zeroed and applied (measured side by side, float32,
# one core: batch 10, 324 ms tracked and 433 ms whole; batch 50, even; batch 100, 127 and 122).
_ALL_ROWS_BATCH = 64


# ---------------------------------------------------------------------------------------
# The index of non-zero pixels
# ---------------------------------------------------------------------------------------


@njit(cache=True)
def _build_index(X, block):
    """Return (starts (n + 1,), pixels (nnz,) int32, values (nnz,)): the non-zero entries of each row
    of X (n, n_in), row i in [starts[i], starts[i + 1]), padded to a multiple of ``block`` with
    value 0 at pixel n_in + (position in the block). (Numba JIT-compiled)"""
    n, n_in = X.shape
    starts = np.empty(n + 1, np.int64)
    starts[0] = 0
    for i in range(n):
        count = 0
        for k in range(n_in):
            if X[i, k] != 0:
                count += 1
        starts[i + 1] = starts[i] + (count + block - 1) // block * block
    pixels = np.empty(starts[n], np.int32)
    values = np.empty(starts[n], X.dtype)
    for i in range(n):
        p = starts[i]
        for k in range(n_in):
            if X[i, k] != 0:
                pixels[p] = k
                values[p] = X[i, k]
                p += 1
        while p < starts[i + 1]:
            pixels[p] = n_in + (p - starts[i]) % block  # distinct within a block: see _add_rows
            values[p] = 0
            p += 1
    return starts, pixels, values


# id(X) -> (weak reference to the read-only array, its index).
_indexes: dict[int, tuple[weakref.ref, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}


def _index_of(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the index of X, reusing the one :func:`prepare` built when X is that same read-only array."""
    entry = _indexes.get(id(X))
    if entry is not None and entry[0]() is X:
        return entry[1]
    return _build_index(np.ascontiguousarray(X), _BLOCK)


def prepare(X: np.ndarray, Y: np.ndarray) -> None:
    """Build and keep the index of non-zero pixels of X (n, n_in) for the epochs that follow.

    Kept only for a read-only array, which cannot change behind the index's back (the
    harness passes its training set read-only); keyed by the array's identity and dropped
    when the array goes, so a later array at the same address is not mistaken for it.
    """
    if X.flags.writeable:
        return
    key = id(X)
    index = _build_index(np.ascontiguousarray(X), _BLOCK)
    _indexes[key] = (weakref.ref(X, lambda _, key=key: _indexes.pop(key, None)), index)


# ---------------------------------------------------------------------------------------
# Parameters in the kernel's layout
# ---------------------------------------------------------------------------------------


def _padded(width: int, dtype: np.dtype) -> int:
    """Return ``width`` rounded up to a whole number of vectors of ``dtype``."""
    lanes = _VECTOR_BYTES // np.dtype(dtype).itemsize
    return -(-width // lanes) * lanes


class _Layout:
    """Where each layer's blocks sit in theta, the flat parameter vector the kernels use.

    Layer 0 is w^1T, shape (n_in + _BLOCK, n_1p): one row per pixel plus the all-zero rows
    that padding entries point at. Layer l > 0 is w^(l+1), shape (n_(l+1)p, n_lp), as in the
    book. Each weight block is followed by its bias (n_(l+1)p,). Widths n_lp are padded.
    """

    def __init__(self, sizes: list[int], dtype: np.dtype):
        self.sizes = np.array(sizes, np.int64)
        self.widths = np.array([sizes[0]] + [_padded(s, dtype) for s in sizes[1:]], np.int64)
        rows = [sizes[0] + _BLOCK, *self.widths[2:]]
        cols = [self.widths[1], *self.widths[1:-1]]
        w_off, b_off, offset = [], [], 0
        for r, c in zip(rows, cols):
            w_off.append(offset)
            offset += r * c
            b_off.append(offset)
            offset += r
        self.w_off = np.array(w_off, np.int64)
        self.b_off = np.array(b_off, np.int64)
        self.size = offset
        # Activations (and errors) of layers 1..L of one example, back to back.
        self.act_off = np.concatenate([[0], np.cumsum(self.widths[1:])]).astype(np.int64)


def _theta(params: Params, layout: _Layout) -> np.ndarray:
    """Return params packed into theta (zeros in every padding slot)."""
    theta = np.zeros(layout.size, params.dtype)
    sizes, widths = layout.sizes, layout.widths
    n_in, n_1 = sizes[0], sizes[1]
    W1T = theta[layout.w_off[0] : layout.b_off[0]].reshape(n_in + _BLOCK, widths[1])
    W1T[:n_in, :n_1] = params.weights[0].T
    for l, (w, b) in enumerate(zip(params.weights, params.biases)):
        if l > 0:
            W = theta[layout.w_off[l] : layout.b_off[l]].reshape(widths[l + 1], widths[l])
            W[: sizes[l + 1], : sizes[l]] = w
        theta[layout.b_off[l] : layout.b_off[l] + sizes[l + 1]] = b
    return theta


def _params(theta: np.ndarray, layout: _Layout) -> Params:
    """Return Params holding C-contiguous copies of the real (unpadded) parts of theta."""
    sizes, widths = layout.sizes, layout.widths
    weights, biases = [], []
    for l in range(len(sizes) - 1):
        if l == 0:
            W1T = theta[layout.w_off[0] : layout.b_off[0]].reshape(sizes[0] + _BLOCK, widths[1])
            weights.append(np.ascontiguousarray(W1T[: sizes[0], : sizes[1]].T))
        else:
            W = theta[layout.w_off[l] : layout.b_off[l]].reshape(widths[l + 1], widths[l])
            weights.append(W[: sizes[l + 1], : sizes[l]].copy())
        biases.append(theta[layout.b_off[l] : layout.b_off[l] + sizes[l + 1]].copy())
    return Params(weights, biases)


# ---------------------------------------------------------------------------------------
# Kernels. ``net`` is the tuple (sizes, widths, w_off, b_off, act_off) of _Layout and
# ``index`` the tuple (starts, pixels, values) of _build_index.
# ---------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _sparse_product(W1T, pixels, values, lo, hi, z):
    """Set z (n_1p,) = sum over entries p in [lo, hi) of values[p] * W1T[pixels[p]]. (Numba JIT-compiled)

    Four rows per pass: their products are summed as a tree and added to z once, so
    the loop over z carries one dependent addition per four pixels, not per pixel.
    """
    z[:] = 0
    pixels, values = pixels[lo:hi], values[lo:hi]  # indices from 0 up: no negative-index checks
    for p in range(0, pixels.size, 4):
        w0, w1, w2, w3 = W1T[pixels[p]], W1T[pixels[p + 1]], W1T[pixels[p + 2]], W1T[pixels[p + 3]]
        v0, v1, v2, v3 = values[p], values[p + 1], values[p + 2], values[p + 3]
        for j in range(z.size):
            z[j] += (v0 * w0[j] + v1 * w1[j]) + (v2 * w2[j] + v3 * w3[j])


@njit(cache=True, inline="always")
def _add_rows(G, pixels, values, lo, hi, scale, d):
    """Add scale * (values[p] * d) to row pixels[p] of G (rows, n_1p) for every entry p in [lo, hi).
    (Numba JIT-compiled)

    Four rows per pass over d. The four rows of a block are distinct (distinct pixels of
    one example, or distinct padding rows), so the four updates never overwrite each other.
    """
    pixels, values = pixels[lo:hi], values[lo:hi]  # indices from 0 up: no negative-index checks
    for p in range(0, pixels.size, 4):
        g0, g1, g2, g3 = G[pixels[p]], G[pixels[p + 1]], G[pixels[p + 2]], G[pixels[p + 3]]
        v0, v1, v2, v3 = values[p], values[p + 1], values[p + 2], values[p + 3]
        for j in range(d.size):
            g0[j] += scale * (v0 * d[j])
            g1[j] += scale * (v1 * d[j])
            g2[j] += scale * (v2 * d[j])
            g3[j] += scale * (v3 * d[j])


@njit(cache=True, inline="always")
def _dot(w, a):
    """Return sum_k w[k] * a[k] for two vectors whose length is a multiple of 4. (Numba JIT-compiled)"""
    zero = w.dtype.type(0.0)
    s0 = s1 = s2 = s3 = zero
    for k in range(0, w.size, 4):  # four chains of additions instead of one
        s0 += w[k] * a[k]
        s1 += w[k + 1] * a[k + 1]
        s2 += w[k + 2] * a[k + 2]
        s3 += w[k + 3] * a[k + 3]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, inline="always")
def _forward_backward(theta, net, index, Y, i, acts, deltas):
    """Fill acts and deltas (both (sum of n_lp,)) with a^l and delta^l of example i, l = 1..L.
    (Numba JIT-compiled)"""
    sizes, widths, w_off, b_off, act_off = net
    starts, pixels, values = index
    n_layers = sizes.size - 1
    one = theta.dtype.type(1.0)
    # Layer 1, sparse: z = w^1 x over the example's non-zero pixels.
    W1T = theta[w_off[0] : b_off[0]].reshape((sizes[0] + 4, widths[1]))
    _sparse_product(W1T, pixels, values, starts[i], starts[i + 1], acts[act_off[0] : act_off[1]])
    for l in range(n_layers):
        n_out = sizes[l + 1]
        a = acts[act_off[l] : act_off[l + 1]]
        b = theta[b_off[l] : b_off[l] + n_out]
        if l > 0:
            W = theta[w_off[l] : b_off[l]].reshape((widths[l + 1], widths[l]))
            a_prev = acts[act_off[l - 1] : act_off[l]]
            for j in range(n_out):
                a[j] = _dot(W[j], a_prev)
        for j in range(n_out):
            a[j] = one / (one + np.exp(-(a[j] + b[j])))
        a[n_out:] = 0  # padding stays zero, so it adds nothing downstream
    # delta^L = (a^L - y) * sigma'(z^L), with sigma'(z) = a * (1 - a).
    n_out = sizes[n_layers]
    a = acts[act_off[n_layers - 1] : act_off[n_layers]]
    d = deltas[act_off[n_layers - 1] : act_off[n_layers]]
    d[:] = 0
    y = Y[i]
    for j in range(n_out):
        d[j] = (a[j] - y[j]) * a[j] * (one - a[j])
    # delta^l = (w^(l+1)T delta^(l+1)) * sigma'(z^l), accumulated row by row of w^(l+1).
    for l in range(n_layers - 1, 0, -1):
        W = theta[w_off[l] : b_off[l]].reshape((widths[l + 1], widths[l]))
        d = deltas[act_off[l] : act_off[l + 1]]
        d_prev = deltas[act_off[l - 1] : act_off[l]]
        a_prev = acts[act_off[l - 1] : act_off[l]]
        d_prev[:] = 0
        for j in range(sizes[l + 1]):
            dj = d[j]
            w = W[j]
            for k in range(d_prev.size):
                d_prev[k] += dj * w[k]
        for k in range(d_prev.size):
            d_prev[k] *= a_prev[k] * (one - a_prev[k])


@njit(cache=True, inline="always")
def _example(order, start, e):
    """Return the index of the e-th example of the batch that starts at position ``start``. (Numba JIT-compiled)"""
    return start + e if order.size == 0 else order[start + e]


@njit(cache=True)
def _sum(x):
    """Return the sum of x, whose length is a multiple of 4. (Numba JIT-compiled)"""
    zero = x.dtype.type(0.0)
    s0 = s1 = s2 = s3 = zero
    for k in range(0, x.size, 4):
        s0 += x[k]
        s1 += x[k + 1]
        s2 += x[k + 2]
        s3 += x[k + 3]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def _combine4(out, R, k, c0, c1, c2, c3):
    """Add (c0 R[k] + c1 R[k + 1]) + (c2 R[k + 2] + c3 R[k + 3]) to the vector out. (Numba JIT-compiled)"""
    r0, r1, r2, r3 = R[k], R[k + 1], R[k + 2], R[k + 3]
    for e in range(out.size):
        out[e] += (c0 * r0[e] + c1 * r1[e]) + (c2 * r2[e] + c3 * r3[e])


@njit(cache=True)
def _batch_forward_backward(theta, net, index, Y, order, start, lo, hi, At, Dt, z):
    """Fill At and Dt (both (sum of n_lp, m')) with a^l and delta^l of examples lo..hi-1 of the batch
    at ``start``, one column per example, l = 1..L. (Numba JIT-compiled)

    The dense layers work on whole rows of m' >= hi - lo columns (a multiple of 4; the extra
    columns have zero errors, so they add nothing to any gradient): long loops over
    examples instead of one short loop per example. z is scratch (n_1p,).
    """
    sizes, widths, w_off, b_off, act_off = net
    starts, pixels, values = index
    n_layers = sizes.size - 1
    one = theta.dtype.type(1.0)
    m = hi - lo
    W1T = theta[w_off[0] : b_off[0]].reshape((sizes[0] + 4, widths[1]))
    A = At[act_off[0] : act_off[1]]
    A[:, m:] = 0
    for e in range(m):
        i = _example(order, start, lo + e)
        _sparse_product(W1T, pixels, values, starts[i], starts[i + 1], z)
        A[:, e] = z
    for l in range(n_layers):
        n_out = sizes[l + 1]
        A = At[act_off[l] : act_off[l + 1]]
        if l > 0:
            W = theta[w_off[l] : b_off[l]].reshape((widths[l + 1], widths[l]))
            A_prev = At[act_off[l - 1] : act_off[l]]
            A[:n_out] = 0
            for j in range(n_out):
                w, a = W[j], A[j]
                for k in range(0, (sizes[l] + 3) // 4 * 4, 4):  # four rows of A_prev per pass
                    _combine4(a, A_prev, k, w[k], w[k + 1], w[k + 2], w[k + 3])
        b = theta[b_off[l] : b_off[l] + n_out]
        for j in range(n_out):
            a = A[j]
            for e in range(a.size):
                a[e] = one / (one + np.exp(-(a[e] + b[j])))
        A[n_out:] = 0  # padding stays zero, so it adds nothing downstream
    # delta^L = (a^L - y) * sigma'(z^L), with sigma'(z) = a * (1 - a); zero in the extra columns.
    A = At[act_off[n_layers - 1] : act_off[n_layers]]
    D = Dt[act_off[n_layers - 1] : act_off[n_layers]]
    D[:] = 0
    for e in range(m):
        y = Y[_example(order, start, lo + e)]
        for j in range(sizes[n_layers]):
            a = A[j, e]
            D[j, e] = (a - y[j]) * a * (one - a)
    # delta^l = (w^(l+1)T delta^(l+1)) * sigma'(z^l), four rows of delta^(l+1) per pass.
    for l in range(n_layers - 1, 0, -1):
        W = theta[w_off[l] : b_off[l]].reshape((widths[l + 1], widths[l]))
        D = Dt[act_off[l] : act_off[l + 1]]
        D_prev = Dt[act_off[l - 1] : act_off[l]]
        A_prev = At[act_off[l - 1] : act_off[l]]
        D_prev[:] = 0
        for k in range(sizes[l]):
            d = D_prev[k]
            for j in range(0, (sizes[l + 1] + 3) // 4 * 4, 4):
                _combine4(d, D, j, W[j, k], W[j + 1, k], W[j + 2, k], W[j + 3, k])
            a = A_prev[k]
            for e in range(d.size):
                d[e] *= a[e] * (one - a[e])


@njit(cache=True)
def _slice_gradient(theta, grad, marks, rows, net, index, Y, order, start, lo, hi, At, Dt, all_rows):
    """Write into grad (theta's layout) dC/dtheta summed over examples lo..hi-1 of the batch at ``start``,
    and return how many rows of w^1T it wrote. (Numba JIT-compiled)

    With all_rows, every row of grad's w^1T block is written (zeroed first). Otherwise
    only the rows the examples touch: each is zeroed at its first touch, marked in marks
    (which must be all zero on entry) and listed in rows; the other rows are left stale.
    The rows of w^1T sum over examples in order; the dense blocks in four interleaved sums.
    """
    sizes, widths, w_off, b_off, act_off = net
    starts, pixels, values = index
    n_layers = sizes.size - 1
    one = theta.dtype.type(1.0)
    # Allocated here, per slice: a shared (n_slices, n_1p) array put two threads' rows on one
    # cache line, and writing them made the split batch 3x slower than one thread.
    z = np.empty(widths[1], theta.dtype)
    _batch_forward_backward(theta, net, index, Y, order, start, lo, hi, At, Dt, z)
    G = grad[w_off[0] : b_off[0]].reshape((sizes[0] + 4, widths[1]))
    if all_rows:
        grad[:] = 0
    else:
        grad[b_off[0] :] = 0
    count = 0
    D1 = Dt[act_off[0] : act_off[1]]
    for e in range(hi - lo):
        i = _example(order, start, lo + e)
        if not all_rows:
            for k in pixels[starts[i] : starts[i + 1]]:
                if marks[k] == 0:
                    marks[k] = 1
                    rows[count] = k
                    count += 1
                    g = G[k]
                    for j in range(g.size):
                        g[j] = 0
        z[:] = D1[:, e]
        _add_rows(G, pixels, values, starts[i], starts[i + 1], one, z)
    for l in range(n_layers):
        D = Dt[act_off[l] : act_off[l + 1]]
        gb = grad[b_off[l] : b_off[l] + widths[l + 1]]
        for j in range(sizes[l + 1]):
            gb[j] = _sum(D[j])
        if l > 0:
            gW = grad[w_off[l] : b_off[l]].reshape((widths[l + 1], widths[l]))
            A_prev = At[act_off[l - 1] : act_off[l]]
            for j in range(sizes[l + 1]):
                for k in range(sizes[l]):
                    gW[j, k] = _dot(D[j], A_prev[k])
    return count


@njit(cache=True)
def _reduce_slices(grads, lo, hi):
    """Set grads[0, lo:hi] = grads[0] + grads[1] + ... there, summed in that order. (Numba JIT-compiled)

    Slice by slice, so each pass is one contiguous loop that vectorises; the loop over
    slices inside the loop over entries did not, and cost more than the split saved
    (docs/performance.md, goal 6).
    """
    g0 = grads[0, lo:hi]
    for t in range(1, grads.shape[0]):
        g = grads[t, lo:hi]
        for q in range(g0.size):
            g0[q] += g[q]


@njit(cache=True)
def _apply(theta, grads, marks, rows, count, net, step):
    """Apply theta -= step * (grads[0] + grads[1] + ...), summed in that order. (Numba JIT-compiled)

    count < 0 means every row of the w^1T blocks was written (all_rows). Otherwise there
    is one slice, and only its ``count`` listed rows of w^1T are updated and unmarked:
    the others have a zero gradient and stay exactly as they are. grads[0] is left
    holding the sum.
    """
    sizes, widths, w_off, b_off, _ = net
    dense_from = w_off[0] if count < 0 else b_off[0]
    if count >= 0:
        n_1p = widths[1]
        W1T = theta[w_off[0] : b_off[0]].reshape((sizes[0] + 4, n_1p))
        G = grads[0, w_off[0] : b_off[0]].reshape((sizes[0] + 4, n_1p))
        for c in range(count):
            k = rows[c]
            marks[k] = 0
            w, g = W1T[k], G[k]
            for j in range(n_1p):
                w[j] -= step * g[j]
    _reduce_slices(grads, dense_from, theta.size)
    _step(theta, grads[0], dense_from, theta.size, step)


@njit(cache=True)
def _step(theta, g, lo, hi, step):
    """Apply theta[lo:hi] -= step * g[lo:hi]. (Numba JIT-compiled)"""
    # Slices first, then loops from 0: a loop from a variable start keeps Numba's negative-index
    # checks and does not vectorise (measured 6x slower).
    dense, g = theta[lo:hi], g[lo:hi]
    for q in range(dense.size):
        dense[q] -= step * g[q]


@njit(parallel=True, cache=True)
def _parallel_apply(theta, grads, step):
    """Apply theta -= step * (grads[0] + grads[1] + ...), summed in that order, one chunk of theta per thread.
    (Numba JIT-compiled)

    Every entry is summed in the same order as :func:`_apply` sums it, so the result is the same.
    """
    n_chunks = grads.shape[0]
    chunk = (theta.size + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        lo = min(c * chunk, theta.size)
        hi = min(lo + chunk, theta.size)
        _reduce_slices(grads, lo, hi)
        _step(theta, grads[0], lo, hi, step)


@njit(cache=True)
def _scratch(flat, n_slices, n_acts, m):
    """Return the start of flat viewed as (n_slices, n_acts, m'), m' = m rounded up to a multiple of 4.
    (Numba JIT-compiled)

    Each batch views the scratch for its own slice width, so one buffer serves every path
    (split or whole, full or short last batch) and a narrow slice does no work on columns
    it does not use. The kernels index without bounds checks; reshape does check the size,
    so a buffer too short for the batch raises ValueError here, once per batch, instead of
    being written past its end.
    """
    columns = (m + 3) // 4 * 4
    return flat[: n_slices * n_acts * columns].reshape((n_slices, n_acts, columns))


@njit(parallel=True, cache=True)
def _parallel_gradient(theta, grads, marks, rows, net, index, Y, order, start, m, At, Dt):
    """Write into grads[t] the gradient of slice t of the m-example batch, one slice per thread,
    every row of w^1T included; At and Dt are flat scratch (see _scratch). (Numba JIT-compiled)"""
    n_slices = grads.shape[0]
    size = (m + n_slices - 1) // n_slices
    n_acts = net[4][-1]
    At_s, Dt_s = _scratch(At, n_slices, n_acts, size), _scratch(Dt, n_slices, n_acts, size)
    for t in prange(n_slices):
        lo = min(t * size, m)
        hi = min(lo + size, m)
        At_t, Dt_t = At_s[t], Dt_s[t]
        _slice_gradient(theta, grads[t], marks[t], rows[t], net, index, Y, order, start, lo, hi, At_t, Dt_t, True)


@njit(cache=True, inline="always")
def _sgd_one(theta, net, index, Y, i, acts, deltas, step):
    """Apply one per-example SGD step (batch size 1) to theta in place. (Numba JIT-compiled)

    All errors are computed with the old weights first, as in the reference; then each
    weight gets w -= step * (delta * a), the reference's own products, and only the rows
    of w^1T of the example's non-zero pixels are touched.
    """
    sizes, widths, w_off, b_off, act_off = net
    starts, pixels, values = index
    _forward_backward(theta, net, index, Y, i, acts, deltas)
    W1T = theta[w_off[0] : b_off[0]].reshape((sizes[0] + 4, widths[1]))
    _add_rows(W1T, pixels, values, starts[i], starts[i + 1], -step, deltas[act_off[0] : act_off[1]])
    for l in range(sizes.size - 1):
        d = deltas[act_off[l] : act_off[l + 1]]
        b = theta[b_off[l] : b_off[l] + widths[l + 1]]
        for j in range(sizes[l + 1]):
            b[j] -= step * d[j]
        if l > 0:
            W = theta[w_off[l] : b_off[l]].reshape((widths[l + 1], widths[l]))
            a_prev = acts[act_off[l - 1] : act_off[l]]
            for j in range(sizes[l + 1]):
                dj = d[j]
                w = W[j]
                for k in range(a_prev.size):
                    w[k] -= step * (dj * a_prev[k])


@njit(cache=True)
def _train_epoch(theta, grads, marks, rows, net, index, Y, order, batch_size, eta, At, Dt, a, d, thresholds):
    """Run one epoch of mini-batch SGD on theta in place; order is empty for in-order batches. (Numba JIT-compiled)

    At and Dt are flat scratch for every slice of a batch (see _scratch and _Run), a and d one
    example's; thresholds is (_MIN_PARALLEL_BATCH, _ALL_ROWS_BATCH).
    """
    min_parallel_batch, all_rows_batch = thresholds
    n = Y.shape[0]
    n_slices = grads.shape[0]
    n_acts = net[4][-1]
    step = np.empty(1, theta.dtype)
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        step[0] = eta / m  # rounded to theta's dtype first, as the shared update does
        if m == 1:
            _sgd_one(theta, net, index, Y, _example(order, start, 0), a, d, step[0])
        elif n_slices > 1 and m >= min_parallel_batch:
            _parallel_gradient(theta, grads, marks, rows, net, index, Y, order, start, m, At, Dt)
            _parallel_apply(theta, grads, step[0])
        else:
            all_rows = m >= all_rows_batch
            At_0, Dt_0 = _scratch(At, 1, n_acts, m)[0], _scratch(Dt, 1, n_acts, m)[0]
            count = _slice_gradient(
                theta, grads[0], marks[0], rows[0], net, index, Y, order, start, 0, m, At_0, Dt_0, all_rows
            )
            _apply(theta, grads[:1], marks[0], rows[0], -1 if all_rows else count, net, step[0])


# ---------------------------------------------------------------------------------------
# Public interface
# ---------------------------------------------------------------------------------------


def _columns(m: int) -> int:
    """Return the scratch columns of a slice of m examples: m rounded up to a multiple of 4, as _scratch views it."""
    return (m + 3) // 4 * 4


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
        self.net = (layout.sizes, layout.widths, layout.w_off, layout.b_off, layout.act_off)
        self.index = tuple(_read_only(a) for a in _index_of(X))
        self.Y = _read_only(np.ascontiguousarray(Y, dtype))
        m = max(1, min(m, len(X)))
        n_slices = min(numba.get_num_threads(), m) if m >= _MIN_PARALLEL_BATCH else 1
        self.n_acts = n_acts = int(layout.act_off[-1])
        self.grads = np.zeros((n_slices, layout.size), dtype)
        self.marks = np.zeros((n_slices, sizes[0] + _BLOCK), np.uint8)
        self.rows = np.zeros((n_slices, sizes[0] + _BLOCK), np.int64)
        # Scratch for the widest batch of up to m examples on either path (_scratch views it per batch).
        # A split batch takes n_slices slices of ceil(m / n_slices) columns. A batch too short to split,
        # such as an epoch's short last batch, goes whole to one slice: up to _MIN_PARALLEL_BATCH - 1
        # columns, more than a split slice (at batch 100, 52 columns on two threads, 28 on four).
        # Sized for the split alone, that batch once ran past the buffer's end, silently.
        whole = m if n_slices == 1 else _MIN_PARALLEL_BATCH - 1
        split = n_slices * _columns(-(-m // n_slices)) if n_slices > 1 else 0
        self.At = np.zeros(n_acts * max(_columns(whole), split), dtype)
        self.Dt = np.zeros_like(self.At)
        self.a = np.zeros(n_acts, dtype)
        self.d = np.zeros(n_acts, dtype)

    def gradient(self) -> tuple[np.ndarray, int]:
        """Return (grads, count): every slice's gradient of all the examples, as _apply takes them."""
        order = _read_only(np.empty(0, np.int64))
        n = len(self.Y)
        if self.grads.shape[0] > 1:
            _parallel_gradient(
                self.theta, self.grads, self.marks, self.rows, self.net, self.index, self.Y, order, 0, n,
                self.At, self.Dt,
            )  # fmt: skip
            return self.grads, -1
        all_rows = n >= _ALL_ROWS_BATCH
        count = _slice_gradient(
            self.theta, self.grads[0], self.marks[0], self.rows[0], self.net, self.index, self.Y, order, 0, 0, n,
            _scratch(self.At, 1, self.n_acts, n)[0], _scratch(self.Dt, 1, self.n_acts, n)[0], all_rows,
        )  # fmt: skip
        return self.grads, -1 if all_rows else count


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the n examples; X has shape (n, in), Y (n, out)."""
    run = _Run(params, X, Y, len(X))
    grads, count = run.gradient() if len(X) else (run.grads, 0)
    # The summed gradient is what _apply subtracts from zero with step -1: 0 - (-1 * g) = g exactly.
    total = np.zeros_like(run.theta)
    _apply(total, grads, run.marks[0], run.rows[0], count, run.net, params.dtype.type(-1.0))
    return _params(total, run.layout)


def train_epoch(
    params: Params, X: np.ndarray, Y: np.ndarray, batch_size: int, eta: float, order: np.ndarray | None = None
) -> Params:
    """Return the parameters after one epoch of mini-batch SGD, fused into one compiled call.

    Same batches and update as the shared loop over :func:`gradients`; ``params`` is not modified.
    """
    run = _Run(params, X, Y, batch_size)
    n = len(run.Y)
    if order is not None and (len(order) != n or (n and not 0 <= np.min(order) <= np.max(order) < n)):
        raise ValueError(f"order must hold {n} indices into X")  # the kernels index without bounds checks
    order = _read_only(np.empty(0, np.int64) if order is None else np.ascontiguousarray(order, np.int64))
    _train_epoch(
        run.theta, run.grads, run.marks, run.rows, run.net, run.index, run.Y, order, int(batch_size), float(eta),
        run.At, run.Dt, run.a, run.d, (_MIN_PARALLEL_BATCH, _ALL_ROWS_BATCH),
    )  # fmt: skip
    return _params(run.theta, run.layout)


def warm_up(sizes: list[int], dtype: str) -> None:
    """Compile (or load from the on-disk cache) every kernel, and start Numba's threads if it has several.

    Compiled per dtype only: any sizes, any batch size, any data.
    """
    n = 2 * _MIN_PARALLEL_BATCH
    params = init_params(sizes, seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    X = rng.random((n, sizes[0])).astype(dtype)
    X[X < 0.5] = 0  # some zeros, as in real images
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    prepare(_read_only(X), Y)
    gradients(params, X, Y)
    for batch_size in (1, 2, n):  # per example, one slice listing rows, and split over the threads
        train_epoch(params, X, Y, batch_size, 1.0, order=np.arange(n))


__all__ = ["name", "description", "gradients", "train_epoch", "predict", "prepare", "sparse_input", "warm_up"]
