"""Bad input: a kernel module that computes in float32 whatever the parameters' dtype."""

import numpy as np

from implementations.core import predict
from implementations.kernels import vectorized

name = "wrong-dtype"


def gradients(params, X, Y):
    """Return the reference's gradients, computed in float32."""
    return vectorized.gradients(params.astype(np.float32), X.astype(np.float32), Y.astype(np.float32))


__all__ = ["name", "gradients", "predict"]
