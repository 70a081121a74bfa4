"""Each kernel in a fresh worker process: crashes, hangs, threads, compile order, memory, busy machines, resume.

Kernels given as files (tests/kernels/faulty/ and wrong/) are loaded by the worker itself,
exactly as a user's ``--impl path/to/kernel.py`` is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import implementations
from bench.results.files import read_run
from tests.conftest import FAULTY, SMALL, WRONG, needs_cores, run_cli


def entries(path: Path) -> dict[str, dict]:
    return {e["name"]: e for e in read_run(path)["implementations"]}


@pytest.mark.slow  # the hang is stopped by a 15 s timeout
def test_a_segfault_and_a_hang_end_as_crashed_and_timeout_and_the_others_carry_on(tmp_path, capsys):
    out = tmp_path / "r.json"
    impls = ["--impl", "vectorized", "--impl", str(FAULTY / "segfault.py"), "--impl", str(FAULTY / "hang.py")]
    impls += ["--impl", "loop"]
    status, stdout, _ = run_cli(capsys, "run", *SMALL, *impls, "--timeout", "15", "--out", str(out))
    assert status == 1
    found = entries(out)  # a valid results file
    assert found["segfault"]["status"] == "crashed" and "SIGSEGV" in found["segfault"]["message"]
    assert found["hang"]["status"] == "timeout" and "--timeout 15" in found["hang"]["message"]
    assert found["vectorized"]["status"] == "ok" and found["loop"]["status"] == "ok"
    assert "timeout 15 s per kernel" in stdout


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_failing_kernels_are_isolated_and_never_timed(tmp_path, capsys):
    out = tmp_path / "r.json"
    files = (WRONG / "off_by_a_bit.py", FAULTY / "raises_runtime_error.py", FAULTY / "explodes.py")
    impls = [x for file in files for x in ("--impl", str(file))]
    status, stdout, _ = run_cli(capsys, "run", *SMALL, *impls, "--impl", "vectorized", "--out", str(out))
    assert status == 1
    found = entries(out)
    assert found["wrong"]["status"] == "parity-failed" and found["wrong"]["epoch_seconds"] == []
    assert found["crash"]["status"] == "error" and "kernel bug" in found["crash"]["message"]
    assert "raises_runtime_error.py" in found["crash"]["message"]  # the user's own frame, not the harness's
    assert found["nan"]["status"] == "diverged" and found["nan"]["diverged_epoch"] == 0
    assert found["vectorized"]["status"] == "ok"
    assert "parity-failed" in stdout


@pytest.mark.slow  # a worker for every built-in kernel
@pytest.mark.parametrize("threads", [1, pytest.param(2, marks=needs_cores(2))])
def test_every_kernel_records_the_threads_the_run_allows(tmp_path, capsys, threads):
    names = [n for n in implementations.registry.available(builtin=True) if n != "loop"]
    out = tmp_path / "r.json"
    impls = [x for name in names for x in ("--impl", name)]
    status, _, err = run_cli(capsys, "run", *SMALL, *impls, "--threads", str(threads), "--out", str(out))
    assert status == 0, err
    for name, entry in entries(out).items():
        recorded = entry["threads"]
        assert recorded["cpus"] == threads, name
        assert set(recorded["blas"]) <= {threads}, name
        for library in ("numba", "torch"):
            if library in recorded:
                assert recorded[library] == threads, (name, library)
        # Measured, not declared: CPU seconds per wall second during the timed epochs.
        assert recorded["cores_used"] <= threads + 0.25, name


@pytest.mark.slow  # three runs
def test_compile_seconds_do_not_depend_on_the_order_kernels_run_in(tmp_path, capsys):
    pair = ["numba", "numba-fastmath"]
    if not set(pair) <= set(implementations.registry.available()):
        pytest.skip("numba kernels not available")
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    # Fill Numba's on-disk cache first, so that both orders below find it in the same state.
    assert run_cli(capsys, "run", *SMALL, "--impl", pair[1], "--out", str(tmp_path / "fill.json"))[0] == 0
    for order, out in ((pair, first), (pair[::-1], second)):
        impls = [x for name in order for x in ("--impl", name)]
        assert run_cli(capsys, "run", *SMALL, *impls, "--out", str(out))[0] == 0
    a, b = entries(first)["numba-fastmath"], entries(second)["numba-fastmath"]
    # Each worker starts cold in memory and loads the same on-disk cache, whoever ran before it.
    assert a["compile_kind"] == b["compile_kind"] == "cache"
    assert max(a["compile_seconds"], b["compile_seconds"]) < 3 * min(a["compile_seconds"], b["compile_seconds"])


def test_peak_memory_is_recorded_per_kernel(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert run_cli(capsys, "run", *SMALL, "--impl", "vectorized", "--impl", "loop", "--out", str(out))[0] == 0
    for entry in entries(out).values():
        assert 0 < entry["peak_memory_bytes"] < 4 * 2**30


@pytest.mark.slow  # 3,000 images beside two busy processes
@needs_cores(2)  # the hogs inherit this process's CPUs: with one, they share the run's and leave the rest idle
def test_a_run_beside_a_cpu_hog_carries_the_busy_machine_warning(tmp_path, capsys):
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        out = tmp_path / "r.json"
        status, _, err = run_cli(
            capsys, "run", "--impl", "vectorized", "--epochs", "4", "--train-limit", "3000", "--out", str(out)
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert status == 0
    entry = entries(out)["vectorized"]
    assert any(w.startswith("busy machine") for w in entry["warnings"])
    assert "warning: vectorized: busy machine" in err


def test_resume_refuses_a_file_from_another_machine(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert run_cli(capsys, "run", *SMALL, "--impl", "vectorized", "--out", str(out))[0] == 0
    document = json.loads(out.read_text())
    document["implementations"][0]["status"] = "interrupted"
    document["machine"]["hostname"] = "another-machine"
    out.write_text(json.dumps(document))
    status, _, err = run_cli(capsys, "run", "--resume", str(out))
    assert status == 2 and "another machine" in err and len(err.strip().splitlines()) == 1


def test_resume_refuses_another_thread_setting(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert run_cli(capsys, "run", *SMALL, "--impl", "vectorized", "--out", str(out))[0] == 0
    document = json.loads(out.read_text())
    document["implementations"][0]["status"] = "interrupted"
    document["threads"]["effective"] = 64
    out.write_text(json.dumps(document))
    status, _, err = run_cli(capsys, "run", "--resume", str(out))
    assert status == 2 and "64 threads" in err and len(err.strip().splitlines()) == 1
