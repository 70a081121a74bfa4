"""numba-sparse: what is specific to the sparse-input kernel, against the float64 reference.

The parametrized contract tests (tests/test_kernels.py, tests/test_float32.py) already
hold it to the shared rules. Here: inputs whose density varies row by row (all-zero
rows, rows with one to three non-zeros, dense rows), both ways of applying the
w^1 gradient (tracked rows below ``_ALL_ROWS_BATCH``, all rows above), the index that
``prepare`` keeps and when it must not be used, the compact index (uint8 codes of k / 255)
and its exact fallback, the per-example path touching only the rows of non-zero pixels,
the float32 lane skipping at batch 1 (bit for bit the same as without it), the split over
threads, the vector width of other machines, and a scratch buffer too short for a batch,
which is refused rather than overrun. tests/test_numba_scratch.py runs every
batch-remainder path at 1, 2, 4 and 8 threads; tests/test_simd.py checks the exp.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from bench.run.data import scale_pixels
from implementations.core import Params, init_params, max_rel_error, train_epoch_with
from implementations.kernels import numba_sparse, vectorized
from tests.conftest import params_equal, random_batch, sparse_batch

RTOL64 = 1e-10
DEPTHS = [[784, 30, 10], [784, 64, 32, 10], [12, 7, 5, 4, 3], [20, 10]]


def epoch_of(run, order, batch_size):
    """Return the parameters after one epoch of the compiled kernel on a prepared _Run (its index as set)."""
    order = numba_sparse._read_only(np.empty(0, np.int64) if order is None else np.asarray(order, np.int64))
    numba_sparse._run_epoch(run, order, batch_size, 3.0)
    return numba_sparse._params(run.theta, run.layout)


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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", DEPTHS, ids=lambda s: "-".join(map(str, s)))
def test_per_example_epoch_keeps_its_untransposed_copy_bit_for_bit(sizes, dtype):
    """At batch size 1 the dense layers' untransposed copy is updated beside theta, never copied again."""
    params = init_params(sizes, seed=12, dtype=dtype)
    X, Y = sparse_batch(sizes, 40, seed=13, dtype=dtype)
    run = numba_sparse._Run(params, X, Y, 1)
    after = epoch_of(run, np.random.default_rng(14).permutation(40), 1)
    fresh = np.zeros_like(run.w_up)
    numba_sparse._untranspose(run.theta, run.net, fresh)
    assert np.array_equal(run.w_up, fresh)
    assert not params_equal(after, params)  # it trained


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


