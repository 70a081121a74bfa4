"""`backprop-bench compare` on synthetic pytest-benchmark files: exit 0 / 1 / 2, MISSING, thresholds, intervals."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from bench.errors import sigterm_interrupts
from bench.regress.pytest_files import load_side
from bench.regress.stats import compare_benchmark, parse_threshold_for, t_interval, t_quantile, threshold_for
from tests.conftest import benchmark_document, run_cli, write_json


def test_same_code_is_exit_0(tmp_path, capsys):
    base = write_json(tmp_path / "base.json", benchmark_document(1))
    cand = write_json(tmp_path / "cand.json", benchmark_document(2))
    status, out, _ = run_cli(capsys, "compare", str(base), str(cand))
    assert status == 0, out
    assert "REGRESSION" not in out and "no regression" in out
    assert "geometric mean of candidate/base over 4 benchmarks" in out


def test_real_slowdown_is_exit_1_and_named(tmp_path, capsys):
    slow = "test_gradients[vectorized-float64-batch10]"
    base = write_json(tmp_path / "base.json", benchmark_document(1))
    cand = write_json(tmp_path / "cand.json", benchmark_document(2, slower={slow: 1.5}))
    status, out, _ = run_cli(capsys, "compare", str(base), str(cand))
    assert status == 1
    lines = [line for line in out.splitlines() if line.startswith("REGRESSION")]
    assert len(lines) == 1 and lines[0].startswith(f"REGRESSION {slow}: 1.5")


def test_slower_within_threshold_is_not_a_regression(tmp_path, capsys):
    base = write_json(tmp_path / "base.json", benchmark_document(1))
    cand = write_json(tmp_path / "cand.json", benchmark_document(2, slower={"test_epoch[loop-float64]": 1.1}))
    status, out, _ = run_cli(capsys, "compare", str(base), str(cand))
    assert status == 0 and "slower, within threshold" in out


@pytest.mark.parametrize(
    "options",
    [["--threshold", "1.6"], ["--threshold-for", "test_epoch*=1.6"], ["--threshold-for", "epoch n=*=1.6"]],
    ids=["global", "by-name", "by-group"],
)
def test_thresholds_can_be_raised(tmp_path, capsys, options):
    base = write_json(tmp_path / "base.json", benchmark_document(1))
    cand = write_json(tmp_path / "cand.json", benchmark_document(2, slower={"test_epoch[loop-float64]": 1.5}))
    assert run_cli(capsys, "compare", str(base), str(cand))[0] == 1
    status, out, _ = run_cli(capsys, "compare", str(base), str(cand), *options)
    assert status == 0, out


def test_threshold_rules():
    rules = [parse_threshold_for("test_epoch*=1.5"), parse_threshold_for("*loop*=2")]
    assert threshold_for("test_epoch[numba-float64]", "epoch n=1000 float64", 1.25, rules) == 1.5
    assert threshold_for("test_epoch[loop-float64]", "epoch n=1000 float64", 1.25, rules) == 2.0  # last match wins
    assert threshold_for("test_predict[numba-float64]", "predict n=10000 float64", 1.25, rules) == 1.25
    for bad in ("1.5", "=1.5", "x=0.9", "x=abc"):
        with pytest.raises(ValueError):
            parse_threshold_for(bad)


@pytest.mark.parametrize("bad", ["0.9", "1", "nan", "x"])
def test_bad_threshold_is_exit_2(tmp_path, capsys, bad):
    base = write_json(tmp_path / "base.json", benchmark_document(1))
    status, _, err = run_cli(capsys, "compare", str(base), str(base), "--threshold", bad)
    assert status == 2 and "threshold" in err


def test_unusable_input_is_exit_2_with_one_line(tmp_path, capsys):
    good = write_json(tmp_path / "good.json", benchmark_document(1))
    broken = tmp_path / "broken.json"
    broken.write_text('{"benchmarks": [')
    other = write_json(tmp_path / "other.json", benchmark_document(1))
    doc = json.loads(other.read_text())
    for bench in doc["benchmarks"]:
        bench["fullname"] = bench["name"] = "test_else"
    disjoint = write_json(tmp_path / "disjoint.json", doc)
    run_file = write_json(tmp_path / "run.json", {"schema": 1, "kind": "backprop-bench run", "implementations": []})
    cases = {
        str(tmp_path / "missing.json"): "no such file",
        str(broken): "not valid JSON",
        str(write_json(tmp_path / "list.json", [1, 2])): "not a results file",
        str(write_json(tmp_path / "odd.json", {"hello": 1})): "unknown kind",
        str(run_file): "backprop-bench run file",
        str(disjoint): "no benchmark in common",
    }
    for path, message in cases.items():
        status, _, err = run_cli(capsys, "compare", str(good), path)
        assert status == 2, path
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert run_cli(capsys, "compare", str(good))[0] == 2


def test_without_raw_data_falls_back_with_a_warning(tmp_path, capsys):
    slow = "test_predict[numba-float64]"
    base = write_json(tmp_path / "base.json", benchmark_document(1, raw=False))
    same = write_json(tmp_path / "same.json", benchmark_document(2, raw=False))
    cand = write_json(tmp_path / "cand.json", benchmark_document(2, slower={slow: 1.5}, raw=False))
    status, out, err = run_cli(capsys, "compare", str(base), str(same))
    assert status == 0 and "--benchmark-save-data" in err
    status, out, err = run_cli(capsys, "compare", str(base), str(cand))
    assert status == 1 and f"REGRESSION {slow}" in out and "IQR overlap" in out


def test_repeated_runs_in_folders(tmp_path, capsys):
    slow = "test_epoch[loop-float64]"
    for i in range(3):
        (tmp_path / "base").mkdir(exist_ok=True)
        (tmp_path / "cand").mkdir(exist_ok=True)
        write_json(tmp_path / "base" / f"{i}.json", benchmark_document(10 + i))
        write_json(tmp_path / "cand" / f"{i}.json", benchmark_document(20 + i, slower={slow: 1.5}))
    side = load_side([tmp_path / "base"])
    assert all(len(s.runs) == 3 for s in side.values())
    status, out, _ = run_cli(capsys, "compare", str(tmp_path / "base"), str(tmp_path / "cand"))
    assert status == 1 and f"REGRESSION {slow}" in out and "Welch t-interval on run medians (3+3 runs)" in out


def test_between_run_noise_widens_the_interval(tmp_path):
    """A side whose runs disagree with each other must not yield a confident verdict."""
    for i, shift in enumerate([0.8, 1.0, 1.3]):
        write_json(tmp_path / f"b{i}.json", benchmark_document(30 + i, slower={"test_epoch[loop-float64]": shift}))
        write_json(tmp_path / f"c{i}.json", benchmark_document(40 + i))
    key = "bench/benchmarks/test_benchmarks.py::test_epoch[loop-float64]"
    base = load_side(sorted(tmp_path.glob("b*.json")))[key]
    cand = load_side(sorted(tmp_path.glob("c*.json")))[key]
    verdict = compare_benchmark(base, cand, threshold=1.25)
    assert verdict.low < 1.0 < verdict.high and not verdict.regression


def test_against_needs_a_real_commit_and_no_files(tmp_path, capsys):
    base = write_json(tmp_path / "base.json", benchmark_document(1))
    status, _, err = run_cli(capsys, "compare", "--against", "no-such-ref-xyz")
    assert status == 2 and "no-such-ref-xyz" in err
    status, _, err = run_cli(capsys, "compare", str(base), "--against", "HEAD")
    assert status == 2 and "not both" in err


def test_a_benchmark_missing_from_the_candidate_fails(tmp_path, capsys):
    """A kernel whose import broke disappears from the candidate: exit 1 and a MISSING line, not a pass."""
    gone = "test_predict[numba-float64]"
    base = write_json(tmp_path / "base.json", benchmark_document(1))
    doc = benchmark_document(2)
    doc["benchmarks"] = [b for b in doc["benchmarks"] if b["name"] != gone]
    cand = write_json(tmp_path / "cand.json", doc)
    status, out, _ = run_cli(capsys, "compare", str(base), str(cand))
    assert status == 1
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("MISSING")] == [f"MISSING {gone}"]
    assert "REGRESSION" not in out and "no regression" not in out
    # The other way round a new benchmark is only noted.
    status, out, _ = run_cli(capsys, "compare", str(cand), str(base))
    assert status == 0 and f"only in the candidate (not compared): {gone}" in out


def test_t_quantile_matches_tables():
    """Student's t quantiles (SciPy's) against printed tables, and bad arguments refused."""
    for df, expected in ((1, 12.7062), (2, 4.3027), (4, 2.7764), (8, 2.3060), (30, 2.0423)):
        assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)
    for p, df in ((0.0, 3.0), (1.0, 3.0), (0.9, 0.0)):
        with pytest.raises(ValueError):
            t_quantile(p, df)


def test_t_interval_covers_like_it_says():
    """Welch's interval on five runs a side covers the true ratio about 95% of the time (seeded)."""
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(2000):
        base, cand = rng.normal(0.0, 0.05, 5), rng.normal(np.log(1.2), 0.08, 5)
        interval = t_interval(base, cand)
        covered += interval.low <= 1.2 <= interval.high
    assert 0.93 <= covered / 2000 <= 0.97


def test_against_needs_two_runs(capsys):
    status, _, err = run_cli(capsys, "compare", "--against", "HEAD", "--runs", "1")
    assert status == 2 and "at least 2 runs" in err


def test_sigterm_handler_is_restored():
    """compare --against turns SIGTERM into an exit while it runs, and leaves the handler as it found it."""
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_interrupts():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
