"""Floating-point operation counts of the timed work, from the layer sizes alone.

Counted per example, as multiply-adds times two: the forward pass costs 2*in*out
per layer, the weight gradient 2*in*out per layer, and propagating the error back
2*in*out for every layer but the first (nothing is propagated into the input).
Element-wise work (bias, sigmoid, update) is ignored: it is O(out), not O(in*out).
"""

from __future__ import annotations

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


def epoch_flops(sizes: Sequence[int], n: int) -> int:
    """Return the FLOPs of one training epoch over n examples (the update is negligible)."""
    return gradient_flops(sizes, n)


def gemm_flops(m: int, k: int, n: int) -> int:
    """Return the FLOPs of an (m, k) @ (k, n) matrix product."""
    return 2 * m * k * n
