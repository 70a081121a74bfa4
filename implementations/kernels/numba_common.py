"""What the flat-parameter Numba kernels (``numba``, ``numba-parallel``, ``numba-fastmath``) share, written once.

The parameters travel as one flat vector ``theta`` (each layer's weight block,
row-major (out, in), then its bias), so one nopython kernel handles any depth
without lists of arrays. Here are that layout (:func:`flatten`, :func:`unflatten`),
the scratch space (:class:`Buffers`), the check of a shuffled order
(:func:`check_order`), the mini-batch gradient (:func:`backprop`) and its split over
threads (:func:`split_gradient`), the per-example step (:func:`sgd_layer`), the epoch
loop that drives them (:func:`sgd_epoch`), and the tiny problem the warm-ups compile.

It is not a kernel: each kernel's module says which of these it runs and why, and
holds what is its own (``numba-fastmath``'s fused per-example pass). ``numba-sparse``
keeps a layout of its own (w^1 transposed, padded widths) and shares nothing here.
Everything compiled is cached on disk (``cache=True``), so a second process loads it
instead of compiling.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from threadpoolctl import ThreadpoolController

import implementations.kernels.numba_cache  # noqa: F401  (before any cached function: the shared stamp)
from implementations.core import Params, init_params


def _layout(sizes: list[int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Return (w_off, b_off, total): offsets of each layer's weight and bias block in theta."""
    w_off, b_off, offset = [], [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w_off.append(offset)
        offset += n_out * n_in
        b_off.append(offset)
        offset += n_out
    return np.array(w_off, np.int64), np.array(b_off, np.int64), offset


def flatten(params: Params) -> np.ndarray:
    """Return theta, the flat parameter vector in layer order (w^1, b^1, w^2, b^2, ...)."""
    parts = []
    for w, b in zip(params.weights, params.biases):
        parts += [w.reshape(-1), b]
    return np.concatenate(parts)


def unflatten(theta: np.ndarray, sizes: list[int]) -> Params:
    """Return Params holding copies of the blocks of theta."""
    w_off, b_off, _ = _layout(sizes)
    weights, biases = [], []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weights.append(theta[w_off[l] : w_off[l] + n_out * n_in].reshape(n_out, n_in).copy())
        biases.append(theta[b_off[l] : b_off[l] + n_out].copy())
    return Params(weights, biases)


class Buffers:
    """Scratch space for a batch of up to ``m`` examples split into ``n_slices`` slices, allocated once per call.

    ``acts``, ``deltas`` and ``grads`` have one row per slice, each sized for a slice of
    ceil(m / n_slices) examples; ``x`` and ``y`` hold the m rows of a shuffled batch.
    """

    def __init__(self, sizes: list[int], m: int, dtype: np.dtype, n_slices: int = 1):
        rows = -(-m // n_slices)
        self.sizes = np.array(sizes, np.int64)
        self.w_off, self.b_off, total = _layout(sizes)
        # Activations of layers 1..L for one slice's examples, back to back.
        self.act_off = np.array(np.cumsum([0] + [rows * s for s in sizes[1:-1]]), np.int64)
        self.acts = np.empty((n_slices, rows * sum(sizes[1:])), dtype)
        self.deltas = np.empty((n_slices, 2, rows * max(sizes[1:])), dtype)
        self.grads = np.empty((n_slices, total), dtype)
        self.x = np.empty((m, sizes[0]), dtype)
        self.y = np.empty((m, sizes[-1]), dtype)


def check_order(order: np.ndarray | None, n: int) -> np.ndarray:
    """Return order as the kernels take it (int64; empty for in-order batches), or raise ValueError.

    The kernels index X with it, and Numba does not check indices: an order of the wrong
    length or with an index out of range would read past X or past order itself.
    """
    if order is None:
        return np.empty(0, np.int64)
    order = np.ascontiguousarray(order, np.int64)
    if order.shape != (n,) or (n and not 0 <= order.min() <= order.max() < n):
        raise ValueError(f"order must hold {n} indices into X")
    return order


_controller: ThreadpoolController | None = None


def blas_single_threaded():
    """Return a context manager limiting BLAS to one thread.

    For the kernels that call BLAS from several Numba threads at once
    (``numba-parallel``): a BLAS thread pool under every Numba thread would
    oversubscribe the cores. The controller is built once: building one scans
    every loaded library and costs milliseconds.
    """
    global _controller
    if _controller is None:
        # np.dot inside @njit calls SciPy's own OpenBLAS, which loads lazily (at the first
        # compile); a controller built before it is loaded would not limit it, and two
        # OpenBLAS threads under every Numba thread made an epoch 100x slower.
        import scipy.linalg  # noqa: F401

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


@njit(cache=True)
def _sigmoid_with_bias(At, b):
    """Set At = sigmoid(At + b[:, None]) in place; At has shape (out, m). (Numba JIT-compiled)"""
    one = At.dtype.type(1.0)
    for j in range(At.shape[0]):
        for i in range(At.shape[1]):
            At[j, i] = one / (one + np.exp(-(At[j, i] + b[j])))


@njit(cache=True)
def backprop(theta, grad, sizes, w_off, b_off, X, Y, acts, act_off, deltas):
    """Write dC/dtheta summed over the rows of X (m, in), Y (m, out) into grad. (Numba JIT-compiled)

    Activations and errors are kept transposed, (width, m), one column per example as
    in Nielsen's book: then both large products read X in the form BLAS handles best
    for these shapes, w^1 X^T forward and delta^1 X for the weight gradient (measured:
    X w^1T took 1.5x as long as w^1 X^T at m = 100 in float64).
    """
    n_layers = sizes.size - 1
    m = X.shape[0]
    zero, one = theta.dtype.type(0.0), theta.dtype.type(1.0)
    for l in range(n_layers):
        n_in, n_out = sizes[l], sizes[l + 1]
        W = theta[w_off[l] : w_off[l] + n_out * n_in].reshape((n_out, n_in))
        At = acts[act_off[l] : act_off[l] + n_out * m].reshape((n_out, m))
        if l == 0:
            np.dot(W, X.T, At)
        else:
            np.dot(W, acts[act_off[l - 1] : act_off[l - 1] + n_in * m].reshape((n_in, m)), At)
        _sigmoid_with_bias(At, theta[b_off[l] : b_off[l] + n_out])

    # delta^L = (a^L - y) * sigma'(z^L), with sigma'(z) = a * (1 - a); columns are examples.
    n_out = sizes[n_layers]
    At = acts[act_off[n_layers - 1] : act_off[n_layers - 1] + n_out * m].reshape((n_out, m))
    Dt = deltas[0, : n_out * m].reshape((n_out, m))
    for j in range(n_out):
        for i in range(m):
            a = At[j, i]
            Dt[j, i] = (a - Y[i, j]) * a * (one - a)

    for l in range(n_layers - 1, -1, -1):
        n_in, n_out = sizes[l], sizes[l + 1]
        # deltas rows alternate: layer l's error sits in row (n_layers - 1 - l) % 2.
        Dt = deltas[(n_layers - 1 - l) % 2, : n_out * m].reshape((n_out, m))
        gW = grad[w_off[l] : w_off[l] + n_out * n_in].reshape((n_out, n_in))
        gb = grad[b_off[l] : b_off[l] + n_out]
        for j in range(n_out):
            # From zero rather than from Dt[j, 0], which an empty batch does not have (and Numba
            # does not check the index): 0 + x is x exactly, so the sum is the same.
            total = zero
            for i in range(m):  # in example order, as the reference's sum over rows
                total += Dt[j, i]
            gb[j] = total
        if l == 0:
            np.dot(Dt, X, gW)
        else:
            A_prev_t = acts[act_off[l - 1] : act_off[l - 1] + n_in * m].reshape((n_in, m))
            np.dot(Dt, A_prev_t.T, gW)
            W = theta[w_off[l] : w_off[l] + n_out * n_in].reshape((n_out, n_in))
            Dt_prev = deltas[(n_layers - l) % 2, : n_in * m].reshape((n_in, m))
            np.dot(W.T, Dt, Dt_prev)
            for k in range(n_in):
                for i in range(m):
                    a = A_prev_t[k, i]
                    Dt_prev[k, i] *= a * (one - a)


@njit(parallel=True, cache=True)
def split_gradient(theta, grads, sizes, w_off, b_off, X, Y, acts, act_off, deltas):
    """Write the batch's dC/dtheta into grads[0], via one partial sum per thread slice. (Numba JIT-compiled)

    grads has shape (T, theta.size); acts and deltas have one row per slice. Each slice
    is one :func:`backprop` call on a contiguous block of rows; the T partial sums are
    then added in slice order, so the result is deterministic for a given T.
    """
    n_slices = grads.shape[0]
    m = X.shape[0]
    rows = (m + n_slices - 1) // n_slices
    for t in prange(n_slices):
        lo = min(t * rows, m)
        hi = min(lo + rows, m)
        if lo < hi:
            backprop(theta, grads[t], sizes, w_off, b_off, X[lo:hi], Y[lo:hi], acts[t], act_off, deltas[t])
        else:
            grads[t, :] = 0
    # grads[0] += grads[1] + ..., in that order, one chunk of theta per thread and slice by
    # slice: a loop over slices inside the loop over entries does not vectorise.
    chunk = (theta.size + n_slices - 1) // n_slices
    for c in prange(n_slices):
        lo = min(c * chunk, theta.size)
        g0 = grads[0, lo : min(lo + chunk, theta.size)]
        for t in range(1, n_slices):
            g = grads[t, lo : lo + g0.size]
            for k in range(g0.size):
                g0[k] += g[k]


@njit(cache=True)
def sgd_layer(theta, sizes, w_off, b_off, l, d, a_prev, d_prev, step):
    """Per-example step of layer l in place: propagate its error into d_prev (for l > 0) with the
    old weights, then apply w^l -= step * (delta a_prev^T) and b^l -= step * delta. (Numba JIT-compiled)

    d holds delta^l in its first sizes[l + 1] entries, a_prev the layer's input (sizes[l]).
    """
    n_in, n_out = sizes[l], sizes[l + 1]
    one = theta.dtype.type(1.0)
    W = theta[w_off[l] : w_off[l] + n_out * n_in].reshape((n_out, n_in))
    if l > 0:
        d_prev[:n_in] = 0
        for j in range(n_out):
            for k in range(n_in):
                d_prev[k] += W[j, k] * d[j]
        for k in range(n_in):
            d_prev[k] *= a_prev[k] * (one - a_prev[k])
    for j in range(n_out):
        for k in range(n_in):
            W[j, k] -= step * (d[j] * a_prev[k])
        theta[b_off[l] + j] -= step * d[j]


@njit(cache=True)
def _sgd_one(theta, sizes, w_off, b_off, x, y, acts, act_off, deltas, step):
    """Apply one per-example SGD step (batch size 1) to theta in place, fused. (Numba JIT-compiled)

    With one example the gradient of w^l is the outer product delta^l a^{l-1}, so it is
    applied directly, w -= step * (delta * a), without a gradient buffer; each layer's
    error is propagated with the old weights before that layer is updated, as in the
    reference. Rows of acts/deltas are used as vectors here.
    """
    n_layers = sizes.size - 1
    one = theta.dtype.type(1.0)
    for l in range(n_layers):
        n_in, n_out = sizes[l], sizes[l + 1]
        W = theta[w_off[l] : w_off[l] + n_out * n_in].reshape((n_out, n_in))
        b = theta[b_off[l] : b_off[l] + n_out]
        a = acts[act_off[l] : act_off[l] + n_out]
        if l == 0:
            np.dot(W, x, a)
        else:
            np.dot(W, acts[act_off[l - 1] : act_off[l - 1] + n_in], a)
        for j in range(n_out):
            a[j] = one / (one + np.exp(-(a[j] + b[j])))
    n_out = sizes[n_layers]
    a = acts[act_off[n_layers - 1] : act_off[n_layers - 1] + n_out]
    d = deltas[0, :n_out]
    for j in range(n_out):
        d[j] = (a[j] - y[j]) * a[j] * (one - a[j])
    for l in range(n_layers - 1, -1, -1):
        n_in = sizes[l]
        a_prev = x if l == 0 else acts[act_off[l - 1] : act_off[l - 1] + n_in]
        sgd_layer(
            theta, sizes, w_off, b_off, l, deltas[(n_layers - 1 - l) % 2], a_prev, deltas[(n_layers - l) % 2], step
        )


@njit(cache=True)
def _batch_gradient(theta, grads, sizes, w_off, b_off, X, Y, acts, act_off, deltas, split):
    """Write the batch's dC/dtheta into grads[0]: one backprop call, or split over grads.shape[0] slices.
    (Numba JIT-compiled)"""
    if split is None:
        backprop(theta, grads[0], sizes, w_off, b_off, X, Y, acts[0], act_off, deltas[0])
    else:
        split_gradient(theta, grads, sizes, w_off, b_off, X, Y, acts, act_off, deltas)


@njit(cache=True)
def sgd_epoch(
    theta, grads, sizes, w_off, b_off, X, Y, order, batch_size, eta, acts, act_off, deltas, x_buf, y_buf, split
):
    """Run one epoch of mini-batch SGD on theta in place; order is empty for in-order batches. (Numba JIT-compiled)

    grads, acts, deltas, x_buf and y_buf are a :class:`Buffers`' arrays. With ``split``
    None (``numba``) each batch's gradient is one :func:`backprop` call and a batch of one
    example takes the fused per-example step; with ``split`` True (``numba-parallel``)
    every batch is split over the buffers' slices (:func:`split_gradient`).
    """
    # Whether split is None is known when this compiles (it is a type), and Numba drops the
    # branch not taken: numba's loop never holds the parallel region, nor compiles it. A
    # function passed as an argument instead would make this loop uncacheable in Numba.
    n = X.shape[0]
    step = np.empty(1, theta.dtype)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        m = stop - start
        # eta / m is rounded to theta's dtype first, as the shared update does.
        step[0] = eta / m
        if split is None and m == 1:
            i = start if order.size == 0 else order[start]
            _sgd_one(theta, sizes, w_off, b_off, X[i], Y[i], acts[0], act_off, deltas[0], step[0])
            continue
        if order.size == 0:
            _batch_gradient(
                theta, grads, sizes, w_off, b_off, X[start:stop], Y[start:stop], acts, act_off, deltas, split
            )
        else:
            for i in range(m):
                x_buf[i, :] = X[order[start + i], :]
                y_buf[i, :] = Y[order[start + i], :]
            _batch_gradient(theta, grads, sizes, w_off, b_off, x_buf[:m], y_buf[:m], acts, act_off, deltas, split)
        for k in range(theta.size):
            theta[k] -= step[0] * grads[0, k]


def tiny_problem(sizes: list[int], dtype: str, n: int) -> tuple[Params, np.ndarray, np.ndarray]:
    """Return (params, X (n, in), Y (n, out)) in ``dtype``: just enough to trigger compilation."""
    rng = np.random.default_rng(0)
    params = init_params(sizes, seed=0, dtype=dtype)
    X = rng.random((n, sizes[0])).astype(dtype)
    return params, X, np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]


def read_only_copies(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return read-only copies: Numba compiles read-only inputs (as the harness passes them) separately."""
    copies = tuple(a.copy() for a in arrays)
    for a in copies:
        a.setflags(write=False)
    return copies


__all__ = [
    "Buffers",
    "backprop",
    "blas_single_threaded",
    "check_order",
    "flatten",
    "read_only_copies",
    "sgd_epoch",
    "sgd_layer",
    "split_gradient",
    "tiny_problem",
    "unflatten",
]
