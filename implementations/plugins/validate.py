"""Checks on what a user's kernel returns, so that a wrong shape or dtype is one clear sentence.

Kernels from outside the package (:mod:`implementations.plugins.loader`) get their
``gradients``, ``train_epoch`` and ``predict`` wrapped by these checks; built-in
kernels do not, since their contract tests cover them and a wrapper would sit
inside their timings. The checks name the array, the shape or dtype given and the
one expected, and where the user's function is defined.

It is not a diagnosis: :mod:`bench.check` says what a wrong value looks like.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

import numpy as np

from implementations.core import Params

# The first calls are also checked for NaN and infinities: that is where the parity
# probe sees them. Later calls (timed epochs) skip the O(size) scan, which costs about
# 8 us per 784 x 30 array, 3% of a vectorized batch; non-finite parameters in training
# are still caught after every epoch by the harness, as ``diverged``.
FINITE_CHECKED_CALLS = 32


class KernelOutputError(ValueError):
    """A kernel returned something of the wrong type, shape or dtype, or NaN from finite inputs.

    ``array`` names the offending array in the user's terms (``weights[1]``,
    ``nabla_b[0]``), ``key`` is ("weights" or "biases", layer index), ``value`` is
    what was returned and ``expected_shape`` the shape it should have had, so that
    ``backprop-bench check`` can say what the mistake looks like. ``where`` is the
    user's function as "path:line, in name".
    """

    def __init__(
        self,
        message: str,
        *,
        array: str | None = None,
        key: tuple[str, int] | None = None,
        value: object = None,
        expected_shape: tuple[int, ...] | None = None,
        where: str = "",
    ):
        super().__init__(message)
        self.array, self.key, self.value = array, key, value
        self.expected_shape, self.where = expected_shape, where


def display_path(path: str) -> str:
    """Return ``path`` relative to the current folder when it lies below it, else unchanged."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


def location(func: Callable) -> str:
    """Return where ``func`` is defined, as "path:line, in name" (or its repr for builtins)."""
    func = getattr(func, "__func__", func)  # a bound method
    code = getattr(func, "__code__", None)
    if code is None:
        return repr(func)
    return f"{display_path(code.co_filename)}:{code.co_firstlineno}, in {func.__qualname__}"


def backprop_order(n_layers: int) -> list[tuple[str, int]]:
    """Return every (kind, layer) in the order backprop computes them: the output layer's biases first."""
    return [(kind, l) for l in range(n_layers - 1, -1, -1) for kind in ("biases", "weights")]


def check_array(
    value: object,
    expected_shape: tuple[int, ...],
    dtype: np.dtype,
    what: str,
    label: str,
    key: tuple[str, int],
    where: str,
    also_accept: Sequence[tuple[int, ...]] = (),
) -> np.ndarray:
    """Return ``value`` when it is an ndarray of ``expected_shape`` (or one of ``also_accept``) and ``dtype``.

    Raise KernelOutputError naming ``label`` otherwise; ``what`` is the function that returned it.
    """
    info = {"array": label, "key": key, "value": value, "expected_shape": expected_shape, "where": where}
    if not isinstance(value, np.ndarray):
        raise KernelOutputError(
            f"{what} returned {label} as {type(value).__name__}; expected a numpy array of shape {expected_shape}",
            **info,
        )
    if value.shape != expected_shape and value.shape not in also_accept:
        raise KernelOutputError(f"{what} returned {label} with shape {value.shape}; expected {expected_shape}", **info)
    if value.dtype != dtype:
        raise KernelOutputError(
            f"{what} returned {label} as {value.dtype}; expected {dtype} (the dtype of the parameters)", **info
        )
    return value


def check_finite(arrays: dict[tuple[str, int], np.ndarray], labels: dict, what: str, where: str, inputs) -> None:
    """Raise KernelOutputError for the first array holding NaN or infinity, if every input is finite.

    Non-finite inputs (parameters that already diverged) may rightly give NaN: the
    harness reports those as ``diverged``, so they are let through.
    """
    for key, array in arrays.items():
        if not np.isfinite(array).all():
            if not all(np.isfinite(x).all() for x in inputs):
                return
            bad = "NaN" if np.isnan(array).any() else "infinity"
            raise KernelOutputError(
                f"{what} returned {bad} in {labels[key]} from finite parameters and inputs",
                array=labels[key],
                key=key,
                value=array,
                expected_shape=array.shape,
                where=where,
            )


