"""The closing table of ``backprop-bench run`` in the terminal (rich), built from :func:`bench.summary.summary_rows`."""

from __future__ import annotations

from rich.table import Table

from bench.summary import summary_rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def run_table(document: dict, title: str | None = None) -> Table:
    """Return a rich Table of :func:`summary_rows` for the terminal."""
    table = Table(title=title, title_justify="left")
    for column, justify in [
        ("implementation", "left"),
        ("median epoch s (min-max)", "right"),
        ("speedup vs loop", "right"),
        ("compile s", "right"),
        ("final accuracy", "right"),
        ("max grad error", "right"),
        ("status", "left"),
    ]:
        table.add_column(column, justify=justify)
    for row in summary_rows(document):
        if row["median_epoch_s"] is None:
            epoch = "-"
        else:
            epoch = f"{row['median_epoch_s']:.3f} ({row['min_epoch_s']:.3f}-{row['max_epoch_s']:.3f})"
        table.add_row(
            row["implementation"],
            epoch,
            _fmt(row["speedup_vs_loop"], ".1f") + ("x" if row["speedup_vs_loop"] else ""),
            _fmt(row["compile_s"], ".2f"),
            "-" if row["final_accuracy"] is None else f"{100 * row['final_accuracy']:.2f}%",
            _fmt(row["grad_max_rel_error"], ".1e"),
            row["status"],
        )
    return table
