"""Check, then time: the one path every kernel takes before any of its figures counts.

``run``, ``sweep``, ``goals`` and the pytest-benchmark suite all go through
:func:`get_ready` (warm-up on the exact workload, the optional ``prepare`` hook,
the parity probe); ``run``, ``sweep`` and ``goals`` then time epochs with
:func:`run_kernel`, each kernel in a fresh worker process (:mod:`bench.run.worker`,
driven by :mod:`bench.run.parent`). Nothing is timed unless the probe agreed first.

The parity probe runs the kernel's own ``train_epoch`` on the first examples of
the run's own training array, with the run's batch size (1 included) and order
kind (in order, or a seeded shuffle), and with a short last batch; it compares the
*update* (parameters after minus before) with the float64 reference's update, and
the gradients on the same examples, array by array (:func:`max_rel_error`). Every
returned array must have the run's dtype. Tolerances:

- float64: ``rtol`` 1e-10 (see DEFAULT_RTOL in :mod:`implementations`).
- float32: FLOAT32_FACTOR times the float32 reference's own error against float64
  on the same probe, measured in every run; a kernel may loosen it, by at most
  MAX_FLOAT32_SLACK, with a stated reason (``float32_slack``).

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

import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

import implementations
from bench.run.config import RunConfig
from bench.run.data import Dataset, one_hot, scale_pixels
from bench.run.verify import EpochCheck, Trajectory, check_epoch, ensure_trajectory
from implementations.core import Params, batch_order, finite_difference_gradients, init_params, max_rel_error

# The probe runs at least this many examples, in at least two full batches and one short one.
PROBE_MIN_EXAMPLES = 50
# float32: a kernel's error against the float64 reference may be this many times the float32
# reference's own error on the same probe. Measured (see tests/test_float32.py, docstring):
# kernels sit at most 1.9x the float32 reference's error; a 2% error in one update is 1e4x.
FLOAT32_FACTOR = 20.0
MAX_FLOAT32_SLACK = 10.0
# Central differences with h = 1e-6 on a float64 cost of O(1): truncation error
# O(h^2) ~ 1e-12 and rounding error ~ eps * C / h ~ 1e-10, so an agreement worse
# than 1e-6 means the analytic gradient is wrong, not the estimate.
FD_RTOL = 1e-6
FD_SIZES = [12, 7, 5, 4]
# A kernel whose epoch times spread more than this around their median gets a warning.
UNSTABLE_SPREAD = 0.10
# Other processes using more than this many cores beyond the ones the run left free make the machine "busy".
BUSY_MARGIN_CORES = 0.25


@dataclass
class KernelResult:
    """What one kernel did in a run; serialised as one entry of ``implementations``."""

    name: str
    status: str = "pending"
    message: str | None = None
    dtype: str = "float64"
    fused_epoch: bool = False
    # The kernel whose code actually ran at this batch size, when it is not this one.
    delegates_to: str | None = None
    # A kernel that skips zero inputs, and the non-zero share of the training inputs it saw.
    sparse_input: bool = False
    input_density: float | None = None
    compile_seconds: float | None = None
    # "cold" (compiled now), "cache" (loaded from an on-disk cache), "none" (nothing to compile),
    # or "jit" (compiled, no cache to tell apart); set by the worker.
    compile_kind: str | None = None
    prepare_seconds: float | None = None
    probe: dict | None = None
    grad_max_rel_error: float | None = None
    step_max_rel_error: float | None = None
    rtol: float | None = None
    step_rtol: float | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    diverged_epoch: int | None = None
    # One bench.run.verify.EpochCheck (as a dict) per timed epoch, and the first epoch that departed.
    verification: list[dict] = field(default_factory=list)
    mismatch_epoch: int | None = None
    # Seconds spent checking the timed epochs (never inside an epoch's time).
    verify_seconds: float | None = None
    threads: dict | None = None
    peak_memory_bytes: int | None = None
    machine_load: dict | None = None
    warnings: list[str] = field(default_factory=list)

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
class Probe:
    """The parity probe of one workload: its examples, order and the reference's answers in float64."""

    n: int
    batch_size: int
    order: np.ndarray | None
    ref_gradients: Params
    ref_update: Params
    # float32 only: the float32 reference's own errors against float64 on this probe.
    ref32_grad_error: float | None = None
    ref32_step_error: float | None = None

    def describe(self) -> dict:
        """Return what the probe ran, for the results file."""
        short = self.n % self.batch_size
        return {"n": self.n, "batch_size": self.batch_size, "shuffled": self.order is not None, "last_batch": short}


