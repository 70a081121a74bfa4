"""Per-example backprop, one column vector at a time, as in Nielsen's ``network.py``.

This is the baseline every speedup is measured against. It is not optimized, on
purpose: each example of a mini-batch goes through its own forward and backward
pass and the per-example gradients are summed in Python.
"""

from __future__ import annotations

import numpy as np

from implementations.core import Params, predict, sigmoid

name = "loop"
description = "per-example backprop in a Python loop (Nielsen's network.py)"


def backprop(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Return (nabla_b, nabla_w) for one example; x has shape (in, 1) and y (out, 1).

    nabla_b[l] has shape (out, 1) and nabla_w[l] shape (out, in), as in the book.
    """
    activation = x
    activations = [x]
    zs = []
    for w, b in zip(params.weights, params.biases):
        z = w @ activation + b[:, None]
        zs.append(z)
        activation = sigmoid(z)
        activations.append(activation)
    # Quadratic cost: dC/da^L = a^L - y, so delta^L = (a^L - y) * sigma'(z^L).
    sp = activations[-1] * (1 - activations[-1])
    delta = (activations[-1] - y) * sp
    nabla_b = [None] * len(zs)
    nabla_w = [None] * len(zs)
    nabla_b[-1] = delta
    nabla_w[-1] = delta @ activations[-2].T
    for l in range(2, len(params.sizes)):
        # sigma'(z) = sigma(z) * (1 - sigma(z)), computed from the stored activation.
        sp = activations[-l] * (1 - activations[-l])
        delta = (params.weights[-l + 1].T @ delta) * sp
        nabla_b[-l] = delta
        nabla_w[-l] = delta @ activations[-l - 1].T
    return nabla_b, nabla_w


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the n examples; X has shape (n, in), Y (n, out)."""
    nabla_w = [np.zeros_like(w) for w in params.weights]
    nabla_b = [np.zeros_like(b) for b in params.biases]
    for x, y in zip(X, Y):
        delta_nabla_b, delta_nabla_w = backprop(params, x[:, None], y[:, None])
        for nb, dnb in zip(nabla_b, delta_nabla_b):
            nb += dnb[:, 0]
        for nw, dnw in zip(nabla_w, delta_nabla_w):
            nw += dnw
    return Params(nabla_w, nabla_b)


__all__ = ["name", "description", "gradients", "predict"]
