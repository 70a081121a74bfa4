"""Floating-point operation counts of the timed work, from the layer sizes alone.

Counted per example, as multiply-adds times two: the forward pass costs 2*in*out
per layer, the weight gradient 2*in*out per layer, and propagating the error back
2*in*out for every layer but the first (nothing is propagated into the input).
An epoch adds the SGD update, 2 FLOPs per parameter (w -= step * nabla) per batch:
at batch size 1 that is about a quarter of the work, at batch 100 well under 1%.
Other element-wise work (bias, sigmoid) is O(out) per example and is left out.
These are dense-equivalent counts: a kernel that skips zero inputs does fewer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _products(sizes: Sequence[int]) -> list[int]:
    return [n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def forward_flops(sizes: Sequence[int], n: int) -> int:
    """Return the FLOPs of a forward pass over n examples (prediction)."""
    return 2 * n * sum(_products(sizes))


def gradient_flops(sizes: Sequence[int], n: int) -> int:
    """Return the FLOPs of forward plus backward over n examples (one gradients call)."""
    products = _products(sizes)
    return n * (2 * sum(products) + 2 * sum(products) + 2 * sum(products[1:]))


def update_flops(sizes: Sequence[int]) -> int:
    """Return the FLOPs of one SGD update of every parameter: a multiply and a subtract each."""
    return 2 * sum(p + n_out for p, n_out in zip(_products(sizes), sizes[1:]))


def epoch_flops(sizes: Sequence[int], n: int, batch_size: int) -> int:
    """Return the FLOPs of one training epoch over n examples at ``batch_size``, updates included."""
    return gradient_flops(sizes, n) + math.ceil(n / batch_size) * update_flops(sizes)


def gemm_flops(m: int, k: int, n: int) -> int:
    """Return the FLOPs of an (m, k) @ (k, n) matrix product."""
    return 2 * m * k * n


def sparse_epoch_flops(sizes: Sequence[int], n: int, batch_size: int, density: float) -> int:
    """Return the FLOPs an epoch really does when the first layer skips zero inputs (``density``: non-zero share).

    Only the first layer's forward product and weight gradient touch the inputs; both shrink
    to the non-zero pixels. Everything else is as dense.
    """
    first = 2 * sizes[0] * sizes[1] * n  # one of the two input-sized products, dense
    return epoch_flops(sizes, n, batch_size) - round(2 * first * (1.0 - density))
