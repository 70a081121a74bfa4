"""`backprop-bench track`: records, resume, interruption and import, on a scratch git repository.

The benchmark suite itself is stubbed (bench.regress.track.run_suite and checkout): these
tests are about what gets recorded where, in what order, and what survives an
interruption; tests/test_compare.py and the real backfill cover running the suite.
"""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
from pathlib import Path

import numpy as np
import pytest

import bench.regress.track as track
from bench.errors import BenchError
from bench.regress.worktrees import Kernels
from tests.conftest import run_cli, simulated_run

SUITE = [("test_epoch[numba-float64]", "epoch n=1000 float64", 2.7e-3, 5)]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """Return a scratch git repository with five commits (the current folder), kernels tracked."""
    root = tmp_path / "repo"
    (root / "implementations").mkdir(parents=True)
    (root / "implementations" / "__init__.py").write_text("")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    for i in range(5):
        (root / "implementations" / "k.py").write_text(f"VERSION = {i}\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"commit {i}")
    monkeypatch.chdir(root)
    return root


class StubSuite:
    """A stand-in for the benchmark suite: each run writes a simulated pytest-benchmark file."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.args: list[list[str]] = []
        self.timeouts: list[float] = []
        self.interrupt_at: int | None = None
        self.rng = np.random.default_rng(0)

    def run_suite(self, kernels, tree, out, threads=1, pytest_args=(), timeout=600.0) -> float:
        """Write the run's file (or raise KeyboardInterrupt at run ``interrupt_at``); return its seconds.

        With --bench-measure=instructions the file is a counted one: counts in extra_info, measure recorded.
        """
        if self.interrupt_at == len(self.ran):
            raise KeyboardInterrupt
        self.ran.append(kernels.label)
        self.args.append(list(pytest_args))
        self.timeouts.append(timeout)
        document = simulated_run(self.rng, {}, suite=SUITE)
        size = int(next(a for a in pytest_args if a.startswith("--bench-size=")).split("=")[1])
        counted = "--bench-measure=instructions" in pytest_args
        document["machine_info"].update(
            python_version=platform.python_version(),
            backprop_bench={"threads": threads, "train_size": size, "epoch_rounds": 5}
            | {"measure": "instructions" if counted else "time"},
        )
        if counted:
            for bench in document["benchmarks"]:
                bench["extra_info"] = {"instructions": 76_739_798, "instructions_rounds": [76_739_535, 76_739_798] * 2}
        document["datetime"] = f"2026-11-20T10:00:{len(self.ran):02d}+00:00"
        Path(out).write_text(json.dumps(document))
        return 1.0


@pytest.fixture
def suite(monkeypatch) -> StubSuite:
    """Return the stub suite, patched into bench.regress.track with a checkout that needs no worktree."""
    stub = StubSuite()

    @contextlib.contextmanager
    def checkout(tree, sha, label=None):
        yield Kernels(label or sha[:10], (), tree / "implementations")

    monkeypatch.setattr(track, "checkout", checkout)
    monkeypatch.setattr(track, "run_suite", stub.run_suite)
    return stub


def test_resolve_commits_in_commit_order(repo):
    commits = git(repo, "rev-list", "--reverse", "HEAD").split()
    assert track.resolve_commits(repo, ["HEAD~3..HEAD"]) == commits[2:]
    assert track.resolve_commits(repo, [f"{commits[3]},{commits[1]}", "HEAD~4"]) == [commits[0], commits[1], commits[3]]
    with pytest.raises(BenchError, match="not a commit"):
        track.resolve_commits(repo, ["no-such-ref"])
    with pytest.raises(BenchError, match="holds no commits"):
        track.resolve_commits(repo, ["HEAD..HEAD"])


def test_backfill_records_resumes_and_keeps_finished_commits_when_interrupted(repo, suite, capsys):
    commits = git(repo, "rev-list", "--reverse", "HEAD").split()
    store = repo / "results" / "history"
    args = ("track", "--commits", "HEAD~4..HEAD", "--store", str(store), "--machine", "box")
    suite.interrupt_at = 2
    status, out, _ = run_cli(capsys, *args)
    assert status == 130 and "interrupted: 2 run(s) recorded" in out
    assert sorted(p.name.split("-")[0] for p in (store / "box").glob("*.json")) == sorted(commits[1:3])
    suite.interrupt_at = None
    status, out, _ = run_cli(capsys, *args)
    assert status == 0 and "2 run(s) recorded, 2 already recorded, 0 commit(s) failed" in out
    assert suite.ran == [c[:10] for c in commits[1:5]]  # each commit ran once, oldest first
    record = json.loads(next((store / "box").glob(f"{commits[4]}-*.json")).read_text())
    assert record["commit_info"]["id"] == commits[4] and record["commit_info"]["subject"] == "commit 4"
    assert record["commit_info"]["depth"] == 5
    assert record["backprop_bench_track"]["config"] == track.SuiteSettings().config()
    assert "data" not in record["benchmarks"][0]["stats"]
    # Another configuration is another series: nothing is skipped.
    status, out, _ = run_cli(capsys, *args, "--size", "500")
    assert status == 0 and "4 run(s) recorded, 0 already recorded" in out


def test_a_failing_commit_is_reported_and_the_others_recorded(repo, suite, monkeypatch, capsys):
    def flaky(kernels, tree, out, threads=1, pytest_args=(), timeout=600.0):
        if len(suite.ran) == 1:
            suite.ran.append("failed")
            raise BenchError("the 1234567890 benchmark run failed (exit 1):\nImportError: boom")
        return suite.run_suite(kernels, tree, out, threads, pytest_args, timeout)

    monkeypatch.setattr(track, "run_suite", flaky)
    status, out, _ = run_cli(capsys, "track", "--commits", "HEAD~3..HEAD", "--store", "s", "--machine", "box")
    assert status == 1 and "2 run(s) recorded, 0 already recorded, 1 commit(s) failed" in out
    assert any(line.startswith("FAILED ") and "failed (exit 1)" in line for line in out.splitlines())


def test_track_refuses_a_dirty_tree_and_records_a_clean_one(repo, suite, capsys):
    (repo / "implementations" / "k.py").write_text("VERSION = 'edited'\n")
    status, _, err = run_cli(capsys, "track", "--store", "s")
    assert status == 2 and "uncommitted changes" in err and "--commits HEAD" in err
    git(repo, "checkout", "-q", "--", "implementations")
    status, out, _ = run_cli(capsys, "track", "--store", "s", "--machine", "ci-box")
    head = git(repo, "rev-parse", "HEAD")
    assert status == 0 and out.startswith("recorded ") and f"ci-box/{head}-" in out


def test_import_autosave_files_once_and_leave_dirty_ones(tmp_path, capsys):
    folder = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i, dirty in enumerate((False, False, True)):
        document = simulated_run(rng, {}, suite=SUITE)
        document["machine_info"].update(node="laptop", cpu_model="Test CPU")
        document["commit_info"] = {"id": f"{i:040x}", "time": "2026-10-01T10:00:00+00:00", "dirty": dirty}
        document["datetime"] = f"2026-10-01T10:0{i}:00+00:00"
        (folder / f"000{i}_{i:08x}_20261001_100{i}00.json").write_text(json.dumps(document))
    (folder / "0009_unversioned.json").write_text(json.dumps({**document, "commit_info": {"id": "unversioned"}}))
    store = tmp_path / "store"
    status, out, _ = run_cli(capsys, "track", "--from", str(tmp_path / ".benchmarks"), "--store", str(store))
    assert status == 0 and "2 of 4 file(s) imported" in out
    assert "skipped: made from a tree with uncommitted changes" in out and "skipped: no commit id" in out
    machine = track.machine_id({"node": "laptop", "cpu_model": "Test CPU"})
    assert machine.startswith("laptop-") and len(list((store / machine).glob("*.json"))) == 2
    status, out, _ = run_cli(capsys, "track", "--from", str(folder), "--store", str(store))
    assert status == 0 and "0 of 4 file(s) imported" in out and out.count("already in the store") == 2


def test_the_configuration_a_run_records_is_the_one_resume_expects():
    settings = track.SuiteSettings(threads=2, size=500, epoch_rounds=3)
    machine_info = {
        "python_version": platform.python_version(),
        "backprop_bench": {"threads": 2, "train_size": 500, "epoch_rounds": 3, "cpu_flags": ["avx2"]},
    }
    assert track.configuration(machine_info) == settings.config()
    assert "--bench-size=500" in settings.args() and "--bench-epoch-rounds=3" in settings.args()


def test_checkout_gives_the_commits_kernels_and_removes_its_worktree(repo):
    """The real worktrees.checkout: a worktree at the commit, a shim with only its kernels, both gone after."""
    from bench.regress.worktrees import checkout

    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    with checkout(repo, first) as kernels:
        assert (kernels.implementations / "k.py").read_text() == "VERSION = 0\n"
        shim = kernels.pythonpath[0]
        assert [p.name for p in shim.iterdir()] == ["implementations"] and kernels.pythonpath[1] == repo
        assert kernels.implementations.resolve() != (repo / "implementations").resolve()
    assert not kernels.implementations.exists() and len(git(repo, "worktree", "list").splitlines()) == 1
    git(repo, "rm", "-q", "-r", "implementations")
    git(repo, "commit", "-q", "-m", "no kernels")
    with pytest.raises(BenchError, match="no implementations package"), checkout(repo, git(repo, "rev-parse", "HEAD")):
        pass
    assert len(git(repo, "worktree", "list").splitlines()) == 1


def test_several_runs_are_passes_over_the_commits_and_resume_mid_pass(repo, suite, capsys):
    """--runs 2: every commit once, oldest first, then every commit again; an interruption resumes mid-pass."""
    commits = git(repo, "rev-list", "--reverse", "HEAD").split()[2:]
    args = ("track", "--commits", "HEAD~3..HEAD", "--store", "s", "--machine", "box", "--runs", "2")
    suite.interrupt_at = 4
    assert run_cli(capsys, *args)[0] == 130
    suite.interrupt_at = None
    status, out, _ = run_cli(capsys, *args)
    assert status == 0 and "2 run(s) recorded, 4 already recorded" in out
    assert suite.ran == [c[:10] for c in commits + commits]
    assert len(list(Path("s/box").glob("*.json"))) == 6


def test_instruction_counts_are_a_series_of_their_own(repo, suite, capsys):
    """--measure instructions: the suite counts (--bench-measure instructions, one thread, a long timeout),
    the records' configuration names the measure, and timed records of the same commits are not skipped."""
    args = ("track", "--commits", "HEAD~2..HEAD", "--store", "s", "--machine", "box")
    status, out, _ = run_cli(capsys, *args, "--measure", "instructions")
    assert status == 0 and "2 run(s) recorded, 0 already recorded" in out
    assert all(a[-1] == "--bench-measure=instructions" for a in suite.args)
    assert suite.timeouts == [track.INSTRUCTION_TIMEOUT_S] * 2
    records = [json.loads(p.read_text()) for p in Path("s/box").glob("*.json")]
    assert {r["backprop_bench_track"]["config"]["measure"] for r in records} == {"instructions"}
    assert records[0]["backprop_bench_track"]["config"] == track.SuiteSettings(measure="instructions").config()
    assert run_cli(capsys, *args, "--measure", "instructions")[1].count("2 already recorded") == 1
    status, out, _ = run_cli(capsys, *args)  # timed: another series, nothing skipped
    assert status == 0 and "2 run(s) recorded, 0 already recorded" in out
    assert not any("--bench-measure=instructions" in a for a in suite.args[2:])
    timed = [json.loads(p.read_text()) for p in Path("s/box").glob("*.json")]
    assert sum("measure" not in r["backprop_bench_track"]["config"] for r in timed) == 2
    status, _, err = run_cli(capsys, *args, "--measure", "instructions", "--threads", "2")
    assert status == 2 and "one thread" in err and len(err.strip().splitlines()) == 1


def test_old_records_without_a_measure_read_as_time():
    """A record made before counts existed (no measure anywhere) has the configuration a timed run records now."""
    old = {"python_version": platform.python_version(), "backprop_bench": {"threads": 1, "train_size": 1000}}
    old["backprop_bench"]["epoch_rounds"] = 5
    new = {**old, "backprop_bench": {**old["backprop_bench"], "measure": "time"}}
    assert track.configuration(old) == track.configuration(new) == track.SuiteSettings().config()
    counted = {**old, "backprop_bench": {**old["backprop_bench"], "measure": "instructions"}}
    assert track.configuration(counted) == track.SuiteSettings(measure="instructions").config()
    assert track.config_label(track.configuration(counted)).endswith(", measure=instructions")
