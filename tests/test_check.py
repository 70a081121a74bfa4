"""``backprop-bench check``: planted mistakes named and diagnosed, and bad user code as one clear line.

Any step that disagrees fails the whole check with exit status 1, the speed step included:
its harness run is faked here (a run document whose kernel entry is not ``ok``), so the
verdict logic is tested without workers; one test runs the real speed step on 300 images.

The run-based bad-input cases share one ``backprop-bench run`` of the four broken
kernels (a run per case would cost a minute of worker start-ups); each case still has
its own test.
"""

from __future__ import annotations

import contextlib
import io
import json
import textwrap
from pathlib import Path

import pytest

import bench.check.speed
import implementations
from bench.check.diagnose import Case, diagnose
from bench.check.speed import SPEED_LABEL, Speed, speed_line
from bench.check.steps import check_kernel
from bench.cli import main
from implementations import BUILTIN, Registry
from implementations.core import init_params
from tests.conftest import EXAMPLES, FAULTY, HONEST, SMALL, WRONG, fresh_registry, random_batch, run_cli

# Each test has a fresh registry (tests/conftest.py): what one resolves does not leak into others' runs.
pytestmark = pytest.mark.usefixtures("registry")

# --- the six planted mistakes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "array", "diagnosis"),
    [
        ("mistake_transposed.py", "nabla_w", "transposed: shape (13, 5), expected (5, 13)"),
        ("mistake_sign.py", "biases", "wrong sign: it is minus the right array"),
        ("mistake_sigmoid_prime.py", "nabla_b", "missing the sigmoid-derivative factor sigma'(z) = a (1 - a)"),
        ("mistake_averaged.py", "nabla_b", "averaged instead of summed: it is the right array divided by the batch"),
        ("mistake_bias_sum.py", "biases", "biases not summed over the batch: shape (7, 5), one row per example"),
        ("mistake_factor.py", "biases", "off by a constant factor 2"),
    ],
)
def test_check_names_the_planted_mistake(capsys, file, array, diagnosis):
    status, out, err = run_cli(capsys, "check", str(WRONG / file), "--no-speed")
    assert status == 1, out + err
    verdict = out.strip().splitlines()[-1]
    # The first wrong array: the output layer's, on the first network, in the kernel's own names.
    where = f"{array}[0] (layer 1: 13 -> 5), sizes [13, 5], batch of 7"
    assert verdict.startswith("FAIL ") and f"{where}: {diagnosis}" in verdict, verdict
    assert err == "" and "Traceback" not in out


def case_for(sizes: list[int], n: int) -> tuple[Case, implementations.Params]:
    """Return a diagnosis case on a random batch and the reference's gradients for it."""
    params = init_params(sizes, 2)
    X, Y = random_batch(sizes, n, 3)
    return Case(params, X, Y, 1e-6), implementations.get("vectorized").gradients(params, X, Y)


def test_diagnosis_of_mistakes_the_planted_files_do_not_show():
    case, ref = case_for([7, 7, 5, 3], 5)
    last_only = implementations.get("vectorized").gradients(case.params, case.X[-1:], case.Y[-1:])
    assert "only the last example's" in diagnose(last_only.biases[2], ref.biases[2], ("biases", 2), case)
    assert diagnose(ref.weights[0].T, ref.weights[0], ("weights", 0), case).startswith("transposed")  # square
    assert "= the batch size 5" in diagnose(5 * ref.weights[1], ref.weights[1], ("weights", 1), case)
    from implementations.kernels import vectorized

    hidden = vectorized.backprop(case.params, case.X, case.Y, output_prime=True, hidden_prime=False)
    assert "in the hidden layers' deltas" in diagnose(hidden.weights[0], ref.weights[0], ("weights", 0), case)
    assert diagnose(ref.weights[0] + 1, ref.weights[0], ("weights", 0), case) is None


def test_check_says_when_only_the_short_last_batch_is_wrong(tmp_path, capsys):
    kernel = tmp_path / "short_batch.py"
    kernel.write_text(
        textwrap.dedent(
            """\
            from implementations.core import batches, predict
            from implementations.kernels.vectorized import gradients

            def train_epoch(params, X, Y, batch_size, eta, order=None):
                params = params.copy()
                for idx in batches(len(X), batch_size, order):
                    nabla = gradients(params, X[idx], Y[idx])
                    for p, g in zip(params.arrays(), nabla.arrays()):
                        p -= eta / batch_size * g  # the mistake: len(X[idx]) for the last batch
                return params
            """
        )
    )
    status, out, _ = run_cli(capsys, "check", str(kernel), "--no-speed")
    assert status == 1
    assert "23 examples in batches of 5, the last of 3" in out and "the short last batch is handled wrongly" in out


