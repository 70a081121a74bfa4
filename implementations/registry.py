"""The registry: one row per kernel, the built-in ones in a literal list, and the queries every command uses.

A :class:`Kernel` row says where a kernel's code is and what it needs; a
:class:`Registry` holds the rows (the built-in ones given to it, installed entry
points read from the environment, and kernels registered or resolved at run time),
imports each kernel on first use and wraps it into an :class:`Implementation`. It
never scans a folder: a built-in kernel is one line in :data:`BUILTIN`, an outside
one comes in through :mod:`implementations.plugins.loader`.

The queries:

- :meth:`Registry.names`: what a run without --impl runs, importing nothing;
- :meth:`Registry.available`: the kernels whose code imports here (imports them);
- :meth:`Registry.why_not` and :meth:`Registry.unavailable`: why a kernel cannot run
  here, importing nothing;
- :meth:`Registry.get`, :meth:`Registry.resolve` and :meth:`Registry.register`.

It is not the kernel interface, which :mod:`implementations` documents.
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType

from implementations.core import DTYPES, Params, train_epoch_with
from implementations.plugins import loader
from implementations.plugins.loader import DuplicateImplementation, UnknownImplementation
from implementations.plugins.validate import display_path

REFERENCE = "vectorized"

# Largest accepted error against the float64 reference in float64, measured as
# max|g - g_ref| / max|g_ref| per array, on the gradients and on the probe epoch's update.
# Every float64 kernel computes the same sums, at most reordered by BLAS blocking, so
# errors sit near 1e-15; 1e-10 leaves ample room while still catching any real mistake
# (a wrong term is off by O(1)). float32 has no fixed tolerance: the harness derives it
# in every run from the float32 reference's own error (bench.run.probe.FLOAT32_FACTOR).
DEFAULT_RTOL: dict[str, float] = {"float64": 1e-10}


@dataclass(frozen=True)
class Kernel:
    """One row of the registry: a kernel's name, where its code is, and what it needs beyond the suite's own.

    ``packages`` and ``programs`` let a parent process tell what a worker will be able to
    run without importing it (PyTorch alone takes seconds to import, and to tear down).
    """

    name: str
    # Dotted module path of a built-in or registered kernel; for a resolved one, its file or module.
    module: str
    # Optional packages it imports, beyond the suite's own dependencies.
    packages: tuple[str, ...] = ()
    # Programs it needs on the PATH: {the environment variable naming one: its default}.
    programs: dict[str, str] = field(default_factory=dict)
    # False for a kernel from outside: registered, installed (an entry point) or resolved from a spec.
    builtin: bool = True
    # Where an outside kernel comes from, as Implementation.source gives it (a built-in's is its module).
    source: str = ""
    # The installed entry point it loads from, if it is one.
    entry_point: importlib.metadata.EntryPoint | None = None


# The kernels shipped here, one line each. Optional frameworks are imported only when a kernel
# is asked for, and one whose import fails is simply not available (see Registry.why_not).
BUILTIN: tuple[Kernel, ...] = (
    Kernel("jax", "implementations.kernels.jax_kernel", packages=("jax",)),
    Kernel("loop", "implementations.kernels.loop"),
    Kernel("numba", "implementations.kernels.numba_jit"),
    Kernel("numba-fastmath", "implementations.kernels.numba_fastmath"),
    Kernel("numba-parallel", "implementations.kernels.numba_parallel"),
    Kernel("numba-sparse", "implementations.kernels.numba_sparse"),
    Kernel("torch", "implementations.kernels.torch_kernel", packages=("torch",)),
    # inductor compiles the step to C++
    Kernel("torch-compile", "implementations.kernels.torch_compile", packages=("torch",), programs={"CXX": "g++"}),
    Kernel("vectorized", "implementations.kernels.vectorized"),
)


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


def wrap(module: ModuleType, source: str | None = None) -> Implementation:
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


def _shown(source: str) -> str:
    """Return a source for a message: a file relative to the current folder when below it."""
    if source.startswith(loader.NIELSEN_PREFIX):
        return loader.NIELSEN_PREFIX + display_path(source[len(loader.NIELSEN_PREFIX) :])
    return display_path(source) if os.path.isabs(source) else source


def _duplicate(name: str, first: str, second: str) -> str:
    """Return the message for two kernels called ``name``."""
    return f"two kernels are named {name!r}: {first} and {second}; rename one (its `name`)"


class Registry:
    """Every kernel this process knows, one :class:`Kernel` row each, and the kernels imported so far.

    Built from the rows given (the built-in ones), the installed entry points of the group
    ``backprop_bench.implementations`` (read again whenever ``sys.path`` changes), and
    whatever :meth:`register` and :meth:`resolve` add. A test makes a fresh one.
    """

    def __init__(self, rows: Iterable[Kernel] = BUILTIN):
        self._rows: dict[str, Kernel] = {row.name: row for row in rows}
        self._builtin = frozenset(name for name, row in self._rows.items() if row.builtin)
        self._loaded: dict[str, Implementation] = {}
        self._failed: dict[str, str] = {}
        # (sys.path it was read under, {name: entry point row}, {name: why it is unusable}).
        self._entry_point_cache: tuple[tuple[str, ...], dict[str, Kernel], dict[str, str]] | None = None

    # --- the queries -------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        """Return True for a registered name: built in, registered, resolved or installed (usable or not)."""
        return name in self._rows or name in self._entry_points()[0]

    def __iter__(self) -> Iterator[str]:
        """Return every registered name, sorted, whether or not it can run here."""
        return iter(sorted(set(self._rows) | set(self._entry_points()[0])))

    def names(self) -> list[str]:
        """Return the kernels a run without --impl runs, sorted, importing none of them.

        That is every registered name :meth:`why_not` finds nothing against: built-in
        kernels whose packages and programs are here, installed entry points, and kernels
        registered or resolved in this process.
        """
        return [name for name in self if self.why_not(name) is None]

    def available(self, builtin: bool = False) -> list[str]:
        """Return the sorted names of the kernels whose code imports here (importing each); only built-in ones if asked.

        ``builtin=True`` leaves out kernels from outside: what ``check`` times a user's kernel against.
        """
        return [name for name in self if (not builtin or name in self._builtin) and self._load(name) is not None]

    def why_not(self, name: str) -> str | None:
        """Return why kernel ``name`` cannot run here ("torch is not installed"), or None; imports nothing.

        The reasons: a package or program its row names is missing; importing it failed
        already in this process; it is an installed name two kernels claim. None says only
        that nothing is known against it: an unregistered name (a file, say) gets None too.
        """
        row = self._row(name)
        for package in row.packages if row is not None else ():
            if importlib.util.find_spec(package) is None:
                return f"{package} is not installed"
        for variable, default in row.programs.items() if row is not None else ():
            program = os.environ.get(variable, default)
            if shutil.which(program) is None:
                return f"the C++ compiler {program} (${variable}) is not found"
        return self._failed.get(name) or self._entry_points()[1].get(name)

    def unavailable(self) -> dict[str, str]:
        """Return {name: reason} for every registered kernel :meth:`why_not` finds a reason against, and clashes.

        Imports nothing: a kernel that fails to import is here once something tried it
        (:meth:`available` or :meth:`get`). A clash between an entry point and a built-in
        kernel is keyed "name (entry point value)", since the built-in one still runs.
        """
        reasons = {name: reason for name in self if (reason := self.why_not(name)) is not None}
        return dict(sorted({**reasons, **self._entry_points()[1]}.items()))

    # --- getting a kernel --------------------------------------------------------------

    def get(self, name: str) -> Implementation:
        """Return the implementation registered as ``name``; a file, module or nielsen: spec is resolved first."""
        clashes = self._entry_points()[1]
        if name in clashes:
            raise DuplicateImplementation(clashes[name])
        if name not in self:
            name = self.resolve(name)
        impl = self._load(name)
        if impl is None:
            raise UnknownImplementation(f"implementation {name!r} is not available here ({self._failed[name]})")
        return impl

    def resolve(self, spec: str | os.PathLike) -> str:
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
        if spec in self:
            self.get(spec)
            return spec
        clashes = self._entry_points()[1]
        if spec in clashes:
            raise DuplicateImplementation(clashes[spec])
        located = loader.locate(spec)
        if located is None or (located.kind == "module" and not loader.module_exists(located.target)):
            raise UnknownImplementation(
                f"unknown implementation {spec!r}; known: {', '.join(self)} "
                "(or give a kernel file, an importable module, or nielsen:FILE.py)"
            )
        for row in self._rows.values():
            if row.source == located.source and row.name in self._loaded:
                return row.name  # resolved before, from this folder or another
            if located.kind == "module" and row.builtin and row.module == located.target:
                self.get(row.name)
                return row.name
        kernel = loader.load(located)
        if kernel.name in self:
            raise DuplicateImplementation(_duplicate(kernel.name, _shown(located.source), self._source_of(kernel.name)))
        self._rows[kernel.name] = Kernel(kernel.name, located.target, builtin=False, source=located.source)
        self._loaded[kernel.name] = wrap(kernel, located.source)
        return kernel.name

    def register(self, module: ModuleType) -> str:
        """Return the name of a user kernel module (with the interface's public names), added to the registry."""
        self._rows[module.name] = Kernel(module.name, module.__name__, builtin=False, source=module.__name__)
        self._loaded[module.name] = wrap(module)
        return module.name

    # --- inside ------------------------------------------------------------------------

    def _row(self, name: str) -> Kernel | None:
        """Return the row of ``name``, or None when nothing is registered under it."""
        return self._rows.get(name) or self._entry_points()[0].get(name)

    def _entry_points(self) -> tuple[dict[str, Kernel], dict[str, str]]:
        """Return ({name: row} of installed kernels, {name: clash}), read again when sys.path changes.

        An entry point that takes a built-in name, or two that take the same name, are
        not loaded: the clash, naming both sources, is reported by :meth:`unavailable`.
        """
        if self._entry_point_cache is None or self._entry_point_cache[0] != tuple(sys.path):
            found: dict[str, importlib.metadata.EntryPoint] = {}
            clashes: dict[str, str] = {}
            for ep in loader.entry_points():
                this = loader.describe_entry_point(ep)
                if ep.name in self._builtin:
                    clashes[f"{ep.name} ({ep.value})"] = _duplicate(ep.name, this, self._source_of(ep.name))
                elif ep.name in found or ep.name in clashes:
                    other = loader.describe_entry_point(found.pop(ep.name)) if ep.name in found else "another"
                    clashes[ep.name] = _duplicate(ep.name, this, other)
                else:
                    found[ep.name] = ep
            rows = {
                name: Kernel(name, ep.value, builtin=False, source=loader.describe_entry_point(ep), entry_point=ep)
                for name, ep in found.items()
            }
            self._entry_point_cache = (tuple(sys.path), rows, clashes)
        return self._entry_point_cache[1], self._entry_point_cache[2]

    def _source_of(self, name: str) -> str:
        """Return where the kernel registered as ``name`` comes from, for a message."""
        row = self._rows.get(name)
        if row is not None and row.builtin:
            return f"{row.module} (built in)"
        if name in self._loaded and self._loaded[name].source:
            return _shown(self._loaded[name].source)
        if row is not None:
            return row.module
        row = self._entry_points()[0].get(name)
        return row.source if row is not None else "?"

    def _load(self, name: str) -> Implementation | None:
        """Return the implementation, importing it on first use; None if its dependencies fail."""
        if name not in self._loaded and name not in self._failed:
            row = self._row(name)
            try:
                if row.entry_point is not None:
                    self._loaded[name] = wrap(loader.load_entry_point(row.entry_point), row.source)
                else:
                    self._loaded[name] = wrap(importlib.import_module(row.module))
            except ImportError as exc:
                self._failed[name] = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # someone else's broken package must not stop a run
                if row.builtin:
                    raise
                self._failed[name] = (
                    str(exc) if isinstance(exc, UnknownImplementation) else f"{type(exc).__name__}: {exc}"
                )
        return self._loaded.get(name)


__all__ = ["BUILTIN", "DEFAULT_RTOL", "REFERENCE", "Implementation", "Kernel", "Registry", "wrap"]
