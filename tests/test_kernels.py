"""Contract tests every kernel must pass, against the float64 reference (the oracle)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import implementations
from implementations import BUILTIN, Kernel, Registry
from implementations.core import init_params, max_rel_error, train_epoch_with
from tests.conftest import params_equal, random_batch

DEPTHS = [[784, 30, 10], [784, 64, 32, 10], [20, 10], [12, 7, 5, 4, 3]]
# The contract: float64 kernels agree with the reference to 1e-10 (see DEFAULT_RTOL).
RTOL64 = 1e-10


def test_float64_tolerance_is_the_contract(impl):
    assert impl.rtol["float64"] <= RTOL64


@pytest.mark.parametrize("sizes", DEPTHS, ids=lambda s: "-".join(map(str, s)))
def test_gradients_match_reference(impl, reference, sizes):
    params = init_params(sizes, seed=3)
    X, Y = random_batch(sizes, 37, seed=4)
    expected = reference.gradients(params, X, Y)
    got = impl.gradients(params, X, Y)
    assert got.sizes == sizes
    assert all(a.dtype == np.float64 for a in got.arrays())
    assert [a.shape for a in got.arrays()] == [a.shape for a in expected.arrays()]
    assert max_rel_error(got, expected) <= RTOL64


def test_gradients_of_one_example(impl, reference):
    params = init_params([784, 30, 10], seed=5)
    X, Y = random_batch([784, 30, 10], 1, seed=6)
    assert max_rel_error(impl.gradients(params, X, Y), reference.gradients(params, X, Y)) <= RTOL64


def test_gradients_leave_inputs_alone(impl):
    params = init_params([784, 30, 10], seed=7)
    X, Y = random_batch([784, 30, 10], 10, seed=8)
    before = (params.copy(), X.copy(), Y.copy())
    impl.gradients(params, X, Y)
    impl.train_epoch(params, X, Y, 4, 3.0)
    assert params_equal(params, before[0])
    assert np.array_equal(X, before[1]) and np.array_equal(Y, before[2])


@pytest.mark.parametrize("sizes", [[784, 30, 10], [12, 7, 5, 4, 3]], ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("shuffled", [False, True], ids=["in-order", "shuffled"])
def test_sgd_steps_match_reference(impl, reference, sizes, shuffled):
    """A few SGD steps from the same start, with a shorter last batch (23 = 10 + 10 + 3)."""
    params = init_params(sizes, seed=9)
    X, Y = random_batch(sizes, 23, seed=10)
    order = np.random.default_rng(11).permutation(23) if shuffled else None
    expected = reference.train_epoch(params, X, Y, 10, 3.0, order)
    assert max_rel_error(impl.train_epoch(params, X, Y, 10, 3.0, order), expected) <= RTOL64


@pytest.mark.parametrize("sizes", [[784, 30, 10], [12, 7, 5, 4, 3]], ids=lambda s: "-".join(map(str, s)))
def test_per_example_sgd_matches_reference(impl, reference, sizes):
    """Batch size 1 (some kernels fuse it). Only 7 steps: at eta = 3 per example, rounding
    differences grow exponentially along the trajectory (about 1e-10 after 200 steps on MNIST,
    1e-1 after 500, for the loop kernel as for any other), so long runs cannot be compared."""
    params = init_params(sizes, seed=16)
    X, Y = random_batch(sizes, 7, seed=17)
    order = np.random.default_rng(18).permutation(7)
    for o in (None, order):
        expected = reference.train_epoch(params, X, Y, 1, 3.0, o)
        assert max_rel_error(impl.train_epoch(params, X, Y, 1, 3.0, o), expected) <= RTOL64


def test_fused_epoch_equals_shared_loop(impl):
    """A kernel's own train_epoch must give what the shared loop over its gradients gives."""
    params = init_params([784, 30, 10], seed=12)
    X, Y = random_batch([784, 30, 10], 45, seed=13)
    shared = train_epoch_with(impl.gradients, params, X, Y, 20, 3.0)
    assert max_rel_error(impl.train_epoch(params, X, Y, 20, 3.0), shared) <= RTOL64


def test_predict_returns_int_labels(impl, reference):
    params = init_params([784, 30, 10], seed=14)
    X, _ = random_batch([784, 30, 10], 50, seed=15)
    labels = impl.predict(params, X)
    assert labels.shape == (50,)
    assert np.issubdtype(labels.dtype, np.integer)
    np.testing.assert_array_equal(labels, reference.predict(params, X))


def test_warm_up_accepts_any_depth(impl):
    impl.warm_up([12, 7, 5, 4, 3], "float64")


def test_registry_lists_the_core_kernels():
    assert {"loop", "vectorized", "numba"} <= set(implementations.registry.available())
    assert implementations.registry.available() == sorted(implementations.registry.available())


def test_the_registry_says_why_a_kernel_cannot_run_before_importing_it():
    needs_package = Kernel("needs-package", "bbtest_no_such_module", packages=("bbtest_no_such_package",))
    needs_program = Kernel("needs-program", "implementations.kernels.loop", programs={"BBTEST_CXX": "/nonexistent/c++"})
    registry = Registry([*BUILTIN, needs_package, needs_program])
    assert "needs-package" in registry and "needs-package" not in registry.names()
    assert registry.why_not("needs-package") == "bbtest_no_such_package is not installed"
    assert registry.why_not("needs-program") == "the C++ compiler /nonexistent/c++ ($BBTEST_CXX) is not found"
    assert registry.why_not("loop") is None and "loop" in registry.names()
    # Without the extras, torch and jax kernels are unavailable too, each for its own reason.
    missing_extras = {row.name for row in BUILTIN if registry.why_not(row.name) is not None}
    assert set(registry.unavailable()) == {"needs-package", "needs-program"} | missing_extras
    assert "bbtest_no_such_module" not in sys.modules  # none of that imported anything
    assert "needs-package" not in registry.available()  # it was tried: its import fails


def test_unknown_name_lists_known_ones():
    with pytest.raises(implementations.UnknownImplementation, match=r"known: .*loop"):
        implementations.get("nope")
