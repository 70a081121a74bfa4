"""What a wrong gradient array looks like: transposed, wrong sign, averaged instead of summed,
biases not summed over the batch, the sigmoid-derivative factor missing, off by a constant factor.

Used by :mod:`bench.check.steps` when an array disagrees with the reference; it runs
the reference (and the common mistake's variants of it) on the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import implementations
from implementations.core import Params
from implementations.kernels import vectorized

# A mistake's explanation must fit to this relative error; the alternatives differ by O(1).
DIAGNOSIS_RTOL = 1e-6


def oracle() -> implementations.Implementation:
    """Return the float64 reference kernel (the oracle)."""
    return implementations.get(implementations.REFERENCE)


def rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    """Return max|got - ref| / max|ref| in float64 (inf for another shape or a non-finite value)."""
    if got.shape != ref.shape:
        return float("inf")
    ref = ref.astype(np.float64)
    diff = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    if not np.isfinite(diff):
        return float("inf")
    return diff / scale if scale > 0 else diff


def close(got: np.ndarray, ref: np.ndarray, tol: float) -> bool:
    """Return True when ``got`` matches ``ref`` to ``tol``, relative to ref's largest entry."""
    return rel_error(got, ref) <= tol


@dataclass
class Case:
    """The inputs of one gradient comparison in float64, for the diagnosis."""

    params: Params
    X: np.ndarray
    Y: np.ndarray
    tol: float

    @property
    def n(self) -> int:
        """Return the batch size."""
        return len(self.X)


def diagnose(got: np.ndarray, ref: np.ndarray, key: tuple[str, int], case: Case) -> str | None:
    """Return the known mistake one wrong gradient array matches, as a phrase, or None when it fits none."""
    kind, l = key
    n, tol = case.n, case.tol
    if got.shape != ref.shape:
        return shape_diagnosis(got, ref, kind, n)
    if got.ndim == 2 and got.shape[0] == got.shape[1] and not close(got, ref, tol) and close(got.T, ref, tol):
        return "transposed: it equals the transpose of the right array"
    if close(got, -ref, tol):
        return "wrong sign: it is minus the right array (compare a - y with y - a)"
    if n > 1 and close(got, ref / n, tol):
        return (
            f"averaged instead of summed: it is the right array divided by the batch size ({n}); "
            "return sums over the batch (the SGD step divides by the batch size)"
        )
    variants = (
        ("the output layer's delta", False, True),
        ("the hidden layers' deltas", True, False),
        ("every layer's delta", False, False),
    )
    for where, output_prime, hidden_prime in variants:
        wrong = getattr(vectorized.backprop(case.params, case.X, case.Y, output_prime, hidden_prime), kind)[l]
        if not close(wrong, ref, tol) and close(got, wrong, tol):
            return f"missing the sigmoid-derivative factor sigma'(z) = a (1 - a) in {where}"
    if kind == "biases" and n > 1:
        reference = oracle()
        for which, rows in (("first", slice(0, 1)), ("last", slice(n - 1, n))):
            one = reference.gradients(case.params, case.X[rows], case.Y[rows]).biases[l]
            if close(got, one, tol):
                return f"biases not summed over the batch: it holds only the {which} example's gradient"
    scale = float(np.sum(ref.astype(np.float64) ** 2))
    factor = float(np.sum(got.astype(np.float64) * ref)) / scale if scale > 0 else 0.0
    if factor != 0 and close(got, factor * ref, tol):
        note = f" = the batch size {n}" if abs(factor - n) < 1e-6 * n else ""
        if abs(factor - 2) < 1e-6:
            note = " (the quadratic cost is 1/2 ||a - y||^2, so dC/da = a - y)"
        return f"off by a constant factor {factor:.4g}{note}"
    return None


def shape_diagnosis(got: np.ndarray, ref: np.ndarray, kind: str, n: int) -> str:
    """Return what a gradient array of the wrong shape looks like: transposed, per example, or the shapes."""
    if got.ndim == 2 and got.shape == ref.shape[::-1]:
        return f"transposed: shape {got.shape}, expected {ref.shape}"
    if kind == "biases" and got.ndim == 2 and n > 1 and sorted(got.shape) == sorted((n, ref.shape[0])):
        axis = 0 if got.shape[0] == n else 1
        per = "row" if axis == 0 else "column"
        return (
            f"biases not summed over the batch: shape {got.shape}, one {per} per example; "
            f"expected their sum over the batch, shape {ref.shape}"
        )
    return f"shape {got.shape}, expected {ref.shape}"
