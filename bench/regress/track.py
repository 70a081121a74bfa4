"""Record the benchmark suite's results per commit into a history store, and backfill past commits.

The store is plain, append-only files, friendly to git and to CI caches::

    results/history/<machine-id>/<commit>-<time>.json

Each file is the suite's pytest-benchmark JSON (so ``compare`` and ``report`` read
it too) with the raw round times left out (a history needs each commit's median
and spread, and kilobytes, not megabytes, per commit), ``commit_info`` set to the
commit measured, and one more object, ``backprop_bench_track``: the machine id,
the configuration, when and how it was recorded.

A series is one benchmark on one machine in one *configuration*: the suite's
thread limit, training images per epoch, epoch rounds, the Python version and, for
instruction counts (``track --measure instructions``: the suite run with
``--bench-measure instructions``, under Valgrind, one thread), the measure
(:func:`configuration`). Records that differ in any of them are never mixed. Timed
records carry no measure key, so records made before counts existed read as time.

Three ways in: :func:`track_tree` runs the suite on the working tree (a clean
one: the commit id must describe the code); :func:`backfill` runs it at each of
a list of commits, checked out as git worktrees by :mod:`bench.regress.worktrees`, in
commit order, skipping commits already recorded for this machine and
configuration, each commit written as soon as it is done (so an interrupted
backfill keeps them and a rerun resumes), in several passes over the commits when
asked for several runs per commit; :func:`import_files` copies existing
pytest-benchmark files in, such as pytest-benchmark's autosave storage
(``.benchmarks/<machine>/NNNN_<commit>_<time>.json``) or this suite's
(``results/benchmarks/``). Nothing here parses arguments or prints.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import platform
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError, sigterm_interrupts
from bench.regress.pytest_files import benchmarks_of
from bench.regress.worktrees import (
    DEFAULT_EPOCH_ROUNDS,
    DEFAULT_SIZE,
    DEFAULT_THREADS,
    PROCESS_TIMEOUT_S,
    TIMING_ARGS,
    checkout,
    git,
    run_suite,
    tree_kernels,
)
from bench.results.files import now, read_json, slug, write_atomic
from bench.results.frame import expand
from bench.run import machine as bench_machine

DEFAULT_STORE = Path("results") / "history"
TRACK_KEY = "backprop_bench_track"
TRACK_SCHEMA = 1
# CI-sized, as compare --against; size and rounds are recorded as settings of their own.
DEFAULT_PYTEST_ARGS = TIMING_ARGS
# A tracked tree must be clean here: the numbers come from these folders.
MEASURED_PATHS = ("implementations", "bench", "pyproject.toml")
# A suite run under Valgrind takes far longer than a timed one: allow it an hour.
INSTRUCTION_TIMEOUT_S = 3600
_SHA = re.compile(r"^[0-9a-f]{40}$")


def machine_id(machine_info: dict) -> str:
    """Return a stable id for the machine a pytest-benchmark file was made on: host name and a CPU fingerprint."""
    cpu = machine_info.get("cpu_model") or (machine_info.get("cpu") or {}).get("brand_raw") or ""
    fingerprint = "|".join(str(part) for part in (cpu, machine_info.get("system"), machine_info.get("machine")))
    node = slug(str(machine_info.get("node") or "unknown"), "unknown")
    return f"{node}-{hashlib.sha256(fingerprint.encode()).hexdigest()[:6]}"


def local_machine_id() -> str:
    """Return :func:`machine_id` of this machine, as the suite's files will describe it."""
    return machine_id(
        {
            "node": platform.node(),
            "cpu_model": bench_machine.machine_info()["cpu_model"],
            "system": platform.system(),
            "machine": platform.machine(),
        }
    )


def configuration(machine_info: dict) -> dict:
    """Return the settings a series is kept apart by: threads, train_size, epoch_rounds, python (major.minor).

    Instruction counts add ``measure: "instructions"``; time adds nothing, so a timed
    record's configuration is the same whether it was made before counts existed or after.
    """
    settings = machine_info.get("backprop_bench") or {}
    python = str(machine_info.get("python_version") or "")
    config = {
        "threads": settings.get("threads"),
        "train_size": settings.get("train_size"),
        "epoch_rounds": settings.get("epoch_rounds"),
        "python": ".".join(python.split(".")[:2]) or None,
    }
    return config | ({"measure": "instructions"} if settings.get("measure") == "instructions" else {})


def config_label(config: dict) -> str:
    """Return a configuration in words, e.g. 'threads=1, train_size=1000, epoch_rounds=5, python=3.11'."""
    return ", ".join(f"{key}={'default' if value is None else value}" for key, value in config.items())


