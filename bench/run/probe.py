"""The parity probe and the workload: the quick gate every kernel passes before any of it is timed.

:func:`make_workload` makes the arrays every kernel trains and is checked on (in the
run's dtype, read-only), the probe's float64 answers, and the reference's trajectory
(:mod:`bench.run.trajectory`) that the timed epochs are checked against.

The parity probe runs the kernel's own ``train_epoch`` on the first examples of
the run's own training array, with the run's batch size (1 included) and order
kind (in order, or a seeded shuffle), and with the run's own short last batch; it
compares the *update* (parameters after minus before) with the float64 reference's
update, and the gradients on the same examples, array by array (:func:`max_rel_error`).
Every returned array must have the run's dtype. Tolerances:

- float64: ``rtol`` 1e-10 (see DEFAULT_RTOL in :mod:`implementations`).
- float32: FLOAT32_FACTOR times the float32 reference's own error against float64
  on the same probe, measured in every run; a kernel may loosen it, by at most
  MAX_FLOAT32_SLACK, with a stated reason (``float32_slack``).

The reference's own row shows its check against central finite differences
(:func:`reference_check`) instead of a comparison with itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import implementations
from bench.results.schema import KernelResult
from bench.run.config import RunConfig
from bench.run.data import Dataset, one_hot, scale_pixels
from bench.run.trajectory import Trajectory, ensure_trajectory
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
