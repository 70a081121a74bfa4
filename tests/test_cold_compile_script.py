"""scripts/cold_compile.py: a fresh process, an empty Numba cache of its own, and a figure per setting."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def cold():
    return load_script("cold_compile")


def test_cold_compile_writes_one_row_per_setting(cold, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cold.json"
    argv = ["cold_compile.py", "--impl", "vectorized", "--threads", "1", "--dtype", "float64", "--repeats", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(out)])
    cold.main()
    record = json.loads(out.read_text())
    assert record["impl"] == "vectorized" and record["sizes"] == [784, 30, 10]
    (row,) = record["cold"]
    assert row["threads"] == 1 and row["dtypes"] == ["float64"] and len(row["seconds"]) == 2
    assert all(0 < s < 60 for s in row["seconds"])
    assert "vectorized, 1 thread(s), float64: median" in capsys.readouterr().out


def test_a_kernel_that_fails_to_load_is_one_line_and_an_exit(cold):
    with pytest.raises(SystemExit, match="the cold compile of no-such-kernel failed"):
        cold.cold_seconds("no-such-kernel", ["float64"], 1)
