"""`backprop-bench run` end to end on a small training subset, and its handling of bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import implementations
from tests.conftest import SMALL, run_cli


@pytest.mark.parametrize(
    "impls",
    [
        pytest.param(["vectorized", "numba"], id="reference-and-numba"),
        # No --impl: every available kernel, a worker each (a minute with every extra).
        pytest.param([], id="every-kernel", marks=pytest.mark.slow),
    ],
)
def test_run_writes_results_and_its_kernels_agree(tmp_path, capsys, impls):
    out = tmp_path / "r.json"
    flags = [flag for name in impls for flag in ("--impl", name)]
    status, stdout, _ = run_cli(capsys, "run", *SMALL, *flags, "--out", str(out))
    assert status == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == 1 and doc["kind"] == "backprop-bench run"
    assert doc["config"]["sizes"] == [784, 30, 10] and doc["config"]["train_limit"] == 300
    assert doc["config"]["dtype"] == "float64"
    assert doc["machine"]["cpu_model"] and doc["machine"]["versions"]["numpy"]
    assert doc["reference_check"]["finite_difference_max_rel_error"] <= 1e-6
    entries = {e["name"]: e for e in doc["implementations"]}
    assert set(entries) == set(impls or implementations.registry.names())
    accuracies = {name: tuple(e["test_accuracy"]) for name, e in entries.items()}
    assert len(set(accuracies.values())) == 1, accuracies
    for name, entry in entries.items():
        assert entry["status"] == "ok", entry
        assert len(entry["epoch_seconds"]) == 2 and all(t > 0 for t in entry["epoch_seconds"])
        assert all(0 <= a <= 1 for a in entry["test_accuracy"])
        # The reference's own row shows its finite-difference check (rtol 1e-6), the others 1e-10.
        assert entry["grad_max_rel_error"] <= entry["rtol"] <= (1e-6 if name == "vectorized" else 1e-10)
        assert [check["epoch"] for check in entry["verification"]] == [0, 1]  # every timed epoch checked
        assert all(check["problem"] is None for check in entry["verification"])
        assert name in stdout
    assert entries["vectorized"]["probe"]["gradients_checked_against"] == "central finite differences"


def test_same_seed_same_results(tmp_path, capsys):
    """Reproducibility: parameters (through accuracies) are identical across runs, timings aside."""
    runs = []
    for i in range(2):
        out = tmp_path / f"r{i}.json"
        assert run_cli(capsys, "run", *SMALL, "--impl", "numba", "--shuffle", "--seed", "7", "--out", str(out))[0] == 0
        runs.append(json.loads(out.read_text())["implementations"][0]["test_accuracy"])
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_console_script_runs(tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "bench.cli", "run", "--impl", "vectorized", *SMALL, "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "vectorized" in done.stdout and out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "--epochs: expected a positive integer"),
        (["--batch-size", "-3"], "--batch-size: expected a positive integer"),
        (["--eta", "fast"], "--eta: expected a positive number"),
        (["--sizes", "784,x,10"], "--sizes: expected comma-separated"),
        (["--impl", "nope"], "unknown implementation 'nope'; known: "),
        (["--sizes", "100,30,10"], "--sizes starts with 100 inputs"),
        (["--sizes", "784,30,7"], "ends with 7 outputs"),
        (["--train-limit", "70000"], "exceeds the 60000 training images"),
        (["--dataset", "cifar"], "invalid choice: 'cifar'"),
        (["--data-dir", "/nonexistent/folder"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    status, _, err = run_cli(capsys, "run", "--epochs", "1", "--out", str(tmp_path / "r.json"), *args)
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_data_dir_without_files_is_an_error(tmp_path, capsys):
    status, _, err = run_cli(capsys, "run", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r.json"))
    assert status == 2 and "lacks" in err


def test_unwritable_output_is_reported_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, _, err = run_cli(capsys, "run", *SMALL, "--out", str(blocker / "sub" / "r.json"))
    assert status == 2 and "cannot write results" in err
