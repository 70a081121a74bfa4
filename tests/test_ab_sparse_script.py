"""scripts/ab_sparse.py: numba-sparse at a git revision against the working tree, in one process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, load_script


@pytest.fixture(scope="module")
def ab():
    return load_script("ab_sparse")


def test_the_revision_copy_imports_its_own_simd(ab):
    source = (
        "from implementations.core import Params\n"
        "from implementations.kernels import simd, spin\n"
        "from implementations.kernels.simd import exp, scatter\n"
    )
    assert ab._point_at(source, "old_simd") == (
        "from implementations.core import Params\n"
        "import old_simd as simd\n"
        "from implementations.kernels import spin\n"
        "from old_simd import exp, scatter\n"
    )
    assert ab._point_at("from implementations.kernels import simd\n", "old_simd") == "import old_simd as simd\n"


def test_the_working_tree_side_is_read_from_the_files(ab):
    # Both sides are copies compiled afresh: a cached numba_sparse would hold the simd code it was compiled with.
    assert ab._revision_source(None, "simd") == (ROOT / "implementations/kernels/simd.py").read_text()


def test_an_unknown_revision_is_one_line_and_an_exit(ab):
    with pytest.raises(SystemExit, match=r"ab_sparse: no implementations/kernels/simd\.py at 'no-such-rev'"):
        ab._revision_source("no-such-rev", "simd")


@pytest.mark.slow
def test_head_against_the_working_tree(ab, monkeypatch, capsys):
    argv = ["ab_sparse.py", "HEAD", "--images", "300", "--epochs", "2", "--dtype", "float64", "--batch", "10"]
    monkeypatch.setattr(sys, "argv", argv)
    ab.main()
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("float64 batch 10, 1 thread(s), 300 images: before ")
    assert "after / before " in line and "(pairwise median of 2)" in line
    unchanged = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "implementations/kernels"], cwd=ROOT)
    if unchanged.returncode == 0:  # the same code on both sides: the same bits
        assert line.endswith("results identical")
