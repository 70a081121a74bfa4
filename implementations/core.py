"""Shared pieces of every kernel: parameters, initialisation, batch order, the SGD update.

Everything here is written once so that kernels differ only in how they compute
gradients (or, for a fused kernel, a whole epoch). It is not a kernel itself.

Notation follows Nielsen, *Neural Networks and Deep Learning*, chapter 2: layer l
maps a^{l-1} to a^l = sigma(w^l a^{l-1} + b^l); the cost of one example is
C = 1/2 ||a^L - y||^2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class Params:
    """Weights and biases of a fully connected sigmoid network.

    ``weights[l]`` has shape (out, in) and ``biases[l]`` shape (out,), as in the
    original exercise; all arrays share one floating dtype.
    """

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    @property
    def sizes(self) -> list[int]:
        """Return the layer widths, e.g. [784, 30, 10]."""
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    @property
    def dtype(self) -> np.dtype:
        """Return the dtype shared by every array."""
        return self.weights[0].dtype

    def astype(self, dtype: str | np.dtype) -> Params:
        """Return a C-contiguous copy in ``dtype``."""
        return Params(
            [np.array(w, dtype=dtype, order="C") for w in self.weights],
            [np.array(b, dtype=dtype, order="C") for b in self.biases],
        )

    def copy(self) -> Params:
        """Return a deep copy."""
        return self.astype(self.dtype)

    def arrays(self) -> list[np.ndarray]:
        """Return every array, weights first then biases (a fixed order for comparisons)."""
        return [*self.weights, *self.biases]

    def is_finite(self) -> bool:
        """Return True when no parameter is NaN or infinite."""
        return all(np.isfinite(a).all() for a in self.arrays())


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """Return ``sizes`` as a list of ints, or raise ValueError if it is not a network."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least two positive widths, got {sizes}")
    return sizes


def init_params(sizes: Sequence[int], seed: int, dtype: str = "float64") -> Params:
    """Return parameters drawn from N(0, 1) with an explicit seed.

    Draws happen in float64 and are then cast, so float32 and float64 runs start
    from the same numbers (rounded).
    """
    sizes = check_sizes(sizes)
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(n_out) for n_out in sizes[1:]]
    return Params(weights, biases).astype(dtype)


def batch_order(n: int, seed: int | None, epoch: int) -> np.ndarray | None:
    """Return the example order for one epoch: None (in order) or a permutation of range(n).

    The permutation depends only on (seed, epoch), so every kernel sees the same batches.
    """
    if seed is None:
        return None
    return np.random.default_rng([seed, epoch]).permutation(n)


def batches(n: int, batch_size: int, order: np.ndarray | None) -> Iterator[slice | np.ndarray]:
    """Yield index objects for consecutive mini-batches; the last one may be shorter.

    In-order batches are slices (views, no copy); shuffled ones are index arrays.
    """
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield slice(start, stop) if order is None else order[start:stop]


def sgd_update(params: Params, nabla: Params, eta: float, m: int) -> None:
    """Apply w <- w - (eta / m) * nabla_w (and likewise b) in place."""
    step = params.dtype.type(eta / m)
    for w, nw in zip(params.weights, nabla.weights):
        w -= step * nw
    for b, nb in zip(params.biases, nabla.biases):
        b -= step * nb


GradientFn = Callable[[Params, np.ndarray, np.ndarray], Params]


def train_epoch_with(
    gradients: GradientFn,
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    batch_size: int,
    eta: float,
    order: np.ndarray | None = None,
) -> Params:
    """Return the parameters after one epoch of mini-batch SGD driven by ``gradients``.

    X has shape (n, inputs) and Y (n, outputs); ``params`` is not modified.
    """
    params = params.copy()
    for idx in batches(len(X), batch_size, order):
        X_batch, Y_batch = X[idx], Y[idx]
        sgd_update(params, gradients(params, X_batch, Y_batch), eta, len(X_batch))
    return params


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Return the logistic function of z, element-wise."""
    # exp(-z) overflows to inf for z < -709 and the result is then exactly 0, which is right.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def feedforward(params: Params, X: np.ndarray) -> np.ndarray:
    """Return the output activations, shape (n, outputs), for inputs X of shape (n, inputs)."""
    a = X
    for w, b in zip(params.weights, params.biases):
        a = sigmoid(a @ w.T + b)
    return a


def cost(params: Params, X: np.ndarray, Y: np.ndarray) -> float:
    """Return the quadratic cost 1/2 * sum ||a^L - y||^2 summed over the n examples."""
    return 0.5 * float(np.sum((feedforward(params, X) - Y) ** 2))


def predict(params: Params, X: np.ndarray) -> np.ndarray:
    """Return the predicted class of each row of X, shape (n,), as int64."""
    return np.argmax(feedforward(params, X), axis=1).astype(np.int64)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Return the fraction of predicted labels equal to the true labels."""
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def max_rel_error(a: Params, b: Params) -> float:
    """Return the worst, over arrays, of max|a - b| / max|b|, measured in float64.

    Element-wise relative error is meaningless where sums cancel to near zero, so
    each array's error is scaled by that array's largest reference magnitude.
    """
    worst = 0.0
    for x, ref in zip(a.arrays(), b.arrays(), strict=True):
        if x.shape != ref.shape:
            return float("inf")
        ref = ref.astype(np.float64)
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        diff = float(np.max(np.abs(x.astype(np.float64) - ref))) if ref.size else 0.0
        if not np.isfinite(diff):
            return float("inf")
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst


def finite_difference_gradients(params: Params, X: np.ndarray, Y: np.ndarray, h: float = 1e-6) -> Params:
    """Return the central-difference estimate of dC/dparams (same shapes as ``params``).

    Costs two forward passes per parameter: use it on small networks only.
    """
    params = params.astype(np.float64)
    estimate = Params([np.zeros_like(w) for w in params.weights], [np.zeros_like(b) for b in params.biases])
    for p, g in zip(params.arrays(), estimate.arrays()):
        flat_p, flat_g = p.reshape(-1), g.reshape(-1)
        for i in range(flat_p.size):
            saved = flat_p[i]
            flat_p[i] = saved + h
            c_plus = cost(params, X, Y)
            flat_p[i] = saved - h
            c_minus = cost(params, X, Y)
            flat_p[i] = saved
            flat_g[i] = (c_plus - c_minus) / (2 * h)
    return estimate
