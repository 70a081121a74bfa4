"""The goal arithmetic of `backprop-bench goals`, and the command itself, on a synthetic measurement."""

from __future__ import annotations

import json

import pytest

import bench.goals
from bench.flops import epoch_flops, sparse_epoch_flops
from bench.goals import goal_table, table_rows, verdicts
from tests.conftest import run_cli


def entry(name: str, batch_size: int, seconds: list[float], status: str = "ok") -> dict:
    return {"name": name, "batch_size": batch_size, "status": status, "seconds": seconds, "message": None}


@pytest.fixture
def document() -> dict:
    epochs = [
        entry("numba", 100, [0.09, 0.10, 0.11]),
        entry("numba-parallel", 100, [0.08, 0.08, 0.09]),
        entry("torch", 100, [0.20, 0.21, 0.22]),
        entry("jax", 100, [0.15, 0.16, 0.20]),
        entry("vectorized", 100, [], status="parity-failed"),
        entry("numba", 10, [0.30, 0.30, 0.31]),
        entry("torch", 10, [0.35, 0.36, 0.37]),
        entry("jax", 10, [0.90, 0.95, 1.0]),
    ]
    per_example = {
        "numba": entry("numba", 1, [0.010, 0.011]),
        "numba-fastmath": entry("numba-fastmath", 1, [0.008, 0.009]),
        "loop": entry("loop", 1, [0.300, 0.310]),
    }
    setting = {"threads": 1, "dtype": "float64", "roof_epoch_seconds": 0.06, "epochs": epochs}
    setting["per_example"] = per_example
    two = {"threads": 2, "dtype": "float64", "roof_epoch_seconds": 0.03, "per_example": {}}
    two["epochs"] = [entry("numba-parallel", 100, [0.05, 0.05, 0.05]), entry("numba", 100, [0.07, 0.07, 0.08])]
    density = [
        {"zero_fraction": z, "dtype": "float64", "epochs": {"numba": entry("numba", 100, [0.1]), "numba-sparse": s}}
        for z, s in [(0.0, entry("numba-sparse", 100, [0.2])), (0.5, entry("numba-sparse", 100, [0.09]))]
    ]
    return {"settings": [setting, two], "cache_warm_up_seconds": 0.3, "n_train": 60_000, "density": density}


def test_rows_give_roof_multiple_and_ratio_to_best_peer(document):
    rows = {(r["kernel"], r["batch_size"]): r for r in table_rows(document) if r["threads"] == 1}
    assert rows[("numba", 100)]["median_epoch_ms"] == pytest.approx(100.0)
    assert rows[("numba", 100)]["roof_multiple"] == pytest.approx(0.10 / 0.06)
    assert rows[("numba", 100)]["vs_best_peer"] == pytest.approx(0.10 / 0.16)  # jax is the faster peer
    assert rows[("numba", 10)]["vs_best_peer"] == pytest.approx(0.30 / 0.36)  # torch is, at batch 10
    failed = rows[("vectorized", 100)]
    assert failed["median_epoch_ms"] is None and failed["roof_multiple"] is None and failed["status"] == "parity-failed"


def test_verdicts_name_the_best_kernel_and_say_met_or_not(document):
    lines = verdicts(document)
    assert "goal 1 threads=1 float64: fastest numba-parallel at 1.33x roof (NOT met)" in lines
    assert "goal 2 threads=1 float64 batch 100: numba-parallel 0.50x best peer (met)" in lines
    assert "goal 2 threads=1 float64 batch 10: numba 0.83x best peer (NOT met)" in lines
    assert any(
        line.startswith("goal 3 threads=1 float64: numba-fastmath 35.9x") and "(NOT met)" in line for line in lines
    )
    assert "goal 4: warm-up from cache 0.30 s (met)" in lines
    assert "goal 5 threads=1 float64: numba at 1.67x roof (NOT met)" in lines
    # The fastest kernel at two threads against its own one-core time: 0.05 / 0.08.
    assert "goal 6 threads=2 float64: numba-parallel takes 0.62x its one-core time (NOT met)" in lines
    assert "density float64: numba-sparse / numba at batch 100: 0% zeros 2.00x, 50% zeros 0.90x; " in " ".join(lines)
    assert any(line.endswith("dense wins up to 0% zeros") for line in lines)


def test_a_sparse_kernel_gets_dense_equivalent_and_actual_flops(document):
    document["settings"][0]["epochs"].append(
        {**entry("numba-sparse", 100, [0.05]), "sparse_input": True, "input_density": 0.19}
    )
    row = next(r for r in table_rows(document) if r["kernel"] == "numba-sparse" and r["threads"] == 1)
    dense = epoch_flops([784, 30, 10], 60_000, 100)
    assert row["gflops"] == pytest.approx(dense / 0.05 / 1e9)
    assert row["actual_gflops"] == pytest.approx(sparse_epoch_flops([784, 30, 10], 60_000, 100, 0.19) / 0.05 / 1e9)
    assert row["actual_gflops"] < 0.5 * row["gflops"]  # 81% zeros skipped in both input-sized products


