"""Outcome verification: every timed epoch and every prediction checked against the float64 reference.

The parity probe (:mod:`bench.run.probe`) is the quick gate before timing, but it is a
small, recognisable call: a kernel could do less on large inputs, stop learning after
its first calls, or corrupt memory only on the timed path. So the timed work itself
is checked, outside the timing, against the reference's trajectory on the same
workload (:mod:`bench.run.trajectory`). After each timed epoch (:func:`check_epoch`):
the kernel's parameters against the reference's after the same epoch, array by array
(max|p - p_ref| / max|p_ref|); the kernel's test-set labels against the reference's
labels *for the kernel's own parameters* (its ``predict``); and its correct test images
against the reference's.

Tolerances come from measurement (``scripts/drift.py``, results in
``results/reference/drift-*.json``; docs/kernels-and-tolerances.md gives the figures):
:data:`NOISE_FACTOR` times the workload's own noise for float64 parameters,
:data:`FLOAT32_EPOCH_FACTOR` times it for float32, :data:`TIE_ATOL` for labels,
:data:`ACCURACY_IMAGES` for accuracy below :data:`CHAOS_NOISE`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

import implementations
from bench.run.trajectory import Trajectory
from implementations.core import Params, feedforward

# Parameters after an epoch. How far rounding alone carries an honest kernel depends on the
# workload. At batch 100 it stays near 1e-15 over ten full-MNIST epochs; at batch 10 SGD
# amplifies it to 1e-3 within one epoch and to 0.3 within ten, and at batch 1 (eta 3) runs
# one ulp apart end 15% of the test set apart in accuracy. So each trajectory measures its
# own "noise": how far a run from parameters one ulp away drifts (float64), or the float32
# reference from the float64 one where larger (float32). Honest kernels sat at 0.07-1.23x the
# noise (results/reference/drift-*.json). float64: at most NOISE_FACTOR times the noise and
# never less than the probe's 1e-10 (DEFAULT_RTOL); float32: FLOAT32_EPOCH_FACTOR times it
# (times a kernel's float32_slack), never less than 20 eps32.
NOISE_FACTOR = 20.0
FLOAT32_EPOCH_FACTOR = 20.0
# Past this noise the trajectory is chaotic: parameters can only be checked to the noise's
# own order and accuracies are not comparable; the predict check stays exact.
CHAOS_NOISE = 1e-4
# A label may differ from the reference's only where the reference's outputs for the
# kernel's parameters tie to within this (outputs lie in (0, 1)): float64 kernels' outputs
# differ from the reference's by ~1e-16, float32 kernels' by ~1e-7.
TIE_ATOL = {"float64": 1e-12, "float32": 1e-5}
# Below CHAOS_NOISE, correct test images may differ from the reference's by this many
# (honest kernels: 0 in every epoch measured, float64 and float32).
ACCURACY_IMAGES = 1


@dataclass
class EpochCheck:
    """What the check of one timed epoch found; ``problem`` is None when everything agreed."""

    epoch: int
    error: float
    array: str
    tolerance: float
    correct: int
    reference_correct: int
    # None: not compared (a chaotic trajectory, see CHAOS_NOISE).
    allowed_images: int | None
    noise: float
    labels_differ: int
    labels_tied: int
    problem: str | None = None

    def to_json(self) -> dict:
        """Return a JSON-ready dict."""
        return asdict(self)


def noise(trajectory: Trajectory, epoch: int) -> float:
    """Return how far rounding alone carries a run of this workload by ``epoch``: the nudged run's
    distance, or the float32 reference's where larger (float32 runs)."""
    drift32 = trajectory.drift32
    return max(trajectory.spread[epoch], drift32[epoch] if drift32 is not None else 0.0)


def epoch_tolerance(impl: implementations.Implementation, trajectory: Trajectory, epoch: int, dtype: str) -> float:
    """Return the largest accepted relative error of the parameters after ``epoch`` (0-based)."""
    if dtype == "float64":
        return max(implementations.DEFAULT_RTOL["float64"], NOISE_FACTOR * noise(trajectory, epoch))
    slack = impl.float32_slack[0] if impl.float32_slack is not None else 1.0
    floor = 20 * float(np.finfo(np.float32).eps)
    return FLOAT32_EPOCH_FACTOR * slack * max(noise(trajectory, epoch), floor)


