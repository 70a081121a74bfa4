"""Load benchmark results into one tidy pandas DataFrame, whatever wrote them.

Two kinds of file are read, told apart by their content, not their name:
pytest-benchmark JSON (``pytest --benchmark-only --benchmark-json=...`` or
``--benchmark-save``) and ``backprop-bench run`` results files. Each becomes one
row per implementation x benchmark x file, with the same columns (:data:`COLUMNS`),
so a report or a notebook never needs to know where a number came from.

Files are parsed as JSON only (never pickle or eval); a file that is missing,
not JSON, or of an unknown kind raises BenchError naming the file. It does no
statistics: that is :mod:`bench.regress.pytest_files`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.flops import epoch_flops
from bench.results.files import PYTEST_KIND, RUN_KIND, kind_of, read_json

COLUMNS = (
    "source",
    "kind",
    "created",
    "machine",
    "cpu_model",
    "implementation",
    "benchmark",
    "name",
    "group",
    "dtype",
    "batch_size",
    "n_examples",
    "status",
    "rounds",
    "median_s",
    "min_s",
    "max_s",
    "iqr_s",
    "mean_s",
    "stddev_s",
    "compile_s",
    "final_accuracy",
    "grad_max_rel_error",
    "gflop",
    "gflops",
    "threads",
)
# Run files record n_train; older ones only say train_limit=None for "the whole training
# set", and both supported datasets (MNIST, Fashion-MNIST) have 60,000 training images.
FULL_TRAIN_SIZE = 60_000


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Return the files named by ``paths``: files as given, folders as every *.json below them, sorted."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.json") if p.is_file())
            if not found:
                raise BenchError(f"{path}: folder holds no .json results files")
            files.extend(found)
        else:
            files.append(path)
    return files


def _number(value) -> float | None:
    """Return value as a finite float, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _gflops(gflop: float | None, seconds: float | None) -> float | None:
    return gflop / seconds if gflop is not None and seconds else None


def pytest_rows(document: dict, source: str) -> list[dict]:
    """Return one row per benchmark of a pytest-benchmark document."""
    machine = document["machine_info"]
    created = document.get("datetime")
    rows = []
    for bench in document["benchmarks"]:
        if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
            raise BenchError(f"{source}: a benchmark entry has no 'stats'")
        stats, extra = bench["stats"], bench.get("extra_info") or {}
        params = bench.get("params") or {}
        median = _number(stats.get("median"))
        gflop = _number(extra.get("gflop"))
        rows.append(
            {
                "source": source,
                "kind": PYTEST_KIND,
                "created": created,
                "machine": machine.get("node"),
                "cpu_model": machine.get("cpu_model") or (machine.get("cpu") or {}).get("brand_raw"),
                "implementation": extra.get("implementation") or params.get("impl"),
                "benchmark": extra.get("benchmark") or bench.get("name", "").split("[")[0],
                "name": bench.get("name"),
                "group": bench.get("group"),
                "dtype": extra.get("dtype") or params.get("dtype"),
                "batch_size": extra.get("batch_size"),
                "n_examples": extra.get("n_examples"),
                "status": extra.get("status", "ok"),
                "rounds": stats.get("rounds"),
                "median_s": median,
                "min_s": _number(stats.get("min")),
                "max_s": _number(stats.get("max")),
                "iqr_s": _number(stats.get("iqr")),
                "mean_s": _number(stats.get("mean")),
                "stddev_s": _number(stats.get("stddev")),
                "compile_s": _number(extra.get("compile_s")),
                "final_accuracy": _number(extra.get("accuracy")),
                "grad_max_rel_error": _number(extra.get("grad_max_rel_error")),
                "gflop": gflop,
                "gflops": _gflops(gflop, median),
                "threads": machine.get("backprop_bench", {}).get("threads"),
            }
        )
    return rows


def run_rows(document: dict, source: str) -> list[dict]:
    """Return one row per implementation of a ``backprop-bench run`` document (benchmark 'epoch')."""
    config, machine = document.get("config") or {}, document.get("machine") or {}
    n = document.get("n_train") or config.get("train_limit") or FULL_TRAIN_SIZE
    sizes = config.get("sizes")
    gflop = epoch_flops(sizes, n, config.get("batch_size") or 100) / 1e9 if sizes else None
    rows = []
    for result in document["implementations"]:
        seconds = np.asarray([s for s in result.get("epoch_seconds") or [] if _number(s) is not None], dtype=float)
        has = seconds.size > 0
        median = float(np.median(seconds)) if has else None
        accuracies = result.get("test_accuracy") or []
        q1, q3 = np.percentile(seconds, [25, 75]) if has else (None, None)
        rows.append(
            {
                "source": source,
                "kind": RUN_KIND,
                "created": document.get("created"),
                "machine": machine.get("hostname"),
                "cpu_model": machine.get("cpu_model"),
                "implementation": result.get("name"),
                "benchmark": "epoch",
                "name": f"run_epoch[{result.get('name')}-{result.get('dtype', config.get('dtype'))}]",
                "group": "run-epoch",
                "dtype": result.get("dtype", config.get("dtype")),
                "batch_size": config.get("batch_size"),
                "n_examples": n,
                "status": result.get("status"),
                "rounds": int(seconds.size),
                "median_s": median,
                "min_s": float(seconds.min()) if has else None,
                "max_s": float(seconds.max()) if has else None,
                "iqr_s": float(q3 - q1) if has else None,
                "mean_s": float(seconds.mean()) if has else None,
                "stddev_s": float(seconds.std(ddof=1)) if seconds.size > 1 else None,
                "compile_s": _number(result.get("compile_seconds")),
                "final_accuracy": _number(accuracies[-1]) if accuracies else None,
                "grad_max_rel_error": _number(result.get("grad_max_rel_error")),
                "gflop": gflop,
                "gflops": _gflops(gflop, median),
                "threads": config.get("threads"),
            }
        )
    return rows


def rows_of(path: str | Path) -> list[dict]:
    """Return the frame rows of one results file of either kind, or raise BenchError naming it."""
    document = read_json(path)
    kind = kind_of(document, path)
    if kind not in (RUN_KIND, PYTEST_KIND):
        raise BenchError(f"{path}: a {kind} file, not a run or pytest-benchmark results file")
    try:
        return run_rows(document, str(path)) if kind == RUN_KIND else pytest_rows(document, str(path))
    except BenchError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise BenchError(f"{path}: malformed {kind} results ({type(exc).__name__}: {exc})") from None


def load_frame(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Return one tidy DataFrame (columns :data:`COLUMNS`) for any number of results files or folders.

    One row per implementation x benchmark x file; ``created`` is a UTC timestamp.
    """
    rows = [row for path in expand(paths) for row in rows_of(path)]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["created"] = pd.to_datetime(frame["created"], utc=True, errors="coerce", format="ISO8601")
    for column in ("batch_size", "n_examples", "rounds", "threads"):
        frame[column] = frame[column].astype("Int64")
    return frame
