"""The steps of ``backprop-bench check``: one kernel against the float64 reference, array by array.

It is what a student runs after filling in ``backprop``. It compares the kernel's
gradients with the reference's on several small networks (depth 2 to 4, odd widths,
and one with MNIST's 784 inputs and 10 outputs) at a batch of 7, on the MNIST-shaped
network at the batch sizes people train with (10, 64, 100, 128), with central finite
differences and at batch size 1. Then it checks SGD epochs: in batches of 5 (in order,
and with a short last batch), shuffled at batch size 1, at each of those training batch
sizes with a short last batch (2 batches and 7 examples), and shuffled in batches of 100;
then float32 where the kernel supports it. It stops at the first disagreement, names the
first wrong array in the order backprop computes them (the output layer's biases first,
where a wrong delta shows first), and says what the mistake looks like when it fits a
known one (:mod:`bench.check.diagnose`).

The last step, the speed step, is :mod:`bench.check.speed`'s. Nothing here prints: :mod:`bench.cli.check` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import implementations
from bench.check.diagnose import DIAGNOSIS_RTOL, Case, diagnose, oracle, rel_error, shape_diagnosis
from bench.run.data import one_hot
from bench.run.probe import FD_RTOL, Probe, tolerances, update_of
from implementations.core import Params, batch_order, finite_difference_gradients, init_params
from implementations.plugins.validate import KernelOutputError, backprop_order, display_path

# Depth 2 to 4 with odd, distinct widths (a transposed matrix never has the right
# shape), and MNIST's 784 inputs and 10 outputs for kernels that size buffers by them.
NETWORKS = ([13, 5], [11, 7, 3], [9, 7, 5, 3], [784, 15, 10])
# Odd and prime: a result off by the batch size is told apart from other factors.
BATCH = 7
# Central differences cost two forward passes per parameter: a small network (39 parameters).
FD_SIZES, FD_EXAMPLES = [5, 4, 3], 3
EPOCH_SIZES = [11, 7, 3]
# The batch sizes people train with (the book's 10, the harness's 100, powers of two): a
# kernel may take another path for large batches (blocks, threads, buffers sized by the batch).
TRAINING_BATCHES = (10, 64, 100, 128)
# The short last batch of the epochs at those sizes, after two full batches.
SHORT_BATCH = 7
# The shuffled epoch in training-sized batches uses the harness's default batch size.
SHUFFLED_BATCH = 100
ETA = 3.0


@dataclass
class CheckStep:
    """One line of the check: what was compared, "ok", "FAIL" or "skipped", and the figure or the reason."""

    label: str
    status: str
    detail: str = ""


@dataclass
class CheckResult:
    """What ``check`` found: every step run, and the one-line verdict."""

    name: str
    source: str
    details: str
    steps: list[CheckStep] = field(default_factory=list)
    verdict: str = ""

    @property
    def passed(self) -> bool:
        """Return True when no step failed."""
        return all(step.status != "FAIL" for step in self.steps)


class Failure(Exception):
    """A step's disagreement, already phrased for the verdict."""


