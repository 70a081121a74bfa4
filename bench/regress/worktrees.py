"""Benchmark a git commit's kernels on this machine: the machinery of ``compare --against`` and ``track --commits``.

A commit is checked out with ``git worktree add`` into a temporary folder. The
benchmark suite that runs is always the *working tree's* (``bench/benchmarks``),
in a fresh pytest process with this Python, so only the kernels differ: the
commit's side gets ``PYTHONPATH=<shim>:<working tree>``, where the shim holds
nothing but a link to the commit's ``implementations`` package. Each result file
records where ``implementations`` was imported from, and :func:`run_suite`
refuses a run whose kernels did not come from the expected tree.

:func:`benchmark_against` interleaves runs of a ref and of the working tree and
alternates which goes first (ref, tree, tree, ref, ref, tree, ...), so a machine
that speeds up or slows down over the minutes affects both sides alike. Six runs
per side by default, so that the t-interval on run medians (:mod:`bench.regress.stats`)
has something to stand on: in the simulation of tests/test_gate_simulation.py five
runs a side caught a 1.5x slowdown in 96% of checks, six in 98%. It is not a general benchmark
runner: the suite runs at the small, CI-sized settings below unless told otherwise.
Nothing here parses arguments or prints; progress goes to a callback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError, sigterm_interrupts
from bench.results.files import read_json

# CI-sized defaults: ~10-20 s of benchmarks per process, a few minutes in all.
DEFAULT_RUNS = 6
DEFAULT_THREADS = 1
# 1,000-image epochs, five rounds, float64, short timing windows: shared with `track`.
DEFAULT_SIZE = 1000
DEFAULT_EPOCH_ROUNDS = 5
TIMING_ARGS = (
    "--bench-dtype=float64 --benchmark-max-time=0.3 --benchmark-min-rounds=5 "
    "--benchmark-warmup=on --benchmark-warmup-iterations=20"
)
DEFAULT_PYTEST_ARGS = f"--bench-size={DEFAULT_SIZE} --bench-epoch-rounds={DEFAULT_EPOCH_ROUNDS} {TIMING_ARGS}"
# Instruction counts (compare --against --measure instructions): every kernel under Valgrind
# takes minutes, so CI counts the float64 kernels on 500-image epochs.
INSTRUCTION_PYTEST_ARGS = "--bench-size=500 --bench-dtype=float64"
PROCESS_TIMEOUT_S = 600
# A suite run under Valgrind takes far longer than a timed one.
COUNTED_PROCESS_TIMEOUT_S = 3600


def git(tree: Path, *args: str) -> str:
    """Return the stripped stdout of ``git -C tree ARGS``, or raise BenchError with git's message."""
    try:
        done = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BenchError("git is not installed; this command needs it") from None
    if done.returncode != 0:
        raise BenchError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def tree_root(start: Path | None = None) -> Path:
    """Return the top folder of the git working tree holding ``start`` (default: the current folder)."""
    return Path(git(start or Path.cwd(), "rev-parse", "--show-toplevel")).resolve()


