"""Step detection (bench.regress.steps) on simulated 40-commit histories, seeded.

Every commit is one simulated run of tests/conftest.py's `simulated_run` (rounds
lognormal 3% with 2% interrupted 1.5-4x; run medians moving about 5% between
processes; 5% of processes 1.1-1.4x slower beside a busy neighbour), here of one
benchmark with 5 rounds, the suite's noisiest kind (`test_epoch`).
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.regress.pytest_files import side_of
from bench.regress.stats import compare_sides
from bench.regress.steps import detect_steps
from bench.regress.worktrees import DEFAULT_RUNS
from tests.conftest import simulated_run

NAME = "test_epoch[numba-float64]"
ONE = [(NAME, "epoch n=1000 float64", 2.7e-3, 5)]
COMMITS = 40
HISTORIES = 100


def history(rng: np.random.Generator, factors: np.ndarray) -> np.ndarray:
    """Return the log median of one simulated run per commit, the true time multiplied by ``factors``."""
    return np.log([simulated_run(rng, {NAME: f}, suite=ONE)["benchmarks"][0]["stats"]["median"] for f in factors])


def confirmed(values: np.ndarray) -> list:
    return [step for step in detect_steps(values) if step.confirmed]


@pytest.mark.slow
def test_no_change_gives_no_step_in_95_of_100_histories():
    rng = np.random.default_rng(101)
    quiet = sum(not confirmed(history(rng, np.ones(COMMITS))) for _ in range(HISTORIES))
    assert quiet >= 95, f"{HISTORIES - quiet} of {HISTORIES} A/A histories had a step"


@pytest.mark.slow
def test_a_one_and_a_quarter_step_is_found_at_its_commit_in_95_of_100():
    rng = np.random.default_rng(102)
    found = 0
    for _ in range(HISTORIES):
        at = int(rng.integers(5, COMMITS - 4))
        steps = confirmed(history(rng, np.where(np.arange(COMMITS) >= at, 1.25, 1.0)))
        # Found: exactly one step, a slowdown, at the right commit within one.
        found += len(steps) == 1 and steps[0].slower and steps[0].start - 1 <= at <= steps[0].end + 1
    assert found >= 95, f"found in {found} of {HISTORIES}"


def drift(at: int) -> np.ndarray:
    """Return the factors of a history whose commits at..at+4 are each 1.06x slower than their parent."""
    return 1.06 ** np.clip(np.arange(COMMITS) - at + 1, 0, 5)


@pytest.mark.slow
def test_a_drift_of_five_six_percent_commits_is_reported_in_90_of_100():
    rng = np.random.default_rng(103)
    reported = 0
    for _ in range(HISTORIES):
        at = int(rng.integers(5, COMMITS - 10))
        steps = confirmed(history(rng, drift(at)))
        reported += any(s.slower and s.start <= at + 5 and s.end >= at - 1 for s in steps)
    assert reported >= 90, f"reported in {reported} of {HISTORIES}"


@pytest.mark.slow
def test_the_pairwise_check_misses_every_commit_of_the_drift():
    """`compare --against` of each drift commit with its parent (six runs a side) never fails: 1.06x is noise to it."""
    rng = np.random.default_rng(104)
    flagged = 0
    for _ in range(20):
        for _commit in range(5):
            base = side_of((f"parent-{i}", simulated_run(rng, {}, suite=ONE)) for i in range(DEFAULT_RUNS))
            cand = side_of((f"commit-{i}", simulated_run(rng, {NAME: 1.06}, suite=ONE)) for i in range(DEFAULT_RUNS))
            flagged += compare_sides(base, cand).failed
    assert flagged == 0


def test_a_one_off_slow_run_is_not_a_step_and_the_newest_commit_is_unconfirmed():
    values = np.log(np.full(30, 0.01) * np.random.default_rng(5).lognormal(0.0, 0.02, 30))
    values[12] += np.log(1.5)  # one run beside a busy neighbour
    assert detect_steps(values) == []
    values[-1] += np.log(1.5)  # the newest commit: a step or a one-off? Not yet known.
    steps = detect_steps(values)
    assert len(steps) == 1 and not steps[0].confirmed and steps[0].start == 29
    values[-2] += np.log(1.5)  # two commits agree: a step
    steps = detect_steps(values)
    assert len(steps) == 1 and steps[0].confirmed and steps[0].start == 28 and 1.4 < steps[0].ratio < 1.6
