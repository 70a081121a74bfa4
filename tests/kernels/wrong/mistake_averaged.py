"""Planted mistake: a mini-batch Nielsen class that returns means over the batch instead of sums."""

import numpy as np


class Network:
    def __init__(self, sizes):
        self.num_layers = len(sizes)

    def backprop(self, x, y):
        """Return (nabla_b, nabla_w) for the batch: x (in, m), y (out, m)."""
        m = x.shape[1]
        activations = [x]
        for b, w in zip(self.biases, self.weights):
            activations.append(1.0 / (1.0 + np.exp(-(w @ activations[-1] + b))))
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        a = activations[-1]
        delta = (a - y) * a * (1 - a)
        for l in range(1, self.num_layers):
            if l > 1:
                a = activations[-l]
                delta = (self.weights[-l + 1].T @ delta) * a * (1 - a)
            # The mistake: the step divides by m already, so these must be sums.
            nabla_b[-l] = delta.mean(axis=1, keepdims=True)
            nabla_w[-l] = delta @ activations[-l - 1].T / m
        return nabla_b, nabla_w
