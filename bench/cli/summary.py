"""The closing table of ``backprop-bench run`` in the terminal (rich), from :mod:`bench.results.summary`."""

from __future__ import annotations

from rich.table import Table

from bench.results.summary import summary_rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def run_table(document: dict, title: str | None = None) -> Table:
    """Return a rich Table of :func:`summary_rows` for the terminal."""
    timeout = (document.get("config") or {}).get("timeout")
    threads = (document.get("threads") or {}).get("effective")
    if title is None:
        title = f"{threads} threads per kernel" if threads else None
        if timeout:
            title = f"{title}, " if title else ""
            title += f"timeout {timeout:g} s per kernel"
    table = Table(title=title, title_justify="left")
    for column, justify in [
        ("implementation", "left"),
        ("median epoch s (min-max)", "right"),
        ("speedup vs loop", "right"),
        ("compile s", "right"),
        ("prepare s", "right"),
        ("peak MiB", "right"),
        ("final accuracy", "right"),
        ("grad error", "right"),
        ("probe error", "right"),
        ("status", "left"),
    ]:
        table.add_column(column, justify=justify)
    for row in summary_rows(document):
        if row["median_epoch_s"] is None:
            epoch = "-"
        else:
            epoch = f"{row['median_epoch_s']:.3f} ({row['min_epoch_s']:.3f}-{row['max_epoch_s']:.3f})"
        status = row["status"] or "-"
        if row["delegates_to"]:
            status += f" (runs {row['delegates_to']}'s code)"
        if row["warnings"]:
            status += " [warning]"
        compile_s = _fmt(row["compile_s"], ".2f") + (f" {row['compile_kind']}" if row["compile_kind"] else "")
        table.add_row(
            row["implementation"],
            epoch,
            _fmt(row["speedup_vs_loop"], ".1f") + ("x" if row["speedup_vs_loop"] else ""),
            compile_s,
            _fmt(row["prepare_s"], ".2f"),
            _mib(row["peak_memory_mib"]),
            "-" if row["final_accuracy"] is None else f"{100 * row['final_accuracy']:.2f}%",
            _fmt(row["grad_max_rel_error"], ".1e"),
            _fmt(row["step_max_rel_error"], ".1e"),
            status,
            style="dim" if row["delegates_to"] else None,
        )
    return table


def warning_lines(document: dict) -> list[str]:
    """Return one line per warning the harness recorded (unstable times, busy machine), kernel first."""
    return [f"warning: {e['name']}: {w}" for e in document["implementations"] for w in e.get("warnings") or []]
