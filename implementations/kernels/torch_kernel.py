"""PyTorch backprop: the network as a PyTorch user would write it, gradients by autograd.

The forward pass and the quadratic cost C = 1/2 * sum ||a^L - y||^2 (summed over
the batch) are written in ``torch``; ``torch.autograd`` does the backward pass.
No hand-written derivative appears here, which is the point: this kernel is the
peer a user would otherwise pick, and an independent check of the reference.

It is not tuned: no ``torch.compile``, no fused optimizer, and the thread count is
left to PyTorch (it follows the machine; the harness may cap it). Tensors share
memory with the NumPy arrays where they can (``torch.from_numpy``), and the epoch
loop stays in PyTorch, so NumPy is crossed once per epoch, not once per batch.
"""

from __future__ import annotations

import numpy as np
import torch

from implementations.core import Params, batches, predict
from implementations.kernels.torch_common import cost, tensor

name = "torch"
description = "PyTorch autograd on the quadratic cost, epoch loop in PyTorch"


def _leaves(params: Params) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Return (weights, biases) as fresh leaf tensors that require grad, copied from ``params``."""
    weights = [torch.tensor(w).requires_grad_() for w in params.weights]
    biases = [torch.tensor(b).requires_grad_() for b in params.biases]
    return weights, biases


def _params(weights: list[torch.Tensor], biases: list[torch.Tensor]) -> Params:
    """Return Params holding NumPy copies of the tensors."""
    return Params([w.detach().numpy().copy() for w in weights], [b.detach().numpy().copy() for b in biases])


def gradients(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """Return dC/dparams summed over the n examples; X has shape (n, in), Y (n, out)."""
    weights, biases = _leaves(params)
    c = cost(weights, biases, tensor(X, params.dtype), tensor(Y, params.dtype))
    grads = torch.autograd.grad(c, [*weights, *biases])
    n_layers = len(weights)
    return Params([g.numpy() for g in grads[:n_layers]], [g.numpy() for g in grads[n_layers:]])


def train_epoch(
    params: Params, X: np.ndarray, Y: np.ndarray, batch_size: int, eta: float, order: np.ndarray | None = None
) -> Params:
    """Return the parameters after one epoch of mini-batch SGD, the loop written in PyTorch.

    Same batches and update as the shared loop: w <- w - (eta / m) * nabla_w, with
    eta / m rounded to the parameters' dtype and m the batch's actual length.
    """
    dtype = params.dtype
    weights, biases = _leaves(params)
    X_t, Y_t = tensor(X, dtype), tensor(Y, dtype)
    for idx in batches(len(X), batch_size, order):
        if not isinstance(idx, slice):
            idx = torch.from_numpy(idx)
        x, y = X_t[idx], Y_t[idx]
        cost(weights, biases, x, y).backward()
        step = float(dtype.type(eta / len(x)))
        with torch.no_grad():
            for p in (*weights, *biases):
                p -= step * p.grad
                p.grad = None
    return _params(weights, biases)


def warm_up(sizes: list[int], dtype: str) -> None:
    """Run one tiny backward pass, so PyTorch's lazy start-up (thread pool, kernels) is not timed."""
    rng = np.random.default_rng(0)
    params = Params(
        [rng.standard_normal((o, i)).astype(dtype) for i, o in zip(sizes[:-1], sizes[1:])],
        [rng.standard_normal(o).astype(dtype) for o in sizes[1:]],
    )
    X = rng.random((3, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], 3)]
    train_epoch(params, X, Y, 2, 1.0, order=np.arange(3))


__all__ = ["name", "description", "gradients", "train_epoch", "predict", "warm_up"]
