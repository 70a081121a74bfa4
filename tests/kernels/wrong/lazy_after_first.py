"""Wrong on purpose: trains honestly in its first call (the probe), then returns its input unchanged."""

from implementations.core import train_epoch_with
from implementations.kernels import vectorized

name = "lazy-after-first"
gradients, predict = vectorized.gradients, vectorized.predict
_calls = []


def train_epoch(params, X, Y, batch_size, eta, order=None):
    _calls.append(len(X))
    if len(_calls) > 1:
        return params.copy()
    return train_epoch_with(vectorized.gradients, params, X, Y, batch_size, eta, order)
