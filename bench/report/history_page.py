"""The history page: ``history.html`` (self-contained, by the rules of :mod:`bench.report.pages`),
``history.md``, one PNG chart per series, ``steps.csv`` and ``series.csv``, from a
:class:`bench.regress.history.History`. The analysis (series, steps, the gate) is not here.

Given a History per measure (wall time, instruction counts), the page has one part per
measure, each with its own steps table, charts and CSV files: time keeps the names
above, instruction counts get ``steps-instructions.csv``, ``series-instructions.csv``
and charts named ``iNN-<benchmark>.png``. A time-only page is exactly the page it was
before counts existed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.regress.history import MEASURE_WORDS, THRESHOLDS, History, Series, describe, steps_by_size
from bench.regress.steps import Step
from bench.regress.track import config_label
from bench.report.pages import Section, output_folder, render_html, render_markdown
from bench.results.files import slug


def _unit(seconds: float) -> tuple[str, float]:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return unit, scale
    return "ns", 1e-9


def _count_unit(instructions: float) -> tuple[str, float]:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if instructions >= scale:
            return f"{unit} instr", scale
    return "instr", 1.0


# Per measure: the suffix of its CSV files, the prefix of its chart files, the column suffix of series.csv.
_FILES = {"time": ("", "", "s"), "instructions": ("-instructions", "i", "instructions")}


def chart(series: Series, path: Path) -> Path:
    """Return ``path``, a PNG of one series: median and spread per commit, the fitted levels, its steps."""
    points = series.points
    x = np.arange(len(points))
    counts = series.measure == "instructions"
    unit, scale = (_count_unit if counts else _unit)(float(np.median([p.median for p in points])))
    median = np.array([p.median for p in points]) / scale
    spread = np.array([[p.median - p.q1, p.q3 - p.median] for p in points]).T / scale
    kept = np.array([p.kept for p in points])
    # Fixed margins (room for the rotated commit labels): constrained layout took most of the drawing time.
    figure = Figure(figsize=(9.0, 3.6))
    # Counts need more digits on their ticks (4.3275 M): a wider left margin.
    figure.subplots_adjust(left=0.11 if counts else 0.08, right=0.99, top=0.92, bottom=0.36)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.errorbar(x, median, yerr=np.clip(spread, 0, None), fmt="none", ecolor="#9ab", elinewidth=1, capsize=2)
    axes.plot(x[kept], median[kept], "o", color="#1f77b4", markersize=4, label="median (bars: quartiles)")
    if (~kept).any():
        axes.plot(x[~kept], median[~kept], "o", mfc="none", color="#1f77b4", markersize=5, label="one-off run")
    bounds = [0, *sorted({s.start for s in series.steps} | {s.end for s in series.steps}), len(points)]
    for begin, end in zip(bounds[:-1], bounds[1:]):
        level = median[begin:end][kept[begin:end]]
        if end > begin and level.size:
            axes.hlines(np.exp(np.log(level).mean()), begin - 0.4, end - 0.6, color="#555", linewidth=1.5)
    for step in series.steps:
        colour = "#d62728" if step.slower else "#2ca02c"
        style = "--" if step.confirmed else ":"
        if step.drift:
            axes.axvspan(step.start - 0.5, step.end - 0.5, color=colour, alpha=0.12)
        axes.axvline(step.end - 0.5, color=colour, linestyle=style, linewidth=1.5)
        label = (f"{100 * (step.ratio - 1):+.1f}%" if counts else f"{step.ratio:.2f}x") + (
            "" if step.confirmed else "?"
        )
        axes.annotate(label, (step.end - 0.5, 1.0), xycoords=("data", "axes fraction"), color=colour, ha="left",
                      va="top", fontsize=9, xytext=(3, -3), textcoords="offset points")  # fmt: skip
    every = max(1, len(points) // 40)
    axes.set_xticks(x[::every], [f"{p.short} {p.date}" for p in points[::every]], rotation=90, fontsize=7)
    axes.set_xlim(-0.7, len(points) - 0.3)
    axes.set_ylabel(f"median count ({unit})" if counts else f"median time ({unit})")
    # A count's configuration is in its section's title; spelt out here it would not fit.
    title = f"{series.name} on {series.machine}, instruction counts" if counts else f"{series.name} on {series.where}"
    axes.set_title(title, fontsize=9)
    axes.grid(axis="y", alpha=0.3)
    # Counts change by steps that leave the oldest commits in the lower left: let the legend find room.
    axes.legend(fontsize=7, loc="best" if counts else "lower left")
    figure.savefig(path, dpi=100)
    return path


def steps_table(pairs: list[tuple[Series, Step]], threshold: float) -> pd.DataFrame:
    """Return one row per step: benchmark, machine, configuration, change, commits, interval, beyond threshold."""
    rows = []
    for s, step in pairs:
        first, last = s.points[step.start], s.points[step.end]
        rows.append(
            {
                "benchmark": s.name,
                "machine": s.machine,
                "configuration": config_label(s.config),
                "ratio": step.ratio,
                "ci_low": step.low,
                "ci_high": step.high,
                "kind": "drift" if step.drift else "step",
                "from_commit": first.commit,
                "from_date": first.date,
                "to_commit": last.commit,
                "to_date": last.date,
                "commits_before": step.before,
                "commits_after": step.after,
                "confirmed": step.confirmed,
                "beyond_threshold": step.slower and step.low > threshold,
                "description": describe(s, step),
            }
        )
    return pd.DataFrame(rows)


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """Return the steps table as the page shows it."""
    return pd.DataFrame(
        {
            "step": table["description"],
            "machine": table["machine"],
            "configuration": table["configuration"],
            "commits before / after": [f"{b} / {a}" for b, a in zip(table["commits_before"], table["commits_after"])],
            "beyond threshold": np.where(table["beyond_threshold"], "yes", "no"),
        }
    )


def series_table(history: History) -> pd.DataFrame:
    """Return one row per series and commit: the numbers every chart is drawn from.

    The value columns are median_s, q1_s, q3_s for time and median_instructions, ... for counts.
    """
    unit = _FILES[history.measure][2]
    rows = [
        {
            "benchmark": s.name,
            "group": s.group,
            "machine": s.machine,
            "configuration": config_label(s.config),
            "order": i,
            "commit": p.commit,
            "date": p.date,
            f"median_{unit}": p.median,
            f"q1_{unit}": p.q1,
            f"q3_{unit}": p.q3,
            "runs": p.runs,
            "one_off": not p.kept,
        }
        for s in history.series
        for i, p in enumerate(s.points)
    ]
    return pd.DataFrame(rows)


def build_sections(history: History, out: Path, threshold: float, several: bool = False) -> list[Section]:
    """Return the page's sections of one measure, writing the charts and CSV files into ``out``.

    ``several``: the page holds more than one measure, so the titles name this one.
    """
    counts = history.measure == "instructions"
    suffix, prefix, _ = _FILES[history.measure]
    words = MEASURE_WORDS[history.measure]
    part = f"{words.capitalize()}: " if several else ""
    confirmed, unconfirmed = steps_by_size(history), steps_by_size(history, confirmed=False)
    table = steps_table(confirmed + unconfirmed, threshold)
    table.to_csv(out / f"steps{suffix}.csv", index=False)
    series_table(history).to_csv(out / f"series{suffix}.csv", index=False)
    machines = sorted({(s.machine, config_label(s.config)) for s in history.series})
    commits = len(history.commits)
    if counts:
        method = [
            f"{len(history.series)} series of instruction counts (benchmark x machine x configuration) over "
            f"{commits} commits, {len(machines)} machine/configuration pair(s): the instructions of one call of "
            "each benchmark, counted under Valgrind (--bench-measure instructions), never mixed with times.",
            "A step is a change of level found by the same change-point search on the log median counts, with the "
            "noise of counts (they repeat within 0.2%): kept when the 95% interval on its ratio excludes 1 and the "
            "change is at least 0.4%; same-direction steps a few commits apart are one drift. 'Beyond threshold' "
            f"means an increase whose interval lies above {threshold:.4g}x (what --fail-since --measure "
            "instructions fails on). A commit far off its neighbours is drawn hollow and left out of the search.",
        ]
    else:
        method = [
            f"{len(history.series)} series (benchmark x machine x configuration) over {commits} commits, "
            f"{len(machines)} machine/configuration pair(s); a series never mixes machines or configurations.",
            "A step is a change of level found by a penalised change-point search on the log medians and kept "
            "only when the 95% interval on its ratio excludes 1; same-direction steps a few commits apart are one "
            f"drift. 'Beyond threshold' means a slowdown whose interval lies above {threshold:.2f}x (what "
            "--fail-since fails on). A commit run beside a busy neighbour is drawn hollow and left out of the search.",
        ]
    intro = [*method, *history.notes]
    shown = _shown(table[table["confirmed"]]) if len(table) else pd.DataFrame()
    sections = [
        Section(
            f"{part}Steps, largest first",
            [*intro, "" if confirmed else "No step found in any series."],
            tables=[shown] if confirmed else [],
            csv=[f"steps{suffix}.csv", f"series{suffix}.csv"],
        )
    ]
    if unconfirmed:
        sections.append(
            Section(
                f"{part}Unconfirmed changes at the newest commit",
                ["One commit cannot tell a step from a one-off slow run; the next commit will confirm or clear these."],
                tables=[_shown(table[~table["confirmed"]])],
            )
        )
    for (machine, label), number in zip(machines, range(1, len(machines) + 1)):
        members = [s for s in history.series if s.machine == machine and config_label(s.config) == label]
        sections.append(
            Section(
                f"{part}Machine {machine}, {label}",
                [f"{len(members)} benchmark(s), {len({p.commit for s in members for p in s.points})} commit(s)."],
            )
        )
        for s in members:
            path = chart(s, out / f"{prefix}{number:02d}-{slug(s.name, 'series')}.png")
            lines = [describe(s, step) for step in s.steps] or ["No step."]
            title = f"{s.name} ({machine}, {words})" if several else f"{s.name} ({machine})"
            sections.append(Section(title, lines, figure=path))
    return sections


def write_page(
    histories: History | list[History], out: str | Path, threshold: float | dict[str, float] | None = None
) -> Path:
    """Return the path of history.html, written into ``out`` with history.md, the charts and the CSV files.

    ``histories``: one History, or one per measure (the page shows them in that order).
    ``threshold``: the gate's ratio, for the first history's measure, or {measure: ratio};
    a measure not given gets its default (:data:`bench.regress.history.THRESHOLDS`).
    """
    histories = [histories] if isinstance(histories, History) else list(histories)
    if not isinstance(threshold, dict):
        threshold = {} if threshold is None else {histories[0].measure: threshold}
    out = output_folder(out, "history")
    several = len(histories) > 1
    sections = [
        section
        for history in histories
        for section in build_sections(
            history, out, threshold.get(history.measure, THRESHOLDS[history.measure]), several
        )
    ]
    title = f"backprop-bench history ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d})"
    # One entry per folder, not per file: a long history has thousands of records.
    folders = defaultdict(int)
    for name in (name for history in histories for name in history.files):
        folders[name.rpartition("/")[0]] += 1
    sources = [f"{folder}/ ({count} records)" for folder, count in sorted(folders.items())]
    (out / "history.md").write_text(render_markdown(sections, sources, title))
    page = out / "history.html"
    page.write_text(render_html(sections, sources, title))
    return page
