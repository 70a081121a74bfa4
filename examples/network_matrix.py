"""A Nielsen-style network that backpropagates a whole mini-batch at once (the chapter 2 exercise).

``backprop(x, y)`` takes x (784, m) and y (10, m), one column per example, and
returns (nabla_b, nabla_w) summed over the m examples: nabla_b[l] (out, 1) and
nabla_w[l] (out, in). backprop-bench sees that from what it returns, calls it once
per mini-batch, and takes the SGD step itself:

    backprop-bench check examples/network_matrix.py
"""

import numpy as np


class Network:
    def __init__(self, sizes, seed=0):
        # Departs from the book: an explicit seed instead of the global np.random.
        rng = np.random.default_rng(seed)
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
        self.weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        """Return the output of the network for the input columns a (in, m)."""
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def update_mini_batch(self, mini_batch, eta):
        """Apply one step of gradient descent over a list of (x, y) column pairs, as one matrix."""
        x = np.hstack([x for x, _ in mini_batch])
        y = np.hstack([y for _, y in mini_batch])
        nabla_b, nabla_w = self.backprop(x, y)
        self.weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        """Return (nabla_b, nabla_w) summed over the mini-batch: x (in, m), y (out, m)."""
        nabla_b = [None] * (self.num_layers - 1)
        nabla_w = [None] * (self.num_layers - 1)
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b  # b (out, 1) is added to every column
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        # delta has one column per example; the sums over the batch happen in the products.
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta.sum(axis=1, keepdims=True)
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sigmoid_prime(zs[-l])
            nabla_b[-l] = delta.sum(axis=1, keepdims=True)
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return nabla_b, nabla_w

    def cost_derivative(self, output_activations, y):
        """Return dC/da of the quadratic cost, one column per example."""
        return output_activations - y


def sigmoid(z):
    """Return the logistic function of z, element-wise."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    """Return the derivative of the sigmoid at z."""
    return sigmoid(z) * (1 - sigmoid(z))
