"""Nothing lost, nothing misleading: interrupts, resume, atomic writes, limits, hostile data files."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.results.files import write_atomic
from bench.run.data import DataError, read_idx
from tests.conftest import FAULTY, SMALL, idx_bytes, run_cli

# --- interrupts and resume --------------------------------------------------------------


FLAKY = str(FAULTY / "interrupts_parent.py")


def test_interrupt_saves_finished_epochs_and_resume_completes(tmp_path, capsys, monkeypatch, request):
    out = tmp_path / "r.json"
    args = ["run", *SMALL, "--epochs", "4", "--impl", "vectorized", "--impl", FLAKY, "--impl", "loop"]
    # The flaky kernel's worker sends Ctrl-C to this process in its training epoch 1. A pytest
    # started as a background job ignores SIGINT: give it Python's own handler for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    monkeypatch.setenv("BACKPROP_BENCH_TEST_INTERRUPT", "1")
    status, _, err = run_cli(capsys, *args, "--out", str(out))
    assert status == 130
    assert "interrupted in flaky after 1 of 4 epochs" in err and f"--resume {out}" in err
    saved = {e["name"]: e for e in json.loads(out.read_text())["implementations"]}
    assert saved["vectorized"]["status"] == "ok" and len(saved["vectorized"]["epoch_seconds"]) == 4
    assert saved["flaky"]["status"] == "interrupted" and len(saved["flaky"]["test_accuracy"]) == 1
    assert saved["loop"]["status"] == "interrupted" and saved["loop"]["message"] == "not started"

    monkeypatch.setenv("BACKPROP_BENCH_TEST_INTERRUPT", "0")
    status, stdout, _ = run_cli(capsys, "run", "--resume", str(out))
    assert status == 0 and "flaky" in stdout
    resumed = json.loads(out.read_text())
    entries = {e["name"]: e for e in resumed["implementations"]}
    assert [e["name"] for e in resumed["implementations"]] == ["vectorized", "flaky", "loop"]
    assert entries["vectorized"] == saved["vectorized"]  # kept, not rerun
    assert all(e["status"] == "ok" and len(e["epoch_seconds"]) == 4 for e in entries.values())
    assert entries["flaky"]["test_accuracy"] == entries["vectorized"]["test_accuracy"]
    assert len(resumed["resumed"]) == 1


def test_resume_with_a_different_configuration_is_refused(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert run_cli(capsys, "run", *SMALL, "--impl", "vectorized", "--out", str(out))[0] == 0
    status, _, err = run_cli(capsys, "run", "--resume", str(out), "--epochs", "7")
    assert status == 2 and "configuration mismatch" in err and "epochs=2" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content", ["", "{not json", '{"schema": 99, "kind": "backprop-bench run"}', "[1, 2]"])
def test_resume_from_a_bad_file_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "r.json"
    path.write_text(content)
    status, _, err = run_cli(capsys, "run", "--resume", str(path))
    assert status == 2 and str(path) in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_real_signal_stops_quickly_and_saves(tmp_path, sig, code):
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "bench.cli", "run", "--impl", "vectorized", "--impl", "loop"]
    cmd += ["--train-limit", "3000", "--epochs", "200", "--out", str(out)]
    # A pytest started as a background job ignores SIGINT, and so would its child: restore the default.
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait until the loop kernel is training
        if out.exists() and '"status": "ok"' in out.read_text():
            break
        time.sleep(0.1)
    time.sleep(4.0)  # the loop kernel's worker starts, checks parity and trains its first epochs
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 2.5, "took too long to stop"
    assert proc.returncode == code, err
    entries = {e["name"]: e for e in json.loads(out.read_text())["implementations"]}
    assert entries["vectorized"]["status"] == "ok"
    assert entries["loop"]["status"] == "interrupted" and len(entries["loop"]["epoch_seconds"]) >= 1
    assert "Traceback" not in err


# --- atomic writes -----------------------------------------------------------------------


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    write_atomic(path, {"a": 1})

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["r.json"]  # no temporary file left behind


def test_non_finite_numbers_become_null_not_invalid_json(tmp_path):
    path = tmp_path / "r.json"
    write_atomic(path, {"x": [float("nan"), float("inf"), 1.5]})
    assert json.loads(path.read_text()) == {"x": [None, None, 1.5]}


# --- limits, checked before training -----------------------------------------------------


def test_sizes_beyond_memory_are_refused_before_training(tmp_path, capsys):
    status, _, err = run_cli(capsys, "run", "--sizes", "784,50000000,10", "--out", str(tmp_path / "r.json"))
    assert status == 2 and "needs about" in err and "GiB" in err
    assert not (tmp_path / "r.json").exists()


# --- the IDX reader under fuzzing --------------------------------------------------------

GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


def _read_or_clean_error(tmp_path, content: bytes, name: str = "f") -> None:
    path = tmp_path / name
    path.write_bytes(content)
    try:
        array = read_idx(path, 3)
    except DataError as exc:
        assert str(path) in str(exc)
    else:
        assert array.dtype == np.uint8 and array.ndim == 3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=64))
def test_random_bytes_read_or_fail_cleanly(tmp_path, content):
    _read_or_clean_error(tmp_path, content)
    _read_or_clean_error(tmp_path, gzip.compress(content), "f.gz")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=4), st.booleans())
def test_mutated_files_read_or_fail_cleanly(tmp_path, edits, compress):
    content = bytearray(GOOD)
    for position, value in edits:
        content[position] = value
    packed = gzip.compress(bytes(content)) if compress else bytes(content)
    _read_or_clean_error(tmp_path, packed, "f.gz" if compress else "f")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 2**16), min_size=3, max_size=3), st.booleans())
def test_huge_declared_size_does_not_allocate_it(tmp_path, dims, compress):
    """A header may declare up to 2**48 bytes; the reader must not allocate that for a tiny file."""
    content = bytes([0, 0, 8, 3]) + np.array(dims, ">u4").tobytes() + b"\x07" * 100
    path = tmp_path / ("f.gz" if compress else "f")
    path.write_bytes(gzip.compress(content) if compress else content)
    tracemalloc.start()
    try:
        read_idx(path, 3)
    except DataError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * 2**20
