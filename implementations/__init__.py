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

Adding a built-in kernel is one new module and one line in ``_MODULES`` (or a call
to :func:`register` from user code). Kernels from outside come in through one door,
:func:`resolve` (see :mod:`implementations.loader`): a file path, an importable
module, ``nielsen:network.py[:Network]`` (a Nielsen-style class, also recognised
without the prefix; see :mod:`implementations.nielsen`), or an installed package's
entry point in the group ``backprop_bench.implementations``, listed by
:func:`available` like the built-in ones. Their results are checked on every call
(:mod:`implementations.validate`), so a wrong shape or dtype is one clear sentence.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from implementations import loader
from implementations.core import (
    DTYPES,
    Params,
    accuracy,
    batch_order,
    init_params,
    max_rel_error,
    train_epoch_with,
)
from implementations.loader import DuplicateImplementation, KernelLoadError, UnknownImplementation, user_frame
from implementations.validate import KernelOutputError, display_path

# name -> module path. Optional frameworks are imported only when asked for, and a
# kernel whose import fails is simply not available (see unavailable()).
_MODULES: dict[str, str] = {
    "jax": "implementations.jax_kernel",
    "loop": "implementations.loop",
    "numba": "implementations.numba_jit",
    "numba-fastmath": "implementations.numba_fastmath",
    "numba-parallel": "implementations.numba_parallel",
    "numba-sparse": "implementations.numba_sparse",
    "torch": "implementations.torch_kernel",
    "torch-compile": "implementations.torch_compile",
    "vectorized": "implementations.vectorized",
}
# The kernels shipped here, whatever register() and resolve() add later.
_BUILTIN = frozenset(_MODULES)
# The optional packages each built-in kernel needs beyond the suite's own dependencies, so that
# a parent process can tell what a worker will be able to import without importing it (PyTorch
# alone takes seconds to import, and to tear down).
_REQUIRES: dict[str, tuple[str, ...]] = {"jax": ("jax",), "torch": ("torch",), "torch-compile": ("torch",)}
# Programs a built-in kernel needs on the PATH: {name: the environment variable naming it, its default}.
_REQUIRES_PROGRAM: dict[str, tuple[str, str]] = {"torch-compile": ("CXX", "g++")}  # inductor compiles C++

REFERENCE = "vectorized"

# Largest accepted error against the float64 reference in float64, measured as
# max|g - g_ref| / max|g_ref| per array, on the gradients and on the probe epoch's update.
# Every float64 kernel computes the same sums, at most reordered by BLAS blocking, so
# errors sit near 1e-15; 1e-10 leaves ample room while still catching any real mistake
# (a wrong term is off by O(1)). float32 has no fixed tolerance: the harness derives it
# in every run from the float32 reference's own error (bench.run.harness.FLOAT32_FACTOR).
DEFAULT_RTOL: dict[str, float] = {"float64": 1e-10}


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
    # Optional one-off work on the training arrays, prepare(X, Y), timed apart from epochs.
    prepare: Callable[[object, object], None] | None = None
    # (factor <= 10, reason) by which the kernel's float32 tolerance is loosened, or None.
    float32_slack: tuple[float, str] | None = None
    # delegate(batch_size) -> the name of the kernel whose code runs at that batch size, or None.
    delegate: Callable[[int], str | None] = lambda batch_size: None
    dtypes: tuple[str, ...] = DTYPES
    # True for a kernel that skips zero inputs (its FLOPs are fewer than the dense count).
    sparse_input: bool = False
    # Where it came from: its module, a file, "nielsen:FILE:CLASS", an entry point.
    source: str = ""
    # details() -> a sentence on how the kernel runs, for ``check`` (the Nielsen adapter: the form it found).
    details: Callable[[], str] = lambda: ""
    # What the kernel's own code calls dC/dw and dC/db, for messages (a Nielsen class: nabla_w, nabla_b).
    array_names: tuple[str, str] = ("weights", "biases")


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


def _wrap(module: ModuleType, source: str | None = None) -> Implementation:
    """Return the Implementation for a kernel module (or module-like object), filling the gaps with shared code."""
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
        prepare=getattr(module, "prepare", None),
        float32_slack=getattr(module, "float32_slack", None),
        delegate=getattr(module, "delegate", lambda batch_size: None),
        dtypes=tuple(getattr(module, "dtypes", DTYPES)),
        sparse_input=bool(getattr(module, "sparse_input", False)),
        source=source if source is not None else getattr(module, "__name__", ""),
        details=getattr(module, "details", lambda: ""),
        array_names=tuple(getattr(module, "array_names", ("weights", "biases"))),
    )


