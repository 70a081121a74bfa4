"""Bad input: a kernel module whose backward pass multiplies matrices of mismatched shapes."""

import numpy as np

from implementations.core import Params, predict, sigmoid

name = "raises"


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the batch (it raises instead)."""
    activations = [X]
    for w, b in zip(params.weights, params.biases):
        activations.append(sigmoid(activations[-1] @ w.T + b))
    a = activations[-1]
    delta = (a - Y) * a * (1 - a)
    nabla_w = [np.dot(delta, activations[-2])]  # the mistake: delta.T
    return Params(nabla_w, [delta.sum(axis=0)])


__all__ = ["name", "gradients", "predict"]