def test_check_fails_a_kernel_wrong_only_for_large_batches(capsys):
    status, out, err = run_cli(capsys, "check", str(WRONG / "mistake_large_batch.py"), "--no-speed")
    assert status == 1, out + err
    verdict = out.strip().splitlines()[-1]
    where = "weights[0] (layer 1: 784 -> 15), sizes [784, 15, 10], batch of 64"
    assert verdict == f"FAIL mistake-large-batch: {where}: off by a constant factor 1.01", verdict
    assert "  ok   gradients, sizes [784, 15, 10], batch of 10:" in out and err == ""


# train_epoch written out, with the divisor of its step at a training-sized batch of 64 planted wrong.
LARGE_BATCH_EPOCH = """\
from implementations.core import batches, predict
from implementations.kernels.vectorized import gradients

def train_epoch(params, X, Y, batch_size, eta, order=None):
    params = params.copy()
    for idx in batches(len(X), batch_size, order):
        m = len(X[idx])
        nabla = gradients(params, X[idx], Y[idx])
        for p, g in zip(params.arrays(), nabla.arrays()):
            p -= eta / ({divisor}) * g
    return params
"""


@pytest.mark.parametrize(
    ("divisor", "hint"),
    [
        ("batch_size if batch_size >= 40 else m", "the short last batch is handled wrongly at this batch size"),
        ("m + 1 if m >= 40 else m", "full batches of 64 are updated wrongly"),
    ],
    ids=["short-batch", "full-batches"],
)
def test_check_says_whether_full_or_short_training_batches_are_wrong(tmp_path, capsys, divisor, hint):
    kernel = tmp_path / "large_batch_epoch.py"
    kernel.write_text(LARGE_BATCH_EPOCH.format(divisor=divisor))
    status, out, _ = run_cli(capsys, "check", str(kernel), "--no-speed")
    verdict = out.strip().splitlines()[-1]
    assert status == 1 and "the update of one SGD epoch, 135 examples in batches of 64, the last of 7" in verdict
    assert hint in verdict, verdict


MY_KERNEL = str(EXAMPLES / "my_kernel.py")


def test_the_example_kernel_passes_every_step(capsys):
    status, out, err = run_cli(capsys, "check", MY_KERNEL, "--no-speed")
    assert status == 0 and err == "", out + err
    lines = out.strip().splitlines()
    for batch in (10, 64, 100, 128):
        assert f"  ok   gradients, sizes [784, 15, 10], batch of {batch}: " in out
        assert f"examples in batches of {batch}, the last of 7: max error" in out
    assert "  ok   SGD epoch, 207 examples in batches of 100, the last of 7, shuffled: " in out
    assert lines[-2] == f"  skipped {SPEED_LABEL}: --no-speed"
    assert lines[-1] == "PASS my-kernel: agrees with the float64 reference in all 20 checks"


def test_the_speed_step_times_a_passing_kernel_through_the_harness(capsys, monkeypatch):
    # Two built-ins beside it keep the workers few (as the examples' README test does).
    monkeypatch.setattr(implementations, "registry", Registry(k for k in BUILTIN if k.name in ("loop", "vectorized")))
    status, out, err = run_cli(capsys, "check", MY_KERNEL, "--train-limit", "300")
    assert status == 0, out + err
    lines = out.strip().splitlines()
    assert lines[-2].startswith(f"  ok   {SPEED_LABEL}: ") and "s/epoch on 300 MNIST images: " in lines[-2]
    # Ratios only: which built-in is fastest on 300 images depends on the machine's load.
    assert "x the loop" in lines[-2] and "x vectorized" in lines[-2], lines[-2]
    assert lines[-1].startswith("PASS my-kernel: ")


def fake_execute(entries: dict[str, tuple[str, str]], seen: list[list[str]]):
    """Return a stand-in for the harness's execute: its run document has these {name: (status, message)} entries."""

    def execute(config, out, reporter):
        seen.append(config.impls)
        listed = [
            {"name": name, "status": status, "message": message, "epoch_seconds": [0.2] if status == "ok" else []}
            for name, (status, message) in entries.items()
        ]
        failed = any(entry["status"] != "ok" for entry in listed)
        return {"n_train": 300, "implementations": listed}, int(failed)

    return execute


