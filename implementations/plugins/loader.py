"""Kernels from outside the package: a file, an importable module, or an installed package's entry point.

This is the one door for outside code. The registry
(:class:`implementations.registry.Registry`) hands it a spec (``path/to/kernel.py``,
``mypackage.kernels.fast``, ``nielsen:network.py[:Network]``) and asks it for the
entry points of the group ``backprop_bench.implementations``. Whatever comes in
leaves as a kernel with the interface of :mod:`implementations`: a module's own
functions wrapped by the checks in :mod:`implementations.plugins.validate`, or a
Nielsen-style class wrapped by :mod:`implementations.plugins.nielsen`. A mistake a
user can make here (a missing file, a syntax error, missing names) is one line, a
:class:`KernelLoadError`.

It does not search: no folder is scanned and nothing is globbed; a kernel is named
or installed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import re
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace

from implementations.plugins.nielsen import NielsenKernel, nielsen_classes
from implementations.plugins.validate import (
    checked_gradients,
    checked_predict,
    checked_train_epoch,
    display_path,
    location,
)

GROUP = "backprop_bench.implementations"
NIELSEN_PREFIX = "nielsen:"
# Modules loaded from a file get a name of their own under this prefix, so that a file
# called numba.py never shadows the real package (bench.run.worker looks for the prefix too).
USER_MODULE_PREFIX = "_backprop_bench_user_"
_OPTIONAL = ("warm_up", "prepare", "rtol", "float32_slack", "dtypes", "delegate")
_CALLABLE = ("train_epoch", "warm_up", "prepare", "delegate")
_USER_FILES: set[str] = set()


class UnknownImplementation(KeyError):
    """Raised by :func:`implementations.get` for a name that is not registered or cannot be imported."""

    def __str__(self) -> str:
        return str(self.args[0])


class KernelLoadError(UnknownImplementation):
    """A user's kernel file, module or entry point cannot be used as it is (missing, broken, incomplete)."""


class DuplicateImplementation(UnknownImplementation):
    """Two kernels from different sources have the same name."""


@dataclass(frozen=True)
class Located:
    """Where a spec points: a file (absolute path) or a module (dotted name), and how to read it."""

    kind: str  # "file" or "module"
    target: str
    spec: str  # as the user wrote it, for messages
    nielsen: bool = False
    class_name: str | None = None

    @property
    def source(self) -> str:
        """Return the canonical source, a spec that names the same kernel from any folder."""
        if not self.nielsen:
            return self.target
        return f"{NIELSEN_PREFIX}{self.target}" + (f":{self.class_name}" if self.class_name else "")

    @property
    def shown(self) -> str:
        """Return the file or module as the user named it (without the nielsen: prefix), for messages."""
        return display_path(self.target) if self.kind == "file" else self.target


def locate(spec: str) -> Located | None:
    """Return where ``spec`` points, or None when it is neither a path, a module nor a nielsen: spec."""
    if spec.startswith(NIELSEN_PREFIX):
        rest, class_name = spec[len(NIELSEN_PREFIX) :], None
        head, _, tail = rest.rpartition(":")
        if head and tail.isidentifier():
            rest, class_name = head, tail
        return Located("file", os.path.abspath(rest), spec, nielsen=True, class_name=class_name)
    if spec.endswith(".py") or "/" in spec or os.sep in spec or os.path.isfile(spec):
        return Located("file", os.path.abspath(spec), spec)
    if all(part.isidentifier() for part in spec.split(".")):
        return Located("module", spec, spec)
    return None


def module_exists(dotted: str) -> bool:
    """Return True when ``dotted`` names an importable module (its parent packages are imported to find out).

    A module that exists but fails to import counts as existing: importing it again says why.
    """
    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError as exc:
        parts = dotted.split(".")
        return exc.name not in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    except ValueError:
        return False
    except Exception:
        return True


def load(located: Located) -> object:
    """Return the kernel ``located`` points to, loading its file or importing its module."""
    if located.kind == "file":
        module = _load_file(Path(located.target), located.spec)
        default_name = Path(located.target).stem
    else:
        module = _import(located.target)
        default_name = located.target.rpartition(".")[2]
    return kernel_of(module, default_name, located.shown, located.nielsen, located.class_name)


