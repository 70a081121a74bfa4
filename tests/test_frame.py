"""bench.results.frame: pytest-benchmark JSON and `backprop-bench run` files into one tidy DataFrame."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.errors import BenchError
from bench.results.frame import COLUMNS, load_frame
from tests.conftest import BENCHMARKS, benchmark_document, write_json


def run_document() -> dict:
    """Return a minimal `backprop-bench run` results document with two kernels."""
    return {
        "schema": 1,
        "kind": "backprop-bench run",
        "created": "2026-01-02T03:04:05+00:00",
        "config": {"sizes": [784, 30, 10], "batch_size": 100, "dtype": "float64", "train_limit": 6000, "threads": 1},
        "machine": {"hostname": "runbox", "cpu_model": "Run CPU"},
        "implementations": [
            {
                "name": "loop",
                "status": "ok",
                "dtype": "float64",
                "epoch_seconds": [2.0, 1.0, 3.0],
                "test_accuracy": [0.8, 0.85, 0.9],
                "compile_seconds": 0.0,
                "grad_max_rel_error": 1e-16,
            },
            {"name": "numba", "status": "parity-failed", "epoch_seconds": [], "test_accuracy": []},
        ],
    }


def test_both_kinds_in_one_frame(tmp_path):
    bench_file = write_json(tmp_path / "bench.json", benchmark_document(1))
    run_file = write_json(tmp_path / "run.json", run_document())
    frame = load_frame([bench_file, run_file])
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == len(BENCHMARKS) + 2
    assert set(frame["kind"]) == {"pytest-benchmark", "backprop-bench run"}
    assert frame["created"].dt.tz is not None

    loop_run = frame[(frame["kind"] == "backprop-bench run") & (frame["implementation"] == "loop")].iloc[0]
    assert loop_run["benchmark"] == "epoch" and loop_run["rounds"] == 3 and loop_run["median_s"] == 2.0
    assert loop_run["min_s"] == 1.0 and loop_run["max_s"] == 3.0 and loop_run["final_accuracy"] == 0.9
    assert loop_run["machine"] == "runbox" and loop_run["n_examples"] == 6000
    # 6000 examples x 4 x 784 x 30 + ... FLOPs of one epoch, over the median epoch time.
    assert loop_run["gflops"] == pytest.approx(loop_run["gflop"] / 2.0)
    failed = frame[(frame["kind"] == "backprop-bench run") & (frame["implementation"] == "numba")].iloc[0]
    assert failed["status"] == "parity-failed" and pd.isna(failed["median_s"])

    bench_rows = frame[frame["kind"] == "pytest-benchmark"]
    assert set(bench_rows["implementation"]) == {"vectorized", "loop", "numba"}
    assert set(bench_rows["benchmark"]) == {"gradients", "epoch", "predict"}
    assert (bench_rows["machine"] == "testbox").all() and (bench_rows["cpu_model"] == "Test CPU").all()
    assert (bench_rows["threads"] == 1).all()


def test_folders_expand_to_their_json_files(tmp_path):
    (tmp_path / "runs").mkdir()
    for i in range(3):
        write_json(tmp_path / "runs" / f"{i}.json", benchmark_document(i))
    frame = load_frame([tmp_path / "runs"])
    assert frame["source"].nunique() == 3 and len(frame) == 3 * len(BENCHMARKS)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a results file"),
        ('{"kind": "something else"}', "unknown kind"),
        (json.dumps(run_document() | {"schema": 99}), "schema 99"),
        (json.dumps({"machine_info": {}, "benchmarks": [{"name": "x"}]}), "no 'stats'"),
    ],
    ids=["missing", "not-json", "not-object", "unknown-kind", "run-schema", "no-stats"],
)
def test_bad_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BenchError, match=message) as info:
        load_frame([path])
    assert str(path) in str(info.value)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(BenchError, match=r"no \.json"):
        load_frame([tmp_path])
