"""`history --measure instructions`: steps and drifts in instruction counts, seeded, and the page with both measures.

Counts repeat far more closely than times: numba's float64 epoch counted 76,739,798 and
76,739,535 instructions in two runs (0.0003%), and every benchmark repeats within 0.1%.
The histories here carry 0.01% lognormal noise between runs, about ten times the closest
repeats; the records are made from tests/data's real counted file (conftest's
``counted_document``), and no test runs Valgrind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.regress.history import load_histories, load_history, new_steps
from bench.regress.steps import INSTRUCTIONS, TIME, detect_steps
from bench.regress.track import record_document, write_record
from tests.conftest import counted_document, run_cli, simulated_run

COMMITS = 16
STEP_AT = 4  # 2% more instructions from here on
DRIFT = range(10, 15)  # each of these commits adds 0.5%
NOISE = 1e-4  # 0.01% between runs
BATCH10 = "test_gradients[numba-float64-batch10]"
BATCH100 = "test_gradients[numba-float64-batch100]"


def factors(step: float = 1.02, drift: float = 1.005) -> np.ndarray:
    """Return the true count of each commit over the first's: a step at STEP_AT, then five drifting commits."""
    i = np.arange(COMMITS)
    return np.where(i >= STEP_AT, step, 1.0) * drift ** np.clip(i - DRIFT.start + 1, 0, len(DRIFT))


def counts(rng: np.random.Generator, truth: np.ndarray) -> np.ndarray:
    """Return the log counts of one run per commit: 1.26 M instructions times ``truth``, noise 0.01%."""
    return np.log(1_258_481 * truth * rng.lognormal(0.0, NOISE, truth.size))


def sha(i: int) -> str:
    """Return the made-up commit id of commit ``i``."""
    return hashlib.sha1(f"counted commit {i}".encode()).hexdigest()


def write_counted_history(store: Path, truth: np.ndarray, seed: int, machine: str = "ci-box") -> None:
    """Write one counted record per commit: BATCH10's counts follow ``truth``, BATCH100's stay put."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    for i, factor in enumerate(truth):
        document = counted_document({BATCH10: factor}, rng, NOISE)
        document["datetime"] = (start + dt.timedelta(days=i, hours=1)).isoformat()
        commit = {"id": sha(i), "time": (start + dt.timedelta(days=i)).isoformat(), "depth": i + 1, "dirty": False}
        write_record(store, record_document(document, commit | {"subject": f"commit {i}"}, machine, "test"))


def write_timed_history(store: Path, seed: int, machine: str = "ci-box") -> None:
    """Write one timed record per commit of the same commits: no change."""
    rng = np.random.default_rng(seed)
    suite = [(BATCH10, "gradients batch=10 float64", 440e-6, 100)]
    for i in range(COMMITS):
        document = simulated_run(rng, {}, suite=suite)
        document["datetime"] = f"2026-12-{i + 1:02d}T02:00:00+00:00"
        document["machine_info"].update(
            python_version="3.11.7", backprop_bench={"threads": 1, "train_size": 2000, "epoch_rounds": 5}
        )
        commit = {"id": sha(i), "time": f"2026-12-{i + 1:02d}T00:00:00+00:00", "depth": i + 1, "dirty": False}
        write_record(store, record_document(document, commit, machine, "test"))


# --------------------------------------------------------------------------- the search, on counts


@pytest.mark.parametrize("seed", range(20))
def test_a_two_percent_step_and_a_drift_of_half_percents_are_found_at_their_commits(seed):
    steps = detect_steps(counts(np.random.default_rng(seed), factors()), noise=INSTRUCTIONS)
    assert [(s.start, s.end, s.confirmed, s.slower) for s in steps] == [
        (STEP_AT, STEP_AT, True, True),
        (DRIFT.start, DRIFT.stop - 1, True, True),
    ]
    step, drift = steps
    assert step.ratio == pytest.approx(1.02, rel=2e-4) and step.low > 1.01
    assert drift.ratio == pytest.approx(1.005**5, rel=2e-4) and drift.low > 1.01


@pytest.mark.parametrize("seed", range(20))
def test_an_aa_history_of_counts_reports_nothing(seed):
    assert detect_steps(counts(np.random.default_rng(100 + seed), np.ones(COMMITS)), noise=INSTRUCTIONS) == []


def test_the_noise_of_time_would_not_report_the_step():
    """With time's least change (3%), the same 2% step goes unreported: the measures need their own figures."""
    values = counts(np.random.default_rng(7), factors(drift=1.0))
    assert len(detect_steps(values, noise=INSTRUCTIONS)) == 1
    assert detect_steps(values, noise=TIME) == []


def test_one_commit_of_half_a_percent_is_a_step_and_a_tenth_of_a_percent_is_not():
    rng = np.random.default_rng(8)
    at = np.arange(COMMITS) >= 8
    half = detect_steps(counts(rng, np.where(at, 1.005, 1.0)), noise=INSTRUCTIONS)
    assert [(s.start, round(s.ratio, 3)) for s in half] == [(8, 1.005)]
    assert detect_steps(counts(rng, np.where(at, 1.001, 1.0)), noise=INSTRUCTIONS) == []


