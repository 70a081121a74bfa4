"""Passes its parity probe, then crashes the process with a segmentation fault in its first timed epoch."""

import ctypes

from implementations.kernels import vectorized

name = "segfault"
gradients, predict = vectorized.gradients, vectorized.predict
_calls = []


def train_epoch(params, X, Y, batch_size, eta, order=None):
    _calls.append(1)
    if len(_calls) > 1:  # the first call is the parity probe
        ctypes.string_at(0)
    return vectorized_epoch(params, X, Y, batch_size, eta, order)


def vectorized_epoch(params, X, Y, batch_size, eta, order):
    from implementations.core import train_epoch_with

    return train_epoch_with(vectorized.gradients, params, X, Y, batch_size, eta, order)
