"""Test data: the chapter 2 exercise solved the usual way, a whole mini-batch as one matrix per layer.

``update_mini_batch`` stacks the batch's columns and ``backprop`` takes x (784, m),
y (10, m) and returns the sums over the batch. The bias sums use a product with a
column of ones, as many published solutions do.
"""

import numpy as np


class Network:
    def __init__(self, sizes):
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [np.random.randn(y, 1) for y in sizes[1:]]  # noqa: NPY002 (as the book draws them)
        self.weights = [np.random.randn(y, x) for x, y in zip(sizes[:-1], sizes[1:])]  # noqa: NPY002

    def update_mini_batch(self, mini_batch, eta):
        """Update weights and biases from one mini-batch, all examples at once."""
        x = np.column_stack([x.ravel() for x, _ in mini_batch])
        y = np.column_stack([y.ravel() for _, y in mini_batch])
        nabla_b, nabla_w = self.backprop(x, y)
        self.weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        """Return (nabla_b, nabla_w) summed over the m columns of x (784, m) and y (10, m)."""
        ones = np.ones((x.shape[1], 1), dtype=x.dtype)
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            zs.append(w @ activations[-1] + b)
            activations.append(sigmoid(zs[-1]))
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
        for l in range(1, self.num_layers):
            if l > 1:
                delta = (self.weights[-l + 1].T @ delta) * sigmoid_prime(zs[-l])
            nabla_b[-l] = delta @ ones
            nabla_w[-l] = delta @ activations[-l - 1].T
        return nabla_b, nabla_w


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))
