"""Planted mistake: a kernel module that returns one bias gradient per example instead of their sum."""

import numpy as np

from implementations.core import Params, predict, sigmoid

name = "mistake-bias-sum"


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams for the batch; X has shape (n, in), Y (n, out)."""
    activations = [X]
    for w, b in zip(params.weights, params.biases):
        activations.append(sigmoid(activations[-1] @ w.T + b))
    a = activations[-1]
    delta = (a - Y) * a * (1 - a)
    nabla_w, nabla_b = [], []
    for l in range(len(params.weights) - 1, -1, -1):
        nabla_w.insert(0, delta.T @ activations[l])
        nabla_b.insert(0, delta)  # the mistake: delta.sum(axis=0)
        if l > 0:
            delta = (delta @ params.weights[l]) * activations[l] * (1 - activations[l])
    return Params(nabla_w, nabla_b)


__all__ = ["name", "gradients", "predict"]
