"""The architecture, checked by import-linter: kernels never import the harness, the core never the CLI, no cycles.

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
        ("bench/harness.py", "import bench.cli.run", "bench.harness -> bench.cli.run"),
        ("implementations/core.py", "import bench.data", "implementations.core -> bench.data"),
        ("bench/results.py", "import bench.measure", ".results -> .measure"),
    ],
    ids=["core-imports-cli", "kernel-imports-bench", "cycle"],
)
def test_a_planted_wrong_import_breaks_a_contract_and_is_named(tmp_path, module, planted, expected):
    root = copy_tree(tmp_path)
    path = root / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    done = lint_imports(root)
    assert done.returncode == 1
    assert "BROKEN" in done.stdout and expected in done.stdout


def test_every_core_module_is_held_to_the_no_cli_contract():
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["forbidden_modules"] == ["bench.cli"])
    core = {f"bench.{p.stem}" for p in (ROOT / "bench").glob("*.py") if p.stem != "__init__"}
    core |= {f"bench.{p.name}" for p in (ROOT / "bench").iterdir() if (p / "__init__.py").exists()} - {
        "bench.cli",
        "bench.benchmarks",
    }
    assert core <= set(contract["source_modules"]), (
        f"add to the contract: {sorted(core - set(contract['source_modules']))}"
    )
