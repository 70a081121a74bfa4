"""Run one compiled Numba function on several Python threads that meet at spin barriers.

A kernel whose threads must meet a few times per mini-batch can use Numba's ``prange``:
each phase a parallel loop. That loop is costly to compile (in numba-sparse it was 4 of
the cold compile's 11 s, measured with Numba's compile events), and every phase ends in
a join by the pool. Here the kernel is one ordinary ``nogil`` function, run once per
thread for the whole epoch (:func:`run_threads`); where its threads must meet it calls
:func:`barrier`, a counter that each thread increments atomically and then watches until
every thread has arrived. Nothing is compiled in parallel mode.

A waiting thread spins (``pause`` on x86) and, after a while, yields its core with
``sched_yield`` where there is one, so more threads than cores still make progress.
An exception in one thread raises a flag that every waiting thread sees and returns on,
and :func:`run_threads` then raises it: nobody waits forever.
"""

from __future__ import annotations

import platform
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

import implementations.kernels.numba_cache  # noqa: F401  (before any cached function: the shared stamp)

# sync[ARRIVED] counts arrivals at barriers, sync[ABORT] is set when a thread failed; a
# cache line (64 bytes) apart, so the flag's readers do not contend with the counter.
ARRIVED, ABORT = 0, 8
# Spins before a waiting thread starts yielding its core: a few microseconds.
_SPINS = 100
_X86 = platform.machine().lower() in {"x86_64", "amd64", "i386", "i686"}
_YIELD = sys.platform != "win32"  # sched_yield is POSIX


def sync_array() -> np.ndarray:
    """Return a fresh zeroed sync array (2 cache lines of int64) for one :func:`run_threads` call."""
    return np.zeros(2 * ABORT, np.int64)


def _pointer(context, builder, array_type, array, index_type, index):
    """Return a pointer to array.data[index]."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [context.cast(builder, index, index_type, types.intp)])


@intrinsic
def _fetch_add(typingctx, array, index, value):
    """Add value to array[index] atomically (sequentially consistent); return the old value."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64 and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        pointer = _pointer(context, builder, signature.args[0], args[0], signature.args[1], args[1])
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", pointer, value, "seq_cst")

    return types.int64(array, index, value), codegen


@intrinsic
def _load_acquire(typingctx, array, index):
    """Return array[index], read atomically with acquire order: what its writer stored before is seen too."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64 and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        pointer = _pointer(context, builder, signature.args[0], args[0], signature.args[1], args[1])
        return builder.load_atomic(pointer, "acquire", 8)

    return types.int64(array, index), codegen


@intrinsic
def _relax(typingctx, spins):
    """Wait a moment in a spin loop: ``pause`` on x86 for the first _SPINS spins, then sched_yield."""
    if not isinstance(spins, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        module, void = builder.module, ir.FunctionType(ir.VoidType(), [])
        if _X86:
            builder.call(cgutils.get_or_insert_function(module, void, "llvm.x86.sse2.pause"), [])
        if _YIELD:
            late = builder.icmp_signed(">=", args[0], ir.Constant(args[0].type, _SPINS))
            with builder.if_then(late, likely=False):
                sched_yield = cgutils.get_or_insert_function(module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
                builder.call(sched_yield, [])
        return context.get_dummy_value()

    return types.none(spins), codegen


@intrinsic
def cycles(typingctx):
    """Return the CPU's cycle counter (x86's time-stamp counter; 0 on other machines). (Numba intrinsic)

    For the kernels' own balancing of work between threads: differences of two readings on
    one thread, never compared across threads.
    """

    def codegen(context, builder, signature, args):
        if not _X86:  # elsewhere LLVM may lower it to a counter user code cannot read
            return ir.Constant(ir.IntType(64), 0)
        read = ir.FunctionType(ir.IntType(64), [])
        return builder.call(cgutils.get_or_insert_function(builder.module, read, "llvm.readcyclecounter"), [])

    return types.int64(), codegen


@njit(cache=True, nogil=True, _nrt=False)  # no reference counts: see numba_sparse
def barrier(sync, target):
    """Arrive, then wait until sync[ARRIVED] reaches target; return False if another thread failed.
    (Numba JIT-compiled)

    Every thread's n-th barrier passes at target n * n_threads: the counter only grows, so
    no reset races with a late reader.
    """
    _fetch_add(sync, ARRIVED, 1)
    spins = 0
    while _load_acquire(sync, ARRIVED) < target:
        if _load_acquire(sync, ABORT) != 0:
            return False
        _relax(spins)
        spins += 1
    return True


def run_threads(function: Callable, n_threads: int, *args) -> list:
    """Return [function(t, sync, *args) for t in range(n_threads)], each call on a thread of its own.

    Call 0 runs on this thread. ``function`` is a ``nogil`` Numba function that meets the
    others with :func:`barrier` on ``sync`` (made here); if any call raises, the flag set
    here lets the others return, and the first exception is raised once all have ended.
    """
    sync, results, errors = sync_array(), [None] * n_threads, []

    def work(t: int) -> None:
        try:
            results[t] = function(np.int64(t), sync, *args)
        except BaseException as error:  # re-raised below, on the calling thread
            errors.append(error)
            sync[ABORT] = 1

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(1, n_threads)]
    for thread in threads:
        thread.start()
    work(0)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


if config.DISABLE_JIT:
    # NUMBA_DISABLE_JIT=1 runs the kernels as plain Python: the same barrier under a lock,
    # waiting with sleep(0), which lets the other threads have the GIL.
    _lock = threading.Lock()

    def _fetch_add(array, index, value):
        with _lock:
            old = int(array[index])
            array[index] = old + value
        return old

    def _load_acquire(array, index):
        return int(array[index])

    def _relax(spins):
        time.sleep(0)

    def cycles():
        return time.perf_counter_ns()


__all__ = ["ABORT", "ARRIVED", "barrier", "cycles", "run_threads", "sync_array"]
