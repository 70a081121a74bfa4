"""The benchmark suite as a pytest plugin: its options work from any folder, with kernels from anywhere.

The two slow tests run the suite for real, as a user would, on a copy of
examples/my_kernel.py kept outside the checkout: from the checkout with the
option's value after a space, and from the kernel's own folder with ``--pyargs``.
The fast ones check that the plugin leaves every other session alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.benchmarks.plugin import SUITE, collects_the_suite, results_root

ROOT = Path(__file__).resolve().parent.parent
# One timed epoch of the kernel from outside, in float64: the least the suite can time.
ONE_EPOCH = ["-k", "test_epoch and my-kernel", "--bench-epoch-rounds", "1", "--bench-dtype", "float64"]
# As a run from the checkout names it, from whatever folder it ran (`compare` matches on it).
FULLNAME = "bench/benchmarks/test_benchmarks.py::test_epoch[my-kernel-float64]"


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Return the finished ``python -m pytest ARGS`` run in ``cwd``, with no cache written."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def _benchmark_names(report: Path) -> list[str]:
    """Return the full names of the benchmarks in a pytest-benchmark JSON file."""
    return [b["fullname"] for b in json.loads(report.read_text())["benchmarks"]]


@pytest.fixture
def kernel_folder(tmp_path) -> Path:
    """Return a folder outside the checkout holding a copy of examples/my_kernel.py."""
    folder = tmp_path / "kernels"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "my_kernel.py", folder)
    return folder


@pytest.mark.slow
def test_the_option_value_after_a_space_names_a_kernel_outside_the_checkout(kernel_folder):
    """Once ``unrecognized arguments: --bench-impl``: pytest took the value for a path, and never read the conftest."""
    report = kernel_folder / "b.json"
    kernel = str(kernel_folder / "my_kernel.py")
    done = _pytest(ROOT, "--benchmark-only", "--bench-impl", kernel, *ONE_EPOCH, f"--benchmark-json={report}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert _benchmark_names(report) == [FULLNAME]


@pytest.mark.slow
def test_the_suite_runs_from_the_kernels_own_folder(kernel_folder):
    """``--pyargs bench.benchmarks`` finds the suite; results kept by name go under the current folder."""
    report = kernel_folder / "b.json"
    args = ["--benchmark-only", "--pyargs", "bench.benchmarks", "--bench-impl", "my_kernel.py", *ONE_EPOCH]
    done = _pytest(kernel_folder, *args, f"--benchmark-json={report}", "--benchmark-save=outside")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert _benchmark_names(report) == [FULLNAME]
    saved = list((kernel_folder / "results" / "benchmarks").glob("*/0001_outside.json"))
    assert len(saved) == 1 and _benchmark_names(saved[0]) == [FULLNAME]


def _config(*args: str, cwd: Path = ROOT, pyargs: bool = False) -> SimpleNamespace:
    """Return the little of a pytest.Config that collects_the_suite reads."""
    return SimpleNamespace(
        args=list(args), invocation_params=SimpleNamespace(dir=cwd), option=SimpleNamespace(pyargs=pyargs)
    )


@pytest.mark.parametrize(
    ("args", "pyargs", "expected"),
    [
        (["tests", "bench/benchmarks"], False, True),  # plain `pytest`: the testpaths
        ([str(ROOT)], False, True),
        (["bench/benchmarks/test_benchmarks.py::test_epoch[numba-float64]"], False, True),
        (["bench.benchmarks"], True, True),
        (["bench"], True, True),
        (["tests"], False, False),
        (["tests/test_core.py", "bench/run"], False, False),
        (["bench.run"], True, False),
        (["no/such/folder"], False, False),
    ],
)
def test_only_a_session_that_collects_the_suite_is_set_up_for_it(tmp_path, args, pyargs, expected):
    cwd = tmp_path if pyargs else ROOT
    assert collects_the_suite(_config(*args, cwd=cwd, pyargs=pyargs)) is expected


def test_results_go_under_the_rootdir_only_where_pytest_found_a_configuration_file(tmp_path):
    here = SimpleNamespace(dir=tmp_path)
    assert results_root(SimpleNamespace(rootpath=ROOT, inipath=ROOT / "pyproject.toml", invocation_params=here)) == ROOT
    assert results_root(SimpleNamespace(rootpath=SUITE, inipath=None, invocation_params=here)) == tmp_path


def test_a_session_without_the_suite_gets_none_of_its_fixtures():
    """The plugin is loaded in every session; its fixtures join only those that collect the suite."""
    done = _pytest(ROOT, "--fixtures", "tests/test_benchmark_plugin.py")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "checked_kernel" not in done.stdout