_loaded: dict[str, Implementation] = {}
_failed: dict[str, str] = {}
# source -> name of the kernels resolve() loaded from a file or module, so a second
# resolve of the same spec (the harness asks more than once) returns the same kernel.
_external: dict[str, str] = {}
# (sys.path it was read under, {name: entry point}, {name: why it is unusable}).
_entry_point_cache: tuple[tuple[str, ...], dict, dict[str, str]] | None = None


def _entry_points() -> tuple[dict[str, importlib.metadata.EntryPoint], dict[str, str]]:
    """Return ({name: entry point}, {name: clash}) of installed kernels, read again when sys.path changes.

    An entry point that takes a built-in name, or two that take the same name, are
    not loaded: the clash, naming both sources, is reported by :func:`unavailable`.
    """
    global _entry_point_cache
    if _entry_point_cache is None or _entry_point_cache[0] != tuple(sys.path):
        found: dict[str, importlib.metadata.EntryPoint] = {}
        clashes: dict[str, str] = {}
        for ep in loader.entry_points():
            this = loader.describe_entry_point(ep)
            if ep.name in _BUILTIN:
                clashes[f"{ep.name} ({ep.value})"] = _duplicate(ep.name, this, _source_of(ep.name))
            elif ep.name in found or ep.name in clashes:
                other = loader.describe_entry_point(found.pop(ep.name)) if ep.name in found else "another"
                clashes[ep.name] = _duplicate(ep.name, this, other)
            else:
                found[ep.name] = ep
        _entry_point_cache = (tuple(sys.path), found, clashes)
    return _entry_point_cache[1], _entry_point_cache[2]


def _shown(source: str) -> str:
    """Return a source for a message: a file relative to the current folder when below it."""
    if source.startswith(loader.NIELSEN_PREFIX):
        return loader.NIELSEN_PREFIX + display_path(source[len(loader.NIELSEN_PREFIX) :])
    return display_path(source) if os.path.isabs(source) else source


def _source_of(name: str) -> str:
    """Return where the kernel registered as ``name`` comes from, for a message."""
    if name in _BUILTIN and name in _MODULES:
        return f"{_MODULES[name]} (built in)"
    if name in _loaded and _loaded[name].source:
        return _shown(_loaded[name].source)
    if name in _MODULES:
        return _MODULES[name]
    entry_point = _entry_points()[0].get(name)
    return loader.describe_entry_point(entry_point) if entry_point is not None else "?"


def _duplicate(name: str, first: str, second: str) -> str:
    """Return the message for two kernels called ``name``."""
    return f"two kernels are named {name!r}: {first} and {second}; rename one (its `name`)"


def _load(name: str) -> Implementation | None:
    """Return the implementation, importing it on first use; None if its dependencies fail."""
    if name not in _loaded and name not in _failed:
        entry_point = _entry_points()[0].get(name)
        try:
            if name in _MODULES:
                _loaded[name] = _wrap(importlib.import_module(_MODULES[name]))
            elif entry_point is not None:
                _loaded[name] = _wrap(loader.load_entry_point(entry_point), loader.describe_entry_point(entry_point))
        except ImportError as exc:
            _failed[name] = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # someone else's broken package must not stop a run
            if name in _MODULES:
                raise
            _failed[name] = str(exc) if isinstance(exc, UnknownImplementation) else f"{type(exc).__name__}: {exc}"
    return _loaded.get(name)


def register(module: ModuleType) -> None:
    """Add a user kernel module (with the public names above) to the registry."""
    _loaded[module.name] = _wrap(module)
    _MODULES[module.name] = module.__name__


def known() -> list[str]:
    """Return every registered name, available or not, sorted: built in, registered, installed, resolved."""
    return sorted(set(_MODULES) | set(_entry_points()[0]) | set(_loaded))


def builtin() -> list[str]:
    """Return the sorted names of the kernels shipped in this package whose dependencies import."""
    return [name for name in sorted(_BUILTIN) if _load(name) is not None]


