"""The shared pieces: initialisation, batch order, update, error measure, finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from implementations.core import (
    Params,
    batch_order,
    batches,
    finite_difference_gradients,
    init_params,
    max_rel_error,
    sgd_update,
)
from tests.conftest import params_equal, random_batch

# Central differences, h = 1e-6: truncation ~1e-12, rounding ~1e-10 relative (see bench.run.harness.FD_RTOL).
FD_RTOL = 1e-6


@pytest.mark.parametrize("sizes", [[6, 4, 3], [12, 7, 5, 4], [3, 8, 8, 8, 2]], ids=lambda s: "-".join(map(str, s)))
def test_reference_matches_finite_differences(reference, sizes):
    params = init_params(sizes, seed=1)
    X, Y = random_batch(sizes, 5, seed=2)
    assert max_rel_error(reference.gradients(params, X, Y), finite_difference_gradients(params, X, Y)) <= FD_RTOL


def test_finite_difference_check_can_fail(reference):
    """A gradient that is wrong by a small factor must be caught at this tolerance."""
    params = init_params([6, 4, 3], seed=1)
    X, Y = random_batch([6, 4, 3], 5, seed=2)
    wrong = reference.gradients(params, X, Y)
    wrong.weights[0][0, 0] += 1e-3 * np.abs(wrong.weights[0]).max()
    assert max_rel_error(wrong, finite_difference_gradients(params, X, Y)) > FD_RTOL


def test_init_params_is_seeded_and_shaped():
    a, b = init_params([784, 30, 10], seed=1), init_params([784, 30, 10], seed=1)
    assert params_equal(a, b)
    assert not params_equal(a, init_params([784, 30, 10], seed=2))
    assert [w.shape for w in a.weights] == [(30, 784), (10, 30)]
    assert [b.shape for b in a.biases] == [(30,), (10,)]
    assert a.sizes == [784, 30, 10]


def test_init_params_float32_is_the_rounded_float64_draw():
    p64, p32 = init_params([5, 4, 3], seed=1), init_params([5, 4, 3], seed=1, dtype="float32")
    assert p32.dtype == np.float32
    assert params_equal(p32, p64.astype("float32"))


@pytest.mark.parametrize("sizes", [[5], [5, 0, 3], []])
def test_init_params_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        init_params(sizes, seed=1)


def test_batch_order_is_deterministic_per_epoch():
    assert batch_order(10, None, 0) is None
    np.testing.assert_array_equal(batch_order(100, 3, 1), batch_order(100, 3, 1))
    assert not np.array_equal(batch_order(100, 3, 1), batch_order(100, 3, 2))
    assert sorted(batch_order(100, 3, 1)) == list(range(100))


def test_batches_keep_the_shorter_last_batch():
    sizes = [s.stop - s.start for s in batches(23, 10, None)]
    assert sizes == [10, 10, 3]
    order = np.arange(23)[::-1]
    assert [len(b) for b in batches(23, 10, order)] == [10, 10, 3]


def test_sgd_update_scales_by_eta_over_m():
    params = Params([np.ones((2, 3))], [np.ones(2)])
    nabla = Params([np.full((2, 3), 4.0)], [np.full(2, 2.0)])
    sgd_update(params, nabla, eta=3.0, m=4)
    np.testing.assert_allclose(params.weights[0], 1 - 3.0 / 4 * 4.0)
    np.testing.assert_allclose(params.biases[0], 1 - 3.0 / 4 * 2.0)


def test_max_rel_error_scales_by_array_maximum():
    ref = Params([np.array([[100.0, 1e-9]])], [np.array([1.0])])
    off = Params([np.array([[100.0, 2e-9]])], [np.array([1.0])])
    # Element-wise the second entry is 100% off; scaled by the array's maximum it is 1e-11.
    assert max_rel_error(off, ref) == pytest.approx(1e-11)
    nan = Params([np.array([[np.nan, 0.0]])], [np.array([1.0])])
    assert max_rel_error(nan, ref) == float("inf")


def test_params_copy_is_independent():
    a = init_params([4, 3, 2], seed=1)
    b = a.copy()
    b.weights[0][0, 0] += 1
    assert not params_equal(a, b)