@dataclass(frozen=True)
class SuiteSettings:
    """How the suite runs for a history: threads, training images per epoch, epoch rounds, other pytest options,
    and the measure ("time", or "instructions": counted under Valgrind, one thread)."""

    threads: int = DEFAULT_THREADS
    size: int = DEFAULT_SIZE
    epoch_rounds: int = DEFAULT_EPOCH_ROUNDS
    pytest_args: tuple[str, ...] = tuple(DEFAULT_PYTEST_ARGS.split())
    measure: str = "time"

    def __post_init__(self) -> None:
        if self.measure not in ("time", "instructions"):
            raise BenchError(f"--measure {self.measure}: choose time or instructions")
        if self.measure == "instructions" and self.threads != 1:
            raise BenchError(f"--threads {self.threads}: instruction counts are taken on one thread; drop --threads")
        if any(arg.startswith("--bench-measure") for arg in self.pytest_args):
            raise BenchError("--pytest-args: give the measure with track's --measure, not --bench-measure")

    def args(self) -> list[str]:
        """Return the pytest options of a suite run with these settings."""
        measure = ["--bench-measure=instructions"] if self.measure == "instructions" else []
        return [f"--bench-size={self.size}", f"--bench-epoch-rounds={self.epoch_rounds}", *self.pytest_args, *measure]

    def config(self) -> dict:
        """Return the :func:`configuration` that runs with these settings will record."""
        python = ".".join(platform.python_version().split(".")[:2])
        config = {"threads": self.threads, "train_size": self.size, "epoch_rounds": self.epoch_rounds, "python": python}
        return config | ({"measure": "instructions"} if self.measure == "instructions" else {})

    @property
    def timeout(self) -> float:
        """Return the seconds one suite run may take: counting under Valgrind takes far longer than timing."""
        return INSTRUCTION_TIMEOUT_S if self.measure == "instructions" else PROCESS_TIMEOUT_S


def commit_info(tree: Path, sha: str) -> dict:
    """Return pytest-benchmark-style commit_info for ``sha``: id, time, author_time, subject, depth, dirty False.

    ``depth`` is the number of commits reachable from it, which orders commits
    along history even when their times are equal or out of order.
    """
    sha, time, author_time, subject = git(tree, "show", "-s", "--format=%H%n%cI%n%aI%n%s", sha).split("\n", 3)
    depth = int(git(tree, "rev-list", "--count", sha))
    return {"id": sha, "time": time, "author_time": author_time, "subject": subject, "depth": depth, "dirty": False}


def record_document(document: dict, commit: dict, machine: str, source: str) -> dict:
    """Return the history record of a pytest-benchmark document: raw rounds dropped, commit and track info set.

    An empty ``commit`` keeps the document's own commit_info (an imported file).
    """
    record = copy.deepcopy(document)
    for bench in benchmarks_of(record, source):
        if isinstance(bench.get("stats"), dict):
            bench["stats"].pop("data", None)
    if commit:
        record["commit_info"] = dict(commit)
    record[TRACK_KEY] = {
        "schema": TRACK_SCHEMA,
        "machine": machine,
        "config": configuration(record["machine_info"]),
        "recorded": now(),
        "source": source,
    }
    return record


def _stamp(document: dict) -> str:
    """Return the time the suite ran as a file-name stamp, e.g. 20261120T101500Z (now, when the file lacks it)."""
    try:
        when = dt.datetime.fromisoformat(str(document.get("datetime")))
    except ValueError:
        when = dt.datetime.now(dt.timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    return when.strftime("%Y%m%dT%H%M%SZ")


def write_record(store: Path, record: dict) -> Path | None:
    """Return the path ``record`` is written to, ``store/<machine>/<commit>-<time>.json`` (None if already there)."""
    meta = record[TRACK_KEY]
    path = Path(store) / slug(meta["machine"], "unknown") / f"{record['commit_info']['id']}-{_stamp(record)}.json"
    if path.exists():
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"cannot write to the history store {store}: {exc.strerror or exc}") from None
    write_atomic(path, record)
    return path


def recorded_commits(store: Path, machine: str, config: dict) -> Counter[str]:
    """Return {commit: number of records} that the store holds for this machine and configuration."""
    folder = Path(store) / slug(machine, "unknown")
    done: Counter[str] = Counter()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        with contextlib.suppress(BenchError):
            record = read_json(path)
            meta = record.get(TRACK_KEY) or {}
            if meta.get("machine") == machine and meta.get("config") == config:
                done[(record.get("commit_info") or {}).get("id")] += 1
    return done


def resolve_commits(tree: Path, specs: Sequence[str]) -> list[str]:
    """Return the commits named by ``specs`` in commit order: ranges 'A..B' (as git log A..B) and single refs."""
    commits: list[str] = []
    for spec in specs:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if ".." in part:
                try:
                    found = git(tree, "rev-list", "--reverse", "--topo-order", part).split()
                except BenchError:
                    raise BenchError(f"--commits {part}: not a commit range in {tree}") from None
                if not found:
                    raise BenchError(f"--commits {part}: the range holds no commits")
                commits += found
            else:
                try:
                    commits.append(git(tree, "rev-parse", "--verify", "--quiet", f"{part}^{{commit}}"))
                except BenchError:
                    raise BenchError(f"--commits {part}: not a commit in {tree}") from None
    unique = list(dict.fromkeys(commits))
    depth = {sha: int(git(tree, "rev-list", "--count", sha)) for sha in unique}
    return sorted(unique, key=lambda sha: depth[sha])


