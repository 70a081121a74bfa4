"""The report's plots: one function per figure, each from a tidy table to one PNG file.

Figures are drawn on ``matplotlib.figure.Figure`` objects and saved through the
Agg canvas, never through pyplot, so nothing here touches global plotting state
or needs a display. Colours are fixed per implementation across every figure.
Rows whose status is not ``ok`` are never drawn as a timing; the epoch-time plot
names them with their status instead of a bar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

# A ratio of largest to smallest value above this gets a log axis.
LOG_RATIO = 20.0
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h")


def colours(names) -> dict[str, str]:
    """Return a fixed colour per implementation name (sorted, so every figure agrees)."""
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(sorted(set(names)))}


def _figure(height: float, width: float = 8.0) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    return path


def _wide(values) -> bool:
    values = [v for v in values if v is not None and np.isfinite(v) and v > 0]
    return len(values) > 1 and max(values) / min(values) > LOG_RATIO


def _scale(axes, log: bool) -> None:
    """Set a linear or log x axis; log ticks read as plain numbers (0.2, 1, 5), not 2x10^-1."""
    if not log:
        return
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.xaxis.set_minor_formatter(NullFormatter())


def _label(row, several_sources: bool) -> str:
    return f"{row['implementation']} ({row['label']})" if several_sources else str(row["implementation"])


def epoch_times(summary: pd.DataFrame, path: Path, palette: dict[str, str]) -> Path:
    """Save horizontal bars of median epoch seconds, whiskers from min to max; failed kernels named, not drawn."""
    several = summary["label"].nunique() > 1
    rows = list(summary.iloc[::-1].iterrows())
    figure = _figure(1.2 + 0.45 * len(rows))
    axes = figure.add_subplot()
    ok = summary[summary["median_epoch_s"].notna()]
    log = _wide(list(ok["min_epoch_s"]) + list(ok["max_epoch_s"]))
    for y, (_, row) in enumerate(rows):
        if pd.isna(row["median_epoch_s"]):
            axes.text(0.01, y, f"{row['status']}: not timed", transform=axes.get_yaxis_transform(), va="center")
            continue
        median = row["median_epoch_s"]
        spread = [[median - row["min_epoch_s"]], [row["max_epoch_s"] - median]]
        axes.barh(y, median, color=palette[row["implementation"]], xerr=spread, capsize=4, ecolor="black")
        axes.text(median, y, f"  {median:.3g} s", va="bottom", fontsize=8)
    axes.set_yticks(range(len(rows)), [_label(row, several) for _, row in rows])
    _scale(axes, log)
    axes.set_xlabel("seconds per epoch (median; whiskers: min to max)" + (", log scale" if log else ""))
    axes.set_title("Epoch time per implementation (lower is better)")
    return _save(figure, path)


def accuracy(epochs: pd.DataFrame, path: Path, palette: dict[str, str]) -> Path:
    """Save test accuracy against epoch, every implementation overlaid (markers shrink so overlaps show)."""
    several = epochs["label"].nunique() > 1
    figure = _figure(4.5)
    axes = figure.add_subplot()
    groups = list(epochs.groupby(["label", "implementation"], sort=True))
    for i, ((label, name), rows) in enumerate(groups):
        # Identical curves would hide each other: later ones are drawn thinner, on top.
        axes.plot(
            rows["epoch"] + 1,
            100 * rows["test_accuracy"],
            color=palette[name],
            marker=_MARKERS[i % len(_MARKERS)],
            markersize=max(3, 9 - 2 * i),
            linewidth=max(0.8, 3 - 0.6 * i),
            linestyle="-" if i % 2 == 0 else "--",
            label=f"{name} ({label})" if several else name,
        )
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epochs trained")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title("Accuracy per epoch (identical curves mean identical training)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def time_to_accuracy(table: pd.DataFrame, path: Path, palette: dict[str, str], target: float) -> Path:
    """Save paired bars: seconds to reach ``target``, without and with compile time."""
    several = table["label"].nunique() > 1
    rows = list(table.iloc[::-1].iterrows())
    figure = _figure(1.4 + 0.55 * len(rows))
    axes = figure.add_subplot()
    reached = table[table["seconds_excl_compile"].notna()]
    log = _wide(list(reached["seconds_excl_compile"]) + list(reached["seconds_incl_compile"]))
    for y, (_, row) in enumerate(rows):
        if pd.isna(row["seconds_excl_compile"]):
            axes.text(0.01, y, row["note"], transform=axes.get_yaxis_transform(), va="center")
            continue
        colour = palette[row["implementation"]]
        axes.barh(y + 0.18, row["seconds_excl_compile"], height=0.34, color=colour)
        axes.barh(y - 0.18, row["seconds_incl_compile"], height=0.34, color=colour, alpha=0.45, hatch="//")
        axes.text(
            row["seconds_incl_compile"], y - 0.18, f"  {row['seconds_incl_compile']:.3g} s", va="center", fontsize=8
        )
    axes.set_yticks(range(len(rows)), [_label(row, several) for _, row in rows])
    _scale(axes, log)
    axes.set_xlabel("training seconds to reach the target (solid: compile excluded; hatched: included)")
    axes.set_title(f"Time to {100 * target:g}% test accuracy (lower is better)")
    return _save(figure, path)


def efficiency(table: pd.DataFrame, path: Path, palette: dict[str, str]) -> Path:
    """Save bars of achieved GFLOP/s as a percentage of the machine's GEMM roof."""
    several = table["label"].nunique() > 1
    rows = list(table.iloc[::-1].iterrows())
    figure = _figure(1.2 + 0.45 * len(rows))
    axes = figure.add_subplot()
    percent = 100 * table["fraction_of_roof"]
    log = _wide(list(percent))
    for y, (_, row) in enumerate(rows):
        value = 100 * row["fraction_of_roof"]
        axes.barh(y, value, color=palette[row["implementation"]])
        axes.text(value, y, f"  {value:.3g}% ({row['gflops']:.3g} GFLOP/s)", va="center", fontsize=8)
    axes.set_yticks(range(len(rows)), [_label(row, several) for _, row in rows])
    _scale(axes, log)
    axes.set_xlabel("achieved GFLOP/s as % of this machine's matrix-multiply roof" + (", log scale" if log else ""))
    axes.set_title("Efficiency (higher is better)")
    return _save(figure, path)