# --------------------------------------------------------------------------- records, the CLI and the gate


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Return a store with a counted history (step and drift in BATCH10) and a timed one of the same commits."""
    root = tmp_path_factory.mktemp("counted") / "store"
    write_counted_history(root, factors(), seed=1)
    write_timed_history(root, seed=2)
    return root


def test_the_history_of_counts_holds_the_step_and_the_drift(store):
    history = load_history([store], measure="instructions")
    assert history.measure == "instructions" and len(history.series) == 2
    assert all(s.config.get("measure") == "instructions" for s in history.series)
    assert any("16 file(s) of wall time left out" in note for note in history.notes)
    steps = {s.name: [(st.start, st.end) for st in s.steps] for s in history.series}
    assert steps == {BATCH10: [(STEP_AT, STEP_AT), (DRIFT.start, DRIFT.stop - 1)], BATCH100: []}
    timed = load_history([store])
    assert timed.measure == "time" and [s.name for s in timed.series] == [BATCH10] and timed.series[0].steps == []
    assert set(load_histories([store])) == {"time", "instructions"}


def test_the_cli_prints_counts_and_gates_at_one_percent(store, tmp_path, capsys):
    args = ("history", str(store), "--measure", "instructions", "--out", str(tmp_path / "p"))
    status, out, err = run_cli(capsys, *args, "--fail-since", sha(STEP_AT - 1)[:10])
    assert status == 1, err
    assert "note: 16 file(s) of wall time left out" in err
    date = f"2026-12-{STEP_AT + 1:02d}"
    step = f"{BATCH10}: +2.0% instructions (1.020x) from {sha(STEP_AT)[:7]} ({date}) on, 1.258 M instr to 1.283 M instr"
    drift = (
        f"{BATCH10}: +2.5% instructions (1.025x) from {sha(DRIFT.start)[:7]} (2026-12-11) to {sha(DRIFT.stop - 1)[:7]}"
    )
    lines = out.splitlines()
    assert any(line.startswith(step) for line in lines), out
    assert any(line.startswith(drift) and ", a drift over 5 commits, " in line for line in lines), out
    failing = [line for line in lines if line.startswith("STEP ")]
    assert len(failing) == 2 and all(line.endswith(f"beyond 1.01x, after {sha(STEP_AT - 1)[:10]}") for line in failing)
    # After the step, only the drift is new; after the drift, nothing; a higher threshold lets both pass.
    assert run_cli(capsys, *args, "--fail-since", sha(STEP_AT))[1].count("\nSTEP ") == 1
    status, out, _ = run_cli(capsys, *args, "--fail-since", sha(COMMITS - 2))
    assert status == 0 and out.strip().endswith(f"no slowdown beyond 1.01x begins after {sha(COMMITS - 2)}")
    assert run_cli(capsys, *args, "--fail-since", sha(0), "--threshold", "1.03")[0] == 0


def test_the_gate_of_time_is_unchanged_on_the_same_store(store, tmp_path, capsys):
    """The default measure is time: the counted records are noted and left out, and time's 1.10x gate applies."""
    status, out, err = run_cli(capsys, "history", str(store), "--out", str(tmp_path / "p"), "--fail-since", sha(0))
    assert status == 0 and "note: 16 file(s) of instruction counts left out" in err
    assert out.strip().endswith(f"no slowdown beyond 1.10x begins after {sha(0)}")
    assert new_steps(load_history([store]), sha(0)) == []


def test_the_page_shows_both_measures(store, tmp_path, capsys):
    out = tmp_path / "page"
    status, printed, _ = run_cli(capsys, "history", str(store), "--measure", "instructions", "--out", str(out))
    assert status == 0 and "the page also shows wall time" in printed
    files = {p.name for p in out.iterdir()}
    assert {"steps.csv", "series.csv", "steps-instructions.csv", "series-instructions.csv"} <= files
    assert sum(name.startswith("i0") for name in files) == 2 and sum(name.startswith("01-") for name in files) == 1
    html = (out / "history.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3  # two counted series, one timed
    assert html.index("Instruction counts: Steps, largest first") < html.index("Wall time: Steps, largest first")
    series = pd.read_csv(out / "series-instructions.csv")
    assert {"median_instructions", "q1_instructions", "q3_instructions"} <= set(series.columns)
    assert series["configuration"].str.endswith("measure=instructions").all()
    steps = pd.read_csv(out / "steps-instructions.csv")
    assert list(steps["kind"]) == ["drift", "step"] and steps["beyond_threshold"].all()
    assert "median_s" in pd.read_csv(out / "series.csv").columns and not (out / "steps.csv").read_text().strip()


def test_a_store_of_counts_only_asks_for_the_measure(tmp_path, capsys):
    write_counted_history(tmp_path / "s", np.ones(4), seed=3)
    status, _, err = run_cli(capsys, "history", str(tmp_path / "s"), "--out", str(tmp_path / "p"))
    assert status == 2 and "no records of wall time" in err and "--measure instructions" in err
    assert len(err.strip().splitlines()) == 1


def test_the_template_is_a_real_counted_file():
    document = counted_document()
    info = document["machine_info"]["backprop_bench"]
    assert info["measure"] == "instructions" and info["threads"] == 1
    for bench in document["benchmarks"]:
        rounds = bench["extra_info"]["instructions_rounds"]
        assert len(rounds) == 3 and (max(rounds) - min(rounds)) / np.median(rounds) < 1e-3
    assert json.dumps(counted_document({BATCH10: 1.02})) != json.dumps(document)
