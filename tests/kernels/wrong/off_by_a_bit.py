"""Gradients with w^1 scaled by 1 + 1e-6: a subtle error, far below what accuracy would show."""

from implementations.kernels import vectorized

name = "wrong"
predict = vectorized.predict


def gradients(params, X, Y):
    g = vectorized.gradients(params, X, Y)
    g.weights[0] *= 1 + 1e-6
    return g
