"""How long a Numba kernel takes to compile from nothing: the wait of a newcomer's first run.

    python scripts/cold_compile.py --out results/reference/cold-compile.json

Each measurement is a fresh Python process with an empty Numba cache of its own
(``NUMBA_CACHE_DIR`` set to a new temporary folder, so nothing of an earlier run is
found and nothing is left behind) that imports the kernel and calls its ``warm_up`` for
the network [784, 30, 10]: the time from before the import to after the last
``warm_up``, Numba's own import included. Settings: Numba threads (``--threads``,
repeatable; a kernel may compile other code for other thread counts) and
dtypes (``--dtype``, repeatable: one warm-up each, in one process). ``backprop-bench run``
uses float64 and every core by default, so that cell is the one a newcomer waits for.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SIZES = [784, 30, 10]

# Run in the child: the seconds from before the import to after the last warm-up.
CHILD = """
import sys, time
start = time.perf_counter()
import implementations
kernel = implementations.get(sys.argv[1])
for dtype in sys.argv[2:]:
    kernel.warm_up({sizes}, dtype)
print(time.perf_counter() - start)
"""


def cold_seconds(name: str, dtypes: list[str], threads: int) -> float:
    """Return the seconds one fresh process with an empty Numba cache takes to import ``name`` and warm it up."""
    with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache:
        env = os.environ | {"NUMBA_CACHE_DIR": cache, "NUMBA_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1"}
        done = subprocess.run(
            [sys.executable, "-c", CHILD.format(sizes=SIZES), name, *dtypes],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        sys.exit(f"error: the cold compile of {name} failed: {done.stderr.strip().splitlines()[-1:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", default="numba-sparse")
    parser.add_argument("--threads", type=int, action="append", help="Numba threads (repeatable; default 1 and 2)")
    parser.add_argument("--dtype", action="append", choices=("float32", "float64"), help="default: each, then both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    groups = [[d] for d in args.dtype] if args.dtype else [["float64"], ["float32"], ["float32", "float64"]]
    rows = []
    for threads in args.threads or [1, 2]:
        for dtypes in groups:
            seconds = [cold_seconds(args.impl, dtypes, threads) for _ in range(args.repeats)]
            rows.append({"threads": threads, "dtypes": dtypes, "seconds": seconds})
            print(
                f"{args.impl}, {threads} thread(s), {' + '.join(dtypes)}: median {statistics.median(seconds):.1f} s "
                f"(range {min(seconds):.1f}-{max(seconds):.1f}, {len(seconds)} fresh processes)",
                flush=True,
            )
    if args.out:
        record = {"impl": args.impl, "sizes": SIZES, "python": sys.version.split()[0], "cold": rows}
        args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