def check_params(result: object, params: Params, what: str, where: str) -> Params:
    """Return ``result`` when it is a Params shaped like ``params``, in its dtype; else raise KernelOutputError."""
    if not isinstance(result, Params):
        raise KernelOutputError(
            f"{what} returned {type(result).__name__}; expected implementations.core.Params(weights, biases)",
            where=where,
        )
    n_layers = len(params.weights)
    for kind in ("weights", "biases"):
        got = getattr(result, kind)
        if not isinstance(got, (list, tuple)) or len(got) != n_layers:
            count = len(got) if isinstance(got, (list, tuple)) else type(got).__name__
            raise KernelOutputError(
                f"{what} returned {count} {kind} arrays; expected a list of {n_layers}, one per layer", where=where
            )
    for kind, l in backprop_order(n_layers):
        expected = getattr(params, kind)[l].shape
        check_array(getattr(result, kind)[l], expected, params.dtype, what, f"{kind}[{l}]", (kind, l), where)
    return result


def checked_gradients(gradients: Callable, where: str) -> Callable:
    """Return ``gradients`` wrapped so that a wrong result raises KernelOutputError naming the array.

    Every batch of an epoch passes the same Params: after FINITE_CHECKED_CALLS fully
    checked calls on one network shape, a result is only compared with the expected
    shapes (a few microseconds), and fully checked again if they differ.
    """
    last: Params | None = None
    shapes: tuple | None = None
    calls = 0

    @functools.wraps(gradients)
    def checked(params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
        nonlocal last, shapes, calls
        result = gradients(params, X, Y)
        if params is not last:
            key = ([w.shape for w in params.weights], [b.shape for b in params.biases], params.dtype)
            if key != shapes:
                shapes, calls = key, 0
            last = params
        calls += 1
        if calls > FINITE_CHECKED_CALLS:
            try:
                if ([w.shape for w in result.weights], [b.shape for b in result.biases]) == shapes[:2]:
                    return result
            except (AttributeError, TypeError):
                pass  # the full check below says what is wrong
        check_params(result, params, "gradients", where)
        if calls <= FINITE_CHECKED_CALLS:
            arrays = {(kind, l): getattr(result, kind)[l] for kind, l in backprop_order(len(params.weights))}
            labels = {key: f"{key[0]}[{key[1]}]" for key in arrays}
            check_finite(arrays, labels, "gradients", where, [*params.arrays(), X, Y])
        return result

    return checked


def checked_train_epoch(train_epoch: Callable, where: str) -> Callable:
    """Return a fused ``train_epoch`` wrapped so that a wrong result raises KernelOutputError naming the array."""

    @functools.wraps(train_epoch)
    def checked(params: Params, X, Y, batch_size: int, eta: float, order=None) -> Params:
        # Not scanned for NaN: parameters that stop being finite are the harness's ``diverged``.
        return check_params(train_epoch(params, X, Y, batch_size, eta, order), params, "train_epoch", where)

    return checked


def checked_predict(predict: Callable, where: str) -> Callable:
    """Return ``predict`` wrapped so that labels of the wrong shape or kind raise KernelOutputError."""

    @functools.wraps(predict)
    def checked(params: Params, X: np.ndarray) -> np.ndarray:
        labels = predict(params, X)
        expected = (len(X),)
        info = {"array": "labels", "value": labels, "expected_shape": expected, "where": where}
        if not isinstance(labels, np.ndarray) or labels.shape != expected:
            shape = getattr(labels, "shape", type(labels).__name__)
            raise KernelOutputError(f"predict returned labels with shape {shape}; expected {expected}", **info)
        if labels.dtype.kind not in "iu":
            raise KernelOutputError(f"predict returned labels as {labels.dtype}; expected integers", **info)
        return labels

    return checked
