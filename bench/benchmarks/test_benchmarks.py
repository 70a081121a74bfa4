"""The timed work: mini-batch gradients, one training epoch, prediction over the test set.

fixtures.py (which the suite's plugin registers) parametrizes every benchmark over (implementation, dtype), and the
gradients over batch sizes 10 and 100. Each benchmark asks ``checked_kernel``
first, so a kernel is compiled (timed on its own, as ``compile_s``) and
parity-checked against the float64 reference before anything of it is timed.
Then the value the timed call returned (pytest-benchmark hands back the last
round's) is itself checked against the reference: a wrong result fails the test.
``extra_info`` carries what belongs beside a time; the frame loader
(:mod:`bench.results.frame`) reads it back.

Run with ``pytest --benchmark-only`` (see README); ``-k numba`` selects one kernel. Under
``--bench-measure instructions`` each call is also counted under Valgrind (``bench_measure``,
:mod:`bench.benchmarks.instructions`): the counts join ``extra_info``.
"""

from __future__ import annotations

import numpy as np
import pytest

import implementations
from bench.flops import epoch_flops, forward_flops, gradient_flops
from bench.run.machine import peak_memory_above
from bench.run.probe import FLOAT32_FACTOR
from bench.run.verify import check_epoch, label_check


def _check_gradients(checked, X, Y, nabla) -> None:
    """Fail the test unless ``nabla`` agrees with the float64 reference's gradients on the same examples.

    float64: the kernel's declared rtol (1e-10 at most). float32: FLOAT32_FACTOR times the
    float32 reference's own error on these examples, as the probe judges it.
    """
    reference = implementations.get(implementations.REFERENCE)
    params = checked.work.params0
    truth = reference.gradients(params.astype("float64"), X.astype(np.float64), Y.astype(np.float64))
    rtol = checked.result.rtol
    if checked.config.dtype == "float32":
        own = implementations.max_rel_error(reference.gradients(params, X, Y), truth)
        slack = checked.impl.float32_slack[0] if checked.impl.float32_slack is not None else 1.0
        rtol = FLOAT32_FACTOR * slack * max(own, float(np.finfo(np.float32).eps))
    error = implementations.max_rel_error(nabla, truth)
    if not error <= rtol:
        pytest.fail(f"the timed gradients differ from the reference's by {error:.2e} (tolerance {rtol:.1e})")


def _record(benchmark, checked, name: str, n: int, gflop: float, batch_size: int | None) -> None:
    """Fill extra_info (checked: fixtures.py's Checked); GFLOP/s is known only once it was timed."""
    benchmark.extra_info.update(
        implementation=checked.impl.name,
        benchmark=name,
        dtype=checked.config.dtype,
        batch_size=batch_size,
        n_examples=n,
        sizes=checked.config.sizes,
        compile_s=checked.result.compile_seconds,
        prepare_s=checked.result.prepare_seconds,
        grad_max_rel_error=checked.result.grad_max_rel_error,
        step_max_rel_error=checked.result.step_max_rel_error,
        rtol=checked.result.rtol,
        step_rtol=checked.result.step_rtol,
        probe=checked.result.probe,
        delegates_to=checked.result.delegates_to,
        peak_memory_bytes=peak_memory_above(checked.memory_baseline),
        gflop=gflop,
    )
    # Times taken under Valgrind (--bench-measure instructions) are not wall times: no GFLOP/s from them.
    if benchmark.stats is not None and "instructions" not in benchmark.extra_info:
        benchmark.extra_info["gflops"] = gflop / benchmark.stats.stats.median


def test_gradients(benchmark, bench_measure, checked_kernel, impl_name, dtype, batch_size):
    checked = checked_kernel(impl_name, dtype)
    X, Y = checked.work.X[:batch_size], checked.work.Y[:batch_size]
    benchmark.group = f"gradients batch={batch_size} {dtype}"
    nabla = bench_measure(benchmark, checked.impl.gradients, checked.work.params0, X, Y)
    assert nabla.dtype == checked.work.params0.dtype
    _check_gradients(checked, X, Y, nabla)
    gflop = gradient_flops(checked.config.sizes, batch_size) / 1e9
    _record(benchmark, checked, "gradients", batch_size, gflop, batch_size)


def test_epoch(benchmark, bench_measure, checked_kernel, bench_settings, impl_name, dtype):
    checked = checked_kernel(impl_name, dtype)
    work, config = checked.work, checked.config
    benchmark.group = f"epoch n={len(work.X)} {dtype}"
    # get_ready compiled the kernel for this very workload and ran prepare; one untimed
    # warm-up round still absorbs what only a full epoch touches (pages, caches, pools).
    # Every round is one full epoch from the same initial parameters (train_epoch never modifies them).
    params = bench_measure(
        benchmark,
        checked.impl.train_epoch,
        work.params0,
        work.X,
        work.Y,
        config.batch_size,
        config.eta,
        rounds=bench_settings.epoch_rounds,
        warmup_rounds=1,
    )
    assert params.is_finite()
    labels = checked.impl.predict(params, work.X_test)
    verdict = check_epoch(checked.impl, params, labels, 0, work.trajectory, work.X_test, work.y_test, dtype)
    if verdict.problem is not None:
        pytest.fail(f"the timed epoch: {verdict.problem}")
    _record(
        benchmark,
        checked,
        "epoch",
        len(work.X),
        epoch_flops(config.sizes, len(work.X), config.batch_size) / 1e9,
        config.batch_size,
    )
    benchmark.extra_info["accuracy"] = implementations.accuracy(labels, work.y_test)
    benchmark.extra_info["epoch_error"] = verdict.error


def test_predict(benchmark, bench_measure, checked_kernel, impl_name, dtype):
    checked = checked_kernel(impl_name, dtype)
    work = checked.work
    benchmark.group = f"predict n={len(work.X_test)} {dtype}"
    labels = bench_measure(benchmark, checked.impl.predict, work.params0, work.X_test)
    assert labels.shape == (len(work.X_test),)
    problem = label_check(work.params0, labels, work.X_test, dtype)[2]
    if problem is not None:
        pytest.fail(f"the timed predict: {problem}")
    gflop = forward_flops(checked.config.sizes, len(work.X_test)) / 1e9
    _record(benchmark, checked, "predict", len(work.X_test), gflop, None)
