"""Numba per-example SGD with one pass over the first layer's weights per example.

At batch size 1 the cost is streaming w^1 (784 x 30) through the cache: the
serial ``numba`` kernel reads it for the forward product and reads and writes it
again for the update. Here example t's update of w^1 and example t+1's forward
product through w^1 share one pass: each row is updated, then immediately dotted
with the next input while it is still in L1. That dot product is a sum that LLVM
may only vectorise if it may reassociate it, so this kernel is compiled with
``fastmath={"reassoc", "contract"}`` and is kept apart from ``numba``, which
keeps the reference's operations. Reassociating a 784-term sum changes it by
about 1e-16 relative; the contract tests hold it to the same 1e-10 as every
float64 kernel, so it declares no looser tolerance.

Mini-batches of two or more go through the ``numba`` kernel's compiled epoch
unchanged (there the matrix products run in BLAS, reassociated or not).

The flat parameter layout, the scratch buffers and the per-example step of the layers
above the first are those of ``numba`` (:mod:`implementations.kernels.numba_common`);
the fused pass through w^1 below is this kernel's own.

Measured on full MNIST at batch size 1 (``backprop-bench goals``): about 15% faster
than ``numba`` in float64, less in float32. Skipping zero pixels (81% of MNIST; exact,
since a zero input adds exactly zero) was tried and was slower: the gathered columns
do not vectorise.
"""

from __future__ import annotations

import numpy as np
from numba import njit

import implementations.kernels.numba_cache  # noqa: F401  (before any cached function: the shared stamp)
from implementations.core import Params, predict
from implementations.kernels import numba_jit
from implementations.kernels.numba_common import (
    Buffers,
    check_order,
    flatten,
    read_only_copies,
    sgd_layer,
    tiny_problem,
    unflatten,
)

name = "numba-fastmath"
description = "Numba, per-example SGD fusing each example's w^1 update with the next forward pass (reassoc)"
gradients = numba_jit.gradients

_FAST = {"reassoc", "contract"}


@njit(fastmath=_FAST, cache=True)
def _update_row_and_dot(w_row, step, d_j, x, x_next):
    """Apply w_row -= step * (d_j * x) in place and return the updated row dotted with x_next. (Numba JIT-compiled)"""
    s = w_row.dtype.type(0.0)
    for k in range(w_row.size):
        w = w_row[k] - step * (d_j * x[k])
        w_row[k] = w
        s += w * x_next[k]
    return s


@njit(fastmath=_FAST, cache=True)
def _sgd_examples(theta, sizes, w_off, b_off, X, Y, order, step, acts, act_off, deltas):
    """Run one epoch of per-example SGD on theta in place; order is empty for in-order examples. (Numba JIT-compiled)"""
    n = X.shape[0]
    if n == 0:
        return  # no first example to start the forward pass from (X[0] would be read past X's end)
    n_layers = sizes.size - 1
    one = theta.dtype.type(1.0)
    n_in, n_hidden = sizes[0], sizes[1]
    W1 = theta[w_off[0] : w_off[0] + n_hidden * n_in].reshape((n_hidden, n_in))
    b1 = theta[b_off[0] : b_off[0] + n_hidden]
    a1 = acts[act_off[0] : act_off[0] + n_hidden]
    first = 0 if order.size == 0 else order[0]
    np.dot(W1, X[first], a1)
    for j in range(n_hidden):
        a1[j] = one / (one + np.exp(-(a1[j] + b1[j])))
    for t in range(n):
        i = t if order.size == 0 else order[t]
        x, y = X[i], Y[i]
        for l in range(1, n_layers):  # layer 1's activation is already in acts
            n_prev, n_out = sizes[l], sizes[l + 1]
            W = theta[w_off[l] : w_off[l] + n_out * n_prev].reshape((n_out, n_prev))
            a = acts[act_off[l] : act_off[l] + n_out]
            np.dot(W, acts[act_off[l - 1] : act_off[l - 1] + n_prev], a)
            for j in range(n_out):
                a[j] = one / (one + np.exp(-(a[j] + theta[b_off[l] + j])))
        n_out = sizes[n_layers]
        a = acts[act_off[n_layers - 1] : act_off[n_layers - 1] + n_out]
        d = deltas[0, :n_out]
        for j in range(n_out):
            d[j] = (a[j] - y[j]) * a[j] * (one - a[j])
        # Layers above the first: propagate with the old weights, then update, as numba's per-example step does.
        for l in range(n_layers - 1, 0, -1):
            a_prev = acts[act_off[l - 1] : act_off[l - 1] + sizes[l]]
            sgd_layer(
                theta, sizes, w_off, b_off, l, deltas[(n_layers - 1 - l) % 2], a_prev, deltas[(n_layers - l) % 2], step
            )
        # The first layer: update each row, then the next example's forward product through it.
        d = deltas[(n_layers - 1) % 2, :n_hidden]
        x_next = X[0] if t + 1 == n else (X[t + 1] if order.size == 0 else X[order[t + 1]])
        for j in range(n_hidden):
            b1[j] -= step * d[j]
            z = _update_row_and_dot(W1[j], step, d[j], x, x_next)
            a1[j] = one / (one + np.exp(-(z + b1[j])))


def train_epoch(
    params: Params, X: np.ndarray, Y: np.ndarray, batch_size: int, eta: float, order: np.ndarray | None = None
) -> Params:
    """Return the parameters after one epoch of mini-batch SGD; batch size 1 takes the fused per-example path."""
    if batch_size != 1:
        return numba_jit.train_epoch(params, X, Y, batch_size, eta, order)
    dtype = params.dtype
    X = np.ascontiguousarray(X, dtype)
    Y = np.ascontiguousarray(Y, dtype)
    buf = Buffers(params.sizes, 1, dtype)
    theta = flatten(params)
    order = check_order(order, len(X))
    step = dtype.type(eta)  # eta / m with m = 1, rounded to the dtype as the shared update does
    # BLAS threads as in numba: what the process allows (these products are too small to split).
    _sgd_examples(theta, buf.sizes, buf.w_off, buf.b_off, X, Y, order, step, buf.acts[0], buf.act_off, buf.deltas[0])
    return unflatten(theta, params.sizes)


def delegate(batch_size: int) -> str | None:
    """Return "numba" where this kernel runs numba's code unchanged (every batch size but 1), else None.

    The harness labels such a run and never ranks the same code twice.
    """
    return None if batch_size == 1 else numba_jit.name


def warm_up(sizes: list[int], dtype: str) -> None:
    """Compile (or load from the on-disk cache) every kernel signature a run will use."""
    numba_jit.warm_up(sizes, dtype)
    params, X, Y = tiny_problem(sizes, dtype, 3)
    for X_, Y_ in ((X, Y), read_only_copies(X, Y)):
        train_epoch(params, X_, Y_, 1, 1.0)
        train_epoch(params, X_, Y_, 1, 1.0, order=np.arange(3))


__all__ = ["delegate", "description", "gradients", "name", "predict", "train_epoch", "warm_up"]