def track_tree(
    tree: Path, store: Path, settings: SuiteSettings, machine: str | None = None, runs: int = 1
) -> list[Path]:
    """Return the paths of ``runs`` new records: the suite run on the working tree (clean, at HEAD)."""
    dirty = git(tree, "status", "--porcelain", "--untracked-files=no", "--", *MEASURED_PATHS)
    if dirty:
        raise BenchError(
            "the working tree has uncommitted changes under "
            f"{', '.join(MEASURED_PATHS)}: commit them, or record the last commit with --commits HEAD"
        )
    commit = commit_info(tree, "HEAD")
    paths = []
    with sigterm_interrupts(), tempfile.TemporaryDirectory(prefix="backprop-bench-track-") as scratch:
        for run in range(runs):
            out = Path(scratch) / f"run-{run}.json"
            run_suite(tree_kernels(tree), tree, out, settings.threads, settings.args(), settings.timeout)
            document = read_json(out)
            record = record_document(document, commit, machine or machine_id(document["machine_info"]), "track")
            paths.append(write_record(store, record) or _existing(store, record))
    return paths


def _existing(store: Path, record: dict) -> Path:
    """Return the path an identical record already has in the store."""
    return (
        Path(store)
        / slug(record[TRACK_KEY]["machine"], "unknown")
        / f"{record['commit_info']['id']}-{_stamp(record)}.json"
    )


@dataclass
class Backfill:
    """What a backfill did, commit by commit."""

    recorded: list[tuple[str, Path]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def backfill(
    tree: Path,
    commits: Sequence[str],
    store: Path,
    settings: SuiteSettings,
    machine: str | None = None,
    progress: Callable[[str], None] = lambda line: None,
    result: Backfill | None = None,
    runs: int = 1,
) -> Backfill:
    """Return what was recorded, skipped and failed after running the suite at each commit, oldest first.

    The working tree's suite runs on each commit's kernels (:func:`bench.regress.worktrees.checkout`),
    so only the kernels differ along the history. With ``runs`` > 1 it makes that
    many passes over the commits, each in commit order, so a busy spell of the
    machine hits different commits in different passes instead of all the runs of a
    few neighbouring commits (which would look like a step). A commit that already
    has a pass's record for this machine and configuration is skipped in that pass;
    each record is written as soon as it is done, so an interruption
    (KeyboardInterrupt, SIGTERM included) loses only the run in progress.
    Pass ``result`` to see what was done before an interruption. A commit whose
    suite fails is reported and skipped.
    """
    result = result if result is not None else Backfill()
    machine = machine or local_machine_id()
    done = recorded_commits(store, machine, settings.config())
    info: dict[str, dict] = {}
    with sigterm_interrupts():
        for run in range(runs):
            for i, sha in enumerate(commits, 1):
                where = f"{f'pass {run + 1}/{runs}, ' if runs > 1 else ''}{i}/{len(commits)} {sha[:10]}"
                if done[sha] > run:
                    result.skipped.append(sha)
                    progress(f"{where}: already recorded for {machine}; skipped")
                    continue
                if any(failed == sha for failed, _ in result.failed):
                    continue
                commit = info.setdefault(sha, commit_info(tree, sha))
                try:
                    with checkout(tree, sha, sha[:10]) as kernels, tempfile.TemporaryDirectory() as scratch:
                        out = Path(scratch) / "run.json"
                        seconds = run_suite(kernels, tree, out, settings.threads, settings.args(), settings.timeout)
                        record = record_document(read_json(out), commit, machine, "track --commits")
                except BenchError as exc:
                    # The first line says what failed, the last one (pytest's tail) usually why.
                    lines = str(exc).strip().splitlines()
                    message = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
                    result.failed.append((sha, message))
                    progress(f"{where}: failed, not recorded: {message}")
                    continue
                path = write_record(store, record) or _existing(store, record)
                result.recorded.append((sha, path))
                progress(f"{where} ({commit['subject'][:50]}): recorded in {seconds:.0f} s")
    return result


def import_files(paths: Iterable[str | Path], store: Path, machine: str | None = None) -> list[tuple[Path, str]]:
    """Return (file, what happened) for each pytest-benchmark file found, after copying it into the store.

    Files without a commit id, or made from a tree with uncommitted changes, are not
    imported: their commit id does not describe the code measured.
    """
    outcomes = []
    for path in expand(paths):
        document = read_json(path)
        benchmarks_of(document, str(path))
        commit = document.get("commit_info") or {}
        sha = str(commit.get("id") or "")
        if not _SHA.match(sha):
            outcomes.append((path, "skipped: no commit id"))
        elif commit.get("dirty"):
            outcomes.append((path, "skipped: made from a tree with uncommitted changes"))
        elif TRACK_KEY in document:
            written = write_record(store, document)
            outcomes.append((path, f"imported as {written}" if written else "already in the store"))
        else:
            record = record_document(document, {}, machine or machine_id(document["machine_info"]), str(path))
            written = write_record(store, record)
            outcomes.append((path, f"imported as {written}" if written else "already in the store"))
    return outcomes
