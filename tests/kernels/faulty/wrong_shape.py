"""Bad input: a kernel module that returns its bias gradients as (out, 1) columns instead of (out,)."""

from implementations.core import Params, predict
from implementations.kernels import vectorized

name = "wrong-shape"


def gradients(params, X, Y):
    """Return the reference's gradients with every bias as a column."""
    nabla = vectorized.gradients(params, X, Y)
    return Params(nabla.weights, [b[:, None] for b in nabla.biases])


__all__ = ["name", "gradients", "predict"]
