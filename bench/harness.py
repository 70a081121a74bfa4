"""The parity-checking training harness behind ``backprop-bench run``.

For each selected kernel it: compiles (``warm_up``, timed on its own); checks the
kernel's gradients and one short SGD epoch on a probe batch against the float64
reference; and only then trains it from the shared initial parameters, in the
shared batch order, timing every epoch with ``time.perf_counter`` (evaluation and
compilation excluded) and recording test accuracy after each epoch. A kernel that
disagrees is ``parity-failed`` and is never timed; one that raises is ``error``;
one whose parameters stop being finite is ``diverged``. The others carry on.

It prints nothing: progress goes to the ``Reporter`` the caller passes in.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

import implementations
from bench.config import RunConfig
from bench.data import Dataset, one_hot, scale_pixels
from implementations.core import Params, batch_order, finite_difference_gradients, init_params, max_rel_error

PROBE_SIZE = 100
PROBE_BATCH = 10
# Central differences with h = 1e-6 on a float64 cost of O(1): truncation error
# O(h^2) ~ 1e-12 and rounding error ~ eps * C / h ~ 1e-10, so an agreement worse
# than 1e-6 means the analytic gradient is wrong, not the estimate.
FD_RTOL = 1e-6
FD_SIZES = [12, 7, 5, 4]


@dataclass
class KernelResult:
    """What one kernel did in a run; serialised as one entry of ``implementations``."""

    name: str
    status: str = "pending"
    message: str | None = None
    dtype: str = "float64"
    fused_epoch: bool = False
    compile_seconds: float | None = None
    grad_max_rel_error: float | None = None
    step_max_rel_error: float | None = None
    rtol: float | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    diverged_epoch: int | None = None

    def to_json(self) -> dict:
        """Return a JSON-ready dict."""
        return asdict(self)


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


@dataclass
class Workload:
    """The arrays every kernel trains and is checked on, prepared once per run."""

    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    params0: Params
    X_probe: np.ndarray
    Y_probe: np.ndarray
    ref_gradients: Params
    ref_step: Params


def reference_check(seed: int) -> float:
    """Return the reference's gradient error against central finite differences on a small net."""
    rng = np.random.default_rng(seed)
    params = init_params(FD_SIZES, seed)
    X = rng.random((5, FD_SIZES[0]))
    Y = one_hot(rng.integers(0, FD_SIZES[-1], 5), "float64", FD_SIZES[-1])
    reference = implementations.get(implementations.REFERENCE)
    return max_rel_error(reference.gradients(params, X, Y), finite_difference_gradients(params, X, Y))


def prepare(config: RunConfig, data: Dataset) -> Workload:
    """Return the training, test and probe arrays in the run's dtype, and the reference's answers."""
    n = len(data.train_images) if config.train_limit is None else config.train_limit
    X = scale_pixels(data.train_images[:n], config.dtype)
    Y = one_hot(data.train_labels[:n], config.dtype, config.sizes[-1])
    params0 = init_params(config.sizes, config.seed, config.dtype)
    # The probe is always judged against float64: a float32 kernel is compared with the truth.
    X_probe = scale_pixels(data.train_images[:PROBE_SIZE], "float64")
    Y_probe = one_hot(data.train_labels[:PROBE_SIZE], "float64", config.sizes[-1])
    reference = implementations.get(implementations.REFERENCE)
    ref_params = params0.astype("float64")
    X_test = scale_pixels(data.test_images, config.dtype)
    # No kernel may write its inputs; read-only also lets a kernel (JAX) keep one copy of
    # the training set across epochs instead of copying it defensively every epoch.
    for array in (X, Y, X_test):
        array.setflags(write=False)
    return Workload(
        X=X,
        Y=Y,
        X_test=X_test,
        y_test=data.test_labels,
        params0=params0,
        X_probe=X_probe,
        Y_probe=Y_probe,
        ref_gradients=reference.gradients(ref_params, X_probe, Y_probe),
        ref_step=reference.train_epoch(ref_params, X_probe, Y_probe, PROBE_BATCH, config.eta),
    )


def check_parity(impl: implementations.Implementation, work: Workload, config: RunConfig, result: KernelResult) -> bool:
    """Return True when the kernel's gradients and probe epoch agree with the reference."""
    dtype = config.dtype
    X_probe, Y_probe = work.X_probe.astype(dtype), work.Y_probe.astype(dtype)
    result.grad_max_rel_error = max_rel_error(impl.gradients(work.params0, X_probe, Y_probe), work.ref_gradients)
    stepped = impl.train_epoch(work.params0, X_probe, Y_probe, PROBE_BATCH, config.eta)
    result.step_max_rel_error = max_rel_error(stepped, work.ref_step)
    worst = max(result.grad_max_rel_error, result.step_max_rel_error)
    if worst <= result.rtol:
        return True
    result.status = "parity-failed"
    result.message = (
        f"disagrees with the reference: gradient error {result.grad_max_rel_error:.2e}, "
        f"probe-epoch error {result.step_max_rel_error:.2e}, tolerance {result.rtol:.0e}"
    )
    return False


def run_kernel(name: str, work: Workload, config: RunConfig, reporter: Reporter) -> KernelResult:
    """Return the result of checking and training one kernel; never raises for a kernel's own failure.

    KeyboardInterrupt is the exception: the partial result is marked ``interrupted``
    and attached to the exception as ``.result`` before it propagates.
    """
    impl = implementations.get(name)
    result = KernelResult(name=name, dtype=config.dtype, fused_epoch=impl.fused_epoch)
    result.rtol = impl.rtol.get(config.dtype)
    reporter.kernel_started(name, config.epochs)
    try:
        if result.rtol is None:
            result.status, result.message = "error", f"no parity tolerance declared for {config.dtype}"
            return result
        reporter.phase(name, "compiling")
        start = time.perf_counter()
        impl.warm_up(
            config.sizes, config.dtype, n_train=len(work.X), batch_size=config.batch_size, shuffle=config.shuffle
        )
        result.compile_seconds = time.perf_counter() - start
        reporter.phase(name, "checking parity")
        if not check_parity(impl, work, config, result):
            return result
        params = work.params0
        shuffle_seed = config.seed if config.shuffle else None
        for epoch in range(config.epochs):
            reporter.phase(name, f"epoch {epoch}")
            order = batch_order(len(work.X), shuffle_seed, epoch)
            start = time.perf_counter()
            params = impl.train_epoch(params, work.X, work.Y, config.batch_size, config.eta, order)
            result.epoch_seconds.append(time.perf_counter() - start)
            if not params.is_finite():
                result.status, result.diverged_epoch = "diverged", epoch
                result.message = f"parameters became NaN or infinite in epoch {epoch}"
                return result
            result.test_accuracy.append(implementations.accuracy(impl.predict(params, work.X_test), work.y_test))
            reporter.epoch_done(name, epoch, result.epoch_seconds[-1], result.test_accuracy[-1])
        result.status = "ok"
    except KeyboardInterrupt as exc:
        result.status, result.message = "interrupted", f"interrupted after {len(result.epoch_seconds)} epochs"
        exc.result = result
        raise
    except Exception as exc:  # a kernel's failure must not stop the others
        result.status = "error"
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        result.message = f"{type(exc).__name__}: {exc} (at {frame.filename}:{frame.lineno})"
    finally:
        reporter.kernel_done(result)
    return result
