"""Check, then time: the one path every kernel takes before any of its figures counts.

``run``, ``sweep``, ``goals`` and the pytest-benchmark suite all go through
:func:`get_ready` (warm-up on the exact workload, the optional ``prepare`` hook,
the parity probe); ``run``, ``sweep`` and ``goals`` then time epochs with
:func:`run_kernel`, each kernel in a fresh worker process (:mod:`bench.run.worker`,
driven by :mod:`bench.run.parent`). Nothing is timed unless the probe agreed first.

The parity probe and the workload are :mod:`bench.run.probe`'s; what one kernel did is a
:class:`bench.results.schema.KernelResult`.

Compilation (``warm_up``) and ``prepare`` are timed on their own, never inside an
epoch; evaluation after each epoch is not timed either.

The probe is only the quick gate. The timed work itself is verified: after every
timed epoch, outside the timing, the kernel's parameters, its ``predict`` and its test
accuracy are checked against the reference's trajectory on the same workload
(:mod:`bench.run.verify`); a kernel that departs is ``mismatch``, never ranked. The
reference's own row shows its check against central finite differences instead of a
comparison with itself.

It prints nothing: progress goes to the ``Reporter`` the caller passes in.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

import implementations
from bench.results.schema import KernelResult
from bench.run.config import RunConfig
from bench.run.cpus import busy_cpu_seconds, usable_cpus
from bench.run.probe import Workload, check_parity
from bench.run.verify import EpochCheck, check_epoch
from implementations.core import Params, batch_order

# A kernel whose epoch times spread more than this around their median gets a warning.
UNSTABLE_SPREAD = 0.10
# Other processes using more than this many cores beyond the ones the run left free make the machine "busy".
BUSY_MARGIN_CORES = 0.25


class Reporter(Protocol):
    """Receives progress events; the CLI shows them, tests may ignore them."""

    def kernel_started(self, name: str, epochs: int) -> None: ...
    def phase(self, name: str, text: str) -> None: ...
    def epoch_done(self, name: str, epoch: int, seconds: float, accuracy: float) -> None: ...
    def kernel_done(self, result: KernelResult) -> None: ...


class SilentReporter:
    """A Reporter that ignores every event."""

    def kernel_started(self, name: str, epochs: int) -> None:
        pass

    def phase(self, name: str, text: str) -> None:
        pass

    def epoch_done(self, name: str, epoch: int, seconds: float, accuracy: float) -> None:
        pass

    def kernel_done(self, result: KernelResult) -> None:
        pass


def get_ready(impl: implementations.Implementation, work: Workload, config: RunConfig, result: KernelResult) -> bool:
    """Return True once the kernel is compiled for this workload, prepared, and agreed with the reference.

    Records compile_seconds, prepare_seconds and the probe's errors in ``result``; on
    disagreement ``result`` is ``parity-failed`` and the kernel must not be timed.
    """
    if config.dtype not in impl.dtypes:
        result.status, result.message = "error", f"does not support {config.dtype}"
        return False
    start = time.perf_counter()
    impl.warm_up(config.sizes, config.dtype, n_train=len(work.X), batch_size=config.batch_size, shuffle=config.shuffle)
    result.compile_seconds = time.perf_counter() - start
    if impl.prepare is not None:
        start = time.perf_counter()
        impl.prepare(work.X, work.Y)
        result.prepare_seconds = time.perf_counter() - start
    result.delegates_to = impl.delegate(config.batch_size)
    if impl.sparse_input:
        result.sparse_input, result.input_density = True, float(np.count_nonzero(work.X)) / work.X.size
    return check_parity(impl, work, config, result)


def _own_cpu_seconds() -> float:
    """Return the CPU seconds (user + system) this process has used."""
    t = os.times()
    return t.user + t.system


def check_stability(result: KernelResult, others_cores: float | None, free_cores: float) -> None:
    """Add a warning to ``result`` when its epoch times are unstable or other processes kept the machine busy."""
    times = result.epoch_seconds
    if len(times) >= 2:
        median = statistics.median(times)
        spread = max(abs(t - median) for t in times) / median
        if spread > UNSTABLE_SPREAD:
            result.warnings.append(
                f"unstable: epoch times spread {100 * spread:.0f}% around their median "
                f"(threshold {100 * UNSTABLE_SPREAD:.0f}%); rerun on a quiet machine or with more epochs"
            )
    if others_cores is not None:
        result.machine_load = {"others_cores": others_cores, "free_cores": free_cores}
        if others_cores > free_cores + BUSY_MARGIN_CORES:
            result.warnings.append(
                f"busy machine: other processes used {others_cores:.1f} cores while {free_cores:g} were free; "
                "figures are as measured"
            )


def evaluate(impl: implementations.Implementation, params: Params, work: Workload) -> np.ndarray:
    """Return the kernel's labels of the test set for ``params``, with BLAS held to one thread.

    Never timed, but it runs between timed epochs: OpenBLAS's threads keep spinning for
    a while after a call, and with two of them they took the cores from the next epoch's
    own threads (measured, numba-sparse, two threads, float64, batch 100: epochs after a
    two-thread evaluation 110-215 ms, without one 92-121 ms; after a one-thread
    evaluation 107-156 ms, as without, on a noisy machine).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return impl.predict(params, work.X_test)