@pytest.mark.parametrize(
    ("status", "entry_name"),
    [
        ("mismatch", "my-kernel"),
        ("parity-failed", "my-kernel"),
        ("error", "my-kernel"),
        ("diverged", "my-kernel"),
        ("crashed", MY_KERNEL),  # a worker that died before naming its kernel leaves the spec as its name
        ("timeout", MY_KERNEL),
    ],
)
def test_a_kernel_whose_timed_epoch_is_not_ok_fails_the_check(capsys, monkeypatch, status, entry_name):
    message = "epoch 1's parameters depart from the reference's by 1.0e-02"
    seen: list[list[str]] = []
    entries = {entry_name: (status, message), "loop": ("ok", ""), "vectorized": ("ok", "")}
    monkeypatch.setattr("bench.check.speed.execute", fake_execute(entries, seen))
    monkeypatch.setattr(implementations, "registry", Registry(k for k in BUILTIN if k.name in ("loop", "vectorized")))
    code, out, err = run_cli(capsys, "check", MY_KERNEL, "--train-limit", "300")
    assert seen == [[MY_KERNEL, "loop", "vectorized"]]
    assert code == 1, out + err
    lines = out.strip().splitlines()
    assert lines[-2] == f"  FAIL {SPEED_LABEL}"
    assert lines[-1] == f"FAIL my-kernel: the harness's MNIST run: {status}: {message}", lines[-1]


def test_built_in_kernels_failing_in_the_speed_run_are_only_left_out(capsys, monkeypatch):
    entries = {"my-kernel": ("ok", ""), "loop": ("crashed", "killed by SIGKILL"), "vectorized": ("ok", "")}
    monkeypatch.setattr("bench.check.speed.execute", fake_execute(entries, []))
    monkeypatch.setattr(implementations, "registry", Registry(k for k in BUILTIN if k.name in ("loop", "vectorized")))
    code, out, err = run_cli(capsys, "check", MY_KERNEL, "--train-limit", "300")
    assert code == 0, out + err
    speed = out.strip().splitlines()[-2]
    assert speed == f"  ok   {SPEED_LABEL}: 0.2 s/epoch on 300 MNIST images: 1x vectorized (the fastest built-in)"


def test_the_speed_step_is_not_run_after_a_failed_step(monkeypatch):
    monkeypatch.setattr("bench.check.speed.execute", lambda *args: pytest.fail("a wrong kernel was timed"))
    result = check_kernel(str(WRONG / "mistake_large_batch.py"))
    bench.check.speed.add_speed(result, str(WRONG / "mistake_large_batch.py"))
    assert result.steps[-1].status == "FAIL" and SPEED_LABEL not in [step.label for step in result.steps]


def test_check_passes_a_built_in_kernel_by_name(capsys):
    status, out, _ = run_cli(capsys, "check", "numba", "--no-speed")
    assert status == 0 and out.strip().splitlines()[-1].startswith("PASS numba:")


def test_speed_line_reads_like_the_issue():
    timing = Speed("mine", 60000, {"mine": 0.31, "loop": 4.0, "vectorized": 0.155, "numba": 0.12})
    assert speed_line(timing) == (
        "0.31 s/epoch on 60000 MNIST images: 13x the loop, 0.5x vectorized, 0.39x numba (the fastest built-in)"
    )
    timing = Speed("mine", 1000, {"mine": 0.2, "loop": 2.0, "vectorized": 0.1})
    assert speed_line(timing).endswith("10x the loop, 0.5x vectorized (the fastest built-in)")
    assert speed_line(Speed("mine", 1000, {}, "parity-failed: off")) == "speed: not measured (parity-failed: off)"


# --- bad user code: one line, the right exit status, no traceback -----------------------------


def assert_one_line(status: int, expected_status: int, err: str, *fragments: str) -> None:
    assert status == expected_status, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_a_missing_file_is_one_line(tmp_path, capsys):
    status, _, err = run_cli(capsys, "check", "no/such/kernel.py")
    assert_one_line(status, 2, err, "no/such/kernel.py: no such kernel file")
    status, _, err = run_cli(capsys, "run", "--impl", "no/such/kernel.py", "--out", str(tmp_path / "r.json"))
    assert_one_line(status, 2, err, "no/such/kernel.py: no such kernel file")
    assert not (tmp_path / "r.json").exists()


def test_a_syntax_error_is_one_line_with_its_line(tmp_path, capsys):
    kernel = tmp_path / "broken.py"
    kernel.write_text("import numpy as np\n\ndef gradients(params, X, Y:\n    return None\n")
    status, _, err = run_cli(capsys, "check", str(kernel))
    assert_one_line(status, 2, err, "broken.py:3: SyntaxError: ", "def gradients(params, X, Y:")
    status, _, err = run_cli(capsys, "run", "--impl", str(kernel), "--out", str(tmp_path / "r.json"))
    assert_one_line(status, 2, err, "broken.py:3: SyntaxError")