def _batch(sizes: list[int], n: int, seed: int, dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """Return (X, Y): n inputs uniform in [0, 1) of shape (n, sizes[0]) and one-hot targets (n, sizes[-1])."""
    rng = np.random.default_rng([seed, n, *sizes])
    X = rng.random((n, sizes[0])).astype(dtype)
    return X, one_hot(rng.integers(0, sizes[-1], n), dtype, sizes[-1])


def _label(impl: implementations.Implementation, kind: str, l: int, sizes: list[int]) -> str:
    """Return e.g. "nabla_w[0] (layer 1: 13 -> 5)", in the kernel's own names for the arrays."""
    own = dict(zip(("weights", "biases"), impl.array_names))[kind]
    return f"{own}[{l}] (layer {l + 1}: {sizes[l]} -> {sizes[l + 1]})"


def _call(impl: implementations.Implementation, function: str, *args) -> object:
    """Return impl.function(*args); a kernel's exception becomes a Failure quoting the user's line."""
    try:
        return getattr(impl, function)(*args)
    except KernelOutputError:
        raise
    except Exception as exc:
        raise Failure(f"{function} raised {type(exc).__name__}: {exc} (at {implementations.user_frame(exc)})") from None


def _compare(
    impl: implementations.Implementation,
    got: Params,
    ref: Params,
    sizes: list[int],
    where: str,
    rtol: float,
    case: Case | None,
) -> float:
    """Return the worst array error; raise Failure naming the first wrong array (backprop order) and its diagnosis."""
    worst = 0.0
    for kind, l in backprop_order(len(sizes) - 1):
        error = rel_error(getattr(got, kind)[l], getattr(ref, kind)[l])
        if error > rtol:
            label = _label(impl, kind, l, sizes)
            diagnosis = diagnose(getattr(got, kind)[l], getattr(ref, kind)[l], (kind, l), case) if case else None
            differs = f"differs from the right array by {error:.1e} relative (tolerance {rtol:.1e})"
            raise Failure(f"{label}, {where}: {diagnosis or differs}")
        worst = max(worst, error)
    return worst


def _gradients(
    impl: implementations.Implementation, sizes: list[int], n: int, seed: int, dtype: str, rtol: float | None = None
) -> str:
    """Return the gradient error on one network and batch; raise Failure with the diagnosis."""
    params = init_params(sizes, seed, dtype)
    X, Y = _batch(sizes, n, seed, dtype)
    rtol = rtol if rtol is not None else implementations.DEFAULT_RTOL["float64"]
    # float32 results fit an explanation only to float32's accuracy.
    tol = max(DIAGNOSIS_RTOL, 10 * rtol)
    case = Case(params.astype("float64"), X.astype(np.float64), Y.astype(np.float64), tol)
    ref = oracle().gradients(case.params, case.X, case.Y)
    where = f"sizes {sizes}, batch of {n}" + ("" if dtype == "float64" else f", {dtype}")
    try:
        got = _call(impl, "gradients", params, X, Y)
    except KernelOutputError as exc:
        raise Failure(_output_failure(impl, exc, ref, sizes, where, n)) from None
    return f"max error {_compare(impl, got, ref, sizes, where, rtol, case):.1e}"


def _output_failure(
    impl: implementations.Implementation, exc: KernelOutputError, ref: Params, sizes: list[int], where: str, n: int
) -> str:
    """Return the failure for a result of the wrong shape, dtype or kind: diagnosed where the shape tells."""
    if exc.key is not None and isinstance(exc.value, np.ndarray):
        kind, l = exc.key
        expected = getattr(ref, kind)[l]
        shape_matters = exc.value.shape not in (expected.shape, exc.expected_shape)
        if shape_matters:
            diagnosis = shape_diagnosis(exc.value, expected, kind, n)
            return f"{_label(impl, kind, l, sizes)}, {where}: {diagnosis} (returned by {exc.where})"
    return f"{where}: {exc} (at {exc.where})" if exc.where else f"{where}: {exc}"


def _finite_differences(impl: implementations.Implementation, seed: int) -> str:
    """Return the gradient error against central differences on a small network; raise Failure otherwise."""
    params = init_params(FD_SIZES, seed)
    X, Y = _batch(FD_SIZES, FD_EXAMPLES, seed)
    estimate = finite_difference_gradients(params, X, Y)
    where = f"sizes {FD_SIZES}, {FD_EXAMPLES} examples, against central differences"
    try:
        got = _call(impl, "gradients", params, X, Y)
    except KernelOutputError as exc:
        raise Failure(_output_failure(impl, exc, estimate, FD_SIZES, where, FD_EXAMPLES)) from None
    return f"max error {_compare(impl, got, estimate, FD_SIZES, where, FD_RTOL, None):.1e}"


def _epoch(
    impl: implementations.Implementation,
    n: int,
    batch_size: int,
    shuffled: bool,
    seed: int,
    hint: str | Callable[[], str] = "",
    dtype: str = "float64",
    rtol: float | None = None,
) -> str:
    """Return the error of one SGD epoch's update against the reference's; raise Failure naming the array.

    ``hint`` is added to a disagreement's message; a callable one is called only then.
    """
    sizes = EPOCH_SIZES if dtype == "float64" else NETWORKS[-1]
    params = init_params(sizes, seed, dtype)
    X, Y = _batch(sizes, n, seed, dtype)
    order = batch_order(n, seed, 0) if shuffled else None
    params64 = params.astype("float64")
    reference = oracle().train_epoch(params64, X.astype(np.float64), Y.astype(np.float64), batch_size, ETA, order)
    where = f"the update of one SGD epoch, {_epoch_words(n, batch_size, shuffled)}" + (
        "" if dtype == "float64" else f", {dtype}"
    )
    try:
        stepped = _call(impl, "train_epoch", params, X, Y, batch_size, ETA, order)
    except KernelOutputError as exc:
        raise Failure(f"{where}: {exc}" + (f" (at {exc.where})" if exc.where else "")) from None
    rtol = rtol if rtol is not None else implementations.DEFAULT_RTOL["float64"]
    try:
        worst = _compare(impl, update_of(stepped, params), update_of(reference, params64), sizes, where, rtol, None)
    except Failure as failure:
        raise Failure(f"{failure}{hint() if callable(hint) else hint}") from None
    return f"max error {worst:.1e}"


def _epoch_words(n: int, batch_size: int, shuffled: bool) -> str:
    """Return e.g. "23 examples in batches of 5, the last of 3"."""
    words = f"{n} examples in batches of {batch_size}"
    if n % batch_size:
        words += f", the last of {n % batch_size}"
    return words + (", shuffled" if shuffled else "")


def _float32(impl: implementations.Implementation, seed: int) -> list[tuple[str, Callable[[], str]]]:
    """Return the float32 steps, judged as the harness does: against float64, scaled by float32's own error."""
    sizes, n, batch_size = NETWORKS[-1], 23, 5
    params32 = init_params(sizes, seed, "float32")
    X32, Y32 = _batch(sizes, n, seed, "float32")
    params64, X64, Y64 = params32.astype("float64"), X32.astype(np.float64), Y32.astype(np.float64)
    reference = oracle()
    ref_gradients = reference.gradients(params64, X64, Y64)
    ref_update = update_of(reference.train_epoch(params64, X64, Y64, batch_size, ETA), params64)
    probe = Probe(
        n=n,
        batch_size=batch_size,
        order=None,
        ref_gradients=ref_gradients,
        ref_update=ref_update,
        ref32_grad_error=implementations.max_rel_error(reference.gradients(params32, X32, Y32), ref_gradients),
        ref32_step_error=implementations.max_rel_error(
            update_of(reference.train_epoch(params32, X32, Y32, batch_size, ETA), params32), ref_update
        ),
    )
    try:
        grad_rtol, step_rtol = tolerances(impl, probe, "float32")
    except ValueError as exc:
        return [("float32 tolerance", lambda message=f"float32: {exc}": _fail(message))]
    return [
        (
            f"float32 gradients, sizes {sizes}, batch of {n}",
            lambda: _gradients(impl, sizes, n, seed, "float32", grad_rtol),
        ),
        (
            f"float32 SGD epoch, {_epoch_words(n, batch_size, False)}",
            lambda: _epoch(impl, n, batch_size, False, seed, dtype="float32", rtol=step_rtol),
        ),
    ]


def _warm_up(impl: implementations.Implementation, dtype: str) -> str:
    """Return "" once the kernel's warm-up ran; its exception becomes a Failure quoting the user's line."""
    _call(impl, "warm_up", NETWORKS[-1], dtype)
    return ""


def _fail(message: str) -> str:
    """Raise Failure(message): a step that can only fail."""
    raise Failure(message)


# The epochs run in this order, so when one fails the ones before it agreed.
_SHORT_BATCH_HINT = (
    "; the same epoch without a short batch agrees, so the short last batch is handled wrongly "
    "(its step divides by its own length)"
)
_ORDER_HINT = "; the in-order epochs agree, so batch size 1 or the shuffled order (X[order]) is handled wrongly"


def _training_batch_hint(impl: implementations.Implementation, batch_size: int, seed: int) -> Callable[[], str]:
    """Return the hint of a failed epoch in training-sized batches: whether its full batches or its short one is wrong.

    It runs the same epoch without the short batch, so it costs nothing unless the epoch failed.
    """

    def hint() -> str:
        n = 2 * batch_size
        try:
            _epoch(impl, n, batch_size, False, seed)
        except Failure:
            return (
                f"; the epoch of {n} examples (no short batch) disagrees too, while the gradients at a batch "
                f"of {batch_size} and the epochs in batches of 5 agree, so full batches of {batch_size} "
                "are updated wrongly"
            )
        return (
            f"; the epoch of {n} examples (no short batch) agrees, so the short last batch is handled wrongly "
            "at this batch size (its step divides by its own length)"
        )

    return hint


def _plan(impl: implementations.Implementation, seed: int) -> list[tuple[str, Callable[[], str]]]:
    """Return every (label, step) of the check, in order: each step returns its figure or raises Failure."""
    steps: list[tuple[str, Callable[[], str]]] = [
        (
            f"gradients, sizes {sizes}, batch of {BATCH}",
            lambda sizes=sizes: _gradients(impl, sizes, BATCH, seed, "float64"),
        )
        for sizes in NETWORKS
    ]
    steps += [
        (
            f"gradients, sizes {NETWORKS[-1]}, batch of {n}",
            lambda n=n: _gradients(impl, NETWORKS[-1], n, seed, "float64"),
        )
        for n in TRAINING_BATCHES
    ]
    steps += [
        (f"finite differences, sizes {FD_SIZES}", lambda: _finite_differences(impl, seed)),
        (f"batch size 1, sizes {EPOCH_SIZES}", lambda: _gradients(impl, EPOCH_SIZES, 1, seed, "float64")),
        (f"SGD epoch, {_epoch_words(20, 5, False)}", lambda: _epoch(impl, 20, 5, False, seed)),
        (
            f"SGD epoch, {_epoch_words(23, 5, False)}",
            lambda: _epoch(impl, 23, 5, False, seed, hint=_SHORT_BATCH_HINT),
        ),
        (
            f"SGD epoch, {_epoch_words(9, 1, True)}",
            lambda: _epoch(impl, 9, 1, True, seed, hint=_ORDER_HINT),
        ),
    ]
    for b in TRAINING_BATCHES:
        n = 2 * b + SHORT_BATCH
        steps.append(
            (
                f"SGD epoch, {_epoch_words(n, b, False)}",
                lambda n=n, b=b: _epoch(impl, n, b, False, seed, hint=_training_batch_hint(impl, b, seed)),
            )
        )
    b, n = SHUFFLED_BATCH, 2 * SHUFFLED_BATCH + SHORT_BATCH
    hint = "; the same epoch in order agrees, so the shuffled order (X[order]) is handled wrongly"
    steps.append((f"SGD epoch, {_epoch_words(n, b, True)}", lambda: _epoch(impl, n, b, True, seed, hint=hint)))
    return steps


def check_kernel(spec: str, seed: int = 1) -> CheckResult:
    """Return the result of checking the kernel ``spec`` names (a file, module, nielsen: spec or name).

    Raises UnknownImplementation (one line) when the spec cannot be loaded at all:
    that is bad input, not a wrong kernel.
    """
    name = implementations.resolve(spec)
    impl = implementations.get(name)
    source = display_path(impl.source) if os.path.isabs(impl.source) else impl.source
    result = CheckResult(name=name, source=source, details="")
    # First, so that compilation stays out of the other steps and the Nielsen adapter knows its form.
    if not run_step(result, f"warm-up, sizes {NETWORKS[-1]}", lambda: _warm_up(impl, "float64")):
        return result
    result.details = impl.details()
    for label, step in _plan(impl, seed):
        if not run_step(result, label, step):
            return result
    if "float32" not in impl.dtypes:
        result.steps.append(CheckStep("float32", "skipped", "the kernel does not list float32 in its dtypes"))
    else:
        steps = [(f"float32 warm-up, sizes {NETWORKS[-1]}", lambda: _warm_up(impl, "float32")), *_float32(impl, seed)]
        for label, step in steps:
            if not run_step(result, label, step):
                return result
    passed = sum(step.status == "ok" and "warm-up" not in step.label for step in result.steps)
    result.verdict = f"PASS {name}: agrees with the float64 reference in all {passed} checks"
    return result


def run_step(result: CheckResult, label: str, step: Callable[[], str]) -> bool:
    """Return True when the step agreed; record it in ``result`` either way (and the verdict on failure)."""
    try:
        detail = step()
    except Failure as failure:
        result.steps.append(CheckStep(label, "FAIL", str(failure)))
        result.verdict = f"FAIL {result.name}: {failure}"
        return False
    result.steps.append(CheckStep(label, "ok", detail))
    return True
