"""Planted mistake: the book's per-example backprop with the output layer's nabla_w transposed."""

import numpy as np


class Network:
    def __init__(self, sizes):
        self.num_layers = len(sizes)

    def backprop(self, x, y):
        """Return (nabla_b, nabla_w) for one example: x (in, 1), y (out, 1)."""
        activations = [x]
        for b, w in zip(self.biases, self.weights):
            activations.append(sigmoid(np.dot(w, activations[-1]) + b))
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        a = activations[-1]
        delta = (a - y) * a * (1 - a)
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(activations[-2], delta.T)  # the mistake: (in, out), not (out, in)
        for l in range(2, self.num_layers):
            a = activations[-l]
            delta = np.dot(self.weights[-l + 1].T, delta) * a * (1 - a)
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].T)
        return nabla_b, nabla_w


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))
