"""Passes its parity probe, then never finishes its first timed epoch."""

import time

from implementations.core import train_epoch_with
from implementations.kernels import vectorized

name = "hang"
gradients, predict = vectorized.gradients, vectorized.predict
_calls = []


def train_epoch(params, X, Y, batch_size, eta, order=None):
    _calls.append(1)
    while len(_calls) > 1:  # the first call is the parity probe
        time.sleep(1)
    return train_epoch_with(vectorized.gradients, params, X, Y, batch_size, eta, order)
