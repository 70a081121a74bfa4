"""Planted mistake: a mini-batch Nielsen class whose output delta lacks the sigmoid-derivative factor."""

import numpy as np


class Network:
    def __init__(self, sizes):
        self.num_layers = len(sizes)

    def backprop(self, x, y):
        """Return (nabla_b, nabla_w) summed over the batch: x (in, m), y (out, m)."""
        activations = [x]
        for b, w in zip(self.biases, self.weights):
            activations.append(1.0 / (1.0 + np.exp(-(w @ activations[-1] + b))))
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        delta = activations[-1] - y  # the mistake: times sigma'(z) = a (1 - a) is missing
        for l in range(1, self.num_layers):
            if l > 1:
                a = activations[-l]
                delta = (self.weights[-l + 1].T @ delta) * a * (1 - a)
            nabla_b[-l] = delta.sum(axis=1, keepdims=True)
            nabla_w[-l] = delta @ activations[-l - 1].T
        return nabla_b, nabla_w
