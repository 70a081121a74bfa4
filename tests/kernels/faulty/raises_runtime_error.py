"""A kernel whose gradients raise: the harness must report it as ``error``, quoting this file."""

from implementations.kernels import vectorized

name = "crash"
predict = vectorized.predict


def gradients(params, X, Y):
    raise RuntimeError("kernel bug")