def test_missing_names_are_one_line(tmp_path, capsys):
    status, _, err = run_cli(capsys, "check", str(FAULTY / "missing_predict.py"))
    assert_one_line(status, 2, err, "missing_predict.py: missing predict")
    (tmp_path / "empty.py").write_text("x = 1\n")
    status, _, err = run_cli(capsys, "run", "--impl", str(tmp_path / "empty.py"), "--out", str(tmp_path / "r.json"))
    assert_one_line(status, 2, err, "empty.py is not a kernel: it defines neither gradients")


def test_two_kernels_with_one_name_are_one_line_naming_both(tmp_path, capsys):
    a, b = str(HONEST / "twin_a.py"), str(HONEST / "twin_b.py")
    status, _, err = run_cli(capsys, "run", "--impl", a, "--impl", b, "--out", str(tmp_path / "r.json"))
    assert_one_line(status, 2, err, "two kernels are named 'twin'", "twin_a.py", "twin_b.py")
    (tmp_path / "loop.py").write_text((HONEST / "twin_a.py").read_text().replace('name = "twin"\n', ""))
    status, _, err = run_cli(capsys, "check", str(tmp_path / "loop.py"))
    expected = "loop.py and implementations.kernels.loop (built in)"
    assert_one_line(status, 2, err, "two kernels are named 'loop'", expected)


BROKEN = ("wrong_shape.py", "wrong_dtype.py", "raises.py", "nan_kernel.py")


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory) -> tuple[int, str, dict[str, dict]]:
    """Return (exit status, stderr, {name: entry}) of one run of the four broken kernels."""
    out = tmp_path_factory.mktemp("broken") / "r.json"
    impls = [flag for file in BROKEN for flag in ("--impl", str(FAULTY / file))]
    stdout, stderr = io.StringIO(), io.StringIO()
    with fresh_registry(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["run", *SMALL, "--epochs", "1", *impls, "--out", str(out)])
    entries = {e["name"]: e for e in json.loads(out.read_text())["implementations"]}
    return status, stdout.getvalue() + stderr.getvalue(), entries


def assert_failed_cleanly(broken_run, name: str, *fragments: str) -> str:
    status, output, entries = broken_run
    assert status == 1 and "Traceback" not in output
    entry = entries[name]
    assert entry["status"] == "error" and "\n" not in entry["message"], entry
    for fragment in fragments:
        assert fragment in entry["message"], entry["message"]
    return entry["message"]


def test_wrong_shapes_name_the_array_and_both_shapes(broken_run, capsys):
    assert_failed_cleanly(broken_run, "wrong-shape", "gradients returned biases[1] with shape (10, 1); expected (10,)")
    status, out, _ = run_cli(capsys, "check", str(FAULTY / "wrong_shape.py"), "--no-speed")
    assert status == 1 and "biases[0] (layer 1: 13 -> 5), sizes [13, 5], batch of 7: shape (5, 1), expected (5,)" in out


def test_wrong_dtypes_name_the_array_and_both_dtypes(broken_run, capsys):
    assert_failed_cleanly(broken_run, "wrong-dtype", "gradients returned biases[1] as float32; expected float64")
    status, out, _ = run_cli(capsys, "check", str(FAULTY / "wrong_dtype.py"), "--no-speed")
    assert status == 1 and "returned biases[0] as float32; expected float64" in out


def test_an_exception_in_the_kernel_quotes_the_users_line(broken_run, capsys):
    assert_failed_cleanly(broken_run, "raises", "ValueError: shapes (", "not aligned", "raises.py:17")
    status, out, _ = run_cli(capsys, "check", str(FAULTY / "raises.py"), "--no-speed")
    assert status == 1 and "gradients raised ValueError" in out
    assert "raises.py:17, in gradients: nabla_w = [np.dot(delta, activations[-2])]" in out


def test_nan_from_a_kernel_is_named(broken_run, capsys):
    assert_failed_cleanly(broken_run, "nan-kernel", "gradients returned NaN in biases[0] from finite parameters")
    status, out, _ = run_cli(capsys, "check", str(FAULTY / "nan_kernel.py"), "--no-speed")
    assert status == 1 and out.strip().splitlines()[-1].startswith("FAIL nan-kernel: sizes [13, 5], batch of 7: ")


def test_the_check_result_is_data_not_text():
    result = check_kernel(str(WRONG / "mistake_sign.py"))
    assert not result.passed and [step.status for step in result.steps] == ["ok", "FAIL"]
    assert Path(result.source).name == "mistake_sign.py"
    assert result.verdict == f"FAIL mistake-sign: {result.steps[-1].detail}"
