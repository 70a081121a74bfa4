"""The suite counted under Valgrind for real: a built-in kernel and a user's kernel file get counts.

Slow tier, and skipped where Valgrind is not installed (CI installs it). One pytest
session under callgrind: numba's and examples/my_kernel.py's float64 gradients at batch 10
on a 300-image workload.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("valgrind") is None, reason="Valgrind is not installed (apt-get install valgrind)"),
]


def test_counts_for_built_in_and_user_kernels(tmp_path):
    out = tmp_path / "counted.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "bench/benchmarks",
            "--benchmark-only",
            "--bench-measure=instructions",
            "--bench-size=300",
            "--bench-dtype=float64",
            f"--bench-impl={ROOT / 'examples' / 'my_kernel.py'}",
            "-k",
            "test_gradients and batch10 and (numba-float64 or my-kernel or jax)",
            f"--benchmark-json={out}",
            "-p",
            "no:cacheprovider",
            "-rs",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads(out.read_text())
    info = document["machine_info"]["backprop_bench"]
    assert info["measure"] == "instructions"
    assert info["instructions"]["environment"]["PYTHONHASHSEED"] == "0"
    counted = {b["extra_info"]["implementation"]: b["extra_info"] for b in document["benchmarks"]}
    user = next(name for name in counted if name != "numba")
    assert set(counted) == {"numba", user}
    for extra in counted.values():
        rounds = extra["instructions_rounds"]
        assert len(rounds) == 3 and all(count > 100_000 for count in rounds)
        assert extra["instructions"] == min(rounds)
    if "jax" in info["instructions"]["excluded"]:  # listed, with the reason, and shown as skipped
        assert "not counted under Valgrind" in done.stdout
