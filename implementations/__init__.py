"""The backprop kernels behind one interface, and the explicit registry that lists them.

The kernel interface. A kernel is a module (or any object) with these names:

- ``name``: the label in tables and on the command line (a file's stem if absent);
- ``description``: one line;
- ``gradients(params, X, Y) -> Params``: dC/dw and dC/db summed over the n examples,
  X (n, in) and Y one-hot (n, out), ``params`` a :class:`Params` (weights (out, in),
  biases (out,)); every returned array in ``params``' dtype;
- ``predict(params, X) -> labels``, int64 of shape (n,) (``implementations.core.predict``
  is the shared one);

and optionally:

- ``train_epoch(params, X, Y, batch_size, eta, order=None) -> Params``: a fused epoch
  of mini-batch SGD (else the shared loop drives ``gradients``);
- ``warm_up(sizes, dtype)``: absorbs JIT compilation, never timed as training; a
  kernel that compiles per shape may also take the keywords ``n_train``,
  ``batch_size`` and ``shuffle`` describing the workload about to be timed;
- ``prepare(X, Y)``: one-off work on the read-only training arrays (a copy in another
  layout, a transfer), called once after ``warm_up``, timed on its own;
- ``rtol``: {dtype: tolerance} where a kernel needs a tighter float64 bound;
  ``float32_slack``: (factor, reason) loosening the float32 bound, which the harness
  derives in every run; ``dtypes``: the dtypes it supports (default both).

:func:`get` wraps a kernel into an :class:`Implementation` that always has all of
them, filling the gaps with the shared code in :mod:`implementations.core`.

The package, by folder:

- :mod:`implementations.core`: what every kernel shares (parameters, initialisation,
  batch order, the SGD update, accuracy), written once;
- :mod:`implementations.kernels`: the built-in kernels, one module each;
- :mod:`implementations.plugins`: the door for kernels from outside (loader, output
  checks, the Nielsen-class adapter);
- :mod:`implementations.registry`: the :class:`Registry`, one row per kernel.

Adding a built-in kernel is one new module in ``kernels/`` and one line in
:data:`~implementations.registry.BUILTIN` (or a call to :func:`register` from user
code). Kernels from outside come in through one door, :func:`resolve` (see
:mod:`implementations.plugins.loader`): a file path, an importable module,
``nielsen:network.py[:Network]`` (a Nielsen-style class, also recognised without the
prefix; see :mod:`implementations.plugins.nielsen`), or an installed package's entry
point in the group ``backprop_bench.implementations``, listed by
``registry.names()`` like the built-in ones. Their results are checked on every call
(:mod:`implementations.plugins.validate`), so a wrong shape or dtype is one clear sentence.

:data:`registry` is the registry every command asks; its queries (``names``,
``available``, ``why_not``, ``unavailable``) are the registry's methods. A test that
registers or resolves kernels installs a fresh :class:`Registry` in its place.
"""

from __future__ import annotations

import os
from types import ModuleType

from implementations.core import DTYPES, Params, accuracy, batch_order, init_params, max_rel_error
from implementations.plugins.loader import DuplicateImplementation, KernelLoadError, UnknownImplementation, user_frame
from implementations.plugins.validate import KernelOutputError
from implementations.registry import BUILTIN, DEFAULT_RTOL, REFERENCE, Implementation, Kernel, Registry

registry = Registry(BUILTIN)


# The functions below look the registry up when called, so a test's fresh one is the one asked.


def get(name: str) -> Implementation:
    """Return the implementation registered as ``name``; a file, module or nielsen: spec is resolved first."""
    return registry.get(name)


def resolve(spec: str | os.PathLike) -> str:
    """Return the name of the kernel ``spec`` names, loading and registering it first if it comes from outside."""
    return registry.resolve(spec)


def register(module: ModuleType) -> str:
    """Return the name of a user kernel module (with the public names above), added to the registry."""
    return registry.register(module)


__all__ = [
    "BUILTIN",
    "DEFAULT_RTOL",
    "DTYPES",
    "REFERENCE",
    "DuplicateImplementation",
    "Implementation",
    "Kernel",
    "KernelLoadError",
    "KernelOutputError",
    "Params",
    "Registry",
    "UnknownImplementation",
    "accuracy",
    "batch_order",
    "get",
    "init_params",
    "max_rel_error",
    "register",
    "registry",
    "resolve",
    "user_frame",
]
