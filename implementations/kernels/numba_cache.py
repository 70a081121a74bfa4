"""Numba's on-disk cache, made to see the code a kernel calls in its sibling modules.

Numba keys a cached function on its own source file (the file's hash in Numba 0.68, its
time and size before) and its own bytecode. A compiled function holds the machine code
of every compiled function it calls, so when only a callee's module changes (``simd.py``
under ``numba_sparse``, ``numba_common.py`` under ``numba_fastmath``), the callers' cache is
still taken as fresh, and they run the old callee: an edit, a fix or a ``git pull`` that
seems to do nothing, and benchmarks of code that is no longer there.

:func:`share_stamp` puts a group of modules under one stamp, the hash of all their
sources: a cache locator of Numba's kind whose ``get_source_stamp`` (which may return any
picklable object, says Numba's locator interface) adds that hash, put first in Numba's
list of locator classes (a private list: the one part that may move between releases).
An edit of any of the group's modules recompiles each of them once. The Numba modules
of this folder (:data:`NUMBA_MODULES`) register themselves by importing this module before
their first ``@njit(cache=True)``.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba.core import caching

# The modules of this folder with Numba functions: each may call the others' (tests/test_numba_cache.py
# checks that every module here that imports Numba is listed).
NUMBA_MODULES = (
    "numba_common",
    "numba_fastmath",
    "numba_parallel",
    "numba_sparse",
    "simd",
    "spin",
)

# Numba's own locators, in its order, that a source file in a package can have: NUMBA_CACHE_DIR if set,
# beside the source if writable, else in the user's cache folder.
_BASES = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator)
_groups: dict[Path, tuple[str, ...]] = {}  # a group's folder -> its modules' names
_shared: dict[Path, Path] = {}  # each module file of a group -> the group's folder


@functools.cache
def sources_stamp(folder: Path, names: tuple[str, ...]) -> str:
    """Return the SHA-256 of the sources folder/<name>.py, in ``names``' order, names included (hex)."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + (folder / f"{name}.py").read_bytes() + b"\0")
    return digest.hexdigest()


def _shared_stamp_locator(base: type) -> type:
    """Return a subclass of the Numba locator ``base`` for the files of a group: its stamp is the group's too."""

    class SharedStampLocator(base):
        @classmethod
        def from_function(cls, py_func, py_file):
            if Path(py_file).resolve() not in _shared:
                return None  # not in a group: Numba's own locators take it
            return super().from_function(py_func, py_file)

        def get_source_stamp(self):
            folder = _shared[Path(self._py_file).resolve()]
            return (super().get_source_stamp(), sources_stamp(folder, _groups[folder]))

    SharedStampLocator.__name__ = SharedStampLocator.__qualname__ = f"SharedStamp{base.__name__}"
    return SharedStampLocator


def _locator_list() -> list | None:
    """Return Numba's list of locator classes, tried in order (on CacheImpl in recent Numba, _CacheImpl before),
    or None if this Numba keeps it elsewhere."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    return getattr(impl, "_locator_classes", None)


def share_stamp(folder: Path, names: tuple[str, ...]) -> None:
    """Cache the Numba functions of the modules folder/<name>.py under one stamp, the hash of all of them.

    Takes effect for functions decorated after the call. Idempotent. Where Numba keeps no list of
    locators where this module looks, nothing changes: the kernels still load, with Numba's own
    stamps (tests/test_numba_cache.py then fails, so a developer sees it).
    """
    folder = Path(folder).resolve()
    _groups[folder] = tuple(names)
    for name in names:
        _shared[folder / f"{name}.py"] = folder
    locators = _locator_list()
    if locators is not None and not any(getattr(cls, "__name__", "").startswith("SharedStamp") for cls in locators):
        locators[:0] = [_shared_stamp_locator(base) for base in _BASES]


share_stamp(Path(__file__).parent, NUMBA_MODULES)
