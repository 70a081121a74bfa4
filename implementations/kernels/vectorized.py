"""Fully vectorized backprop: the whole mini-batch as one matrix, in NumPy.

This is the reference (the oracle) every other kernel is compared with, in
float64. It favours clarity over the last bit of speed: it allocates freely.
Rows are examples, so a layer is ``a @ w.T + b`` with ``a`` of shape (m, in).
"""

from __future__ import annotations

import numpy as np

from implementations.core import Params, predict, sigmoid

name = "vectorized"
description = "whole mini-batch as matrices in NumPy (the float64 reference)"


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the n examples; X has shape (n, in), Y (n, out)."""
    return backprop(params, X, Y)


def backprop(
    params: Params, X: np.ndarray, Y: np.ndarray, output_prime: bool = True, hidden_prime: bool = True
) -> Params:
    """Return dC/dparams summed over the n examples; X has shape (n, in), Y (n, out).

    With ``output_prime`` or ``hidden_prime`` False, the factor sigma'(z) = a (1 - a) is
    left out of the output layer's delta or the hidden layers' deltas: the most common
    mistake, which ``backprop-bench check`` computes here to recognise it. The reference
    keeps both, and the same operations in the same order either way.
    """
    activations = [X]
    for w, b in zip(params.weights, params.biases):
        activations.append(sigmoid(activations[-1] @ w.T + b))
    n_layers = len(params.weights)
    nabla_w: list[np.ndarray] = [None] * n_layers
    nabla_b: list[np.ndarray] = [None] * n_layers
    a_out = activations[-1]
    # delta has shape (m, out): one row per example, as the forward pass.
    delta = a_out - Y
    if output_prime:
        delta = delta * a_out * (1 - a_out)
    for l in range(n_layers - 1, -1, -1):
        nabla_b[l] = delta.sum(axis=0)
        nabla_w[l] = delta.T @ activations[l]
        if l > 0:
            a = activations[l]
            delta = delta @ params.weights[l]
            if hidden_prime:
                delta = delta * a * (1 - a)
    return Params(nabla_w, nabla_b)


__all__ = ["name", "description", "gradients", "predict"]
