"""Agrees on the probe (its first train_epoch), then its parameters become infinite in training."""

import numpy as np

from implementations.core import train_epoch_with
from implementations.kernels import vectorized

name = "nan"
gradients, predict = vectorized.gradients, vectorized.predict
_calls = []


def train_epoch(params, X, Y, batch_size, eta, order=None):
    _calls.append(1)
    stepped = train_epoch_with(vectorized.gradients, params, X, Y, batch_size, eta, order)
    if len(_calls) > 1:
        stepped.weights[-1][:] = np.inf
    return stepped