def test_real_data_sets_give_their_zero_share_and_the_sparse_ratio(document):
    document["datasets"] = [
        {"dataset": "mnist", "dtype": "float64", "zero_fraction": 0.81, "epochs": {
            "numba": entry("numba", 100, [0.20]), "numba-sparse": entry("numba-sparse", 100, [0.15])}},
        {"dataset": "fashion-mnist", "dtype": "float64", "zero_fraction": 0.502, "epochs": {
            "numba": entry("numba", 100, [0.20]), "numba-sparse": entry("numba-sparse", 100, [0.30])}},
        {"dataset": "fashion-mnist", "dtype": "float32", "skipped": "fashion-mnist IDX files not found", "epochs": {}},
    ]  # fmt: skip
    lines = verdicts(document)
    assert "mnist float64: 81% zeros, numba-sparse / numba at batch 100 0.75x (sparse wins)" in lines
    assert "fashion-mnist float64: 50% zeros, numba-sparse / numba at batch 100 1.50x (dense wins)" in lines
    assert "fashion-mnist float32: not measured: fashion-mnist IDX files not found" in lines


def test_cache_warm_up_is_shown_in_its_parts(document):
    document["cache_warm_up"] = {"import_numba": 0.4, "numba_setup": 0.3, "numba": 0.1, "total": 0.8}
    document["cache_warm_up_seconds"] = 0.8
    assert "goal 4: warm-up from cache 0.80 s (import_numba 0.40, numba_setup 0.30, numba 0.10) (NOT met)" in verdicts(
        document
    )


def test_goal_table_has_a_row_per_goal_and_a_column_per_setting(document):
    lines = goal_table(document).splitlines()
    assert lines[0] == "| goal | target | 1 thread, float64 | 2 threads, float64 |"
    assert "| 1. fastest exact kernel / dense roof, batch 100 | <= 1.0x | numba-parallel 1.33x ✗ | " in lines[2]
    assert lines[3].endswith("| numba-parallel 0.50x | - |")  # met: no mark; no peers at two threads
    assert lines[5].startswith("| 3. batch-1 SGD speed-up over loop | >= 50x | numba-fastmath 35.9x ✗ |")
    assert lines[-2].endswith("| - | numba-parallel 0.62x ✗ |")
    assert lines[-1].startswith("| 4. warm-up from the Numba cache | <= 0.5 s | 0.30 s |")


def test_a_data_set_not_found_is_kept_with_the_reason_and_not_timed(monkeypatch):
    import bench.goals as goals
    from bench.errors import DataError

    def not_here(dataset, data_dir):
        raise DataError(f"{dataset} IDX files not found in data/{dataset}")

    monkeypatch.setattr(goals, "DATASETS", ("fashion-mnist",))
    monkeypatch.setattr(goals, "resolve_data_dir", not_here)
    monkeypatch.setattr(goals, "_epoch_times", lambda *args: pytest.fail("a missing data set must not be timed"))
    (point,) = goals.dataset_points("float32", 3, lambda line: None)
    assert point == {
        "dataset": "fashion-mnist",
        "dtype": "float32",
        "skipped": "fashion-mnist IDX files not found in data/fashion-mnist",
        "epochs": {},
    }


def test_goals_refuse_to_measure_against_a_reference_that_fails_finite_differences(monkeypatch):
    from bench import goals
    from bench.errors import BenchError

    monkeypatch.setattr(goals, "reference_check", lambda seed: 1e-3)
    with pytest.raises(BenchError, match="finite-difference check"):
        goals.measure([1], ["float64"], 1, lambda text: None)


def test_the_command_saves_the_measurement_and_prints_the_table_and_verdicts(document, tmp_path, capsys, monkeypatch):
    """The command's own work in-process; the measurement (full MNIST, minutes) is the synthetic one."""
    asked = []

    def measure(threads, dtypes, rounds, say, density=True):
        asked.append((threads, dtypes, rounds, density))
        return document

    monkeypatch.setattr(bench.goals, "measure", measure)
    out = tmp_path / "goals.json"
    args = ["--threads", "2", "--dtype", "float64", "--rounds", "3", "--no-density", "--out", str(out)]
    status, stdout, err = run_cli(capsys, "goals", *args)
    assert status == 0, err
    assert asked == [([2], ["float64"], 3, False)]
    assert json.loads(out.read_text()) == document
    assert "numba-parallel" in stdout and verdicts(document)[-1] in stdout
    assert f"results saved to {out}" in err


@pytest.mark.parametrize("args", [["--threads", "0"], ["--dtype", "float16"], ["--rounds", "x"]])
def test_bad_options_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args):
    monkeypatch.setattr(bench.goals, "measure", lambda *args, **kwargs: pytest.fail("measured despite a bad option"))
    status, _, err = run_cli(capsys, "goals", *args, "--out", str(tmp_path / "goals.json"))
    assert status == 2 and len(err.strip().splitlines()) == 1, err
