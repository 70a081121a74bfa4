"""Measure how far honest kernels drift from the float64 reference's trajectory: the figures behind bench.run.verify.

For one workload (batch size, order, dtype, training images, epochs) it computes the
reference's trajectory with :func:`bench.run.trajectory.compute_trajectory` (with its nudged
twin, and the float32 reference in a float32 run), then trains each kernel in this
process from the same parameters in the same batch order and records, after every
epoch, its relative distance from the reference's parameters, its correct test images,
and how many of its labels differ from the reference's labels for its own parameters.
The ratio of a kernel's distance to the nudged run's (float64) or to the float32
reference's (float32) is what the tolerances in :mod:`bench.run.verify` are set against::

    python scripts/drift.py --dtype float64 --batch-size 100 --out drift.json

Kernels run on one thread unless the environment says otherwise.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import implementations
from bench.run.config import RunConfig
from bench.run.data import load_dataset, one_hot, scale_pixels
from bench.run.machine import machine_info
from bench.run.trajectory import compute_trajectory
from bench.run.verify import label_check, worst_array
from implementations.core import batch_order, init_params

KERNELS = ("loop", "numba", "numba-sparse", "numba-parallel", "torch", "jax")


def measure(config: RunConfig, names: list[str]) -> dict:
    """Return the reference's trajectory figures and each kernel's drift from it, epoch by epoch."""
    data = load_dataset(config.dataset)
    start = time.perf_counter()
    trajectory = compute_trajectory(config, data)
    seconds = time.perf_counter() - start
    n = len(data.train_images) if config.train_limit is None else config.train_limit
    X = scale_pixels(data.train_images[:n], config.dtype)
    Y = one_hot(data.train_labels[:n], config.dtype, config.sizes[-1])
    X_test = scale_pixels(data.test_images, config.dtype)
    for array in (X, Y, X_test):
        array.setflags(write=False)
    out = {
        "config": {k: getattr(config, k) for k in ("dtype", "batch_size", "shuffle", "epochs", "train_limit", "eta")},
        "reference_seconds": seconds,
        "reference_correct": trajectory.correct,
        "spread": trajectory.spread,
        "nudged_correct": trajectory.correct_nudged,
        "drift32": trajectory.drift32,
        "float32_reference_correct": trajectory.correct32,
        "kernels": {},
    }
    for name in names:
        if name not in implementations.registry.available():
            continue
        impl = implementations.get(name)
        impl.warm_up(config.sizes, config.dtype, n_train=n, batch_size=config.batch_size, shuffle=config.shuffle)
        if impl.prepare is not None:
            impl.prepare(X, Y)
        params = init_params(config.sizes, config.seed, config.dtype)
        rows = []
        for epoch in range(config.epochs):
            order = batch_order(n, config.seed if config.shuffle else None, epoch)
            params = impl.train_epoch(params, X, Y, config.batch_size, config.eta, order)
            error, array = worst_array(params, trajectory.params[epoch])
            labels = impl.predict(params, X_test)
            differ, tied, _ = label_check(params, labels, X_test, config.dtype)
            rows.append(
                {
                    "error": error,
                    "array": array,
                    "correct": int(np.sum(labels == data.test_labels)),
                    "labels_differ": differ,
                    "labels_tied": tied,
                }
            )
        out["kernels"][name] = rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--shuffle", action="store_true")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-limit", type=int)
    parser.add_argument("--impl", action="append", help="kernels (default: every available one of KERNELS)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    config = RunConfig(
        impls=[],
        dtype=args.dtype,
        batch_size=args.batch_size,
        shuffle=args.shuffle,
        epochs=args.epochs,
        train_limit=args.train_limit,
    )
    result = {"machine": machine_info(), **measure(config, args.impl or list(KERNELS))}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
