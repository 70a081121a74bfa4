"""Numba-JIT backprop: one compiled call per mini-batch gradient and per whole epoch.

The parameters travel as one flat vector ``theta`` (each layer's weight block,
row-major (out, in), then its bias), so one nopython kernel handles any depth
without lists of arrays. Matrix products go through ``np.dot`` (BLAS, via
SciPy); bias, sigmoid, its derivative and the update are fused loops.

Threads: the compiled loops run on one thread, and BLAS uses what the process
allows (the harness sets ``OPENBLAS_NUM_THREADS`` to the run's ``--threads``
before anything is imported), so ``--threads 2`` gives the products two BLAS
threads. Measured on 2 cores (AMD EPYC, full MNIST, both in one process, quiet
machine), two BLAS threads against BLAS held to one: batch 100, float32 131 ms
against 158, float64 234 against 315; batch 10, no difference (the products are
too small to split). On a busy machine, where another process holds one of the
two cores, two threads are far slower (seconds per epoch): every product waits
for the descheduled thread.

The compiled code is in :mod:`implementations.kernels.numba_common`, shared with
``numba-parallel`` and ``numba-fastmath``: this kernel runs its epoch loop with each
mini-batch's gradient in one :func:`~implementations.kernels.numba_common.backprop` call
(activations kept transposed, so BLAS gets its fastest shapes), and a batch of one
example as one fused per-example step, without a gradient buffer.

Compilation happens in :func:`warm_up`, which the harness times on its own and
never inside an epoch timing. Kernels are cached on disk (``cache=True``), so a
second process loads them instead of compiling. This kernel keeps the
reference's summation order closely enough to match it to rtol 1e-10; it uses
no ``fastmath`` and no parallel reductions.
"""

from __future__ import annotations

import numpy as np

from implementations.core import Params, predict
from implementations.kernels.numba_common import (
    Buffers,
    backprop,
    check_order,
    flatten,
    read_only_copies,
    sgd_epoch,
    tiny_problem,
    unflatten,
)

name = "numba"
description = "Numba nopython kernels, whole epoch in one compiled call"


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the n examples; X has shape (n, in), Y (n, out)."""
    dtype = params.dtype
    X = np.ascontiguousarray(X, dtype)
    Y = np.ascontiguousarray(Y, dtype)
    buf = Buffers(params.sizes, len(X), dtype)
    theta = flatten(params)
    backprop(theta, buf.grads[0], buf.sizes, buf.w_off, buf.b_off, X, Y, buf.acts[0], buf.act_off, buf.deltas[0])
    return unflatten(buf.grads[0], params.sizes)


def train_epoch(
    params: Params, X: np.ndarray, Y: np.ndarray, batch_size: int, eta: float, order: np.ndarray | None = None
) -> Params:
    """Return the parameters after one epoch of mini-batch SGD, fused into one compiled call.

    Produces the same parameters as the shared loop over :func:`gradients`.
    """
    dtype = params.dtype
    X = np.ascontiguousarray(X, dtype)
    Y = np.ascontiguousarray(Y, dtype)
    buf = Buffers(params.sizes, min(batch_size, len(X)), dtype)
    theta = flatten(params)
    order = check_order(order, len(X))
    # split=None: one slice, each batch in one backprop call, a batch of one example fused.
    sgd_epoch(
        theta, buf.grads, buf.sizes, buf.w_off, buf.b_off, X, Y, order, batch_size, float(eta),
        buf.acts, buf.act_off, buf.deltas, buf.x, buf.y, None,
    )  # fmt: skip
    return unflatten(theta, params.sizes)


def warm_up(sizes: list[int], dtype: str) -> None:
    """Compile (or load from the on-disk cache) every kernel signature a run will use.

    Compiled per dtype and per input writability, not per shape: any sizes, any batch size.
    """
    params, X, Y = tiny_problem(sizes, dtype, 3)
    for X_, Y_ in ((X, Y), read_only_copies(X, Y)):
        gradients(params, X_, Y_)
        for batch_size in (1, 2):  # batch size 1 has a fused path of its own
            train_epoch(params, X_, Y_, batch_size, 1.0)
            train_epoch(params, X_, Y_, batch_size, 1.0, order=np.arange(3))


__all__ = ["name", "description", "gradients", "train_epoch", "predict", "warm_up"]
