"""`backprop-bench sweep` on a tiny grid: every point parity-checked and timed, the file readable by the report."""

from __future__ import annotations

import json

import pytest

from bench.errors import BenchError
from bench.flops import epoch_flops
from bench.results.files import read_sweep
from bench.run.config import SweepConfig
from tests.conftest import run_cli


def test_grid_measures_the_crossing_point_once():
    config = SweepConfig(impls=["vectorized"], batch_sizes=[1, 10, 100], widths=[30, 50], base_batch_size=10)
    assert config.grid() == [(1, 30), (10, 30), (100, 30), (10, 50)]


def test_tiny_sweep_then_report(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    grid = ["--batch-sizes", "10,50", "--widths", "30,40", "--base-batch-size", "50", "--train-limit", "200"]
    status, _, err = run_cli(
        capsys, "sweep", "--impl", "loop", "--impl", "vectorized", *grid, "--epochs", "1", "--out", str(out)
    )
    assert status == 0, err
    document = read_sweep(out)
    assert document["roof"]["gflops"] > 0 and document["machine"]["hostname"]
    assert [(p["batch_size"], p["width"]) for p in document["points"]] == [(10, 30), (50, 30), (50, 40)]
    for point in document["points"]:
        assert point["epoch_flops"] == epoch_flops([784, point["width"], 10], 200, point["batch_size"])
        entries = {e["name"]: e for e in point["implementations"]}
        assert set(entries) == {"loop", "vectorized"}
        for entry in entries.values():
            assert entry["status"] == "ok" and entry["grad_max_rel_error"] <= entry["rtol"]
            assert len(entry["epoch_seconds"]) == 1
    report = tmp_path / "rep"
    assert run_cli(capsys, "report", str(out), "--out", str(report))[0] == 0
    assert (report / "scaling.png").stat().st_size > 0
    assert "vectorized" in (report / "scaling.csv").read_text()


@pytest.mark.parametrize("option", [["--batch-sizes", "0,10"], ["--widths", "30,x"], ["--epochs", "0"]])
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, option):
    status, _, err = run_cli(capsys, "sweep", *option, "--out", str(tmp_path / "s.json"))
    assert status == 2 and len(err.strip().splitlines()) == 1


def test_read_sweep_rejects_a_run_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"schema": 1, "kind": "backprop-bench run", "implementations": []}))
    with pytest.raises(BenchError, match="not a backprop-bench sweep results file"):
        read_sweep(path)
