"""Planted mistake: a kernel module right for small batches whose first-layer dC/dw is 1% too large from 40 on.

It stands for a kernel that takes another path for large batches (blocked, threaded,
buffers sized by the batch) and gets it slightly wrong: a check that only tries small
batches passes it.
"""

import numpy as np

from implementations.core import Params, predict
from implementations.kernels.vectorized import gradients as reference_gradients

name = "mistake-large-batch"


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the batch; X has shape (n, in), Y (n, out)."""
    nabla = reference_gradients(params, X, Y)
    if len(X) >= 40:
        nabla.weights[0] = 1.01 * nabla.weights[0]  # the mistake, on the large-batch path only
    return nabla


__all__ = ["name", "gradients", "predict"]
