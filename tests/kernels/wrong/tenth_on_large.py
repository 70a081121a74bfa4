"""Wrong on purpose: honest on small inputs (the probe), trains on a tenth of the data when X is large."""

from implementations.core import train_epoch_with
from implementations.kernels import vectorized

name = "tenth-on-large"
gradients, predict = vectorized.gradients, vectorized.predict


def train_epoch(params, X, Y, batch_size, eta, order=None):
    if len(X) > 1000:
        n = len(X) // 10
        X, Y, order = X[:n], Y[:n], None if order is None else order[order < n]
    return train_epoch_with(vectorized.gradients, params, X, Y, batch_size, eta, order)