@dataclass
class Workload:
    """The arrays every kernel trains and is checked on, made once per run (or per worker)."""

    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    params0: Params
    probe: Probe
    # The reference's trajectory on this workload, for the checks of the timed epochs.
    trajectory: Trajectory | None = None


def reference_check(seed: int) -> float:
    """Return the reference's gradient error against central finite differences on a small net."""
    rng = np.random.default_rng(seed)
    params = init_params(FD_SIZES, seed)
    X = rng.random((5, FD_SIZES[0]))
    Y = one_hot(rng.integers(0, FD_SIZES[-1], 5), "float64", FD_SIZES[-1])
    reference = implementations.get(implementations.REFERENCE)
    return max_rel_error(reference.gradients(params, X, Y), finite_difference_gradients(params, X, Y))


def probe_size(n_train: int, batch_size: int) -> int:
    """Return how many examples the probe trains on: two or more full batches and a short last one.

    At least PROBE_MIN_EXAMPLES. The short batch is the run's own, ``n_train % batch_size``,
    so the probe takes the path the timed epochs' last batch takes; when the run has no
    short batch, half a batch (none at batch size 1). Never more than the training set.
    """
    full = max(2, math.ceil(PROBE_MIN_EXAMPLES / batch_size))
    return min(n_train, full * batch_size + (n_train % batch_size or batch_size // 2))


def update_of(stepped: Params, params0: Params) -> Params:
    """Return stepped - params0 in float64 (exact for float32 inputs): what one epoch changed."""
    return Params(
        [a.astype(np.float64) - b.astype(np.float64) for a, b in zip(stepped.weights, params0.weights)],
        [a.astype(np.float64) - b.astype(np.float64) for a, b in zip(stepped.biases, params0.biases)],
    )


def make_probe(config: RunConfig, X: np.ndarray, Y: np.ndarray, X64: np.ndarray, Y64: np.ndarray) -> Probe:
    """Return the probe for ``config``: the reference's float64 gradients and update on X64[:n], Y64[:n].

    X and Y are the run's arrays in its dtype (for the float32 reference's own error);
    X64 and Y64 the same examples in float64.
    """
    n = probe_size(len(X), config.batch_size)
    order = batch_order(n, config.seed, 0) if config.shuffle else None
    reference = implementations.get(implementations.REFERENCE)
    params0 = init_params(config.sizes, config.seed, config.dtype)
    ref_params = params0.astype("float64")
    probe = Probe(
        n=n,
        batch_size=config.batch_size,
        order=order,
        ref_gradients=reference.gradients(ref_params, X64[:n], Y64[:n]),
        ref_update=update_of(
            reference.train_epoch(ref_params, X64[:n], Y64[:n], config.batch_size, config.eta, order), ref_params
        ),
    )
    if config.dtype == "float32":
        probe.ref32_grad_error = max_rel_error(reference.gradients(params0, X[:n], Y[:n]), probe.ref_gradients)
        stepped = reference.train_epoch(params0, X[:n], Y[:n], config.batch_size, config.eta, order)
        probe.ref32_step_error = max_rel_error(update_of(stepped, params0), probe.ref_update)
    return probe


def make_workload(config: RunConfig, data: Dataset, verify: bool = True) -> Workload:
    """Return the training, test and probe arrays in the run's dtype, and the reference's answers.

    With ``verify``, the reference's trajectory of ``config.epochs`` epochs too, from the
    cache (:func:`bench.run.verify.ensure_trajectory`; the parent of a run fills it first).
    """
    n = len(data.train_images) if config.train_limit is None else config.train_limit
    X = scale_pixels(data.train_images[:n], config.dtype)
    Y = one_hot(data.train_labels[:n], config.dtype, config.sizes[-1])
    X_test = scale_pixels(data.test_images, config.dtype)
    # No kernel may write its inputs; read-only also lets a kernel (JAX) keep one copy of
    # the training set across epochs instead of copying it defensively every epoch.
    for array in (X, Y, X_test):
        array.setflags(write=False)
    # The probe is judged against float64: a float32 kernel is compared with the truth.
    m = probe_size(n, config.batch_size)
    X64 = scale_pixels(data.train_images[:m], "float64")
    Y64 = one_hot(data.train_labels[:m], "float64", config.sizes[-1])
    return Workload(
        X=X,
        Y=Y,
        X_test=X_test,
        y_test=data.test_labels,
        params0=init_params(config.sizes, config.seed, config.dtype),
        probe=make_probe(config, X, Y, X64, Y64),
        trajectory=ensure_trajectory(config, data)[0] if verify else None,
    )


def tolerances(impl: implementations.Implementation, probe: Probe, dtype: str) -> tuple[float, float]:
    """Return (gradient rtol, update rtol) for ``impl`` in ``dtype``, or raise ValueError for a bad declaration."""
    if dtype == "float64":
        rtol = impl.rtol.get("float64", implementations.DEFAULT_RTOL["float64"])
        if rtol > implementations.DEFAULT_RTOL["float64"]:
            raise ValueError(f"declares a float64 tolerance of {rtol:.0e}, looser than the contract's 1e-10")
        return rtol, rtol
    slack = 1.0
    if impl.float32_slack is not None:
        slack, reason = impl.float32_slack
        if not 1.0 <= slack <= MAX_FLOAT32_SLACK or not str(reason).strip():
            raise ValueError(f"float32_slack must be (factor in [1, {MAX_FLOAT32_SLACK:g}], reason), got {slack!r}")
    # eps32 as a floor: a probe where float32 rounding happens to cancel must not demand zero error.
    floor = float(np.finfo(np.float32).eps)
    grad = FLOAT32_FACTOR * slack * max(probe.ref32_grad_error, floor)
    step = FLOAT32_FACTOR * slack * max(probe.ref32_step_error, floor)
    return grad, step


def _dtype_problem(arrays: list[np.ndarray], dtype: str, what: str) -> str | None:
    """Return a sentence when any array is not a ``dtype`` ndarray, else None."""
    for array in arrays:
        got = getattr(array, "dtype", type(array).__name__)
        if str(got) != dtype:
            return f"{what} returned {got} arrays in a {dtype} run"
    return None


def check_parity(impl: implementations.Implementation, work: Workload, config: RunConfig, result: KernelResult) -> bool:
    """Return True when the kernel's gradients and probe epoch agree with the reference; else record why."""
    probe, dtype = work.probe, config.dtype
    result.probe = probe.describe()
    result.rtol, result.step_rtol = tolerances(impl, probe, dtype)
    X, Y = work.X[: probe.n], work.Y[: probe.n]
    nabla = impl.gradients(work.params0, X, Y)
    stepped = impl.train_epoch(work.params0, X, Y, probe.batch_size, config.eta, probe.order)
    problem = _dtype_problem(nabla.arrays(), dtype, "gradients") or _dtype_problem(
        stepped.arrays(), dtype, "train_epoch"
    )
    result.grad_max_rel_error = max_rel_error(nabla, probe.ref_gradients)
    result.step_max_rel_error = max_rel_error(update_of(stepped, work.params0), probe.ref_update)
    if impl.name == implementations.REFERENCE and dtype == "float64":
        # Compared with itself the reference reads 0 by construction: show its own check instead.
        result.grad_max_rel_error, result.rtol = reference_check(config.seed), FD_RTOL
        result.probe["gradients_checked_against"] = "central finite differences"
    if problem is None and result.grad_max_rel_error <= result.rtol and result.step_max_rel_error <= result.step_rtol:
        return True
    result.status = "parity-failed"
    kind = "shuffled" if probe.order is not None else "in order"
    where = f"probe of {probe.n} examples, batch {probe.batch_size}, {kind}"
    result.message = problem or (
        f"disagrees with the reference ({where}): gradient error {result.grad_max_rel_error:.2e} "
        f"(tolerance {result.rtol:.1e}), probe-epoch update error {result.step_max_rel_error:.2e} "
        f"(tolerance {result.step_rtol:.1e})"
    )
    return False


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


def _cpu_busy_seconds() -> float | None:
    """Return the seconds every CPU of the machine spent busy since boot (Linux /proc/stat), or None."""
    try:
        fields = open("/proc/stat").readline().split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


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
        busy0, own0, wall0 = _cpu_busy_seconds(), _own_cpu_seconds(), time.perf_counter()
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
        busy1, own1, wall = _cpu_busy_seconds(), _own_cpu_seconds(), time.perf_counter() - wall0
        others = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - (own1 - own0)) / wall
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
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
