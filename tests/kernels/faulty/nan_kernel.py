"""Bad input: a kernel module whose loop stops one layer early, leaving NaN placeholders in layer 0."""

import numpy as np

from implementations.core import Params, predict, sigmoid

name = "nan-kernel"


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the batch (layer 0 never filled)."""
    activations = [X]
    for w, b in zip(params.weights, params.biases):
        activations.append(sigmoid(activations[-1] @ w.T + b))
    nabla_w = [np.full_like(w, np.nan) for w in params.weights]
    nabla_b = [np.full_like(b, np.nan) for b in params.biases]
    a = activations[-1]
    delta = (a - Y) * a * (1 - a)
    for l in range(len(params.weights) - 1, 0, -1):  # the mistake: down to 0, not 1
        nabla_w[l] = delta.T @ activations[l]
        nabla_b[l] = delta.sum(axis=0)
        delta = (delta @ params.weights[l]) * activations[l] * (1 - activations[l])
    return Params(nabla_w, nabla_b)


__all__ = ["name", "gradients", "predict"]