def resolve_commit(tree: Path, ref: str) -> str:
    """Return the full sha of ``ref`` in the repository at ``tree``, or raise BenchError."""
    try:
        return git(tree, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except BenchError:
        raise BenchError(f"{ref}: not a commit in {tree}") from None


@dataclass(frozen=True)
class Kernels:
    """Where a suite run imports ``implementations`` from: its PYTHONPATH and the package folder expected."""

    label: str
    pythonpath: tuple[Path, ...]
    implementations: Path


def tree_kernels(tree: Path) -> Kernels:
    """Return the Kernels of the working tree itself."""
    return Kernels("working tree", (tree,), tree / "implementations")


@contextlib.contextmanager
def checkout(tree: Path, sha: str, label: str | None = None) -> Iterator[Kernels]:
    """Return a context giving the Kernels of commit ``sha``, checked out in a temporary worktree removed after."""
    label = label or sha[:10]
    with tempfile.TemporaryDirectory(prefix="backprop-bench-commit-") as scratch:
        worktree, shim = Path(scratch) / "commit", Path(scratch) / "shim"
        git(tree, "worktree", "add", "--detach", "--quiet", str(worktree), sha)
        try:
            if not (worktree / "implementations" / "__init__.py").exists():
                raise BenchError(f"{label} has no implementations package; nothing to benchmark")
            shim.mkdir()
            (shim / "implementations").symlink_to(worktree / "implementations", target_is_directory=True)
            yield Kernels(label, (shim, tree), worktree / "implementations")
        finally:
            subprocess.run(
                ["git", "-C", str(tree), "worktree", "remove", "--force", str(worktree)],
                capture_output=True,
                check=False,
            )


def check_source(path: Path, kernels: Kernels) -> None:
    """Raise BenchError unless the run saved in ``path`` imported its kernels from ``kernels.implementations``."""
    info = read_json(path).get("machine_info", {}).get("backprop_bench", {})
    source = (info.get("implementations_source") or {}).get("path")
    if source is None or Path(source).resolve() != kernels.implementations.resolve():
        raise BenchError(
            f"the {kernels.label} run imported implementations from {source}, not {kernels.implementations}; refusing"
        )


def run_suite(
    kernels: Kernels,
    tree: Path,
    out: Path,
    threads: int = DEFAULT_THREADS,
    pytest_args: Sequence[str] = (),
    timeout: float = PROCESS_TIMEOUT_S,
) -> float:
    """Return the wall seconds of one run of the working tree's suite on ``kernels``, in a fresh process.

    The pytest-benchmark JSON goes to ``out``; a failed run, a run past ``timeout``
    or one that imported the wrong kernels raises BenchError.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(map(str, kernels.pythonpath))
    n = str(threads)
    # Set before the child imports NumPy, so every BLAS starts pinned, not only those loaded later.
    env.update(BACKPROP_BENCH_THREADS=n, OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n)
    env.update(NUMBA_NUM_THREADS=n)
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(tree / "bench" / "benchmarks"),
        f"--rootdir={tree}",
        "--benchmark-only",
        f"--benchmark-json={out}",
        "-p",
        "no:cacheprovider",
        "-q",
        *pytest_args,
    ]
    start = time.perf_counter()
    # cwd is a scratch folder so that `python -m`'s current-folder entry on sys.path shadows nothing.
    with tempfile.TemporaryDirectory(prefix="backprop-bench-cwd-") as cwd:
        try:
            done = subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"the {kernels.label} benchmark run took over {timeout:.0f} s; stopped") from None
    if done.returncode != 0 or not out.exists():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BenchError(f"the {kernels.label} benchmark run failed (exit {done.returncode}):\n{tail}")
    check_source(out, kernels)
    return time.perf_counter() - start


@dataclass
class Against:
    """The result files of a ref and of the working tree, run alternately."""

    ref: str
    sha: str
    keep: Path
    files: dict[str, list[Path]] = field(default_factory=lambda: {"ref": [], "tree": []})

    @property
    def ref_label(self) -> str:
        """Return the ref as the table names it, e.g. 'HEAD~1 (0be9ba7c1d)'."""
        return f"{self.ref} ({self.sha[:10]})"


def benchmark_against(
    ref: str,
    runs: int = DEFAULT_RUNS,
    threads: int = DEFAULT_THREADS,
    pytest_args: str = DEFAULT_PYTEST_ARGS,
    keep: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
    measure: str = "time",
) -> Against:
    """Return the result files of ``runs`` runs each of ``ref``'s kernels and the working tree's, interleaved.

    The JSON files stay in ``keep`` (default ``results/against-<sha>-<time>/``). With
    ``measure`` "instructions" each run counts under Valgrind, and one run per side is
    enough: counts repeat within 0.2% between runs (docs/benchmarks-and-regressions.md).
    """
    if runs < 2 and measure == "time":
        raise BenchError(f"--runs {runs}: at least 2 runs per side, for the spread between runs (default 6)")
    tree = tree_root()
    sha = resolve_commit(tree, ref)
    result = Against(ref, sha, keep or tree / "results" / f"against-{sha[:10]}-{dt.datetime.now():%Y%m%d-%H%M%S}")
    result.keep.mkdir(parents=True, exist_ok=True)
    args = shlex.split(pytest_args) + (["--bench-measure=instructions"] if measure == "instructions" else [])
    with sigterm_interrupts(), checkout(tree, sha, result.ref_label) as ref_kernels:
        sides = {"ref": ref_kernels, "tree": tree_kernels(tree)}
        for i in range(runs):
            for label in ("ref", "tree") if i % 2 == 0 else ("tree", "ref"):
                path = result.keep / f"{label}-{i}.json"
                limit = COUNTED_PROCESS_TIMEOUT_S if measure == "instructions" else PROCESS_TIMEOUT_S
                seconds = run_suite(sides[label], tree, path, threads, args, limit)
                result.files[label].append(path)
                progress(f"run {i + 1}/{runs}: {sides[label].label} done in {seconds:.0f} s")
    return result
