"""Numba kernels at 1, 2, 4 and 8 threads and at every batch-remainder path, against the float64 reference.

Numba checks no index, so a scratch buffer sized for one thread count or batch size and
written at another is overrun silently: the result is merely wrong. numba-sparse sized its
per-thread scratch for the split batch, ceil(m / threads) examples a slice, and an epoch's
short last batch under ``_MIN_PARALLEL_BATCH``, which goes whole to one slice, ran past it:
before the fix, 16 of these cases failed at 2 threads and 32 at 4 and 8, with errors of 2e-3
to 1e-1 after one epoch (5e-15 at worst on one thread).

Numba's thread count is fixed when it is imported, so each count runs in a fresh interpreter
with ``NUMBA_NUM_THREADS`` set; more threads than cores is fine here, where the split is what
is tested and not its speed. The kernels load from Numba's on-disk cache after the first run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from implementations.core import init_params
from implementations.kernels import numba_fastmath, numba_jit, numba_parallel, numba_sparse
from tests.conftest import random_batch

RTOL64 = 1e-10
ROOT = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter; prints {kernel: {case: max_rel_error against the reference}} as JSON.
# Remainders of a batch of 100 (n = 200 + r): a short last batch of up to 63 examples goes whole to
# one slice (numba-sparse splits only batches of 64 or more), a longer one is split; 52 and 53 sit at
# ceil(100 / 2), the old slice width on two threads. Batch 64 ends in 36 and 56; n = r alone makes the
# batch size exceed n, and n = 1-5 is fewer examples than threads.
PROBE = """
import json
import numpy as np
from implementations.kernels import numba_parallel, numba_sparse, vectorized
from implementations.core import init_params, max_rel_error, train_epoch_with
from tests.conftest import sparse_batch

REMAINDERS = (1, 2, 3, 4, 5, 31, 32, 33, 52, 53, 63, 64, 65, 99)
KERNELS = (numba_sparse, numba_parallel)
errors = {k.name: {} for k in KERNELS}
rng = np.random.default_rng(33)
for sizes in ([784, 30, 10], [784, 64, 32, 10]):
    params = init_params(sizes, seed=31)
    X, Y = sparse_batch(sizes, 300, seed=32)
    epochs = [(100, 200 + r) for r in REMAINDERS] + [(64, 164), (64, 184), (10, 203), (1, 9)]
    if sizes == [784, 30, 10]:
        epochs += [(100, r) for r in REMAINDERS]
    for batch_size, n in epochs:
        for order in (None, rng.permutation(n)):
            expected = train_epoch_with(vectorized.gradients, params, X[:n], Y[:n], batch_size, 3.0, order)
            case = f"{sizes} batch {batch_size} n {n} {'in order' if order is None else 'shuffled'}"
            for k in KERNELS:
                got = k.train_epoch(params, X[:n], Y[:n], batch_size, 3.0, order)
                errors[k.name][case] = max_rel_error(got, expected)
    for n in REMAINDERS + tuple(200 + r for r in REMAINDERS):
        expected = vectorized.gradients(params, X[:n], Y[:n])
        for k in KERNELS:
            errors[k.name][f"{sizes} gradients n {n}"] = max_rel_error(k.gradients(params, X[:n], Y[:n]), expected)
print(json.dumps(errors))
"""


def errors_at(threads: int) -> dict[str, dict[str, float]]:
    """Return PROBE's errors, run with ``threads`` Numba threads (BLAS on one, as the harness runs them)."""
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2, 4, 8])
def test_every_remainder_path_matches_reference(threads):
    errors = errors_at(threads)
    for kernel, cases in errors.items():
        wrong = {case: error for case, error in cases.items() if not error <= RTOL64}
        assert not wrong, f"{kernel} at {threads} threads: {wrong}"


# Numba checks no index either when a batch is empty or an order is bad: the wrappers must.


@pytest.mark.parametrize("kernel", [numba_jit, numba_parallel, numba_fastmath, numba_sparse], ids=lambda k: k.name)
def test_no_examples_give_zero_gradients_and_an_unchanged_epoch(kernel):
    """Exactly zero: a value read past an empty buffer passes a relative test against zero."""
    params = init_params([20, 7, 3], seed=34)
    X, Y = random_batch([20, 7, 3], 0, seed=35)
    assert not any(a.any() for a in kernel.gradients(params, X, Y).arrays())
    for batch_size in (1, 10):
        got = kernel.train_epoch(params, X, Y, batch_size, 3.0)
        assert all(np.array_equal(p, q) for p, q in zip(got.arrays(), params.arrays()))


@pytest.mark.parametrize("kernel", [numba_jit, numba_parallel, numba_fastmath, numba_sparse], ids=lambda k: k.name)
@pytest.mark.parametrize("batch_size", [1, 2])
def test_bad_orders_are_refused(kernel, batch_size):
    params = init_params([20, 7, 3], seed=36)
    X, Y = random_batch([20, 7, 3], 5, seed=37)
    for order in (np.arange(4), np.arange(6), np.array([0, 1, 2, 3, 5]), np.array([0, 1, 2, 3, -1])):
        with pytest.raises(ValueError, match="order"):
            kernel.train_epoch(params, X, Y, batch_size, 3.0, order)
