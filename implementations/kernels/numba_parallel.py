"""Numba backprop with threads over the mini-batch: each thread takes a slice of the rows.

Each of ``T`` threads (Numba's ``prange``) runs the serial kernel's ``backprop``
on its own contiguous slice of the batch into its own gradient buffer; the buffers
are then summed in a fixed order and the update is applied. The result is
deterministic for a given thread count, but the sum over examples is split into
T partial sums, so it is not the reference's summation order: this kernel is
kept separate from ``numba``, which matches the reference's order. In float64 the
reordering costs about 1e-16 relative, far inside the shared 1e-10 tolerance; in
float32 it stays inside the float32 tolerance, which already allows for BLAS
reordering.

The split (:func:`~implementations.kernels.numba_common.split_gradient`) and the
epoch loop that calls it are in :mod:`implementations.kernels.numba_common`, with
everything else this kernel shares with ``numba``; this module chooses the number of
slices (one per Numba thread) and runs that loop with ``split=True``.

BLAS is limited to one thread during the compiled call (threadpoolctl), so the
matrix products inside each slice do not fight Numba's threads for the cores.
"""

from __future__ import annotations

import numba
import numpy as np

import implementations.kernels.numba_cache  # noqa: F401  (before any cached function: the shared stamp)
from implementations.core import Params, predict
from implementations.kernels.numba_common import (
    Buffers,
    blas_single_threaded,
    check_order,
    flatten,
    read_only_copies,
    sgd_epoch,
    split_gradient,
    tiny_problem,
    unflatten,
)

name = "numba-parallel"
description = "Numba kernels with the mini-batch split across threads (prange), BLAS single-threaded"


def _split_buffers(sizes: list[int], m: int, dtype: np.dtype) -> Buffers:
    """Return scratch space for batches of up to m rows, one slice per Numba thread (never more slices than rows)."""
    return Buffers(sizes, m, dtype, n_slices=max(1, min(numba.get_num_threads(), m)))


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the n examples; X has shape (n, in), Y (n, out)."""
    dtype = params.dtype
    X = np.ascontiguousarray(X, dtype)
    Y = np.ascontiguousarray(Y, dtype)
    buf = _split_buffers(params.sizes, len(X), dtype)
    with blas_single_threaded():
        split_gradient(
            flatten(params), buf.grads, buf.sizes, buf.w_off, buf.b_off, X, Y, buf.acts, buf.act_off, buf.deltas
        )
    return unflatten(buf.grads[0], params.sizes)


def train_epoch(
    params: Params, X: np.ndarray, Y: np.ndarray, batch_size: int, eta: float, order: np.ndarray | None = None
) -> Params:
    """Return the parameters after one epoch of mini-batch SGD, fused into one compiled call."""
    dtype = params.dtype
    X = np.ascontiguousarray(X, dtype)
    Y = np.ascontiguousarray(Y, dtype)
    buf = _split_buffers(params.sizes, min(batch_size, len(X)), dtype)
    theta = flatten(params)
    order = check_order(order, len(X))
    with blas_single_threaded():
        sgd_epoch(
            theta, buf.grads, buf.sizes, buf.w_off, buf.b_off, X, Y, order, batch_size, float(eta),
            buf.acts, buf.act_off, buf.deltas, buf.x, buf.y, True,
        )  # fmt: skip
    return unflatten(theta, params.sizes)


def warm_up(sizes: list[int], dtype: str) -> None:
    """Compile (or load from the on-disk cache) every kernel signature a run will use."""
    params, X, Y = tiny_problem(sizes, dtype, 5)
    for X_, Y_ in ((X, Y), read_only_copies(X, Y)):
        gradients(params, X_, Y_)
        train_epoch(params, X_, Y_, 4, 1.0)
        train_epoch(params, X_, Y_, 4, 1.0, order=np.arange(5))


__all__ = ["description", "gradients", "name", "predict", "train_epoch", "warm_up"]
