"""The architecture, checked by import-linter: kernels never import the harness, bench/ in layers, no cycles.

The contracts live in pyproject.toml ([tool.importlinter]); these tests run the tool on
the tree as it is, and on copies with one deliberately wrong import added, which must
fail naming that import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("importlinter", reason="import-linter is installed with the test extra")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Return the finished `lint-imports` run over the packages under ``root``."""
    command = [
        sys.executable,
        "-c",
        "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
    ]
    return subprocess.run(command, cwd=root, env={"PYTHONPATH": str(root), "PATH": ""}, capture_output=True, text=True)


def copy_tree(tmp_path: Path) -> Path:
    """Return a copy of the packages and pyproject.toml, to plant a wrong import in."""
    for name in ("bench", "implementations"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "planted", "expected"),
    [
        ("bench/run/harness.py", "import bench.cli.run", "bench.run.harness -> bench.cli.run"),
        ("implementations/core.py", "import bench.run.data", "implementations.core -> bench.run.data"),
        ("bench/results/files.py", "import bench.run.execute", "bench.results.files -> bench.run.execute"),
        ("bench/regress/history.py", "import bench.report.pages", "bench.regress.history -> bench.report.pages"),
        ("bench/run/config.py", "import bench.run.harness", ".config -> .harness"),
    ],
    ids=["run-imports-cli", "kernel-imports-bench", "results-imports-run", "regress-imports-report", "cycle"],
)
def test_a_planted_wrong_import_breaks_a_contract_and_is_named(tmp_path, module, planted, expected):
    root = copy_tree(tmp_path)
    path = root / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    done = lint_imports(root)
    assert done.returncode == 1
    assert "BROKEN" in done.stdout and expected in done.stdout


def test_every_package_and_module_of_bench_has_a_layer():
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["type"] == "layers")
    layered = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    here = {f"bench.{p.stem}" for p in (ROOT / "bench").glob("*.py") if p.stem != "__init__"}
    here |= {f"bench.{p.name}" for p in (ROOT / "bench").iterdir() if (p / "__init__.py").exists()}
    assert here == layered, f"not in a layer: {sorted(here - layered)}; no longer there: {sorted(layered - here)}"