def verify_epoch(
    impl: implementations.Implementation, params: Params, epoch: int, work: Workload, config: RunConfig
) -> tuple[float, EpochCheck | None]:
    """Return (test accuracy, the check) of the parameters after timed epoch ``epoch``.

    The labels come from the kernel's own predict; when the workload has the reference's
    trajectory, parameters, labels and accuracy are checked against it (bench.run.verify);
    without it the check is None.
    """
    labels = evaluate(impl, params, work)
    if work.trajectory is None:
        return implementations.accuracy(labels, work.y_test), None
    with threadpool_limits(limits=1, user_api="blas"):
        check = check_epoch(impl, params, labels, epoch, work.trajectory, work.X_test, work.y_test, config.dtype)
    return check.correct / len(work.y_test), check


def run_kernel(name: str, work: Workload, config: RunConfig, reporter: Reporter) -> KernelResult:
    """Return the result of checking and training one kernel; never raises for a kernel's own failure.

    KeyboardInterrupt is the exception: the partial result is marked ``interrupted``
    and attached to the exception as ``.result`` before it propagates.
    """
    impl = implementations.get(name)
    result = KernelResult(name=impl.name, dtype=config.dtype, fused_epoch=impl.fused_epoch)
    reporter.kernel_started(result.name, config.epochs)
    try:
        reporter.phase(result.name, "compiling")
        if not get_ready(impl, work, config, result):
            return result
        params = work.params0
        shuffle_seed = config.seed if config.shuffle else None
        busy0, own0, wall0 = busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter()
        checking = 0.0
        for epoch in range(config.epochs):
            reporter.phase(result.name, f"epoch {epoch}")
            order = batch_order(len(work.X), shuffle_seed, epoch)
            start = time.perf_counter()
            params = impl.train_epoch(params, work.X, work.Y, config.batch_size, config.eta, order)
            result.epoch_seconds.append(time.perf_counter() - start)
            if not params.is_finite():
                result.status, result.diverged_epoch = "diverged", epoch
                result.message = f"parameters became NaN or infinite in epoch {epoch}"
                return result
            start = time.perf_counter()
            accuracy, check = verify_epoch(impl, params, epoch, work, config)
            checking += time.perf_counter() - start
            result.verify_seconds = checking
            result.test_accuracy.append(accuracy)
            if check is not None:
                result.verification.append(check.to_json())
                if check.problem is not None:
                    result.status, result.mismatch_epoch = "mismatch", epoch
                    result.message = f"{check.problem}; its times are kept but never ranked"
                    return result
            reporter.epoch_done(result.name, epoch, result.epoch_seconds[-1], result.test_accuracy[-1])
        chaotic = [c for c in result.verification if c["allowed_images"] is None]
        if chaotic:
            result.warnings.append(
                f"weakly verified: on this workload rounding alone moves the reference's trajectory by "
                f"{chaotic[-1]['noise']:.1e} after epoch {chaotic[-1]['epoch']} (SGD amplifies it at small batch "
                "sizes), so the timed epochs are checked only to that order and predictions exactly"
            )
        busy1, own1, wall = busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter() - wall0
        others = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - (own1 - own0)) / wall
        cores = usable_cpus()
        check_stability(result, others, float(max(0, (os.cpu_count() or 1) - cores)))
        result.threads = {**(result.threads or {}), "cores_used": (own1 - own0) / wall}
        result.status = "ok"
    except KeyboardInterrupt as exc:
        result.status, result.message = "interrupted", f"interrupted after {len(result.epoch_seconds)} epochs"
        exc.result = result
        raise
    except Exception as exc:  # a kernel's failure must not stop the others
        result.status = "error"
        result.message = f"{type(exc).__name__}: {exc} (at {implementations.user_frame(exc)})"
    finally:
        reporter.kernel_done(result)
    return result