def scaling(table: pd.DataFrame, path: Path, palette: dict[str, str], roofs: dict[str, float]) -> Path:
    """Save two log-log panels of cost against work: per mini-batch step over batch size, per epoch over width.

    A dotted line per sweep file marks the roof: the time the work would take at
    the machine's GEMM rate.
    """
    several = table["label"].nunique() > 1
    figure = _figure(4.6, width=11.0)
    panels = [
        ("batch", "flops_per_step", "seconds_per_step", "batch_size", "mini-batch step (batch size varies)"),
        ("width", "epoch_flops", "median_epoch_s", "width", "epoch (hidden width varies)"),
    ]
    for i, (axis, x, y, annotate, what) in enumerate(panels):
        axes = figure.add_subplot(1, 2, i + 1)
        part = table[(table["axis"] == axis) & table[y].notna()]
        for (label, name), rows in part.groupby(["label", "implementation"], sort=True):
            rows = rows.sort_values(x)
            axes.plot(rows[x], rows[y], marker="o", color=palette[name], label=f"{name} ({label})" if several else name)
            if name == min(part["implementation"]):  # label the points once, on one curve
                for _, row in rows.iterrows():
                    axes.annotate(f"{annotate[0]}={row[annotate]}", (row[x], row[y]), fontsize=7, alpha=0.7)
        for label, roof in roofs.items():
            work = np.array(sorted(part.loc[part["label"] == label, x].unique()), dtype=float)
            if len(work) and roof:
                axes.plot(work, work / (roof * 1e9), ":", color="black", label=f"roof {roof:.0f} GFLOP/s")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel(f"FLOPs per {what.split(' (')[0]}")
        axes.set_ylabel(f"seconds per {what.split(' (')[0]}")
        axes.set_title(f"Cost against work: {what}", fontsize=10)
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize=7)
    return _save(figure, path)


def benchmarks(table: pd.DataFrame, path: Path, palette: dict[str, str]) -> Path:
    """Save horizontal bars of pytest-benchmark medians (whiskers: interquartile range), one row per benchmark."""
    rows = list(table.iloc[::-1].iterrows())
    figure = _figure(1.2 + 0.32 * len(rows), width=9.0)
    axes = figure.add_subplot()
    for y, (_, row) in enumerate(rows):
        if pd.isna(row["median_s"]):
            continue
        half = 0 if pd.isna(row["iqr_s"]) else row["iqr_s"] / 2
        axes.barh(y, row["median_s"], xerr=half, color=palette.get(row["implementation"], "grey"), capsize=3)
    axes.set_yticks(range(len(rows)), [f"{row['group']}: {row['implementation']}" for _, row in rows], fontsize=8)
    _scale(axes, _wide(table["median_s"]))
    axes.set_xlabel("seconds (median; whiskers: interquartile range)")
    axes.set_title("pytest-benchmark results")
    return _save(figure, path)


def instructions(table: pd.DataFrame, path: Path, palette: dict[str, str]) -> Path:
    """Save horizontal bars of instructions per call (the suite's figure: the least counted call), one per benchmark."""
    rows = list(table.iloc[::-1].iterrows())
    figure = _figure(1.2 + 0.32 * len(rows), width=9.0)
    axes = figure.add_subplot()
    for y, (_, row) in enumerate(rows):
        axes.barh(y, row["instructions"], color=palette.get(row["implementation"], "grey"))
        axes.text(row["instructions"], y, f"  {row['instructions']:,.0f}", va="center", fontsize=7)
    axes.set_yticks(range(len(rows)), [f"{row['group']}: {row['implementation']}" for _, row in rows], fontsize=8)
    log = _wide(table["instructions"])
    _scale(axes, log)
    if not log:
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / 1e6:g} M" if value else "0"))
    axes.set_xlabel("instructions per call (the least of the counted calls)")
    axes.set_title("pytest-benchmark instruction counts (lower is better)")
    return _save(figure, path)
