"""The timed work itself is verified: the reference's trajectory, its cache, and the checks of every epoch.

A kernel can tell the parity probe from the timed call (its length, its being the first
call), so three kernels of tests/kernels/wrong/ are honest on the probe and wrong only where
they are timed: a tenth of the data on large inputs, nothing after the first call, and
labels off by one. Each must end ``mismatch`` naming the epoch or the predict check;
honest kernels in float64 and float32 end ``ok`` in the same runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import implementations
from bench.run import trajectory as trajectories
from bench.run import verify
from bench.run.config import RunConfig
from bench.run.data import load_dataset
from bench.run.harness import SilentReporter, run_kernel
from bench.run.probe import make_workload
from implementations.core import Params, init_params
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
KERNELS = "tests/kernels/wrong"
MY_KERNEL = "examples/my_kernel.py"


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Return a fresh, empty trajectory cache folder for this test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(trajectories.CACHE_VARIABLE, str(folder))
    return folder


def _config(**options) -> RunConfig:
    return RunConfig(**{"impls": [], "epochs": 2, "train_limit": 400, "batch_size": 50, **options})


def test_the_trajectory_is_cached_and_a_longer_run_extends_it(mnist, cache):
    first, info = trajectories.ensure_trajectory(_config(), mnist)
    assert not info.cached and info.epochs == 2 and len(list(cache.glob("*.npz"))) == 1
    again, info = trajectories.ensure_trajectory(_config(epochs=1), mnist)
    assert info.cached and again.epochs == 2
    assert all(np.array_equal(a, b) for a, b in zip(again.params[1].arrays(), first.params[1].arrays()))
    longer, info = trajectories.ensure_trajectory(_config(epochs=3), mnist)
    assert not info.cached and longer.epochs == 3
    # Continuing the cached run gives what a run from scratch gives.
    fresh = trajectories.compute_trajectory(_config(epochs=3), mnist)
    assert all(np.array_equal(a, b) for a, b in zip(longer.params[2].arrays(), fresh.params[2].arrays()))
    assert longer.correct == fresh.correct and longer.correct_nudged == fresh.correct_nudged


def test_a_damaged_cache_file_is_computed_again(mnist, cache):
    _, info = trajectories.ensure_trajectory(_config(), mnist)
    with open(info.path, "r+b") as f:
        f.truncate(100)
    trajectory, info = trajectories.ensure_trajectory(_config(), mnist)
    assert not info.cached and trajectory.epochs == 2


@pytest.mark.parametrize(
    "change", [{"batch_size": 40}, {"shuffle": True}, {"seed": 2}, {"dtype": "float32"}, {"train_limit": 300}]
)
def test_the_key_names_the_whole_workload(mnist, change):
    assert trajectories.workload_key(_config(), mnist) != trajectories.workload_key(_config(**change), mnist)
    assert trajectories.workload_key(_config(), mnist) == trajectories.workload_key(_config(epochs=7), mnist)


def test_float32_trajectory_measures_its_own_drift(mnist, cache):
    trajectory, _ = trajectories.ensure_trajectory(_config(dtype="float32"), mnist)
    assert all(0 < d < 1e-4 for d in trajectory.drift32)  # float32 rounding, not a mistake
    tolerance = verify.epoch_tolerance(implementations.get("vectorized"), trajectory, 1, "float32")
    assert tolerance == pytest.approx(verify.FLOAT32_EPOCH_FACTOR * max(verify.noise(trajectory, 1), 20 * 2**-23))


def _perturbed(params: Params, array: int, by: float) -> Params:
    out = params.copy()
    out.arrays()[array][...] *= 1 + by
    return out


def test_check_epoch_accepts_the_reference_and_names_a_departing_array(mnist, cache):
    config = _config()
    work = make_workload(config, mnist)
    reference = implementations.get("vectorized")
    params = work.trajectory.params[1]
    labels = reference.predict(params, work.X_test)
    ok = verify.check_epoch(reference, params, labels, 1, work.trajectory, work.X_test, work.y_test, "float64")
    assert ok.problem is None and ok.error == 0 and ok.correct == work.trajectory.correct[1]
    # One array 1e-6 off: far below what any mistake does, far above float64 rounding.
    wrong = _perturbed(params, 1, 1e-6)
    labels = reference.predict(wrong, work.X_test)
    bad = verify.check_epoch(reference, wrong, labels, 1, work.trajectory, work.X_test, work.y_test, "float64")
    assert bad.array == "weights[1]" and bad.error == pytest.approx(1e-6, rel=1e-3)
    assert bad.problem.startswith("epoch 1: weights[1] differs from the reference's")


def test_labels_may_differ_only_at_ties():
    # Two output units with the same weights and bias tie exactly on every input.
    params = init_params([6, 4, 3], seed=3)
    params.weights[1][1] = params.weights[1][0]
    params.biases[1][1] = params.biases[1][0]
    X = np.random.default_rng(0).random((20, 6))
    outputs_best = np.argmax(implementations.core.feedforward(params, X), axis=1)
    tied = np.where(outputs_best == 0, 1, outputs_best)  # picks the other of the tied pair
    assert verify.label_check(params, tied, X, "float64")[2] is None
    differ, n_tied, problem = verify.label_check(params, (outputs_best + 2) % 3, X, "float64")
    assert differ == 20 and n_tied < 20 and "predict disagrees with the reference" in problem
    assert "shape" in verify.label_check(params, np.zeros(3, np.int64), X, "float64")[2]


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("tenth_on_large", "epoch 0: "),
        ("lazy_after_first", "epoch 0: "),  # its first call is the probe
        ("labels_off_by_one", "epoch 0: predict disagrees with the reference on"),
    ],
)
def test_a_kernel_honest_only_on_the_probe_is_a_mismatch(mnist, cache, registry, module, expected):
    name = registry.resolve(f"{KERNELS}/{module}.py")
    config = _config(impls=[name], train_limit=1500, epochs=2)
    result = run_kernel(name, make_workload(config, mnist), config, SilentReporter())
    assert result.status == "mismatch", result.message
    assert result.message.startswith(expected)
    assert "differs from the reference's after the same epoch" in result.message or "labels" in module
    assert result.mismatch_epoch == int(expected.split()[1].rstrip(":"))
    assert result.verification[-1]["problem"] == result.message.split("; its times")[0]
    assert len(result.epoch_seconds) == result.mismatch_epoch + 1  # what was timed is kept, marked


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_an_honest_numpy_kernel_ends_ok_with_every_epoch_checked(mnist, cache, registry, dtype):
    name = registry.resolve(MY_KERNEL)
    config = _config(impls=[name], train_limit=1500, epochs=2, dtype=dtype)
    result = run_kernel(name, make_workload(config, mnist), config, SilentReporter())
    assert result.status == "ok", result.message
    assert [check["epoch"] for check in result.verification] == [0, 1]
    assert all(check["error"] <= check["tolerance"] for check in result.verification)
    assert result.verify_seconds is not None and result.verify_seconds > 0


def test_run_exits_1_and_never_ranks_a_mismatch(tmp_path, capsys, cache):
    out = tmp_path / "r.json"
    args = ["run", "--impl", f"{KERNELS}/tenth_on_large.py", "--impl", "vectorized", "--impl", MY_KERNEL]
    status, stdout, _ = run_cli(capsys, *args, "--train-limit", "1500", "--epochs", "2", "--batch-size", "50",
                                "--out", str(out))  # fmt: skip
    assert status == 1
    document = json.loads(out.read_text())
    entries = {e["name"]: e for e in document["implementations"]}
    assert entries["tenth-on-large"]["status"] == "mismatch"
    assert entries["tenth-on-large"]["epoch_seconds"]  # its figures stay in the file, marked
    assert entries["vectorized"]["status"] == entries["my-kernel"]["status"] == "ok"
    assert document["reference_trajectory"]["epochs"] == 2
    assert "mismatch" in stdout
    assert run_cli(capsys, "report", str(out), "--out", str(tmp_path / "report"))[0] == 0
    headline = next(line for line in (tmp_path / "report" / "report.md").read_text().splitlines() if "fastest" in line)
    assert "tenth-on-large" not in headline
    assert "Not ranked (not ok): tenth-on-large" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "test", "expected"),
    [
        ("labels_off_by_one", "test_predict", "the timed predict: predict disagrees with the reference"),
        ("labels_off_by_one", "test_epoch", "the timed epoch: epoch 0: predict disagrees"),
        ("tenth_on_large", "test_epoch", "the timed epoch: epoch 0: "),
    ],
)
def test_the_benchmark_suite_fails_a_wrong_timed_result(tmp_path, module, test, expected):
    """Timed for real (2,000 images, more than the tenth-on-large kernel's 1,000), then checked."""
    name = module.replace("_", "-")
    args = ["--benchmark-only", "-k", f"{test} and {name}", "-p", "no:cacheprovider", "--bench-dtype", "float64"]
    args += [
        "--bench-epoch-rounds",
        "1",
        f"--bench-impl={KERNELS}/{module}.py",
        f"--benchmark-json={tmp_path / 'b.json'}",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "bench/benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout[-2000:]
    assert expected in done.stdout and "1 failed" in done.stdout


def test_the_tolerances_hold_the_measured_drift_of_honest_kernels_with_margin():
    """The committed measurements (scripts/drift.py) justify the constants of bench.run.verify."""
    files = sorted((ROOT / "results" / "reference").glob("drift-*.json"))
    assert len(files) >= 5
    for path in files:
        document = json.loads(path.read_text())
        drift32 = document["drift32"] or [0.0] * len(document["spread"])
        noise = [max(a, b) for a, b in zip(document["spread"], drift32)]
        for name, rows in document["kernels"].items():
            for epoch, row in enumerate(rows):
                factor = (
                    verify.NOISE_FACTOR if document["config"]["dtype"] == "float64" else verify.FLOAT32_EPOCH_FACTOR
                )
                assert row["error"] <= factor * noise[epoch] / 10, (path.name, name, epoch)  # a 10x margin at least
                assert row["labels_differ"] == 0, (path.name, name, epoch)
                if noise[epoch] <= verify.CHAOS_NOISE:
                    apart = abs(row["correct"] - document["reference_correct"][epoch])
                    assert apart <= verify.ACCURACY_IMAGES, (path.name, name, epoch)
