"""numba-sparse: what is specific to the sparse-input kernel, against the float64 reference.

The parametrized contract tests (tests/test_kernels.py, tests/test_float32.py) already
hold it to the shared rules. Here: inputs whose density varies row by row (all-zero
rows, rows with fewer non-zeros than a block, dense rows), both ways of applying the
w^1 gradient (tracked rows below ``_ALL_ROWS_BATCH``, all rows above), the index that
``prepare`` keeps and when it must not be used, the per-example path touching only
the rows of non-zero pixels, the split over threads, and a scratch buffer too short for a
batch, which is refused rather than overrun. tests/test_numba_scratch.py runs every
batch-remainder path at 1, 2, 4 and 8 threads.
"""

from __future__ import annotations

import gc

import numba
import numpy as np
import pytest

from implementations.core import init_params, max_rel_error, train_epoch_with
from implementations.kernels import numba_sparse, vectorized
from tests.conftest import random_batch, sparse_batch

RTOL64 = 1e-10
DEPTHS = [[784, 30, 10], [784, 64, 32, 10], [12, 7, 5, 4, 3], [20, 10]]


def reference_epoch(params, X, Y, batch_size, order=None):
    """Return the reference's parameters after one epoch (the shared loop over vectorized gradients)."""
    return train_epoch_with(vectorized.gradients, params, X, Y, batch_size, 3.0, order)


@pytest.mark.parametrize("sizes", DEPTHS, ids=lambda s: "-".join(map(str, s)))
def test_gradients_with_varying_density(sizes):
    params = init_params(sizes, seed=1)
    for n in (1, 4, 37, 150):  # 150 also takes the all-rows path
        X, Y = sparse_batch(sizes, n, seed=n)
        assert max_rel_error(numba_sparse.gradients(params, X, Y), vectorized.gradients(params, X, Y)) <= RTOL64


def test_gradients_of_all_zero_inputs():
    params = init_params([784, 30, 10], seed=2)
    X, Y = random_batch([784, 30, 10], 6, seed=3)
    X[:] = 0
    got = numba_sparse.gradients(params, X, Y)
    assert not got.weights[0].any()  # nothing flows into w^1 from zero inputs
    assert max_rel_error(got, vectorized.gradients(params, X, Y)) <= RTOL64


