"""Right on full batches; silently drops the short last batch of an epoch."""

from implementations.core import train_epoch_with
from implementations.kernels import vectorized

name = "drops-short-batch"
gradients, predict = vectorized.gradients, vectorized.predict


def train_epoch(params, X, Y, batch_size, eta, order=None):
    n = len(X) // batch_size * batch_size
    order = None if order is None else order[:n]
    return train_epoch_with(vectorized.gradients, params, X[:n] if order is None else X, Y[:n] if order is None else Y,
                            batch_size, eta, order)  # fmt: skip
