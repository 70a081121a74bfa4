"""A benchmark history: per-commit records in, series with their steps, and a gate (the page is in bench.report).

:func:`load_history` reads a history store (:mod:`bench.regress.track`), or any folder of
pytest-benchmark files with commit ids, such as pytest-benchmark's autosave
storage, in one *measure*: wall time (the default) or instruction counts (files made
with ``--bench-measure instructions``); records of the other measure are left out
with a note, and :func:`load_histories` gives one History per measure found. A
*series* is one benchmark on one machine in one configuration, its
commits in commit order (along git history: the number of ancestors each commit
has, then commit time); machines and configurations are never mixed. Each commit
is one point: the median of its run, or, when it was run several times (``track
--runs``), the median of its runs' medians, so one run beside a busy neighbour does
not move it; the spread is the interquartile range of its rounds, widened to cover
every run. Steps are found by :mod:`bench.regress.steps`, with the noise of the
measure (:data:`bench.regress.steps.NOISES`).

:func:`new_steps` is the gate: the confirmed slowdowns, beyond a threshold (the
interval's lower end above it, as in ``compare``), that begin after a given commit.
The page that shows a history is :mod:`bench.report.history_page`'s.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.regress.pytest_files import benchmarks_of, key_of, measure_of, values_of
from bench.regress.steps import NOISES, Step, detect_steps, fit
from bench.regress.track import TRACK_KEY, config_label, configuration, machine_id
from bench.results.files import read_json
from bench.results.frame import expand

# The gate's default: a confirmed slowdown whose interval lies beyond 1.10x fails --fail-since.
HISTORY_THRESHOLD = 1.10
# For instruction counts, as compare's: 1%, ten times the 0.1% their runs repeat within.
# The gate on counts: a confirmed step of more than 1% (steps themselves are found down to 0.4%).
HISTORY_INSTRUCTIONS_THRESHOLD = 1.01
THRESHOLDS = {"time": HISTORY_THRESHOLD, "instructions": HISTORY_INSTRUCTIONS_THRESHOLD}
MEASURES = tuple(THRESHOLDS)
# A measure in words, for notes and headings.
MEASURE_WORDS = {"time": "wall time", "instructions": "instruction counts"}
_HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")


@dataclass
class Point:
    """One commit of a series: its median (seconds, or instructions), the quartiles of its rounds over every run."""

    commit: str
    time: str
    median: float
    q1: float
    q3: float
    runs: int = 1
    kept: bool = True

    @property
    def short(self) -> str:
        """Return the commit's short id (7 hex digits)."""
        return self.commit[:7]

    @property
    def date(self) -> str:
        """Return the commit's date, YYYY-MM-DD (or '?' when unknown)."""
        return self.time[:10] if self.time else "?"


@dataclass
class Series:
    """One benchmark on one machine in one configuration and measure, over commits in order, with its steps."""

    name: str
    group: str | None
    machine: str
    config: dict
    points: list[Point] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    measure: str = "time"

    @property
    def where(self) -> str:
        """Return the machine and configuration in words."""
        return f"{self.machine} ({config_label(self.config)})"


@dataclass
class History:
    """Every series of a history in one measure, the files it came from (as machine-folder/name), what was left out."""

    series: list[Series]
    files: list[str]
    notes: list[str]
    measure: str = "time"

    @property
    def commits(self) -> set[str]:
        """Return every commit id of the history."""
        return {p.commit for s in self.series for p in s.points}


# --------------------------------------------------------------------------- loading


def _commit_order(commits: dict[str, dict], tree: Path | None) -> list[str]:
    """Return the commit ids in commit order: by number of ancestors when known for all, else by commit time."""
    depth = {sha: info.get("depth") for sha, info in commits.items()}
    for sha in [sha for sha, d in depth.items() if not isinstance(d, int)]:
        if tree is None:
            break
        done = subprocess.run(
            ["git", "-C", str(tree), "rev-list", "--count", sha], capture_output=True, text=True, check=False
        )
        depth[sha] = int(done.stdout) if done.returncode == 0 and done.stdout.strip().isdigit() else None
    by_depth = all(isinstance(d, int) for d in depth.values())
    return sorted(commits, key=lambda sha: (depth[sha] if by_depth else 0, str(commits[sha].get("time") or ""), sha))


# (machine, configuration label, benchmark key) -> commit -> [(median, q1, q3) of each run]
Values = dict[tuple[str, str, str], dict[str, list[tuple[float, float, float]]]]


