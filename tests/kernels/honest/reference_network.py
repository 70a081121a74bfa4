"""The float64 reference kernel dressed as a per-batch Nielsen-style class, to measure the adapter.

``backprop`` converts the class layout back to Params and calls the reference, so an
epoch through the adapter costs the reference's epoch plus the conversions both
ways: the adapter's overhead, and nothing else.
"""

from implementations.core import Params
from implementations.kernels import vectorized


class ReferenceNetwork:
    def __init__(self, sizes):
        self.sizes = sizes

    def backprop(self, x, y):
        """Return (nabla_b, nabla_w) summed over the batch: x (in, m), y (out, m)."""
        params = Params(self.weights, [b[:, 0] for b in self.biases])
        nabla = vectorized.gradients(params, x.T, y.T)
        return [b[:, None] for b in nabla.biases], nabla.weights
