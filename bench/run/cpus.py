"""Which CPUs this process may run on, and pinning it to fewer.

Written once for the parent, the worker, the harness, the machine record and the
benchmark suite. It imports nothing but ``os``, so a worker can pin itself before
NumPy or any other library starts a thread pool.
"""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """Return how many CPUs this process may run on (its affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def limit_cpus(n: int | None) -> None:
    """Pin this process to its first ``n`` allowed CPUs (all when None); call it before any thread pool starts."""
    if n is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:n])
