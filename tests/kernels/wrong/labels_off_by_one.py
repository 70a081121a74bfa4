"""Wrong on purpose: right gradients and epochs, but every predicted label is one class too high."""

from implementations.core import predict as core_predict
from implementations.kernels import vectorized

name = "labels-off-by-one"
gradients = vectorized.gradients


def predict(params, X):
    return (core_predict(params, X) + 1) % params.sizes[-1]
