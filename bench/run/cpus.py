"""Which CPUs this process may run on, pinning it to fewer, and how busy the machine's CPUs have been.

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


def busy_cpu_seconds() -> float | None:
    """Return the seconds every CPU of the machine spent busy since boot (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
