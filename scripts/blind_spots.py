"""What instruction counts cannot see: two changes to a kernel's epoch, each measured in wall time and in counts.

The kernel is ``numba``'s epoch on 500 MNIST images (float64, batch 100, one thread), as
the instruction gate counts it. Each change wraps the epoch:

- ``fresh-scratch``: the epoch also takes a fresh 64 MiB zeroed scratch buffer and writes
  one byte per 4 KiB page, as a kernel that allocates its scratch per call instead of
  reusing it does. The pages are zeroed by the operating system on first touch: work in
  the kernel, which Valgrind does not count. Slower in time, not in instructions.
- ``stream`` then ``stream-more-math``: the epoch also streams a 64 MiB array it keeps
  (a sum over it); the change does four more multiply-adds per element on the same
  stream. Memory bandwidth bounds the pass, so the extra arithmetic runs in cycles the
  CPU spends waiting anyway. More instructions, not slower in time.

    python scripts/blind_spots.py --out results/reference/blind-spots.json

runs the wall-time half natively (variants interleaved, median and quartiles of
``--rounds`` epochs each), then itself under callgrind for the counts (minimum of three
counted epochs after two warm-up epochs, with the suite's pinned settings), and writes
both. Needs Valgrind.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit

from bench.benchmarks.instructions import DETERMINISTIC_ENV, VALGRIND_OPTIONS, Counter, find_valgrind
from bench.run.data import load_dataset, one_hot, scale_pixels
from implementations.core import init_params
from implementations.kernels import numba_jit

N, BATCH, ETA, SIZES = 500, 100, 3.0, [784, 30, 10]
MIB64 = 64 * 2**20
PAGE = 4096
STREAM = np.ones(MIB64 // 8)


@njit(cache=True)
def _touch(buffer, step):
    for i in range(0, buffer.size, step):
        buffer[i] = 1


@njit(cache=True)
def _stream(a):
    s = 0.0
    for i in range(a.size):
        s += a[i]
    return s


@njit(cache=True)
def _stream_more_math(a):
    s = 0.0
    for i in range(a.size):
        x = a[i]
        s += (((x * 1.0000001 + 1e-9) * 0.9999999 + 1e-9) * 1.0000001 + 1e-9) * 0.9999999
    return s


def _epoch(params, X, Y):
    return numba_jit.train_epoch(params, X, Y, BATCH, ETA)


def _fresh_scratch(params, X, Y):
    _touch(np.zeros(MIB64, np.uint8), PAGE)
    return _epoch(params, X, Y)


def _with_stream(params, X, Y):
    _stream(STREAM)
    return _epoch(params, X, Y)


def _with_stream_more_math(params, X, Y):
    _stream_more_math(STREAM)
    return _epoch(params, X, Y)


VARIANTS = {
    "epoch": _epoch,
    "fresh-scratch": _fresh_scratch,
    "stream": _with_stream,
    "stream-more-math": _with_stream_more_math,
}
# (change, its base): what each change is compared with.
CHANGES = {"fresh-scratch": "epoch", "stream-more-math": "stream"}


def _workload():
    data = load_dataset("mnist")
    X = scale_pixels(data.train_images[:N], "float64")
    Y = one_hot(data.train_labels[:N], "float64", SIZES[-1])
    return init_params(SIZES, 1, "float64"), X, Y


def measure_times(rounds: int) -> dict:
    """Return {variant: {median, q1, q3, seconds}} of ``rounds`` epochs each, variants interleaved."""
    params, X, Y = _workload()
    for fn in VARIANTS.values():
        fn(params, X, Y)  # compile and warm
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for r in range(rounds):
        names = list(VARIANTS)
        names = names[r % len(names) :] + names[: r % len(names)]
        for name in names:
            start = time.perf_counter()
            VARIANTS[name](params, X, Y)
            seconds[name].append(time.perf_counter() - start)
    return {
        name: {"median": float(np.median(s)), "q1": float(np.quantile(s, 0.25)), "q3": float(np.quantile(s, 0.75))}
        | {"seconds": s}
        for name, s in seconds.items()
    }


def measure_counts() -> dict:
    """Return {variant: {instructions, rounds}}: run inside callgrind (see main)."""
    params, X, Y = _workload()
    counter = Counter(Path(os.environ["BLIND_SPOTS_DIR"]))
    out = {}
    for name, fn in VARIANTS.items():
        fn(params, X, Y)
        fn(params, X, Y)
        counts = [counter.count(fn, params, X, Y)[1] for _ in range(3)]
        out[name] = {"instructions": min(counts), "rounds": counts}
    return out


def _counted(python_env: dict[str, str]) -> dict:
    """Return measure_counts() run in a child of this script under callgrind (Numba compiled natively first)."""
    valgrind = find_valgrind()
    env = {**python_env, **DETERMINISTIC_ENV}
    # Compile natively for the pinned target, so nothing compiles under Valgrind.
    subprocess.run([sys.executable, __file__, "--warm"], env=env, check=True)
    with tempfile.TemporaryDirectory() as folder:
        env["BLIND_SPOTS_DIR"] = folder
        out = Path(folder) / "counts.json"
        command = [valgrind, *VALGRIND_OPTIONS, f"--log-file={folder}/vg.log"]
        command += [f"--callgrind-out-file={folder}/callgrind.%p.out", sys.executable, __file__, "--counts", str(out)]
        subprocess.run(command, env=env, check=True)
        return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/blind-spots.json"))
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--counts", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warm:
        params, X, Y = _workload()
        for fn in VARIANTS.values():
            fn(params, X, Y)
        return 0
    if args.counts:
        args.counts.write_text(json.dumps(measure_counts()))
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    times = json.loads(
        subprocess.run(
            [sys.executable, "-c", f"import json,sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
             f"import blind_spots as b; print(json.dumps(b.measure_times({args.rounds})))"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    counts = _counted(env)
    changes = {
        change: {
            "base": base,
            "time_ratio": times[change]["median"] / times[base]["median"],
            "instructions_ratio": counts[change]["instructions"] / counts[base]["instructions"],
        }
        for change, base in CHANGES.items()
    }
    document = {
        "command": "python scripts/blind_spots.py " + " ".join(sys.argv[1:]),
        "workload": {"n": N, "batch_size": BATCH, "sizes": SIZES, "dtype": "float64", "threads": 1},
        "times": times,
        "counts": counts,
        "changes": changes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    for change, figures in changes.items():
        print(
            f"{change} vs {figures['base']}: time {figures['time_ratio']:.3f}x, "
            f"instructions {figures['instructions_ratio']:.4f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
