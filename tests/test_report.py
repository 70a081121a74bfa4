"""`backprop-bench report`: every output written, every kernel named, failures never ranked, escaping, bad input."""

from __future__ import annotations

import base64
import json
import re

import pandas as pd
import pytest

from bench.flops import epoch_flops
from bench.report.tables import scaling_table, summary_table, time_to_accuracy_table
from tests.conftest import benchmark_document, counted_document, run_cli

XSS = "<script>alert(1)</script>"
OUTPUTS = ["report.html", "report.md", "summary.csv", "epochs.csv", "time_to_accuracy.csv", "efficiency.csv"]
PLOTS = ["epoch_times.png", "accuracy.png", "time_to_accuracy.png", "efficiency.png"]


def kernel(name: str, seconds: list[float], accuracy: list[float], status: str = "ok", compile_s: float = 0.0) -> dict:
    return {
        "name": name,
        "status": status,
        "message": None if status == "ok" else "disagrees with the reference: gradient error 3.1e-01",
        "dtype": "float64",
        "compile_seconds": compile_s,
        "grad_max_rel_error": 1e-16 if status == "ok" else 0.31,
        "epoch_seconds": seconds if status == "ok" else [],
        "test_accuracy": accuracy if status == "ok" else [],
    }


def run_document(hostname: str = "bench-host") -> dict:
    """Return a small run results document: loop and vectorized ok, numba failed parity."""
    curve = [0.85, 0.91, 0.93]
    return {
        "schema": 1,
        "kind": "backprop-bench run",
        "created": "2026-01-01T00:00:00+00:00",
        "config": {"sizes": [784, 30, 10], "train_limit": 1000, "batch_size": 100, "dtype": "float64", "threads": 1},
        "machine": {"hostname": hostname, "cpu_model": "Test CPU", "logical_cores": 2, "versions": {"numpy": "2"}},
        "roof": {"gflops": 50.0, "dtype": "float64"},
        "reference_check": {"finite_difference_max_rel_error": 1e-9, "rtol": 1e-6},
        "unavailable": {},
        "implementations": [
            kernel("loop", [2.0, 2.2, 2.1], curve),
            kernel("vectorized", [0.1, 0.12, 0.11], curve),
            kernel("numba", [], [], status="parity-failed", compile_s=0.5),
        ],
    }


def sweep_document() -> dict:
    config = {"batch_sizes": [1, 100], "widths": [30, 100], "base_batch_size": 100, "base_width": 30}
    points = []
    for batch_size, width in [(1, 30), (100, 30), (100, 100)]:
        sizes = [784, width, 10]
        seconds = 1e-9 * epoch_flops(sizes, 1000, batch_size)
        entries = [kernel("loop", [seconds * 20] * 2, [0.5] * 2), kernel("vectorized", [seconds] * 2, [0.5] * 2)]
        points.append(
            {
                "batch_size": batch_size,
                "width": width,
                "sizes": sizes,
                "n_train": 1000,
                "epoch_flops": epoch_flops(sizes, 1000, batch_size),
                "implementations": entries,
            }
        )
    return {
        "schema": 1,
        "kind": "backprop-bench sweep",
        "created": "2026-01-01T00:00:00+00:00",
        "config": config,
        "machine": {"hostname": "bench-host", "cpu_model": "Test CPU"},
        "roof": {"gflops": 50.0, "dtype": "float64"},
        "points": points,
    }


