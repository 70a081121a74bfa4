"""Right at every batch size but 1, where its per-example path forgets the learning rate's sign."""

from implementations.core import train_epoch_with
from implementations.kernels import vectorized

name = "wrong-at-batch1"
gradients, predict = vectorized.gradients, vectorized.predict


def train_epoch(params, X, Y, batch_size, eta, order=None):
    if batch_size == 1:
        return train_epoch_with(vectorized.gradients, params, X, Y, batch_size, -eta, order)
    return train_epoch_with(vectorized.gradients, params, X, Y, batch_size, eta, order)