@pytest.mark.parametrize("sizes", DEPTHS[:3], ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("batch_size", [2, 10, 100])
@pytest.mark.parametrize("shuffled", [False, True], ids=["in-order", "shuffled"])
def test_epoch_matches_reference(sizes, batch_size, shuffled):
    """230 examples: batches of 10 and 100 end with a short one (230 = 2 * 100 + 30)."""
    params = init_params(sizes, seed=4)
    X, Y = sparse_batch(sizes, 230, seed=5)
    order = np.random.default_rng(6).permutation(230) if shuffled else None
    got = numba_sparse.train_epoch(params, X, Y, batch_size, 3.0, order)
    assert max_rel_error(got, reference_epoch(params, X, Y, batch_size, order)) <= RTOL64


@pytest.mark.parametrize("sizes", DEPTHS[:3], ids=lambda s: "-".join(map(str, s)))
def test_per_example_epoch_matches_reference(sizes):
    """Batch size 1, a few steps only (rounding differences grow along an SGD trajectory)."""
    params = init_params(sizes, seed=7)
    X, Y = sparse_batch(sizes, 9, seed=8)
    for order in (None, np.random.default_rng(9).permutation(9)):
        got = numba_sparse.train_epoch(params, X, Y, 1, 3.0, order)
        assert max_rel_error(got, reference_epoch(params, X, Y, 1, order)) <= RTOL64


def test_per_example_step_touches_only_rows_of_nonzero_pixels():
    params = init_params([784, 30, 10], seed=10)
    X, Y = random_batch([784, 30, 10], 1, seed=11)
    X[0, 100:] = 0
    got = numba_sparse.train_epoch(params, X, Y, 1, 3.0)
    w1, w1_new = params.weights[0], got.weights[0]
    assert np.array_equal(w1_new[:, 100:], w1[:, 100:])  # bit for bit: never written
    assert not np.array_equal(w1_new[:, :100], w1[:, :100])


def test_float32_stays_float32_and_close():
    sizes = [784, 30, 10]
    params32 = init_params(sizes, seed=12, dtype="float32")
    X, Y = sparse_batch(sizes, 120, seed=13, dtype="float32")
    for batch_size in (1, 10, 100):
        n = 9 if batch_size == 1 else 120
        got = numba_sparse.train_epoch(params32, X[:n], Y[:n], batch_size, 3.0)
        assert all(a.dtype == np.float32 for a in got.arrays())
        X64, Y64 = X[:n].astype("float64"), Y[:n].astype("float64")
        expected = reference_epoch(params32.astype("float64"), X64, Y64, batch_size)
        own = reference_epoch(params32, X[:n], Y[:n], batch_size)  # the float32 reference's own error
        assert max_rel_error(got, expected) <= 10 * max(max_rel_error(own, expected), 1e-7)


def test_prepare_then_train_equals_train_without_prepare():
    sizes = [784, 30, 10]
    params = init_params(sizes, seed=14)
    X, Y = sparse_batch(sizes, 230, seed=15)
    order = np.random.default_rng(16).permutation(230)
    unprepared = [numba_sparse.train_epoch(params, X, Y, b, 3.0, order) for b in (1, 10, 100)]
    X.setflags(write=False)
    numba_sparse.prepare(X, Y)
    assert id(X) in numba_sparse._indexes
    for b, before in zip((1, 10, 100), unprepared):
        after = numba_sparse.train_epoch(params, X, Y, b, 3.0, order)
        assert all(np.array_equal(p, q) for p, q in zip(after.arrays(), before.arrays()))


def test_prepared_index_is_not_used_for_other_arrays():
    """A view of the prepared array, or another array of the same shape, gets its own index."""
    sizes = [784, 30, 10]
    params = init_params(sizes, seed=17)
    X, Y = sparse_batch(sizes, 60, seed=18)
    X.setflags(write=False)
    numba_sparse.prepare(X, Y)
    other = X[::-1].copy()
    for X_other in (X[:25], other, X[::-1]):
        n = len(X_other)
        got = numba_sparse.train_epoch(params, X_other, Y[:n], 10, 3.0)
        assert max_rel_error(got, reference_epoch(params, X_other, Y[:n], 10)) <= RTOL64


def test_prepare_keeps_read_only_arrays_only_while_they_live():
    X, Y = sparse_batch([20, 10], 12, seed=19)
    numba_sparse.prepare(X, Y)  # writeable: could change after prepare, so nothing is kept
    assert id(X) not in numba_sparse._indexes
    X.setflags(write=False)
    numba_sparse.prepare(X, Y)
    key = id(X)
    assert key in numba_sparse._indexes
    del X
    gc.collect()
    assert key not in numba_sparse._indexes


def test_index_lists_nonzeros_in_blocks_padded_with_distinct_zero_rows():
    X, _ = sparse_batch([20, 10], 15, seed=20)
    starts, pixels, values = numba_sparse._build_index(X, numba_sparse._BLOCK)
    block = numba_sparse._BLOCK
    for i in range(len(X)):
        row_pixels, row_values = pixels[starts[i] : starts[i + 1]], values[starts[i] : starts[i + 1]]
        real = row_pixels < 20
        assert len(row_pixels) % block == 0 and len(row_pixels) - real.sum() < block
        np.testing.assert_array_equal(row_pixels[real], np.flatnonzero(X[i]))
        np.testing.assert_array_equal(row_values[real], X[i][X[i] != 0])
        assert not row_values[~real].any()
        for b in range(0, len(row_pixels), block):
            assert len(set(row_pixels[b : b + block])) == block  # the four rows of a block differ


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_split_over_threads_matches_one_thread_and_is_deterministic():
    sizes = [784, 30, 10]
    params = init_params(sizes, seed=21)
    X, Y = sparse_batch(sizes, 230, seed=22)
    order = np.random.default_rng(23).permutation(230)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = numba_sparse.train_epoch(params, X, Y, 100, 3.0, order)
        numba.set_num_threads(2)
        two = [numba_sparse.train_epoch(params, X, Y, 100, 3.0, order) for _ in range(2)]
        grads = numba_sparse.gradients(params, X, Y)
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(p, q) for p, q in zip(two[0].arrays(), two[1].arrays()))
    assert max_rel_error(two[0], one) <= 1e-13  # the same sums, split in two
    assert max_rel_error(two[0], reference_epoch(params, X, Y, 100, order)) <= RTOL64
    assert max_rel_error(grads, vectorized.gradients(params, X, Y)) <= RTOL64


def test_scratch_too_short_for_a_batch_is_refused_not_overrun():
    """The kernels index without bounds checks; each batch's view of the scratch checks its size."""
    sizes = [784, 30, 10]
    params = init_params(sizes, seed=26)
    X, Y = sparse_batch(sizes, 40, seed=27)
    run = numba_sparse._Run(params, X, Y, 40)
    order = numba_sparse._read_only(np.empty(0, np.int64))
    thresholds = (numba_sparse._MIN_PARALLEL_BATCH, numba_sparse._ALL_ROWS_BATCH)
    with pytest.raises(ValueError):
        numba_sparse._train_epoch(
            run.theta, run.grads, run.marks, run.rows, run.net, run.index, run.Y, order, 40, 3.0,
            run.At[:-1], run.Dt[:-1], run.a, run.d, thresholds,
        )  # fmt: skip


def test_bad_shapes_are_refused():
    params = init_params([784, 30, 10], seed=24)
    X, Y = random_batch([784, 30, 10], 5, seed=25)
    with pytest.raises(ValueError, match="do not fit"):
        numba_sparse.train_epoch(params, X[:, :700], Y, 2, 3.0)
    with pytest.raises(ValueError, match="do not fit"):
        numba_sparse.gradients(params, X, Y[:4])
    for order in (np.arange(4), np.array([0, 1, 2, 3, 5])):
        with pytest.raises(ValueError, match="order"):
            numba_sparse.train_epoch(params, X, Y, 2, 3.0, order)