def write(path, document) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def test_report_writes_every_output_naming_every_kernel(tmp_path, capsys):
    run = write(tmp_path / "run.json", run_document())
    sweep = write(tmp_path / "sweep.json", sweep_document())
    out = tmp_path / "rep"
    status, stdout, _ = run_cli(capsys, "report", run, sweep, "--out", str(out))
    assert status == 0, stdout
    for name in [*OUTPUTS, *PLOTS, "scaling.png", "scaling.csv", "machines.csv"]:
        assert (out / name).stat().st_size > 0, name
    page, markdown = (out / "report.html").read_text(), (out / "report.md").read_text()
    for name in ("loop", "vectorized", "numba"):
        assert name in page and name in markdown
    # Self-contained: every image is embedded, nothing is fetched.
    images = re.findall(r'<img[^>]* src="([^"]+)"', page)
    assert len(images) == len(PLOTS) + 1 and all(src.startswith("data:image/png;base64,") for src in images)
    assert base64.b64decode(images[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in page and "https://" not in page
    assert "parity-failed" in page


def test_failed_kernel_is_listed_but_never_ranked():
    summary = summary_table([("run.json", run_document())])
    failed = summary[summary["implementation"] == "numba"].iloc[0]
    assert pd.isna(failed["rank"]) and pd.isna(failed["median_epoch_s"]) and pd.isna(failed["speedup_vs_loop"])
    ranked = summary.dropna(subset=["rank"])
    assert list(ranked["implementation"]) == ["vectorized", "loop"]
    assert list(summary["implementation"])[-1] == "numba"


def test_time_to_accuracy_sums_timed_epochs_and_adds_compile():
    document = run_document()
    document["implementations"][1]["compile_seconds"] = 0.5
    table = time_to_accuracy_table([("run.json", document)], target=0.9).set_index("implementation")
    # 0.91 is first reached after epoch 1 (counting from 0): two epochs.
    assert table.loc["vectorized", "epochs"] == 2
    assert table.loc["vectorized", "seconds_excl_compile"] == pytest.approx(0.22)
    assert table.loc["vectorized", "seconds_incl_compile"] == pytest.approx(0.72)
    assert table.loc["loop", "rank"] == 2 and pd.isna(table.loc["numba", "rank"])
    unreached = time_to_accuracy_table([("run.json", document)], target=0.99).set_index("implementation")
    assert unreached["seconds_excl_compile"].isna().all()
    assert "not reached in 3 epochs" in unreached.loc["loop", "note"]


def test_scaling_puts_the_crossing_point_on_both_lines():
    table = scaling_table([("sweep.json", sweep_document())])
    vectorized = table[table["implementation"] == "vectorized"]
    assert sorted(vectorized.loc[vectorized["axis"] == "batch", "batch_size"]) == [1, 100]
    assert sorted(vectorized.loc[vectorized["axis"] == "width", "width"]) == [30, 100]
    # Built so that vectorized runs at exactly 1 GFLOP/s, 2% of the 50 GFLOP/s roof.
    assert vectorized["gflops"].to_numpy() == pytest.approx(1.0)
    assert vectorized["fraction_of_roof"].to_numpy() == pytest.approx(0.02)
    batch1 = vectorized[(vectorized["axis"] == "batch") & (vectorized["batch_size"] == 1)].iloc[0]
    assert batch1["steps_per_epoch"] == 1000 and batch1["flops_per_step"] == batch1["epoch_flops"] / 1000


def test_strings_from_results_are_escaped(tmp_path, capsys):
    document = run_document(hostname=XSS)
    document["implementations"][0]["name"] = '<img src=x onerror="alert(2)">'
    document["implementations"][2]["message"] = XSS
    out = tmp_path / "rep"
    status, _, _ = run_cli(capsys, "report", write(tmp_path / "run.json", document), "--out", str(out))
    assert status == 0
    page = (out / "report.html").read_text()
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    markdown = (out / "report.md").read_text()
    assert "<script" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown


def test_several_machines_side_by_side(tmp_path, capsys):
    a = write(tmp_path / "a.json", run_document("host-a"))
    b = write(tmp_path / "b.json", run_document("host-b"))
    out = tmp_path / "rep"
    assert run_cli(capsys, "report", a, b, "--out", str(out))[0] == 0
    machines = pd.read_csv(out / "machines.csv", index_col=0)
    assert list(machines.columns) == ["host-a", "host-b"]
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 6 and set(summary["machine"]) == {"host-a", "host-b"}


def test_pytest_benchmark_input(tmp_path, capsys):
    document = {
        "machine_info": {"node": "bench-host", "cpu": {"brand_raw": "Test CPU", "count": 2}},
        "datetime": "2026-01-01T00:00:00",
        "benchmarks": [
            {
                "name": f"test_gradients[{name}]",
                "group": "gradients-batch100",
                "stats": {"median": m, "min": m, "max": m, "iqr": 0.0, "mean": m, "stddev": 0.0, "rounds": 5},
                "extra_info": {"implementation": name, "gflop": 0.01},
            }
            for name, m in [("vectorized", 1e-3), ("loop", 2e-2)]
        ],
    }
    out = tmp_path / "rep"
    status, _, err = run_cli(capsys, "report", write(tmp_path / "pb.json", document), "--out", str(out))
    assert status == 0, err
    assert (out / "benchmarks.png").exists() and len(pd.read_csv(out / "benchmarks.csv")) == 2
    assert "gradients-batch100" in (out / "report.html").read_text()
    assert not (out / "instructions.csv").exists() and "instruction" not in (out / "report.html").read_text()


def test_counted_files_show_instructions_and_no_times(tmp_path, capsys):
    """A counted file (--bench-measure instructions) beside a timed one: a section each, counts never as times."""
    timed = write(tmp_path / "timed.json", benchmark_document(1))
    counted = write(tmp_path / "counted.json", counted_document())
    out = tmp_path / "rep"
    status, _, err = run_cli(capsys, "report", timed, counted, "--out", str(out))
    assert status == 0, err
    assert set(pd.read_csv(out / "benchmarks.csv")["label"]) == {"timed.json"}
    counts = pd.read_csv(out / "instructions.csv")
    assert list(counts["instructions"]) == [1_258_394, 4_326_645] and set(counts["label"]) == {"counted.json"}
    assert counts["instructions_spread"].between(0, 1e-3).all() and (counts["counted_calls"] == 3).all()
    html = (out / "report.html").read_text()
    assert "pytest-benchmark instruction counts" in html and "1,258,394" in html and (out / "instructions.png").exists()
    assert html.index("pytest-benchmark results") < html.index("pytest-benchmark instruction counts")
    # The counted file alone: no section of times at all (its times were taken under Valgrind).
    status, _, _ = run_cli(capsys, "report", counted, "--out", str(tmp_path / "only"))
    assert status == 0 and not (tmp_path / "only" / "benchmarks.csv").exists()
    assert "pytest-benchmark results" not in (tmp_path / "only" / "report.html").read_text()


BAD_INPUTS = {
    "missing": None,
    "broken": "{not json",
    "other-kind": {"hello": "world"},
    "other-schema": run_document() | {"schema": 99},
    "no-rows-run": run_document() | {"implementations": []},
    "no-rows-sweep": sweep_document() | {"points": []},
    "no-rows-pytest": {"machine_info": {"node": "h"}, "benchmarks": []},
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_naming_the_file(tmp_path, capsys, case):
    content = BAD_INPUTS[case]
    path = tmp_path / f"{case}.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    good = write(tmp_path / "good.json", run_document())
    status, _, err = run_cli(capsys, "report", good, str(path), "--out", str(tmp_path / "rep"))
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and str(path) in err and "Traceback" not in err


@pytest.mark.parametrize("target", ["0", "90", "x"])
def test_bad_target_accuracy(tmp_path, capsys, target):
    good = write(tmp_path / "good.json", run_document())
    status, _, err = run_cli(capsys, "report", good, "--target-accuracy", target)
    assert status == 2 and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_run_then_report_end_to_end(tmp_path, capsys):
    results = tmp_path / "r.json"
    args = ["--train-limit", "500", "--epochs", "2", "--impl", "loop", "--impl", "vectorized", "--out", str(results)]
    assert run_cli(capsys, "run", *args)[0] == 0
    assert json.loads(results.read_text())["roof"]["gflops"] > 0
    out = tmp_path / "rep"
    assert run_cli(capsys, "report", str(results), "--out", str(out), "--target-accuracy", "0.1")[0] == 0
    for name in [*OUTPUTS, *PLOTS]:
        assert (out / name).exists(), name
    page = (out / "report.html").read_text()
    assert "loop" in page and "vectorized" in page