def allowed_images(trajectory: Trajectory, epoch: int) -> int | None:
    """Return how many correct test images a kernel may differ by from the reference after ``epoch``,
    or None where the trajectory is chaotic and accuracies are not comparable."""
    return None if noise(trajectory, epoch) > CHAOS_NOISE else ACCURACY_IMAGES


def worst_array(got: Params, ref: Params) -> tuple[float, str]:
    """Return (max|got - ref| / max|ref| over arrays, the worst array's name, e.g. "weights[0]")."""
    names = [f"weights[{l}]" for l in range(len(ref.weights))] + [f"biases[{l}]" for l in range(len(ref.biases))]
    worst, where = 0.0, names[0]
    for name, x, r in zip(names, got.arrays(), ref.arrays()):
        error = implementations.max_rel_error(Params([x], []), Params([r], []))
        if not error <= worst:  # NaN and inf count as the worst
            worst, where = error, name
    return worst, where


def label_check(params: Params, labels: np.ndarray, X_test: np.ndarray, dtype: str) -> tuple[int, int, str | None]:
    """Return (labels that differ from the reference's, of which at ties, problem or None).

    The reference's labels are computed in float64 from the kernel's own ``params``; a
    label may differ only where the reference's outputs tie to within TIE_ATOL[dtype].
    """
    labels = np.asarray(labels)
    if labels.shape != (len(X_test),):
        return len(X_test), 0, f"predict returned shape {labels.shape}, expected ({len(X_test)},)"
    outputs = feedforward(params.astype("float64"), X_test.astype(np.float64, copy=False))
    best = outputs.max(axis=1)
    valid = (labels >= 0) & (labels < outputs.shape[1])
    chosen = np.where(valid, outputs[np.arange(len(labels)), np.clip(labels, 0, outputs.shape[1] - 1)], -np.inf)
    differ = chosen < best
    tied = differ & (best - chosen <= TIE_ATOL[dtype])
    n_differ, n_tied = int(differ.sum()), int(tied.sum())
    if n_differ > n_tied:
        i = int(np.flatnonzero(differ & ~tied)[0])
        right = int(np.argmax(outputs[i]))
        return (
            n_differ,
            n_tied,
            (
                f"predict disagrees with the reference on {n_differ - n_tied} of {len(labels)} test images for "
                f"the same parameters (first: image {i}, label {int(labels[i])}, reference {right})"
            ),
        )
    return n_differ, n_tied, None


def check_epoch(
    impl: implementations.Implementation,
    params: Params,
    labels: np.ndarray,
    epoch: int,
    trajectory: Trajectory,
    X_test: np.ndarray,
    y_test: np.ndarray,
    dtype: str,
) -> EpochCheck:
    """Return the check of the parameters after timed epoch ``epoch`` (0-based) and of ``labels``, their predict."""
    error, array = worst_array(params, trajectory.params[epoch])
    tolerance = epoch_tolerance(impl, trajectory, epoch, dtype)
    differ, tied, problem = label_check(params, labels, X_test, dtype)
    correct = int(np.sum(np.asarray(labels).reshape(-1)[: len(y_test)] == y_test)) if problem is None else 0
    check = EpochCheck(
        epoch=epoch,
        error=error,
        array=array,
        tolerance=tolerance,
        correct=correct,
        reference_correct=trajectory.correct[epoch],
        allowed_images=allowed_images(trajectory, epoch),
        noise=noise(trajectory, epoch),
        labels_differ=differ,
        labels_tied=tied,
    )
    if not error <= tolerance:
        check.problem = (
            f"epoch {epoch}: {array} differs from the reference's after the same epoch by {error:.2e} "
            f"relative (tolerance {tolerance:.1e})"
        )
    elif problem is not None:
        check.problem = f"epoch {epoch}: {problem}"
    elif check.allowed_images is not None and abs(correct - check.reference_correct) > check.allowed_images:
        check.problem = (
            f"epoch {epoch}: {correct} test images right against the reference's {check.reference_correct} "
            f"(at most {check.allowed_images} apart)"
        )
    return check
