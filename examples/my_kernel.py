"""A complete backprop-bench kernel: mini-batch backprop in NumPy, one row per example."""

import numpy as np

from implementations.core import Params, predict, sigmoid

name = "my-kernel"
description = "mini-batch backprop in NumPy, written from the maths"


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dw and dC/db summed over the n examples; X has shape (n, in), Y (n, out)."""
    activations = [X]
    for w, b in zip(params.weights, params.biases):
        activations.append(sigmoid(activations[-1] @ w.T + b))
    a = activations[-1]
    delta = (a - Y) * a * (1 - a)  # quadratic cost: dC/da = a - y; sigmoid'(z) = a (1 - a)
    nabla_w, nabla_b = [], []
    for l in range(len(params.weights) - 1, -1, -1):
        nabla_w.insert(0, delta.T @ activations[l])
        nabla_b.insert(0, delta.sum(axis=0))
        if l > 0:
            delta = (delta @ params.weights[l]) * activations[l] * (1 - activations[l])
    return Params(nabla_w, nabla_b)


__all__ = ["name", "description", "gradients", "predict"]
