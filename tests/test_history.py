"""`backprop-bench history` on generated history stores: the page, machines kept apart, escaping, the gate."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.regress.history import load_history, new_steps
from bench.regress.track import record_document, write_record
from tests.conftest import run_cli, simulated_run

SLOW = "test_epoch[numba-float64]"
HOSTILE = 'test_gradients[<script>alert("x")</script>&amp;]'
SUITE = [(SLOW, "epoch n=1000 float64", 2.7e-3, 5), (HOSTILE, "gradients <b>batch</b>", 50e-6, 100)]
COMMITS = 24
STEP_AT = 14


def sha(i: int) -> str:
    """Return the made-up commit id of commit ``i``."""
    return hashlib.sha1(f"commit {i}".encode()).hexdigest()


def write_history(store: Path, machine: str, seed: int, step: float = 1.3) -> None:
    """Write COMMITS records of one machine: SLOW is ``step`` x slower from commit STEP_AT on."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    for i in range(COMMITS):
        document = simulated_run(rng, {SLOW: step if i >= STEP_AT else 1.0}, suite=SUITE)
        document["datetime"] = (start + dt.timedelta(days=i, hours=1)).isoformat()
        document["machine_info"].update(
            node=machine, python_version="3.11.4", backprop_bench={"threads": 1, "train_size": 1000, "epoch_rounds": 5}
        )
        time = (start + dt.timedelta(days=i)).isoformat()
        commit = {"id": sha(i), "time": time, "subject": "<i>x</i>", "depth": i + 1, "dirty": False}
        write_record(store, record_document(document, commit, machine, "test"))


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """Return the folder of a history page made from two machines' records (written once for the module).

    ``store/`` holds the records, ``page/`` the page, ``page.txt`` what the command printed.
    """
    root = tmp_path_factory.mktemp("history")
    write_history(root / "store", "box-a", seed=1)
    write_history(root / "store", "box-b", seed=2)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["history", str(root / "store"), "--out", str(root / "page")])
    assert status == 0
    (root / "page.txt").write_text(printed.getvalue())
    return root


def test_the_page_and_its_files(page):
    out = page / "page"
    assert {"history.html", "history.md", "steps.csv", "series.csv"} <= {p.name for p in out.iterdir()}
    html = (out / "history.html").read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert html.count('src="data:image/png;base64,') == 4  # two benchmarks x two machines
    assert "<script" not in html.lower() and "<b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;amp;" in html
    markdown = (out / "history.md").read_text()
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown


def test_two_machines_are_two_series_and_each_finds_the_step(page):
    series = pd.read_csv(page / "page" / "series.csv")
    slow = series[series["benchmark"] == SLOW]
    assert sorted(slow["machine"].unique()) == ["box-a", "box-b"]
    assert (slow.groupby("machine").size() == COMMITS).all()
    steps = pd.read_csv(page / "page" / "steps.csv")
    found = steps[steps["benchmark"] == SLOW]
    assert sorted(found["machine"]) == ["box-a", "box-b"]
    assert set(found["from_commit"]) == {sha(STEP_AT)} and (found["ratio"].between(1.2, 1.4)).all()
    assert len(steps) == 2, steps["description"].tolist()


def test_the_step_line_reads_as_documented(page):
    date = f"2026-11-{1 + STEP_AT:02d}"
    lines = [line for line in (page / "page.txt").read_text().splitlines() if line.startswith(SLOW)]
    assert len(lines) == 2, lines  # one per machine, each naming it
    for line in lines:
        assert line.startswith(f"{SLOW}: 1.") and f"x slower from {sha(STEP_AT)[:7]} ({date}) on, 95% CI 1." in line


def test_fail_since_fails_on_a_step_after_ref_only(page, capsys):
    history = load_history([page / "store"])
    before, after = sha(STEP_AT - 3)[:8], sha(STEP_AT)
    assert {(s.machine, s.name) for s, _ in new_steps(history, before)} == {("box-a", SLOW), ("box-b", SLOW)}
    assert new_steps(history, after) == []  # the step begins at REF, not after it
    assert new_steps(history, before, threshold=1.6) == []
    one = str(page / "store" / "box-a")
    status, out, _ = run_cli(capsys, "history", one, "--out", str(page / "g1"), "--fail-since", before)
    failing = [line for line in out.splitlines() if line.startswith("STEP ")]
    assert status == 1 and len(failing) == 1 and failing[0].startswith(f"STEP {SLOW}: 1.")
    status, out, _ = run_cli(capsys, "history", one, "--out", str(page / "g2"), "--fail-since", after)
    assert status == 0 and out.strip().splitlines()[-1] == f"no slowdown beyond 1.10x begins after {after}"


def test_unusable_input_is_exit_2_with_one_line(page, tmp_path, capsys):
    store = str(page / "store")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.json").write_text("{")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["history", str(tmp_path / "missing")], "no such file"),
        (["history", str(empty)], "holds no .json"),
        (["history", str(broken)], "not valid JSON"),
        (["history", store, "--fail-since", "zz-no-such-ref"], "not a commit of the history"),
        (["history", store, "--threshold", "0.5"], "threshold"),
    ]
    for args, message in cases:
        status, _, err = run_cli(capsys, *args, "--out", str(tmp_path / "page"))
        assert status == 2, args
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_ambiguous_prefix_is_refused(tmp_path, capsys):
    store = tmp_path / "store"
    write_history(store, "box", seed=3)
    for path in list(store.rglob("*.json"))[:2]:
        document = json.loads(path.read_text())
        document["commit_info"]["id"] = "abcd" + document["commit_info"]["id"][4:]
        path.write_text(json.dumps(document))
    status, _, err = run_cli(capsys, "history", str(store), "--out", str(tmp_path / "p"), "--fail-since", "abcd")
    assert status == 2 and "ambiguous" in err


def test_autosave_files_are_read_and_dirty_ones_left_out(tmp_path, capsys):
    """pytest-benchmark's own storage (.benchmarks/<machine>/NNNN_<commit>_<time>.json) works as a history."""
    folder = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(4)
    for i in range(8):
        document = simulated_run(rng, {}, suite=SUITE[:1])
        document["machine_info"].update(node="laptop", system="Linux", machine="x86_64")
        document["commit_info"] = {"id": sha(i), "time": f"2026-10-{i + 1:02d}T10:00:00+00:00", "dirty": i == 7}
        (folder / f"{i + 1:04d}_{sha(i)[:8]}_20261001_100000.json").write_text(json.dumps(document))
    status, _, err = run_cli(capsys, "history", str(tmp_path / ".benchmarks"), "--out", str(tmp_path / "p"))
    assert status == 0 and "1 file(s) left out, made from a tree with uncommitted changes" in err
    series = pd.read_csv(tmp_path / "p" / "series.csv")
    assert len(series) == 7 and series["machine"].str.startswith("laptop-").all()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium is not installed")
def test_the_page_renders_in_chromium_with_strings_as_text(page):
    """Chromium's DOM of the page: four chart images, the steps table, and the hostile name as text, not a script."""
    url = (page / "page" / "history.html").as_uri()
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert dom.count("<img ") == 4 and "<table" in dom and "<script" not in dom.lower()
    assert '&lt;script&gt;alert("x")&lt;/script&gt;&amp;amp;' in dom
