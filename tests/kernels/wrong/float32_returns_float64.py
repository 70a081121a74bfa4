"""A "float32" kernel that quietly computes, and returns, float64."""

from implementations.core import train_epoch_with
from implementations.kernels import vectorized

name = "float32-returns-float64"
predict = vectorized.predict


def gradients(params, X, Y):
    return vectorized.gradients(params.astype("float64"), X.astype("float64"), Y.astype("float64"))


def train_epoch(params, X, Y, batch_size, eta, order=None):
    return train_epoch_with(gradients, params.astype("float64"), X, Y, batch_size, eta, order)
