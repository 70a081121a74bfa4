"""How well instruction counts repeat between runs of the suite on one commit.

    python scripts/count_repeat.py results/reference/instructions/rep-*.json

For every benchmark counted in every file: the spread of its count over the runs,
(max - min) / median, and the largest spread within one run (between its counted
calls). Prints a table, worst first, and with ``--out`` writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench.regress.pytest_files import counts_of, key_of, values_of
from bench.results.files import read_json


def spreads(paths: list[Path]) -> list[dict]:
    """Return one row per benchmark counted in every file: name, median count, between-run and within-run spread."""
    runs: dict[str, list] = {}
    names: dict[str, str] = {}
    for path in paths:
        for bench, _ in values_of(read_json(path), str(path), "instructions"):
            runs.setdefault(key_of(bench), []).append(counts_of(bench, str(path)))
            names[key_of(bench)] = bench["name"]
    rows = []
    for key, counts in runs.items():
        if len(counts) != len(paths):
            continue
        figures = np.array([c.median for c in counts])
        within = max(float(c.data.max() - c.data.min()) / c.median for c in counts)
        median = float(np.median(figures))
        spread = float(figures.max() - figures.min()) / median
        rows.append({"benchmark": names[key], "median": median, "between_runs": spread, "within_run": within})
    return sorted(rows, key=lambda row: -row["between_runs"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = spreads(args.files)
    print(f"{len(args.files)} runs, {len(rows)} benchmarks counted in all of them")
    print(f"{'benchmark':48s} {'median count':>14s} {'between runs':>13s} {'within a run':>13s}")
    for row in rows:
        print(f"{row['benchmark']:48s} {row['median']:>14,.0f} {row['between_runs']:>12.4%} {row['within_run']:>12.4%}")
    if args.out:
        document = {"command": "python scripts/count_repeat.py " + " ".join(map(str, args.files)), "rows": rows}
        args.out.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
