"""The summary of a run: one row per kernel, shared by the terminal table (:mod:`bench.cli.summary`) and the reports.

Only kernels whose status is ``ok`` get timing figures and a speedup; the others
show their status and message, never a time that could be mistaken for a result.
"""

from __future__ import annotations

import statistics

BASELINE = "loop"


def _mib(n_bytes: int | None) -> float | None:
    return None if n_bytes is None else n_bytes / 2**20


def summary_rows(document: dict) -> list[dict]:
    """Return one dict per kernel: median/min/max epoch seconds, speedup over loop, compile and prepare seconds,
    peak memory, accuracy, gradient and probe-epoch errors, and which kernel's code it ran (``delegates_to``)."""
    rows = []
    for entry in document["implementations"]:
        ok = entry.get("status") == "ok" and entry.get("epoch_seconds")
        times = entry.get("epoch_seconds") or []
        accuracies = entry.get("test_accuracy") or []
        rows.append(
            {
                "implementation": entry["name"],
                "dtype": entry.get("dtype"),
                "status": entry.get("status"),
                "median_epoch_s": statistics.median(times) if ok else None,
                "min_epoch_s": min(times) if ok else None,
                "max_epoch_s": max(times) if ok else None,
                "compile_s": entry.get("compile_seconds"),
                "compile_kind": entry.get("compile_kind"),
                "prepare_s": entry.get("prepare_seconds"),
                "peak_memory_mib": None
                if entry.get("peak_memory_bytes") is None
                else entry["peak_memory_bytes"] / 2**20,
                "final_accuracy": accuracies[-1] if ok and accuracies else None,
                "grad_max_rel_error": entry.get("grad_max_rel_error"),
                "step_max_rel_error": entry.get("step_max_rel_error"),
                "delegates_to": entry.get("delegates_to"),
                "warnings": len(entry.get("warnings") or []),
                "message": entry.get("message"),
            }
        )
    base = next((r for r in rows if r["implementation"] == BASELINE and r["median_epoch_s"]), None)
    for row in rows:
        row["speedup_vs_loop"] = (
            base["median_epoch_s"] / row["median_epoch_s"] if base and row["median_epoch_s"] else None
        )
    return rows
