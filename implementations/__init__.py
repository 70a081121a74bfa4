"""The backprop kernels behind one interface, and the explicit registry that lists them.

Every kernel module exports the same public names: ``name``, ``description``,
``gradients(params, X, Y)`` and ``predict(params, X)``; optionally a fused
``train_epoch(params, X, Y, batch_size, eta, order=None)`` and a
``warm_up(sizes, dtype)`` that absorbs JIT compilation (never timed as training);
a kernel that compiles per shape may also take the keywords ``n_train``,
``batch_size`` and ``shuffle`` describing the workload about to be timed.
:func:`get` wraps a module into an :class:`Implementation` that always has all of
them, filling the gaps with the shared code in :mod:`implementations.core`.

Adding a kernel is one new module and one line in ``_MODULES`` (or a call to
:func:`register` from user code).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from implementations.core import (
    DTYPES,
    Params,
    accuracy,
    batch_order,
    init_params,
    max_rel_error,
    train_epoch_with,
)

# name -> module path. Optional frameworks are imported only when asked for, and a
# kernel whose import fails is simply not available (see unavailable()).
_MODULES: dict[str, str] = {
    "jax": "implementations.jax_kernel",
    "loop": "implementations.loop",
    "numba": "implementations.numba_jit",
    "numba-fastmath": "implementations.numba_fastmath",
    "numba-parallel": "implementations.numba_parallel",
    "torch": "implementations.torch_kernel",
    "vectorized": "implementations.vectorized",
}

REFERENCE = "vectorized"

# Largest accepted gradient error against the float64 reference, per dtype, measured
# as max|g - g_ref| / max|g_ref|. In float64 every kernel computes the same sums, at
# most reordered by BLAS blocking, so errors sit near 1e-15; 1e-10 leaves ample room
# while still catching any real mistake (a wrong term is off by O(1)).
#
# float32 is judged against the same float64 reference, on the gradient and on the
# probe epoch (10 SGD steps), so the bound covers float32 rounding, not a bug. Measured
# on the MNIST probe, every kernel, five networks from [784,10] to [784,30,30,30,10]
# (seeds 1-8) and up to [784,400,10] (seeds 1-5): gradient error at most 2e-6 and
# probe-epoch error at most 1e-5, typically 2e-7.
# Wide saturated layers amplify rounding over the 10 steps (eta = 3, N(0, 1) weights):
# probe epoch up to 3e-4 at 800 units and 7e-4 at 1600, gradients still under 6e-6.
# 1e-3 holds all of these; a real mistake still fails it, e.g. one example of the 100
# dropped from the sum is off by 3e-2 on [784,30,10] (a wrong term is off by O(1)).
DEFAULT_RTOL: dict[str, float] = {"float64": 1e-10, "float32": 1e-3}


@dataclass(frozen=True)
class Implementation:
    """A kernel with the full interface the harness uses."""

    name: str
    description: str
    gradients: Callable[[Params, object, object], Params]
    predict: Callable
    train_epoch: Callable
    warm_up: Callable[..., None]
    fused_epoch: bool
    rtol: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RTOL))


def _no_warm_up(sizes: list[int], dtype: str, **workload) -> None:
    """Return at once: a kernel with nothing to compile."""


def _warm_up_of(module: ModuleType) -> Callable[..., None]:
    """Return the module's warm_up, accepting the optional workload shape whether or not it uses it.

    The harness calls ``warm_up(sizes, dtype, n_train=..., batch_size=..., shuffle=...)``;
    a kernel that compiles per shape (JAX) declares those keywords, one that compiles per
    dtype only (Numba) may take just ``(sizes, dtype)``.
    """
    warm_up = getattr(module, "warm_up", None)
    if warm_up is None:
        return _no_warm_up
    if "n_train" in inspect.signature(warm_up).parameters:
        return warm_up
    return lambda sizes, dtype, **workload: warm_up(sizes, dtype)


def _wrap(module: ModuleType) -> Implementation:
    """Return the Implementation for a kernel module, filling optional names with shared code."""
    fused = hasattr(module, "train_epoch")
    train_epoch = module.train_epoch if fused else functools.partial(train_epoch_with, module.gradients)
    return Implementation(
        name=module.name,
        description=getattr(module, "description", ""),
        gradients=module.gradients,
        predict=module.predict,
        train_epoch=train_epoch,
        warm_up=_warm_up_of(module),
        fused_epoch=fused,
        rtol={**DEFAULT_RTOL, **getattr(module, "rtol", {})},
    )


_loaded: dict[str, Implementation] = {}
_failed: dict[str, str] = {}


def _load(name: str) -> Implementation | None:
    """Return the implementation, importing it on first use; None if its dependencies fail."""
    if name not in _loaded and name not in _failed:
        try:
            _loaded[name] = _wrap(importlib.import_module(_MODULES[name]))
        except ImportError as exc:
            _failed[name] = f"{type(exc).__name__}: {exc}"
    return _loaded.get(name)


def register(module: ModuleType) -> None:
    """Add a user kernel module (with the public names above) to the registry."""
    _loaded[module.name] = _wrap(module)
    _MODULES[module.name] = module.__name__


def known() -> list[str]:
    """Return every registered name, available or not, sorted."""
    return sorted(_MODULES)


def available() -> list[str]:
    """Return the sorted names of registered kernels whose dependencies import."""
    return [name for name in known() if _load(name) is not None]


def unavailable() -> dict[str, str]:
    """Return {name: reason} for registered kernels whose dependencies fail to import."""
    available()
    return dict(sorted(_failed.items()))


class UnknownImplementation(KeyError):
    """Raised by :func:`get` for a name that is not registered or cannot be imported."""

    def __str__(self) -> str:
        return str(self.args[0])


def get(name: str) -> Implementation:
    """Return the implementation registered as ``name``."""
    if name not in _MODULES:
        raise UnknownImplementation(f"unknown implementation {name!r}; known: {', '.join(known())}")
    impl = _load(name)
    if impl is None:
        raise UnknownImplementation(f"implementation {name!r} is not available here ({_failed[name]})")
    return impl


__all__ = [
    "DTYPES",
    "REFERENCE",
    "Implementation",
    "Params",
    "UnknownImplementation",
    "accuracy",
    "available",
    "batch_order",
    "get",
    "init_params",
    "known",
    "max_rel_error",
    "register",
    "unavailable",
]
