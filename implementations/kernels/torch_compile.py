"""PyTorch's fastest CPU path: the whole SGD step (forward, autograd backward, update) through torch.compile.

The step is the ``torch`` kernel's cost, differentiated by ``torch.func.grad`` and
followed by the update, compiled as one graph by inductor (``fullgraph=True``), which
fuses the element-wise work around the matrix products into generated C++. So it is
the peer a PyTorch user would reach for after the eager loop, not a hand-written
kernel. The epoch loop stays in Python, one compiled call per mini-batch.

Needs ``torch`` (the ``torch`` extra) and a C++ compiler for inductor's CPU code
(``g++``, or the one named by ``CXX``); without either, importing this module raises
ImportError and the registry lists the kernel as unavailable, saying why.

Inductor compiles per input shape (``dynamic=False``: one static graph per batch
shape; a dynamic batch dimension measured no faster). :func:`warm_up`, told the
workload, compiles the full batch and the shorter last batch ahead of the timed
epochs (5-45 s here, about 1 s once inductor's on-disk cache holds them). Another
shape, as in the parity probe, compiles on its first call, outside any timing.
:func:`gradients` (a new shape on nearly every call) runs the same cost through eager
autograd, like ``torch``.

Threads are PyTorch's, which the harness sets to the run's ``--threads``.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import torch

from implementations.core import Params, batches, predict
from implementations.kernels import torch_kernel
from implementations.kernels.torch_common import cost, tensor

if shutil.which(os.environ.get("CXX", "g++")) is None:
    raise ImportError("torch.compile's inductor needs a C++ compiler for CPU code (g++ or $CXX); none found")

name = "torch-compile"
description = "torch.compile (inductor, CPU) of the whole SGD step: autograd forward/backward and update"
gradients = torch_kernel.gradients


def _cost(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return C = 1/2 * sum ||a^L - y||^2 over the m rows of x (m, in) and y (m, out); params = [w^1, b^1, ...]."""
    return cost(params[0::2], params[1::2], x, y)


def _sgd_step(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, step: torch.Tensor) -> list[torch.Tensor]:
    """Return params after p <- p - step * dC/dp on the batch (x, y); step is a 0-d tensor, eta / m in the dtype."""
    nabla = torch.func.grad(_cost)(params, x, y)
    return [p - step * g for p, g in zip(params, nabla)]


# Compiled lazily by torch on the first call of each new shape; warm_up makes those calls.
_compiled_step = torch.compile(_sgd_step, backend="inductor", fullgraph=True, dynamic=False)
# Graphs kept for _sgd_step: one per network, dtype and batch shape seen. A run needs a
# handful; the test suite, with its many networks in one process, needs more than
# dynamo's default of 8, past which fullgraph=True fails. Applied only around our calls.
_RECOMPILE_LIMIT = 64


def _tensors(params: Params) -> list[torch.Tensor]:
    """Return [w^1, b^1, w^2, b^2, ...] as fresh tensors (copies) in the dtype of ``params``."""
    return [torch.tensor(a) for pair in zip(params.weights, params.biases) for a in pair]


def _params(tensors: list[torch.Tensor]) -> Params:
    """Return Params holding NumPy copies of [w^1, b^1, ...]."""
    arrays = [t.detach().numpy().copy() for t in tensors]
    return Params(arrays[0::2], arrays[1::2])


def train_epoch(
    params: Params, X: np.ndarray, Y: np.ndarray, batch_size: int, eta: float, order: np.ndarray | None = None
) -> Params:
    """Return the parameters after one epoch of mini-batch SGD, one compiled step per batch.

    Same batches and update as the shared loop: w <- w - (eta / m) * nabla_w, with
    eta / m rounded to the parameters' dtype and m the batch's actual length.
    """
    dtype = params.dtype
    theta = _tensors(params)
    X_t, Y_t = tensor(X, dtype), tensor(Y, dtype)
    steps: dict[int, torch.Tensor] = {}
    with torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT):
        for idx in batches(len(X), batch_size, order):
            if not isinstance(idx, slice):
                idx = torch.from_numpy(idx)
            x, y = X_t[idx], Y_t[idx]
            m = len(x)
            if m not in steps:
                steps[m] = torch.tensor(dtype.type(eta / m))
            theta = _compiled_step(theta, x, y, steps[m])
    return _params(theta)


def warm_up(
    sizes: list[int], dtype: str, n_train: int | None = None, batch_size: int | None = None, shuffle: bool = False
) -> None:
    """Compile the step for the run's batch shapes (the full batch and the shorter last one), so no epoch compiles.

    Without the workload, compiles for a batch of 2 (it still starts PyTorch's thread pool
    and inductor); the run's own shapes then compile on first use.
    """
    n_train = n_train or 2
    batch_size = min(batch_size or 2, n_train)
    rng = np.random.default_rng(0)
    params = Params(
        [rng.standard_normal((o, i)).astype(dtype) for i, o in zip(sizes[:-1], sizes[1:])],
        [rng.standard_normal(o).astype(dtype) for o in sizes[1:]],
    )
    for m in sorted({batch_size, n_train % batch_size} - {0}):
        X = rng.random((m, sizes[0])).astype(dtype)
        Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], m)]
        order = np.arange(m) if shuffle else None
        train_epoch(params, X, Y, m, 1.0, order)


__all__ = ["name", "description", "gradients", "train_epoch", "predict", "warm_up"]
