"""The regression gate (`compare`, as `compare --against` runs it) on simulated benchmark files, seeded.

The files are tests/conftest.py's `simulated_run`: the suite's shape (for each of five
kernels `test_gradients` at batch 10 and 100, `test_epoch`; one shared `test_predict`),
rounds lognormal 3% with 2% interrupted 1.5-4x, run medians moving about 5% between
processes, and 5% of processes beside a busy neighbour (1.1-1.4x on everything).

A check is six runs per side (the `--against` default), compared at the default
threshold of 1.25x. The figures the gate must meet: at most 5% false alarms over
200 A/A checks; a 1.5x slowdown of one kernel caught in at least 95% of 200.
Measured with these seeds: 0 false alarms in 200; 196 of 200 caught. Over 600
more checks (another seed) the catch rate was 98.3% with six runs (Yuen's trimmed
t-interval), 96.8% with six and a plain Welch interval, 96.0% and 92.8% with five:
the busy-neighbour runs are what an interval on few runs has to absorb.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.regress.pytest_files import side_of
from bench.regress.stats import compare_benchmark, compare_sides
from bench.regress.worktrees import DEFAULT_RUNS
from tests.conftest import SIM_KERNELS as KERNELS
from tests.conftest import SIM_SUITE as SUITE
from tests.conftest import run_cli, simulated_run

RUNS = DEFAULT_RUNS
CHECKS = 200


def check(rng: np.random.Generator, slower: dict[str, float]) -> set[str]:
    """Return the names the gate fails (REGRESSION or MISSING) for RUNS simulated runs a side."""
    base = side_of((f"base-{i}", simulated_run(rng, {})) for i in range(RUNS))
    cand = side_of((f"cand-{i}", simulated_run(rng, slower)) for i in range(RUNS))
    comparison = compare_sides(base, cand)
    return {v.name for v in comparison.regressions} | set(comparison.missing)


def slowed(kernel: str) -> dict[str, float]:
    """Return {benchmark: 1.5} for every benchmark of one kernel."""
    return {name: 1.5 for name, *_ in SUITE if f"[{kernel}-float64" in name}


@pytest.mark.slow
def test_false_alarms_at_most_5_percent_over_200_aa_checks():
    rng = np.random.default_rng(20260101)
    alarms = sum(bool(check(rng, {})) for _ in range(CHECKS))
    assert alarms <= 0.05 * CHECKS, f"{alarms} false alarms in {CHECKS} A/A checks"


@pytest.mark.slow
def test_a_one_and_a_half_x_slowdown_is_caught_in_95_percent_of_200():
    rng = np.random.default_rng(20260102)
    caught = wrong = 0
    for i in range(CHECKS):
        slow = slowed(KERNELS[i % len(KERNELS)])
        failed = check(rng, slow)
        caught += bool(failed & set(slow))
        wrong += bool(failed - set(slow))
    assert caught >= 0.95 * CHECKS, f"caught {caught} of {CHECKS}"
    assert wrong <= 0.05 * CHECKS, f"{wrong} checks also flagged an unchanged benchmark"


@pytest.mark.slow
def test_one_run_per_side_is_only_guarded_by_the_threshold():
    """With one run a side the interval sees no between-run noise: that is why --against runs six."""
    rng = np.random.default_rng(3)
    narrow = 0
    for _ in range(50):
        base = side_of([("base", simulated_run(rng, {}, raw=True))])
        cand = side_of([("cand", simulated_run(rng, {}, raw=True))])
        key = next(iter(base))
        verdict = compare_benchmark(base[key], cand[key], threshold=1.25)
        narrow += verdict.method.startswith("bootstrap") and verdict.high / verdict.low < 1.05
    assert narrow > 25


def test_the_simulated_files_go_through_the_cli(tmp_path, capsys):
    """The same simulated files, written to disk: the command line agrees (exit 0 A/A, 1 slowed)."""
    rng = np.random.default_rng(11)
    for label, slower in (("base", {}), ("same", {}), ("slow", slowed("numba"))):
        (tmp_path / label).mkdir()
        for i in range(RUNS):
            (tmp_path / label / f"{i}.json").write_text(json.dumps(simulated_run(rng, slower, raw=True)))
    status, out, _ = run_cli(capsys, "compare", str(tmp_path / "base"), str(tmp_path / "same"))
    assert status == 0, out
    status, out, _ = run_cli(capsys, "compare", str(tmp_path / "base"), str(tmp_path / "slow"))
    flagged = {line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("REGRESSION")}
    assert status == 1 and flagged and flagged <= set(slowed("numba")), out
