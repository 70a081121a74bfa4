"""JAX backprop: ``jax.grad`` of the quadratic cost, a whole epoch in one jitted ``lax.scan``.

The forward pass and C = 1/2 * sum ||a^L - y||^2 (summed over the batch) are
written in ``jax.numpy``; ``jax.grad`` derives the backward pass. An epoch is one
XLA program: ``lax.scan`` over the full batches, then the shorter last batch (if
any) with m its actual length, exactly as the shared loop does.

XLA compiles for fixed shapes, so an epoch is compiled per (sizes, dtype, number
of examples, batch size, shuffled or not). :func:`warm_up` compiles it ahead of
time when told those shapes; otherwise the first epoch of a new shape compiles.

float64 needs ``jax_enable_x64``, which this module switches on when imported
(it only allows 64-bit types; float32 inputs stay float32). Given float64
``Params`` every function computes and returns float64.

Copying the training set into JAX costs more than an epoch (about 0.2 s for
MNIST in float64), so read-only arrays are copied once and reused while the same
array object comes back; a writeable array is copied on every call, because it
might have changed in place. :func:`prepare` makes that copy, and waits for it,
before the first epoch: the harness times it on its own, never inside an epoch.
"""

from __future__ import annotations

import weakref
from functools import partial

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402 (after the x64 switch)
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from implementations.core import Params, predict  # noqa: E402

name = "jax"
description = "jax.grad of the quadratic cost, whole epoch in one jitted lax.scan"


def _cost(theta: tuple, x: jax.Array, y: jax.Array) -> jax.Array:
    """Return C = 1/2 * sum ||a^L - y||^2 over the m rows of x (m, in) and y (m, out); theta = (weights, biases)."""
    weights, biases = theta
    a = x
    for w, b in zip(weights, biases):
        a = jax.nn.sigmoid(a @ w.T + b)
    return 0.5 * jnp.sum((a - y) ** 2)


_gradients = jax.jit(jax.grad(_cost))


def _sgd_step(theta: tuple, x: jax.Array, y: jax.Array, eta: jax.Array) -> tuple:
    """Return theta after w <- w - (eta / m) * nabla_w on one batch, eta / m rounded to the dtype first."""
    step = (eta / x.shape[0]).astype(x.dtype)
    nabla = jax.grad(_cost)(theta, x, y)
    return jax.tree.map(lambda p, g: p - step * g, theta, nabla)


@partial(jax.jit, static_argnames="batch_size")
def _epoch(theta: tuple, X: jax.Array, Y: jax.Array, order: jax.Array | None, eta: jax.Array, batch_size: int):
    """Return theta after one epoch over X (n, in), Y (n, out), in ``order`` (n,) or in order if None."""
    n = X.shape[0]
    n_full = n // batch_size
    full = n_full * batch_size
    if order is None:
        xs = (X[:full].reshape(n_full, batch_size, -1), Y[:full].reshape(n_full, batch_size, -1))

        def body(theta, xy):
            return _sgd_step(theta, *xy, eta), None

        tail = (X[full:], Y[full:])
    else:
        xs = order[:full].reshape(n_full, batch_size)

        def body(theta, idx):
            return _sgd_step(theta, X[idx], Y[idx], eta), None

        tail = (X[order[full:]], Y[order[full:]])
    theta, _ = lax.scan(body, theta, xs)
    if full < n:
        theta = _sgd_step(theta, *tail, eta)
    return theta


# Compiled epochs, keyed by everything XLA specialises on (see _key).
_compiled: dict[tuple, object] = {}
# id(array) -> (weak reference to the read-only NumPy array, its copy in JAX).
_device_copies: dict[int, tuple[weakref.ref, jax.Array]] = {}


def _key(theta: tuple, X, Y, order, batch_size: int) -> tuple:
    """Return the cache key of an epoch: parameter shapes, data shapes, dtype, shuffled or not, batch size."""
    shapes = tuple(p.shape for p in jax.tree.leaves(theta))
    return (shapes, X.shape, Y.shape, str(X.dtype), order is None, batch_size)


def _compiled_epoch(theta: tuple, X, Y, order, eta, batch_size: int):
    """Return the compiled epoch for these shapes, compiling it (ahead of time) on first use."""
    key = _key(theta, X, Y, order, batch_size)
    if key not in _compiled:
        _compiled[key] = _epoch.lower(theta, X, Y, order, eta, batch_size=batch_size).compile()
    return _compiled[key]


def _on_device(array: np.ndarray) -> jax.Array:
    """Return ``array`` in JAX, reusing the copy of a read-only array seen before."""
    if array.flags.writeable:
        return jnp.asarray(array)
    key = id(array)
    entry = _device_copies.get(key)
    if entry is not None and entry[0]() is array:
        return entry[1]
    copy = jnp.asarray(array)
    # The entry goes when the array does, so a later array at the same address is not mistaken for it.
    _device_copies[key] = (weakref.ref(array, lambda _, key=key: _device_copies.pop(key, None)), copy)
    return copy


def _theta(params: Params) -> tuple:
    """Return (weights, biases) as JAX arrays in the dtype of ``params``."""
    return ([jnp.asarray(w) for w in params.weights], [jnp.asarray(b) for b in params.biases])


def _params(theta: tuple) -> Params:
    """Return Params holding writeable NumPy copies of theta."""
    weights, biases = theta
    return Params([np.array(w) for w in weights], [np.array(b) for b in biases])


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the n examples; X has shape (n, in), Y (n, out)."""
    dtype = params.dtype
    return _params(_gradients(_theta(params), np.asarray(X, dtype), np.asarray(Y, dtype)))


def train_epoch(
    params: Params, X: np.ndarray, Y: np.ndarray, batch_size: int, eta: float, order: np.ndarray | None = None
) -> Params:
    """Return the parameters after one epoch of mini-batch SGD, run as one compiled XLA program.

    Same batches and update as the shared loop over :func:`gradients`.
    """
    dtype = params.dtype
    theta = _theta(params)
    X = _on_device(np.asarray(X, dtype))
    Y = _on_device(np.asarray(Y, dtype))
    order = None if order is None else jnp.asarray(order, jnp.int64)
    eta = jnp.float64(eta)
    batch_size = min(int(batch_size), X.shape[0])
    return _params(_compiled_epoch(theta, X, Y, order, eta, batch_size)(theta, X, Y, order, eta))


def prepare(X: np.ndarray, Y: np.ndarray) -> None:
    """Copy the read-only training arrays X (n, in) and Y (n, out) into JAX and wait until the copy is done."""
    jax.block_until_ready((_on_device(X), _on_device(Y)))


def warm_up(
    sizes: list[int], dtype: str, n_train: int | None = None, batch_size: int | None = None, shuffle: bool = False
) -> None:
    """Start JAX's CPU backend and, given the run's shapes, compile its epoch ahead of time."""
    theta = _theta(Params([np.zeros((o, i), dtype) for i, o in zip(sizes[:-1], sizes[1:])],
                          [np.zeros(o, dtype) for o in sizes[1:]]))  # fmt: skip
    if n_train is None or batch_size is None:
        jax.block_until_ready(theta)
        return
    X = jax.ShapeDtypeStruct((n_train, sizes[0]), dtype)
    Y = jax.ShapeDtypeStruct((n_train, sizes[-1]), dtype)
    order = jax.ShapeDtypeStruct((n_train,), jnp.int64) if shuffle else None
    _compiled_epoch(theta, X, Y, order, jnp.float64(0), min(batch_size, n_train))


__all__ = ["name", "description", "gradients", "train_epoch", "predict", "prepare", "warm_up"]
