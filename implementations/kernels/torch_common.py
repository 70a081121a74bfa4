"""What the PyTorch kernels (``torch``, ``torch-compile``) share: the cost they differentiate, and arrays as tensors.

Written once so that both differentiate the same forward pass. It is not a kernel,
and it adds nothing PyTorch does not do: no hand-written derivative appears here.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


def cost(weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return C = 1/2 * sum ||a^L - y||^2 over the m rows of x (m, in) and y (m, out), a scalar."""
    a = x
    for w, b in zip(weights, biases):
        a = torch.sigmoid(a @ w.T + b)
    return 0.5 * ((a - y) ** 2).sum()


def tensor(array: np.ndarray, dtype: np.dtype) -> torch.Tensor:
    """Return ``array`` as a tensor of ``dtype``, sharing memory when it is already C-contiguous in it."""
    with warnings.catch_warnings():
        # PyTorch warns that a read-only array could be written through the tensor; these kernels
        # only read X and Y, so sharing a read-only training set is safe.
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        return torch.from_numpy(np.ascontiguousarray(array, dtype))


__all__ = ["cost", "tensor"]
