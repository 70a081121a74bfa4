"""Numba backprop with threads over the mini-batch: each thread takes a slice of the rows.

Each of ``T`` threads (Numba's ``prange``) runs the serial kernel's ``_backprop``
on its own contiguous slice of the batch into its own gradient buffer; the buffers
are then summed in a fixed order and the update is applied. The result is
deterministic for a given thread count, but the sum over examples is split into
T partial sums, so it is not the reference's summation order: this kernel is
kept separate from ``numba``, which matches the reference's order. In float64 the
reordering costs about 1e-16 relative, far inside the shared 1e-10 tolerance; in
float32 it stays inside the float32 tolerance, which already allows for BLAS
reordering.

BLAS is limited to one thread during the compiled call (threadpoolctl), so the
matrix products inside each slice do not fight Numba's threads for the cores.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from implementations.core import Params, predict
from implementations.numba_jit import (
    _backprop,
    _blas_single_threaded,
    _Buffers,
    _flatten,
    _order,
    _read_only,
    _tiny_problem,
    _unflatten,
)

name = "numba-parallel"
description = "Numba kernels with the mini-batch split across threads (prange), BLAS single-threaded"


@njit(parallel=True, cache=True)
def _gradients_split(theta, grads, sizes, w_off, b_off, X, Y, acts, act_off, deltas):
    """Write the batch's dC/dtheta into grads[0], via one partial sum per thread slice. (Numba JIT-compiled)

    grads has shape (T, theta.size); acts and deltas have one row per slice.
    """
    n_slices = grads.shape[0]
    m = X.shape[0]
    rows = (m + n_slices - 1) // n_slices
    for t in prange(n_slices):
        lo = min(t * rows, m)
        hi = min(lo + rows, m)
        if lo < hi:
            _backprop(theta, grads[t], sizes, w_off, b_off, X[lo:hi], Y[lo:hi], acts[t], act_off, deltas[t])
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
def _train_epoch(theta, grads, sizes, w_off, b_off, X, Y, order, batch_size, eta, acts, act_off, deltas, x_buf, y_buf):
    """Run one epoch of mini-batch SGD on theta in place; order is empty for in-order batches. (Numba JIT-compiled)"""
    n = X.shape[0]
    step = np.empty(1, theta.dtype)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        m = stop - start
        if order.size == 0:
            _gradients_split(theta, grads, sizes, w_off, b_off, X[start:stop], Y[start:stop], acts, act_off, deltas)
        else:
            for i in range(m):
                x_buf[i, :] = X[order[start + i], :]
                y_buf[i, :] = Y[order[start + i], :]
            _gradients_split(theta, grads, sizes, w_off, b_off, x_buf[:m], y_buf[:m], acts, act_off, deltas)
        step[0] = eta / m  # rounded to theta's dtype first, as the shared update does
        for k in range(theta.size):
            theta[k] -= step[0] * grads[0, k]


class _SplitBuffers:
    """Per-thread scratch space for slices of a batch of up to ``m`` rows."""

    def __init__(self, sizes: list[int], m: int, dtype: np.dtype):
        self.n_slices = max(1, min(numba.get_num_threads(), m))
        rows = -(-m // self.n_slices)
        per_slice = _Buffers(sizes, rows, dtype)
        self.sizes, self.w_off, self.b_off, self.act_off = (
            per_slice.sizes,
            per_slice.w_off,
            per_slice.b_off,
            per_slice.act_off,
        )
        self.acts = np.empty((self.n_slices, per_slice.acts.size), dtype)
        self.deltas = np.empty((self.n_slices, *per_slice.deltas.shape), dtype)
        self.grads = np.empty((self.n_slices, per_slice.grad.size), dtype)
        self.x = np.empty((m, sizes[0]), dtype)
        self.y = np.empty((m, sizes[-1]), dtype)


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the n examples; X has shape (n, in), Y (n, out)."""
    dtype = params.dtype
    X = np.ascontiguousarray(X, dtype)
    Y = np.ascontiguousarray(Y, dtype)
    buf = _SplitBuffers(params.sizes, len(X), dtype)
    with _blas_single_threaded():
        _gradients_split(
            _flatten(params), buf.grads, buf.sizes, buf.w_off, buf.b_off, X, Y, buf.acts, buf.act_off, buf.deltas
        )
    return _unflatten(buf.grads[0], params.sizes)


def train_epoch(
    params: Params, X: np.ndarray, Y: np.ndarray, batch_size: int, eta: float, order: np.ndarray | None = None
) -> Params:
    """Return the parameters after one epoch of mini-batch SGD, fused into one compiled call."""
    dtype = params.dtype
    X = np.ascontiguousarray(X, dtype)
    Y = np.ascontiguousarray(Y, dtype)
    buf = _SplitBuffers(params.sizes, min(batch_size, len(X)), dtype)
    theta = _flatten(params)
    order = _order(order, len(X))
    with _blas_single_threaded():
        _train_epoch(
            theta, buf.grads, buf.sizes, buf.w_off, buf.b_off, X, Y, order, batch_size, float(eta),
            buf.acts, buf.act_off, buf.deltas, buf.x, buf.y,
        )  # fmt: skip
    return _unflatten(theta, params.sizes)


def warm_up(sizes: list[int], dtype: str) -> None:
    """Compile (or load from the on-disk cache) every kernel signature a run will use."""
    params, X, Y = _tiny_problem(sizes, dtype, 5)
    for X_, Y_ in ((X, Y), _read_only(X, Y)):
        gradients(params, X_, Y_)
        train_epoch(params, X_, Y_, 4, 1.0)
        train_epoch(params, X_, Y_, 4, 1.0, order=np.arange(5))


__all__ = ["description", "gradients", "name", "predict", "train_epoch", "warm_up"]
