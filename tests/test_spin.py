"""spin: Python threads running one compiled function, meeting at spin barriers.

The barrier must hold every thread until all have arrived (checked by threads that
read what the others wrote just before it), work with more threads than cores, and
let nobody wait forever when one thread fails.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from numba import njit

from implementations.kernels import spin


@njit(nogil=True)
def _rounds(t, sync, seen, n_rounds, fail_at):
    """Each round: write the round into seen[t], meet, check every seen[u] holds it, meet again; return mismatches."""
    n_threads = seen.size
    wrong, arrived = 0, 0
    for r in range(1, n_rounds + 1):
        if t == 1 and r == fail_at:
            raise ValueError("thread 1 failed")
        seen[t] = r
        arrived += n_threads
        if not spin.barrier(sync, arrived):
            return -1
        for u in range(n_threads):
            wrong += seen[u] != r
        arrived += n_threads
        if not spin.barrier(sync, arrived):
            return -1
    return wrong


@pytest.mark.parametrize("n_threads", [1, 2, 8])  # 8: more threads than this machine's cores
def test_every_thread_sees_all_writes_made_before_the_barrier(n_threads):
    seen = np.zeros(n_threads, np.int64)
    assert spin.run_threads(_rounds, n_threads, seen, 300, -1) == [0] * n_threads
    assert (seen == 300).all()


def test_a_failing_thread_releases_the_others_and_its_error_is_raised():
    seen = np.zeros(3, np.int64)
    outcome = {}

    def call():
        try:
            spin.run_threads(_rounds, 3, seen, 50, 7)
        except ValueError as error:
            outcome["error"] = str(error)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive(), "threads still waiting at the barrier"
    assert outcome == {"error": "thread 1 failed"}
    # Thread 1 failed before writing round 7; the others stopped at a barrier of round 6 or 7, no further.
    assert seen[1] == 6 and set(seen[[0, 2]]) <= {6, 7}


@njit
def _cycles_around(n):
    """Return the cycle counter's advance over a loop of n steps, and the loop's result."""
    start, total = spin.cycles(), 0.0
    for i in range(n):
        total += np.sqrt(i)
    return spin.cycles() - start, total


@pytest.mark.skipif(not spin._X86, reason="the cycle counter is read on x86 only (0 elsewhere)")
def test_the_cycle_counter_advances_with_the_work_done():
    short = min(_cycles_around(1_000)[0] for _ in range(5))
    long = min(_cycles_around(1_000_000)[0] for _ in range(5))
    assert 0 < short < long