def missing(name: str) -> str | None:
    """Return why built-in kernel ``name`` cannot run here ("torch is not installed"), or None; imports nothing."""
    for package in _REQUIRES.get(name, ()):
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed"
    if name in _REQUIRES_PROGRAM:
        variable, default = _REQUIRES_PROGRAM[name]
        program = os.environ.get(variable, default)
        if shutil.which(program) is None:
            return f"the C++ compiler {program} (${variable}) is not found"
    return None


def listed() -> list[str]:
    """Return the kernels a run without --impl runs, without importing any: built-in ones whose
    packages are installed, installed entry points, and kernels registered or resolved in this process."""
    names = {name for name in _BUILTIN if missing(name) is None} | set(_entry_points()[0])
    names |= {name for name in _loaded if name not in _failed}
    return sorted(names)


def not_listed() -> dict[str, str]:
    """Return {name: reason} for the built-in kernels :func:`listed` leaves out, and clashing entry points."""
    reasons = {name: reason for name in _BUILTIN if (reason := missing(name)) is not None}
    return dict(sorted({**reasons, **_entry_points()[1]}.items()))


def available() -> list[str]:
    """Return the sorted names of registered kernels whose dependencies import."""
    return [name for name in known() if _load(name) is not None]


def unavailable() -> dict[str, str]:
    """Return {name: reason} for registered kernels whose dependencies fail to import, and clashing entry points."""
    available()
    return dict(sorted({**_failed, **_entry_points()[1]}.items()))


def _unknown(spec: str) -> UnknownImplementation:
    """Return the error for a spec that names nothing."""
    return UnknownImplementation(
        f"unknown implementation {spec!r}; known: {', '.join(known())} "
        "(or give a kernel file, an importable module, or nielsen:FILE.py)"
    )


def resolve(spec: str | os.PathLike) -> str:
    """Return the name of the kernel ``spec`` names, loading and registering it first if it comes from outside.

    ``spec`` is a registered or installed name (``numba``), a file
    (``path/to/my_kernel.py``: named by its ``name``, else the file's stem), an
    importable module (``mypackage.kernels.fast``), or ``nielsen:FILE.py[:CLASS]``
    (a file whose only class with ``backprop`` is found without the prefix too).
    Resolving the same spec again returns the same kernel without loading it again.
    Raises UnknownImplementation, with one line, for anything unusable: a missing
    file, a syntax error (with its line), missing names, a name another kernel has.
    """
    spec = os.fspath(spec)
    if spec in _MODULES or spec in _loaded or spec in _entry_points()[0]:
        get(spec)
        return spec
    if spec in _entry_points()[1]:
        raise DuplicateImplementation(_entry_points()[1][spec])
    located = loader.locate(spec)
    if located is None or (located.kind == "module" and not loader.module_exists(located.target)):
        raise _unknown(spec)
    name = _external.get(located.source)
    if name is not None and name in _loaded and _loaded[name].source == located.source:
        return name
    builtin_name = next((n for n, path in _MODULES.items() if path == located.target), None)
    if located.kind == "module" and builtin_name is not None:
        get(builtin_name)
        return builtin_name
    kernel = loader.load(located)
    if kernel.name in known():
        raise DuplicateImplementation(_duplicate(kernel.name, _shown(located.source), _source_of(kernel.name)))
    _loaded[kernel.name] = _wrap(kernel, located.source)
    _external[located.source] = kernel.name
    return kernel.name


def get(name: str) -> Implementation:
    """Return the implementation registered as ``name``; a file, module or nielsen: spec is resolved first."""
    if name in _entry_points()[1]:
        raise DuplicateImplementation(_entry_points()[1][name])
    if name not in _MODULES and name not in _loaded and name not in _entry_points()[0]:
        name = resolve(name)
    impl = _load(name)
    if impl is None:
        raise UnknownImplementation(f"implementation {name!r} is not available here ({_failed[name]})")
    return impl


__all__ = [
    "DTYPES",
    "REFERENCE",
    "DuplicateImplementation",
    "Implementation",
    "KernelLoadError",
    "KernelOutputError",
    "Params",
    "UnknownImplementation",
    "accuracy",
    "available",
    "batch_order",
    "builtin",
    "get",
    "init_params",
    "known",
    "max_rel_error",
    "register",
    "resolve",
    "unavailable",
    "user_frame",
]
