"""numba-sparse at a git revision against the working tree, side by side in one process.

    python scripts/ab_sparse.py HEAD~1 --batch 100 --threads 1 --threads 2

This VM's speed drifts by up to 50% between processes minutes apart
(docs/performance.md), so a change to the kernel is measured here, in one process: the
revision's ``numba_sparse.py`` and ``simd.py`` are copied into a temporary folder (their
imports pointed at each other), and so are the working tree's, both versions are compiled
afresh and warmed up, and their epochs are then
interleaved on MNIST, from the same parameters in the same batch order. Printed per
dtype and thread count: each version's median epoch with its range, the pairwise median
of after / before, and whether the two final parameters are equal bit for bit.

Why the working tree is copied too: Numba's on-disk cache keys a compiled function on its
own source file only, and a compiled ``numba_sparse`` function holds the ``simd`` code it
was compiled with. After an edit of ``simd.py`` alone, the package's ``numba_sparse`` loaded
its functions from the cache with the old ``simd`` code in them, and measured that.
"""

from __future__ import annotations

import argparse
import importlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from bench.run.data import load_dataset, one_hot, scale_pixels
from implementations.core import init_params

ROOT = Path(__file__).resolve().parent.parent
SIZES = [784, 30, 10]
KERNELS = "implementations/kernels"


def _revision_source(rev: str | None, name: str) -> str:
    """Return the text of implementations/kernels/<name>.py at rev, or in the working tree if rev is None
    (SystemExit with one line if git cannot)."""
    if rev is None:
        return (ROOT / KERNELS / f"{name}.py").read_text()
    done = subprocess.run(["git", "show", f"{rev}:{KERNELS}/{name}.py"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ab_sparse: no {KERNELS}/{name}.py at {rev!r}: {done.stderr.strip()}")
    return done.stdout


def _point_at(source: str, simd_module: str) -> str:
    """Return source with its imports of implementations.kernels.simd pointed at simd_module."""
    source = source.replace("from implementations.kernels.simd import", f"from {simd_module} import")

    def split(match: re.Match) -> str:
        names = [n.strip() for n in match.group(1).split(",")]
        rest = [n for n in names if n != "simd"]
        lines = [f"import {simd_module} as simd"] if "simd" in names else []
        return "\n".join(lines + ([f"from implementations.kernels import {', '.join(rest)}"] if rest else []))

    return re.sub(r"^from implementations\.kernels import (.+)$", split, source, flags=re.MULTILINE)


def load_revision(rev: str | None, folder: Path, side: str = "before"):
    """Return numba_sparse as it was at rev (None: as it is in the working tree), imported from copies in
    folder (its own simd beside it) as ab_<side>_sparse: compiled afresh, its cache in folder."""
    (folder / f"ab_{side}_simd.py").write_text(_revision_source(rev, "simd"))
    sparse = _point_at(_revision_source(rev, "numba_sparse"), f"ab_{side}_simd")
    (folder / f"ab_{side}_sparse.py").write_text(sparse)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(f"ab_{side}_sparse")


def compare(before, after, dtype: str, batch: int, threads: list[int], epochs: int, images: int | None) -> list[str]:
    """Return one line per thread count: both versions' epochs, interleaved, and their ratio."""
    data = load_dataset("mnist")
    X, Y = scale_pixels(data.train_images[:images], dtype), one_hot(data.train_labels[:images], dtype)
    X.flags.writeable = Y.flags.writeable = False
    params = init_params(SIZES, seed=1, dtype=dtype)
    order = np.random.default_rng(0).permutation(len(X))
    for kernel in (before, after):
        kernel.warm_up(SIZES, dtype)
        kernel.prepare(X, Y)
    lines = []
    for n in threads:
        numba.set_num_threads(n)
        seconds: dict = {before: [], after: []}
        for _ in range(epochs):
            for kernel in (before, after):
                start = time.perf_counter()
                kernel.train_epoch(params, X, Y, batch, 3.0, order)
                seconds[kernel].append(1e3 * (time.perf_counter() - start))
        a, b = before.train_epoch(params, X, Y, batch, 3.0, order), after.train_epoch(params, X, Y, batch, 3.0, order)
        same = all(np.array_equal(p, q) for p, q in zip(a.arrays(), b.arrays()))
        ratio = statistics.median(y / x for x, y in zip(seconds[before], seconds[after]))
        cells = [f"{statistics.median(v):.1f} ms ({min(v):.1f}-{max(v):.1f})" for v in seconds.values()]
        lines.append(
            f"{dtype} batch {batch}, {n} thread(s), {len(X)} images: before {cells[0]}, after {cells[1]}, "
            f"after / before {ratio:.3f} (pairwise median of {epochs}), results {'identical' if same else 'DIFFER'}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="git revision of the 'before' kernel, e.g. HEAD~1")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--threads", type=int, action="append", help="Numba threads (repeatable; default 1)")
    parser.add_argument("--dtype", action="append", choices=("float32", "float64"), help="default: both")
    parser.add_argument("--epochs", type=int, default=9, help="epochs of each version per setting")
    parser.add_argument("--images", type=int, help="the first N training images (default: all)")
    args = parser.parse_args()
    threads = args.threads or [1]
    if max(threads) > numba.config.NUMBA_NUM_THREADS:
        parser.error(f"--threads {max(threads)}: this process has {numba.config.NUMBA_NUM_THREADS} (NUMBA_NUM_THREADS)")
    with tempfile.TemporaryDirectory() as folder:
        before, after = load_revision(args.rev, Path(folder)), load_revision(None, Path(folder), "after")
        for dtype in args.dtype or ["float32", "float64"]:
            for line in compare(before, after, dtype, args.batch, threads, args.epochs, args.images):
                print(line, flush=True)


if __name__ == "__main__":
    main()
