"""Planted mistake: a kernel module whose output error is y - a instead of a - y."""

import numpy as np

from implementations.core import Params, predict, sigmoid

name = "mistake-sign"


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the batch (or would, but for the sign)."""
    activations = [X]
    for w, b in zip(params.weights, params.biases):
        activations.append(sigmoid(activations[-1] @ w.T + b))
    a = activations[-1]
    delta = (Y - a) * a * (1 - a)  # the mistake: dC/da = a - y
    nabla_w, nabla_b = [], []
    for l in range(len(params.weights) - 1, -1, -1):
        nabla_w.insert(0, delta.T @ activations[l])
        nabla_b.insert(0, delta.sum(axis=0))
        if l > 0:
            delta = (delta @ params.weights[l]) * activations[l] * (1 - activations[l])
    return Params(nabla_w, nabla_b)


__all__ = ["name", "gradients", "predict"]
