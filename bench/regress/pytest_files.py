"""Load pytest-benchmark JSON into per-benchmark timings, the input of a regression check.

Each side of a comparison is one or more pytest-benchmark files, every file one
process (a run) of the same code. :func:`load_side` returns, for every benchmark,
a :class:`~bench.regress.stats.Side`: the :class:`~bench.regress.stats.Timings` of that benchmark
in each run (raw round times when the file has them, and the median and
quartiles). The statistics are :mod:`bench.regress.stats`'s; the table and the command
are :mod:`bench.cli.compare`'s. Files are read as JSON only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.regress.stats import Side, Timings
from bench.results.files import PYTEST_KIND, kind_of, read_json
from bench.results.frame import expand

# Raw timings beyond this many per run are thinned to evenly spaced quantiles:
# the median and its spread need the shape of the distribution, not 100,000 points.
MAX_SAMPLES = 500


def _thin(values: np.ndarray) -> np.ndarray:
    """Return sorted ``values``, or MAX_SAMPLES evenly spaced quantiles of them when there are more."""
    if values.size <= MAX_SAMPLES:
        return values
    return np.quantile(values, np.linspace(0, 1, MAX_SAMPLES))


def timings_of(bench: dict, source: str) -> Timings:
    """Return the Timings of one pytest-benchmark entry, or raise BenchError naming ``source``."""
    stats = bench.get("stats")
    if not isinstance(stats, dict):
        raise BenchError(f"{source}: benchmark {bench.get('name')!r} has no 'stats'")
    try:
        median, q1, q3 = (float(stats[k]) for k in ("median", "q1", "q3"))
    except (KeyError, TypeError, ValueError):
        raise BenchError(f"{source}: benchmark {bench.get('name')!r} lacks median/q1/q3 statistics") from None
    if not median > 0:
        raise BenchError(f"{source}: benchmark {bench.get('name')!r} has a non-positive median {median}")
    data = stats.get("data")
    if data is not None:
        try:
            data = np.asarray(data, dtype=float)
        except (TypeError, ValueError):
            raise BenchError(f"{source}: benchmark {bench.get('name')!r} has non-numeric raw data") from None
        data = data[np.isfinite(data) & (data > 0)] if data.ndim == 1 else np.empty(0)
        data = _thin(np.sort(data)) if data.size else None
    return Timings(source, data, median, q1, q3)


def counts_of(bench: dict, source: str) -> Timings:
    """Return the instruction counts of one entry (``--bench-measure instructions``) as Timings, or raise BenchError.

    ``data`` holds the counted calls (``extra_info.instructions_rounds``), ``median`` their median.
    """
    info = bench.get("extra_info") or {}
    count = info.get("instructions")
    if not isinstance(count, (int, float)) or not count > 0:
        raise BenchError(f"{source}: benchmark {bench.get('name')!r} has no instruction count")
    rounds = info.get("instructions_rounds") or [count]
    try:
        data = np.sort(np.asarray(rounds, dtype=float))
    except (TypeError, ValueError):
        raise BenchError(f"{source}: benchmark {bench.get('name')!r} has non-numeric instruction counts") from None
    q1, q3 = (float(q) for q in np.quantile(data, [0.25, 0.75]))
    return Timings(source, data, float(count), q1, q3)


def measure_of(document: dict) -> str:
    """Return the measure a pytest-benchmark document was made with: "instructions" or "time"."""
    info = (document.get("machine_info") or {}).get("backprop_bench") or {}
    return "instructions" if info.get("measure") == "instructions" else "time"


def values_of(document: dict, source: str, measure: str = "time") -> list[tuple[dict, Timings]]:
    """Return (entry, Timings) for every benchmark of a document in ``measure``, or raise BenchError.

    Times taken under Valgrind are not wall times, so a counted document has no "time";
    a timed one has no "instructions".
    """
    made = measure_of(document)
    if measure == "time" and made == "instructions":
        raise BenchError(
            f"{source}: counted under Valgrind (--bench-measure instructions), its times are not wall times; "
            "use --measure instructions"
        )
    if measure == "instructions" and made != "instructions":
        raise BenchError(f"{source}: no instruction counts (made without --bench-measure instructions)")
    read = counts_of if measure == "instructions" else timings_of
    return [(bench, read(bench, source)) for bench in benchmarks_of(document, source)]


def benchmarks_of(document: dict, source: str) -> list[dict]:
    """Return the benchmark entries of a pytest-benchmark document, or raise BenchError naming ``source``."""
    kind = kind_of(document, source)
    if kind != PYTEST_KIND:
        raise BenchError(f"{source}: a {kind} file; expected pytest-benchmark JSON")
    for bench in document["benchmarks"]:
        if not isinstance(bench, dict) or not isinstance(bench.get("name"), str):
            raise BenchError(f"{source}: a benchmark entry has no name")
    return document["benchmarks"]


def key_of(bench: dict) -> str:
    """Return the key that identifies a benchmark across files: its full name (file::test[id])."""
    return bench.get("fullname") or bench["name"]


def side_of(documents: Iterable[tuple[str, dict]], measure: str = "time") -> dict[str, Side]:
    """Return {benchmark key: Side} from (source, pytest-benchmark document) pairs, one pair per run."""
    sides: dict[str, Side] = {}
    for source, document in documents:
        for bench, values in values_of(document, source, measure):
            side = sides.setdefault(key_of(bench), Side(bench["name"], bench.get("group"), []))
            side.runs.append(values)
    return sides


def load_side(paths: Sequence[str | Path], measure: str = "time") -> dict[str, Side]:
    """Return {benchmark key: Side} from pytest-benchmark files or folders of them (repeated runs), in ``measure``."""
    return side_of(((str(path), read_json(path)) for path in expand(paths)), measure)