def test_index_lists_nonzeros_compact_when_every_value_is_k_over_255():
    X, _ = sparse_batch([20, 10], 15, seed=20)
    images = np.random.default_rng(20).integers(0, 256, (15, 20)) * (X != 0)
    for dtype in ("float32", "float64"):
        scaled = scale_pixels(images, dtype)
        for values, compact in ((scaled, True), (X.astype(dtype), False)):
            starts, pixels, codes, table, full, counts = numba_sparse._build_index(values)
            assert (not full) == compact and (len(table) == 256) == compact
            assert codes.dtype == np.uint8 and pixels.dtype == np.uint16
            np.testing.assert_array_equal(counts, np.count_nonzero(values, axis=0))
            for i in range(len(values)):
                entries = np.arange(starts[i], starts[i + 1])
                np.testing.assert_array_equal(pixels[entries], np.flatnonzero(values[i]))
                # bit for bit the input's values, read through the table
                np.testing.assert_array_equal(table[codes[entries] + full * entries], values[i][values[i] != 0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compact_and_full_index_train_bit_for_bit_alike_and_match_reference(dtype):
    """The same k / 255 images through the compact index and through the fallback give the same bits."""
    sizes = [784, 30, 10]
    params = init_params(sizes, seed=40, dtype=dtype)
    X, Y = sparse_batch(sizes, 230, seed=41, dtype=dtype)
    X = scale_pixels(np.rint(X * 255).astype(np.uint8), dtype)
    order = np.random.default_rng(42).permutation(230)
    for batch_size in (1, 10, 100):
        compact = numba_sparse._Run(params, X, Y, batch_size)
        assert compact.index[4] == 0
        fallback = numba_sparse._Run(params, X, Y, batch_size)
        starts, pixels, codes, table, _ = compact.index
        values = table[codes]
        fallback.index = (starts, pixels, np.zeros_like(codes), values, np.int64(1))
        got = [epoch_of(run, order, batch_size) for run in (compact, fallback)]
        assert params_equal(got[0], got[1])
        if dtype == "float64":
            assert max_rel_error(got[0], reference_epoch(params, X, Y, batch_size, order)) <= RTOL64


def test_float32_skipping_unchanged_lanes_at_batch_1_is_bit_for_bit():
    """Saturated units make subnormal errors; skipping lanes that cannot change a weight changes no bit."""
    sizes = [784, 30, 10]
    params = init_params(sizes, seed=43, dtype="float32")
    params = Params([w * np.float32(8) for w in params.weights], params.biases)  # saturate the sigmoids
    X, Y = sparse_batch(sizes, 60, seed=44, dtype="float32")
    order = np.random.default_rng(45).permutation(60)
    skipping = numba_sparse._Run(params, X, Y, 1)
    tiny = numba_sparse._TINY[np.dtype("float32")]
    skipping.skip = (skipping.skip[0], tiny, skipping.skip[2])  # skipping, whatever this CPU would choose
    plain = numba_sparse._Run(params, X, Y, 1)
    plain.skip = (plain.skip[0], 0.0, plain.skip[2])  # no lane is ever a candidate
    assert params_equal(epoch_of(skipping, order, 1), epoch_of(plain, order, 1))
    # and some lanes were candidates: errors below the threshold occur on this data
    run = numba_sparse._Run(params, X, Y, 1)
    found = False
    for i in order:
        ids = np.array([i], np.int64)
        numba_sparse._forward_backward(
            run.theta, run.net, run.index, run.Y, ids, 0, 1, run.acts, run.dels, run.w_up, False
        )
        found |= numba_sparse._skip_bounds(run.net, run.dels, np.float32(3.0), run.skip[0], tiny, run.skip[2])
    assert found


def test_skipping_is_chosen_by_what_subnormals_cost_here(monkeypatch):
    sizes = [784, 30, 10]
    X, Y = sparse_batch(sizes, 20, seed=48, dtype="float32")
    ratio = numba_sparse._subnormal_ratio(np.dtype("float32"), rows=512, repeats=2)
    assert np.isfinite(ratio) and ratio > 0
    for slow in (True, False):
        monkeypatch.setattr(numba_sparse, "_subnormals_slow", lambda dtype, slow=slow: slow)
        for dtype, tiny in (("float32", numba_sparse._TINY[np.dtype("float32")] if slow else 0.0), ("float64", 0.0)):
            params = init_params(sizes, seed=49, dtype=dtype)
            run = numba_sparse._Run(params, X.astype(dtype), Y.astype(dtype), 1)
            assert run.skip[1] == tiny


def test_float32_per_example_epoch_with_skipping_matches_a_plain_float32_loop():
    sizes = [784, 30, 10]
    params = init_params(sizes, seed=46, dtype="float32")
    params = Params([w * np.float32(8) for w in params.weights], params.biases)
    X, Y = sparse_batch(sizes, 30, seed=47, dtype="float32")
    got = numba_sparse.train_epoch(params, X, Y, 1, 3.0)
    own = reference_epoch(params, X, Y, 1)  # the float32 reference: NumPy, libm exp, no FMA
    assert max_rel_error(got, own) <= 1e-4


@pytest.mark.parametrize("n_threads", [2, 3, 8])
def test_each_threads_block_of_every_example_starts_where_its_pixels_do(n_threads):
    X, _ = sparse_batch([50, 10], 40, seed=24)
    X[[3, 17]] = 0  # rows without an entry
    starts, pixels, *_, counts = numba_sparse._build_index(X)
    bounds = numba_sparse._bounds(counts, n_threads)
    assert bounds[0] == 0 and bounds[-1] == 50 and np.all(np.diff(bounds) >= 0)
    splits = numba_sparse._splits(starts, pixels, bounds).reshape(len(X), n_threads + 1)
    for i in range(len(X)):
        row = pixels[starts[i] : starts[i + 1]]
        want = [starts[i] + np.searchsorted(row, bound) for bound in bounds]  # first entry at least the bound
        np.testing.assert_array_equal(splits[i], want)


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


@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("batch_size", [10, 100])
def test_shares_dealt_by_measured_speed_change_no_bit_of_the_result(n_threads, batch_size):
    """A thread measured slow gets fewer examples and not the dense step: the same result, bit for bit."""
    if numba.config.NUMBA_NUM_THREADS < n_threads:
        pytest.skip(f"needs {n_threads} Numba threads")
    sizes = [784, 30, 10]
    params = init_params(sizes, seed=28)
    X, Y = sparse_batch(sizes, 430, seed=29)
    order = numba_sparse._read_only(np.random.default_rng(30).permutation(430).astype(np.int64))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(n_threads)
        even = numba_sparse._Run(params, X, Y, batch_size)
        numba_sparse._run_epoch(even, order, batch_size, 3.0)
        skewed = numba_sparse._Run(params, X, Y, batch_size)
        tune = numba_sparse._tune_array(n_threads)
        costs = tune[: numba_sparse._SLOTS * n_threads * numba_sparse._COSTS]
        costs.reshape(numba_sparse._SLOTS, n_threads, numba_sparse._COSTS)[:, n_threads - 1] = 1e12  # the last: slow
        numba_sparse._run_epoch(skewed, order, batch_size, 3.0, tune)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(even.theta, skewed.theta)


@pytest.mark.parametrize("n_threads", [1, 2, 3, 5])
def test_dealt_examples_tile_the_batch_and_the_dense_step_goes_to_the_fastest(n_threads):
    rng = np.random.default_rng(31)
    costs = numba_sparse._COSTS
    for m in (8, 10, 37, 100):
        tune = numba_sparse._tune_array(n_threads)
        figures = tune[: numba_sparse._SLOTS * n_threads * costs].reshape(numba_sparse._SLOTS, n_threads, costs)
        figures[1] = rng.uniform(100, 1000, (n_threads, costs))  # slot 1: what the threads measured
        dealt = [numba_sparse._deal(tune, 1, t, n_threads, m) for t in range(n_threads)]
        edges = [0] + [hi for _, hi, _ in dealt]
        assert [lo for lo, _, _ in dealt] == edges[:-1] and edges[-1] == m  # contiguous, every example once
        speed = 1 / figures[1, :, numba_sparse._UPPER]
        sizes = np.diff(edges)
        assert sizes[np.argmax(speed)] >= sizes[np.argmin(speed)]  # the faster at them gets no fewer examples
        fastest = np.argmin(figures[1, :, numba_sparse._FORWARD] + figures[1, :, numba_sparse._STEP])
        assert {dense for *_, dense in dealt} == {fastest}
        even = [numba_sparse._deal(numba_sparse._tune_array(n_threads), 0, t, n_threads, m) for t in range(n_threads)]
        counts = [hi - lo for lo, hi, _ in even]
        assert even[-1][2] == n_threads - 1 and max(counts) - min(counts) <= 1  # before any measurement: even


def test_scratch_too_short_for_a_batch_is_refused_not_overrun():
    """The kernels index without bounds checks; the epoch checks the scratch's size first."""
    sizes = [784, 30, 10]
    params = init_params(sizes, seed=26)
    X, Y = sparse_batch(sizes, 40, seed=27)
    run = numba_sparse._Run(params, X, Y, 40)
    run.acts = run.acts[:-1]
    with pytest.raises(ValueError):
        epoch_of(run, None, 40)


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


# In a fresh process with an empty Numba cache: warm up one dtype, then count the compiled versions
# of every Numba function of numba_sparse, simd and spin (a function inlined or compiled into its
# caller only has none of its own).
_COUNT_VERSIONS = """
import json
from numba.core.registry import CPUDispatcher
from implementations.kernels import numba_sparse, simd, spin
numba_sparse.warm_up([784, 30, 10], "float64")
print(json.dumps({f"{m.__name__.rsplit('.', 1)[1]}.{name}": len(f.signatures) for m in (numba_sparse, simd, spin)
                  for name, f in vars(m).items() if isinstance(f, CPUDispatcher) and f.__module__ == m.__name__}))
"""


@pytest.mark.slow
def test_a_cold_compile_compiles_each_function_once(tmp_path):
    """A call that passes a literal where other calls pass an int64 makes Numba compile the callee once
    more (it cost a newcomer's first run 2 s): at most one version of each, on one dtype.
    simd.dense_rows is called with different literal strides from the dense layers and their step."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _COUNT_VERSIONS], env=env, capture_output=True, text=True, check=True)
    versions = json.loads(done.stdout.strip().splitlines()[-1])
    allowed = {"simd.dense_rows": 2}
    assert versions["numba_sparse._train_epoch"] == 1  # the count sees what the warm-up compiled
    assert {name: n for name, n in versions.items() if n > allowed.get(name, 1)} == {}
