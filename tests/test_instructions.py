"""The instruction-count measure: counted files, `compare --measure instructions`, and the suite's refusals.

Fast: no Valgrind here. Files are the real counted template of tests/conftest.py
(``counted_document``); the run under Valgrind itself is in the slow tier
(tests/test_instructions_valgrind.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.benchmarks.instructions import Counter, MeasureError
from tests.conftest import ROOT, benchmark_document, counted_document, run_cli, write_json

BATCH10 = "test_gradients[numba-float64-batch10]"
BATCH100 = "test_gradients[numba-float64-batch100]"
# Between counted runs of one commit the counts moved by at most 0.19% (max - min of five runs,
# results/reference/instructions/repeat.json): a lognormal sigma of a quarter of that per call.
RUN_NOISE = 1.9e-3 / 4


def _pair(tmp_path: Path, seed: int, factors: dict[str, float] | None = None) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    base = write_json(tmp_path / f"base-{seed}.json", counted_document(rng=rng, noise=RUN_NOISE))
    cand = write_json(tmp_path / f"cand-{seed}.json", counted_document(factors, rng=rng, noise=RUN_NOISE))
    return str(base), str(cand)


def _regressions(out: str) -> list[str]:
    return [line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("REGRESSION")]


def test_ten_a_a_comparisons_flag_nothing(tmp_path, capsys):
    for seed in range(10):
        status, out, _ = run_cli(capsys, "compare", *_pair(tmp_path, seed), "--measure", "instructions")
        assert status == 0, out
        assert not _regressions(out)


@pytest.mark.parametrize("slower", [1.01, 1.02, 1.05])
def test_one_benchmark_with_more_instructions_is_named_alone(tmp_path, capsys, slower):
    status, out, _ = run_cli(capsys, "compare", *_pair(tmp_path, 1, {BATCH100: slower}), "--measure", "instructions")
    assert status == 1
    assert _regressions(out) == [BATCH100]
    assert "more instructions" in out


def test_a_third_of_a_percent_is_within_the_default_threshold(tmp_path, capsys):
    status, out, _ = run_cli(capsys, "compare", *_pair(tmp_path, 2, {BATCH10: 1.003}), "--measure", "instructions")
    assert status == 0, out
    assert "slower, within threshold" in out or "no clear change" in out


def test_threshold_per_benchmark_or_group(tmp_path, capsys):
    files = _pair(tmp_path, 3, {BATCH10: 1.02, BATCH100: 1.02})
    status, out, _ = run_cli(
        capsys, "compare", *files, "--measure", "instructions", "--threshold-for", "gradients batch=10 *=1.03"
    )
    assert status == 1
    assert _regressions(out) == [BATCH100]


def test_counted_files_have_no_wall_times(tmp_path, capsys):
    base, cand = _pair(tmp_path, 4)
    status, _, err = run_cli(capsys, "compare", base, cand)
    assert status == 2
    assert err.count("\n") == 1 and "not wall times" in err and "--measure instructions" in err


def test_timed_files_have_no_counts(tmp_path, capsys):
    base = write_json(tmp_path / "a.json", benchmark_document(1))
    cand = write_json(tmp_path / "b.json", benchmark_document(2))
    status, _, err = run_cli(capsys, "compare", str(base), str(cand), "--measure", "instructions")
    assert status == 2
    assert err.count("\n") == 1 and "no instruction counts" in err


def _suite(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "pytest", "bench/benchmarks", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_valgrind_one_line_and_exit_2(tmp_path):
    done = _suite("--benchmark-only", "--bench-measure", "instructions", path=str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Valgrind" in lines[0] and "apt-get install -y valgrind" in lines[0]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--benchmark-only", "--bench-measure", "cycles"), "choose from"),
        (("--bench-measure", "instructions"), "needs --benchmark-only"),
        (("--benchmark-only", "--bench-measure", "instructions", "--bench-threads", "2"), "one thread"),
    ],
)
def test_bad_measure_options_are_usage_errors(args, says):
    done = _suite(*args)
    assert done.returncode == 4, done.stdout + done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


def test_counter_reads_the_dump_of_its_own_label(tmp_path):
    counter = Counter.__new__(Counter)  # no Valgrind here: only the dump reading
    counter.folder = tmp_path
    pid = os.getpid()
    for part, (label, total) in enumerate([("backprop-bench-1", 1234), ("backprop-bench-2", 99)], start=1):
        (tmp_path / f"callgrind.{pid}.out.{part}").write_text(
            f"cmd: python\npart: {part}\ndesc: Trigger: Client Request: {label}\nsummary: 0\ntotals: {total}\n"
        )
    assert counter._total("backprop-bench-2") == 99
    assert counter._total("backprop-bench-1") == 1234
    assert not list(tmp_path.iterdir())  # read dumps are removed
    with pytest.raises(MeasureError, match="no dump"):
        counter._total("backprop-bench-3")


REPEATS = sorted((ROOT / "results" / "reference" / "instructions").glob("rep-*.json"))


def test_committed_repeat_runs_support_the_default_threshold():
    """The five counted runs of one commit behind the 1.005x default: the threshold at least 2.5 times every
    benchmark's spread between runs (docs: 19 of 22 within 0.1%, the worst torch's gradients at batch 10 at 0.19%),
    and the ten A/A comparisons clean."""
    from bench.regress.pytest_files import load_side
    from bench.regress.stats import INSTRUCTIONS_THRESHOLD, compare_sides

    assert len(REPEATS) == 5
    sides = [load_side([path], "instructions") for path in REPEATS]
    for key in sides[0]:
        counts = np.array([side[key].runs[0].median for side in sides])
        assert 2.5 * (counts.max() - counts.min()) / np.median(counts) <= INSTRUCTIONS_THRESHOLD - 1, key
    for i in range(5):
        for j in range(i + 1, 5):
            comparison = compare_sides(sides[i], sides[j], INSTRUCTIONS_THRESHOLD, measure="instructions")
            assert not comparison.regressions and not comparison.missing
