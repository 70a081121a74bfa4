"""``backprop-bench compare --against REF``: benchmark a git ref and the working tree on this machine.

The ref is checked out with ``git worktree add`` into a temporary folder. Both
sides run the *working tree's* benchmark suite (``bench/benchmarks``) in separate
pytest processes with the same Python, so only the kernels differ: the ref side
gets ``PYTHONPATH=<shim>:<working tree>``, where the shim holds nothing but a
link to the ref's ``implementations`` package. Each result file records where
``implementations`` was imported from, and the check refuses a run whose kernels
did not come from the expected tree.

Runs are interleaved and alternate which side goes first (ref, tree, tree, ref,
ref, tree, ...), so a machine that speeds up or slows down over the minutes
affects both sides alike. The comparison is :mod:`bench.compare`'s, over the
repeated runs of each side. It is not a general benchmark runner: it always
runs the suite at the small, CI-sized settings below unless told otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bench.cli.options import positive_int
from bench.compare import compare_sides, load_side, report
from bench.errors import BenchError
from bench.frame import read_json

# CI-sized defaults: ~10-20 s of benchmarks per process, a few minutes in all.
DEFAULT_RUNS = 3
DEFAULT_THREADS = 1
DEFAULT_PYTEST_ARGS = (
    "--bench-size=1000 --bench-epoch-rounds=5 --bench-dtype=float64 "
    "--benchmark-max-time=0.3 --benchmark-min-rounds=5 --benchmark-warmup=on --benchmark-warmup-iterations=20"
)
PROCESS_TIMEOUT_S = 600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the --against options to ``compare``'s parser."""
    group = parser.add_argument_group("same-machine check against a git ref")
    group.add_argument("--against", metavar="REF", help="benchmark git ref REF and the working tree, interleaved")
    group.add_argument(
        "--runs", type=positive_int, default=DEFAULT_RUNS, help="runs of each side (default: %(default)s)"
    )
    group.add_argument(
        "--threads",
        type=positive_int,
        default=DEFAULT_THREADS,
        metavar="N",
        help="pin BLAS and Numba to N threads in both sides (default: %(default)s)",
    )
    group.add_argument(
        "--pytest-args",
        default=DEFAULT_PYTEST_ARGS,
        metavar="ARGS",
        help="arguments for each pytest run, e.g. '-k numba' (default: %(default)r)",
    )
    group.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the JSON of every run in DIR (default: results/against-...)"
    )


def _git(tree: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BenchError("git is not installed; --against needs it") from None
    if done.returncode != 0:
        raise BenchError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def _tree_root() -> Path:
    return Path(_git(Path.cwd(), "rev-parse", "--show-toplevel")).resolve()


def _run_side(label: str, pythonpath: list[Path], tree: Path, out: Path, args: argparse.Namespace) -> float:
    """Run the benchmark suite once in a fresh process; return its wall seconds."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(map(str, pythonpath))
    threads = str(args.threads)
    # Set before the child imports NumPy, so every BLAS starts pinned, not only those loaded later.
    env.update(BACKPROP_BENCH_THREADS=threads, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    env.update(MKL_NUM_THREADS=threads, NUMBA_NUM_THREADS=threads)
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
        *shlex.split(args.pytest_args),
    ]
    start = time.perf_counter()
    # cwd is a scratch folder so that `python -m`'s current-folder entry on sys.path shadows nothing.
    with tempfile.TemporaryDirectory(prefix="backprop-bench-cwd-") as cwd:
        try:
            done = subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"the {label} benchmark run took over {PROCESS_TIMEOUT_S} s; stopped") from None
    if done.returncode != 0 or not out.exists():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BenchError(f"the {label} benchmark run failed (exit {done.returncode}):\n{tail}")
    return time.perf_counter() - start


def _check_source(path: Path, expected: Path, label: str) -> None:
    """Raise BenchError unless the run in ``path`` imported its kernels from ``expected``."""
    info = read_json(path).get("machine_info", {}).get("backprop_bench", {})
    source = (info.get("implementations_source") or {}).get("path")
    if source is None or Path(source).resolve() != expected.resolve():
        raise BenchError(f"the {label} run imported implementations from {source}, not {expected}; refusing")


def run_against(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Benchmark REF and the working tree, interleaved; print the comparison; return its exit status."""
    tree = _tree_root()
    try:
        sha = _git(tree, "rev-parse", "--verify", "--quiet", f"{args.against}^{{commit}}")
    except BenchError:
        raise BenchError(f"--against {args.against}: not a commit in {tree}") from None
    short = sha[:10]
    keep = args.keep or tree / "results" / f"against-{short}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    keep.mkdir(parents=True, exist_ok=True)
    say = lambda text: err.print(text, markup=False, highlight=False)  # noqa: E731
    # `timeout` (as in .ci/regression) sends SIGTERM: exit through the finally below, so
    # the ref's worktree is removed and subprocess.run kills the running child.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory(prefix="backprop-bench-against-") as scratch:
        worktree, shim = Path(scratch) / "ref", Path(scratch) / "shim"
        _git(tree, "worktree", "add", "--detach", "--quiet", str(worktree), sha)
        try:
            if not (worktree / "implementations" / "__init__.py").exists():
                raise BenchError(f"{args.against} ({short}) has no implementations package; nothing to compare")
            shim.mkdir()
            (shim / "implementations").symlink_to(worktree / "implementations", target_is_directory=True)
            sides = {
                "ref": ([shim, tree], worktree / "implementations"),
                "tree": ([tree], tree / "implementations"),
            }
            files: dict[str, list[Path]] = {"ref": [], "tree": []}
            for i in range(args.runs):
                order = ("ref", "tree") if i % 2 == 0 else ("tree", "ref")
                for label in order:
                    path = keep / f"{label}-{i}.json"
                    pythonpath, expected = sides[label]
                    name = f"{args.against} ({short})" if label == "ref" else "working tree"
                    seconds = _run_side(name, pythonpath, tree, path, args)
                    _check_source(path, expected, name)
                    files[label].append(path)
                    say(f"run {i + 1}/{args.runs}: {name} done in {seconds:.0f} s")
        finally:
            subprocess.run(["git", "-C", str(tree), "worktree", "remove", "--force", str(worktree)], check=False)
    say(f"raw results kept in {keep}")
    comparison = compare_sides(load_side(files["ref"]), load_side(files["tree"]), args.threshold, args.threshold_for)
    return report(comparison, f"{args.against} ({short})", "working tree", out, err)