def _load_file(path: Path, spec: str) -> ModuleType:
    """Return the module executed from ``path``, under a private name; raise KernelLoadError in one line."""
    if not path.exists():
        raise KernelLoadError(f"{spec}: no such kernel file")
    if path.is_dir():
        raise KernelLoadError(f"{spec} is a folder; give the kernel's .py file")
    resolved = str(path.resolve())
    digest = hashlib.sha1(resolved.encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"{USER_MODULE_PREFIX}{stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    loader = importlib.machinery.SourceFileLoader(module_name, resolved)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(module_name, loader))
    sys.modules[module_name] = module  # dataclasses and pickle look the module up while it runs
    _USER_FILES.add(resolved)
    # The kernel may import its neighbours (a helper module beside it), as a script would.
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[module_name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise KernelLoadError(_import_failure(display_path(resolved), exc)) from None
    finally:
        with contextlib.suppress(ValueError):  # the kernel may have tidied sys.path itself
            sys.path.remove(str(path.parent.resolve()))
    return module


def _import(dotted: str) -> ModuleType:
    """Return the imported module ``dotted``; raise KernelLoadError in one line if importing it fails."""
    try:
        module = importlib.import_module(dotted)
    except Exception as exc:
        raise KernelLoadError(_import_failure(dotted, exc)) from None
    if getattr(module, "__file__", None):
        _USER_FILES.add(str(Path(module.__file__).resolve()))
    return module


def _import_failure(shown: str, exc: BaseException) -> str:
    """Return one line on why importing a user's kernel failed: a syntax error with its line, or where it raised."""
    if isinstance(exc, SyntaxError):
        where = display_path(exc.filename) if exc.filename else shown
        text = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        return f"{where}:{exc.lineno}: {type(exc).__name__}: {exc.msg}{text}"
    return f"{shown}: importing it raised {type(exc).__name__}: {exc} (at {user_frame(exc)})"


def kernel_of(
    module: ModuleType, default_name: str, shown: str, nielsen: bool = False, class_name: str | None = None
) -> object:
    """Return the kernel in ``module``: its kernel functions, or its one Nielsen-style class.

    The kernel interface wins when the module has ``gradients``; ``nielsen`` (the
    ``nielsen:`` prefix) or ``class_name`` ask for the class instead.
    """
    if class_name is not None:
        cls = getattr(module, class_name, None)
        if not isinstance(cls, type) or not callable(getattr(cls, "backprop", None)):
            found = ", ".join(c.__name__ for c in nielsen_classes(module)) or "none"
            raise KernelLoadError(f"{shown}: no class {class_name} with a backprop method (classes with one: {found})")
        return _nielsen_kernel(cls, module, default_name, shown)
    classes = nielsen_classes(module)
    if nielsen or (not hasattr(module, "gradients") and classes):
        if not classes:
            raise KernelLoadError(f"{shown} defines no class with a backprop(x, y) method (a Nielsen-style network)")
        if len(classes) > 1:
            names = ", ".join(c.__name__ for c in classes)
            raise KernelLoadError(
                f"{shown} defines several classes with a backprop method ({names}); "
                f"pick one with nielsen:{shown}:{classes[0].__name__}"
            )
        return _nielsen_kernel(classes[0], module, default_name, shown)
    return _module_kernel(module, default_name, shown)


def _kernel_name(owner: object, default_name: str, shown: str) -> str:
    """Return ``owner.name`` when it is a non-empty string, ``default_name`` when absent; raise otherwise."""
    name = getattr(owner, "name", default_name)
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise KernelLoadError(f"{shown}: name must be a non-empty string without surrounding spaces, got {name!r}")
    return name


def _nielsen_kernel(cls: type, module: ModuleType, default_name: str, shown: str) -> NielsenKernel:
    """Return the adapter around ``cls``, named by the class's or the module's ``name``, else ``default_name``."""
    default = _kernel_name(module, default_name, shown)
    name = _kernel_name(cls, default, shown) if isinstance(cls.__dict__.get("name"), str) else default
    description = getattr(module, "description", "") or f"Nielsen-style class {cls.__qualname__} from {shown}"
    return NielsenKernel(cls, name, description)


def _module_kernel(module: ModuleType, default_name: str, shown: str) -> SimpleNamespace:
    """Return the kernel module's names with its gradients, predict and train_epoch checked on every call."""
    missing = [n for n in ("gradients", "predict") if not callable(getattr(module, n, None))]
    if len(missing) == 2:
        raise KernelLoadError(
            f"{shown} is not a kernel: it defines neither gradients(params, X, Y) and predict(params, X) "
            "nor a class with a backprop(x, y) method"
        )
    if missing:
        raise KernelLoadError(
            f"{shown}: missing {missing[0]} (a kernel defines gradients(params, X, Y) and predict(params, X); "
            "predict may be imported from implementations.core)"
        )
    for optional in _CALLABLE:
        if hasattr(module, optional) and not callable(getattr(module, optional)):
            kind = type(getattr(module, optional)).__name__
            raise KernelLoadError(f"{shown}: {optional} must be a function, got {kind}")
    kernel = SimpleNamespace(
        name=_kernel_name(module, default_name, shown),
        description=getattr(module, "description", "") or f"from {shown}",
        gradients=checked_gradients(module.gradients, location(module.gradients)),
        predict=checked_predict(module.predict, location(module.predict)),
    )
    if hasattr(module, "train_epoch"):
        kernel.train_epoch = checked_train_epoch(module.train_epoch, location(module.train_epoch))
    for optional in _OPTIONAL:
        if hasattr(module, optional):
            setattr(kernel, optional, getattr(module, optional))
    return kernel


def entry_points() -> list[importlib.metadata.EntryPoint]:
    """Return the installed entry points of the group, each (name, value) once."""
    unique = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        unique.setdefault((ep.name, ep.value), ep)
    return list(unique.values())


def describe_entry_point(ep: importlib.metadata.EntryPoint) -> str:
    """Return "entry point NAME = VALUE (DIST VERSION)" for messages."""
    dist = getattr(ep, "dist", None)
    owner = f" ({dist.name} {dist.version})" if dist is not None else ""
    return f"entry point {ep.name} = {ep.value}{owner}"


def load_entry_point(ep: importlib.metadata.EntryPoint) -> object:
    """Return the kernel an entry point names: a kernel module or a Nielsen-style class, named by the entry point."""
    shown = describe_entry_point(ep)
    try:
        obj = ep.load()
    except Exception as exc:
        raise KernelLoadError(_import_failure(shown, exc)) from None
    if isinstance(obj, ModuleType):
        if getattr(obj, "__file__", None):
            _USER_FILES.add(str(Path(obj.__file__).resolve()))
        kernel = kernel_of(obj, ep.name, shown)
    elif isinstance(obj, type) and callable(getattr(obj, "backprop", None)):
        kernel = NielsenKernel(obj, ep.name, getattr(obj, "description", "") or f"Nielsen-style class from {shown}")
    else:
        raise KernelLoadError(f"{shown} is a {type(obj).__name__}; expected a kernel module or a class with backprop")
    kernel.name = ep.name  # the installed name is the one users type
    return kernel


@functools.cache
def _library_roots() -> list[str]:
    """Return the folders whose frames are never the user's: the standard library, installed packages, this project."""
    paths = sysconfig.get_paths()
    package = Path(__file__).resolve().parents[1]  # implementations/, this file being in its plugins/
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    return [str(Path(root).resolve()) + os.sep for root in roots | {str(package), str(package.parent / "bench")}]


def _is_user_file(filename: str) -> bool:
    """Return True for a file of a loaded user kernel, or any real file outside the library roots."""
    if filename.startswith("<"):
        return False
    resolved = str(Path(filename).resolve())
    return resolved in _USER_FILES or not any(resolved.startswith(root) for root in _library_roots())


def user_frame(exc: BaseException) -> str:
    """Return where in the user's code ``exc`` arose, as "path:line, in function: source line".

    That is the last traceback frame in a user's file: a loaded kernel, or any file
    outside the standard library, installed packages and this project (a helper the
    kernel imports). A KernelOutputError, raised by the checks after the user's
    function returned, gives that function instead. With no such frame, the last one.
    """
    where = getattr(exc, "where", "")
    if where:
        return where
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    frame = next((f for f in reversed(frames) if _is_user_file(f.filename)), frames[-1])
    text = f"{display_path(frame.filename)}:{frame.lineno}, in {frame.name}"
    return f"{text}: {frame.line.strip()}" if frame.line and frame.line.strip() else text