def _series(
    key: tuple[str, str, str], runs_by_commit: dict, about: tuple, order: dict[str, int], commits: dict, measure: str
) -> Series:
    """Return one series, its commits in order (median of each commit's run medians), steps found."""
    name, group, config = about
    series = Series(name, group, key[0], config, measure=measure)
    for sha in sorted(runs_by_commit, key=order.__getitem__):
        runs = np.array(runs_by_commit[sha])
        median = float(np.exp(np.median(np.log(runs[:, 0]))))
        time = str(commits[sha].get("time") or "")
        series.points.append(Point(sha, time, median, float(runs[:, 1].min()), float(runs[:, 2].max()), len(runs)))
    logs = np.log([p.median for p in series.points])
    series.steps = detect_steps(logs, noise=NOISES[measure])
    if logs.size >= 3:
        for point, kept in zip(series.points, fit(logs, NOISES[measure])[0]):
            point.kept = bool(kept)
    return series


@dataclass
class _Records:
    """What the files of one measure hold, gathered before the series are made."""

    values: Values = field(default_factory=lambda: defaultdict(dict))
    about: dict[tuple[str, str, str], tuple[str, str | None, dict]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def load_histories(paths: list[str | Path], tree: Path | None = None) -> dict[str, History]:
    """Return {measure: History} for every measure that the records under ``paths`` hold, or raise BenchError.

    Each file is read once; a measure's History notes the files of the others as left out.
    ``tree`` is a git working tree used to order commits that lack a recorded depth.
    """
    records = {measure: _Records() for measure in MEASURES}
    commits: dict[str, dict] = {}
    skipped = {"without a commit id": 0, "made from a tree with uncommitted changes": 0}
    for path in expand(paths):
        document = read_json(path)
        benchmarks_of(document, str(path))
        info = document.get("commit_info") or {}
        sha = str(info.get("id") or "").lower()
        if not re.fullmatch(r"[0-9a-f]{40}", sha) or info.get("dirty"):
            skipped["made from a tree with uncommitted changes" if info.get("dirty") else "without a commit id"] += 1
            continue
        measure = measure_of(document)
        values = values_of(document, str(path), measure)
        track = document.get(TRACK_KEY) or {}
        machine = str(track.get("machine") or machine_id(document["machine_info"]))
        config = track.get("config") if isinstance(track.get("config"), dict) else None
        config = config or configuration(document["machine_info"])
        commits.setdefault(sha, {}).update({k: v for k, v in info.items() if v is not None})
        mine = records[measure]
        mine.files.append(f"{path.parent.name}/{path.name}")
        for bench, timings in values:
            key = (machine, config_label(config), key_of(bench))
            mine.about.setdefault(key, (bench["name"], bench.get("group"), config))
            mine.values[key].setdefault(sha, []).append((timings.median, timings.q1, timings.q3))
    if not any(r.values for r in records.values()):
        raise BenchError(f"{', '.join(map(str, paths))}: no benchmark records with a commit id; nothing to show")
    notes = [
        f"{count} file(s) left out, {reason}: its commit id would not describe the code measured"
        for reason, count in skipped.items()
        if count
    ]
    order = {sha: i for i, sha in enumerate(_commit_order(commits, tree))}
    histories = {}
    for measure, mine in records.items():
        if not mine.values:
            continue
        others = [
            f"{len(r.files)} file(s) of {MEASURE_WORDS[m]} left out of the series of {MEASURE_WORDS[measure]}: "
            f"a history of their own (--measure {m})"
            for m, r in records.items()
            if m != measure and r.files
        ]
        about = mine.about
        keys = sorted(mine.values, key=lambda k: (k[0], k[1], about[k][1] or "", about[k][0]))
        series = [_series(k, mine.values[k], about[k], order, commits, measure) for k in keys]
        histories[measure] = History(series, mine.files, notes + others, measure)
    return histories


def load_history(paths: list[str | Path], tree: Path | None = None, measure: str = "time") -> History:
    """Return the series of every pytest-benchmark record in ``measure`` under ``paths``, or raise BenchError.

    Records of the other measure are left out with a note; none of ``measure`` at all is an error.
    ``tree`` is a git working tree used to order commits that lack a recorded depth.
    """
    return select(load_histories(paths, tree), measure, paths)


def select(histories: dict[str, History], measure: str, paths: list[str | Path]) -> History:
    """Return the History of ``measure`` from :func:`load_histories`, or raise BenchError naming what ``paths`` hold."""
    if measure not in histories:
        held = ", ".join(f"{MEASURE_WORDS[m]} (--measure {m})" for m in histories)
        raise BenchError(f"{', '.join(map(str, paths))}: no records of {MEASURE_WORDS[measure]}; they hold {held}")
    return histories[measure]


# --------------------------------------------------------------------------- steps in words, and the gate


def format_count(instructions: float) -> str:
    """Return an instruction count in words, four significant digits, e.g. '76.74 M instr'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if instructions >= scale:
            return f"{instructions / scale:.4g} {unit} instr"
    return f"{instructions:.0f} instr"


def describe(series: Series, step: Step) -> str:
    """Return a step in one line, e.g. 'test_epoch[numba-float64]: 1.31x slower from a1b2c3d (2026-11-20) on, ...'.

    For instruction counts the change is a percentage with the counts on each side of it, e.g.
    'test_epoch[numba-float64]: +2.0% instructions (1.020x) from a1b2c3d (2026-11-20) on,
    76.74 M instr to 78.27 M instr, 95% CI 1.020-1.020'.
    """
    first, last = series.points[step.start], series.points[step.end]
    if step.drift:
        span = step.end - step.start + 1
        where = f"from {first.short} ({first.date}) to {last.short} ({last.date}), a drift over {span} commits"
    else:
        where = f"from {first.short} ({first.date}) on"
    unconfirmed = "" if step.confirmed else " (newest commit only: unconfirmed until the next one)"
    if series.measure == "instructions":
        before = series.points[step.start - 1].median if step.start > 0 else first.median
        counts = f"{format_count(before)} to {format_count(last.median)}"
        change = f"{100 * (step.ratio - 1):+.1f}% instructions ({step.ratio:.3f}x)"
        return f"{series.name}: {change} {where}, {counts}, 95% CI {step.low:.3f}-{step.high:.3f}{unconfirmed}"
    if step.slower:
        change, low, high = f"{step.ratio:.2f}x slower", step.low, step.high
    else:
        change, low, high = f"{1 / step.ratio:.2f}x faster", 1 / step.high, 1 / step.low
    return f"{series.name}: {change} {where}, 95% CI {low:.2f}-{high:.2f}{unconfirmed}"


def steps_by_size(history: History, confirmed: bool = True) -> list[tuple[Series, Step]]:
    """Return (series, step) pairs, the largest change first; ``confirmed`` picks confirmed or unconfirmed ones."""
    pairs = [(s, step) for s in history.series for step in s.steps if step.confirmed == confirmed]
    return sorted(pairs, key=lambda pair: -abs(np.log(pair[1].ratio)))


def resolve_ref(history: History, ref: str, tree: Path | None) -> str:
    """Return the full commit id REF names: a commit id or unique prefix in the history, else a git ref of ``tree``."""
    if _HEX.match(ref):
        matches = sorted(c for c in history.commits if c.startswith(ref.lower()))
        if len(matches) > 1:
            raise BenchError(f"--fail-since {ref}: ambiguous, {len(matches)} commits of the history start with it")
        if matches:
            return matches[0]
    if tree is not None:
        done = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return done.stdout.strip()
    raise BenchError(f"--fail-since {ref}: not a commit of the history, nor a git ref here")


def _after(series: Series, step: Step, ref: str, tree: Path | None) -> bool:
    """Return True when the step's new level begins after commit ``ref`` (for a drift: its last commit does)."""
    commits = [p.commit for p in series.points]
    if ref in commits:
        return step.end > commits.index(ref)
    commit = commits[step.end]
    done = subprocess.run(
        ["git", "-C", str(tree or "."), "merge-base", "--is-ancestor", commit, ref],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise BenchError(f"--fail-since: cannot tell whether {commit[:10]} comes after {ref[:10]} (unknown to git)")
    return done.returncode == 1 and commit != ref


def new_steps(
    history: History, ref: str, threshold: float | None = None, tree: Path | None = None
) -> list[tuple[Series, Step]]:
    """Return the confirmed slowdowns whose interval lies above ``threshold`` and that begin after ``ref``.

    ``threshold`` None is the measure's default (:data:`THRESHOLDS`: 1.10x for time, 1.01x for counts).
    """
    threshold = THRESHOLDS[history.measure] if threshold is None else threshold
    sha = resolve_ref(history, ref, tree)
    return [
        (s, step)
        for s, step in steps_by_size(history)
        if step.slower and step.low > threshold and _after(s, step, sha, tree)
    ]


# --------------------------------------------------------------------------- the page
