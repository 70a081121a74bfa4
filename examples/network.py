"""A Nielsen-style network, one example at a time, as in chapter 1 of *Neural Networks and Deep Learning*.

backprop-bench calls only ``backprop(x, y)``, with x (784, 1) and y (10, 1): it puts
its own ``weights`` (out, in) and ``biases`` (out, 1) on the object before each call,
sums the per-example gradients and takes the same SGD step as ``update_mini_batch``
below. So a class written for the book joins as it is:

    backprop-bench check examples/network.py
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
        """Return the output of the network for the input column a."""
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def update_mini_batch(self, mini_batch, eta):
        """Apply one step of gradient descent over a list of (x, y) column pairs."""
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        self.weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        """Return (nabla_b, nabla_w), the gradient of the cost for one example: x (in, 1), y (out, 1)."""
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        # l counts layers from the end: l = 2 is the last hidden layer.
        for l in range(2, self.num_layers):
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sigmoid_prime(zs[-l])
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return nabla_b, nabla_w

    def cost_derivative(self, output_activations, y):
        """Return dC/da of the quadratic cost C = 1/2 ||a - y||^2."""
        return output_activations - y


def sigmoid(z):
    """Return the logistic function of z, element-wise."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    """Return the derivative of the sigmoid at z."""
    return sigmoid(z) * (1 - sigmoid(z))
