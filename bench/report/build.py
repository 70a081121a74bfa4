"""``backprop-bench report``: results files in, one page of tables and plots out.

Reads any mix of ``backprop-bench run`` files, ``backprop-bench sweep`` files and
pytest-benchmark JSON (files or folders of them) and writes, into one folder:
``report.html`` (self-contained: the plots are embedded as data URIs, nothing is
fetched), ``report.md`` (the same content, linking the PNG files), one PNG per
plot and one CSV per table with the unformatted numbers.

Every number stays with the file it came from: results from different files or
machines are shown side by side and never averaged together. pytest-benchmark files
made with ``--bench-measure instructions`` give instruction counts, shown in a
section (and ``instructions.csv``) of their own: their times, taken under Valgrind,
are not wall times and are never shown as times. A report of timed files only is the
same with or without this. Kernels that are not
``ok`` (parity-failed, error, diverged, interrupted) are listed with their status
and never ranked or plotted as a timing. Every string taken from a results file
is HTML-escaped before it reaches the page.

The tables are computed in :mod:`bench.report.tables`, the figures drawn in
:mod:`bench.report.plots` and the pages rendered by :mod:`bench.report.pages`; this module loads
the files and builds the sections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.errors import BenchError
from bench.regress.pytest_files import counts_of, measure_of
from bench.report import plots
from bench.report.pages import Section, output_folder, render_html, render_markdown
from bench.report.tables import (
    efficiency_table,
    epochs_table,
    machines_table,
    roof_gflops,
    scaling_table,
    summary_table,
    time_to_accuracy_table,
)
from bench.results.files import RUN_KIND, SWEEP_KIND, kind_of, read_json, read_sweep
from bench.results.frame import expand, rows_of

DEFAULT_TARGET = 0.9


@dataclass
class Inputs:
    """Parsed results, each document paired with the short label the report shows for its file."""

    runs: list[tuple[str, dict]] = field(default_factory=list)
    sweeps: list[tuple[str, dict]] = field(default_factory=list)
    pytest: list[tuple[str, dict]] = field(default_factory=list)
    benchmarks: pd.DataFrame | None = None


def _labels(files: list[Path]) -> list[str]:
    """Return the file names, or the paths as given where two files share a name."""
    names = [f.name for f in files]
    return [f.name if names.count(f.name) == 1 else str(f) for f in files]


def load_inputs(paths: list[str | Path]) -> Inputs:
    """Return every results file parsed and checked, or raise BenchError naming the first bad one."""
    files = expand(paths)
    inputs, frames = Inputs(), []
    for path, label in zip(files, _labels(files)):
        document = read_json(path)
        if document.get("kind") == SWEEP_KIND:
            read_sweep(path, document)
            if not any(point.get("implementations") for point in document["points"]):
                raise BenchError(f"{path}: sweep file has no measured points (nothing to report)")
            inputs.sweeps.append((label, document))
        elif kind_of(document, path) == RUN_KIND:
            if not document["implementations"]:
                raise BenchError(f"{path}: run file lists no implementations (nothing to report)")
            inputs.runs.append((label, document))
        else:
            rows = rows_of(path)
            if not rows:
                raise BenchError(f"{path}: pytest-benchmark file holds no benchmarks (nothing to report)")
            frames.append(_with_counts(pd.DataFrame(rows).assign(label=label), document, str(path)))
            inputs.pytest.append((label, document))
    if frames:
        inputs.benchmarks = pd.concat(frames, ignore_index=True)
    return inputs


def _with_counts(rows: pd.DataFrame, document: dict, source: str) -> pd.DataFrame:
    """Return a pytest-benchmark file's rows, with its instruction counts when it was counted, else as they are.

    Counted rows get ``instructions`` (the suite's figure, ``extra_info.instructions``: the least of
    the counted calls), ``instructions_spread`` ((max - min) / that figure) and ``counted_calls``;
    their times, taken under Valgrind, are blanked so that nothing reads them as wall times.
    """
    if measure_of(document) != "instructions":
        return rows
    counts = [counts_of(bench, source) for bench in document["benchmarks"]]
    rows = rows.assign(
        instructions=[c.median for c in counts],
        instructions_spread=[(c.data.max() - c.data.min()) / c.median for c in counts],
        counted_calls=[c.data.size for c in counts],
    )
    rows[["median_s", "min_s", "max_s", "iqr_s", "mean_s", "stddev_s", "gflops"]] = float("nan")
    return rows


# Presentation: formatted copies of the tables, sections, and the HTML and Markdown pages.


def _num(value, spec: str, suffix: str = "") -> str:
    if value is None or pd.isna(value):
        return "-"
    return format(int(value) if spec == "d" else value, spec) + suffix


def _percent(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{100 * value:.2f}%"


def _status(r: pd.Series) -> str:
    """Return the status cell: ok, ok running another kernel's code, or the failure and its message."""
    if r["status"] != "ok":
        return f"{r['status']}: {r['message'] or ''}".strip(": ")
    delegate = r.get("delegates_to")
    return "ok" if delegate is None or pd.isna(delegate) else f"ok (runs {delegate}'s code; not ranked)"


def _display_summary(summary: pd.DataFrame, several: bool) -> pd.DataFrame:
    """Return the summary table as the page shows it (one formatted string per cell)."""
    rows = []
    for _, r in summary.iterrows():
        timed = not pd.isna(r["median_epoch_s"])
        epoch = f"{r['median_epoch_s']:.4g} ({r['min_epoch_s']:.4g} to {r['max_epoch_s']:.4g})" if timed else "-"
        row = {"file": r["label"], "machine": r["machine"]} if several else {}
        rows.append(
            row
            | {
                "rank": _num(r["rank"], "d"),
                "implementation": r["implementation"],
                "dtype": r["dtype"],
                "median epoch s (min to max)": epoch,
                "speedup vs loop": _num(r["speedup_vs_loop"], ".1f", "x"),
                "compile s": _num(r.get("compile_s"), ".2f"),
                "prepare s": _num(r.get("prepare_s"), ".2f"),
                "peak MiB": _num(r.get("peak_memory_mib"), ",.0f"),
                "final accuracy": _percent(r["final_accuracy"]),
                "grad error": _num(r["grad_max_rel_error"], ".1e"),
                "probe error": _num(r.get("step_max_rel_error"), ".1e"),
                "status": _status(r),
            }
        )
    return pd.DataFrame(rows)


def _display(table: pd.DataFrame, formats: dict[str, tuple[str, str]], several: bool) -> pd.DataFrame:
    """Return ``table`` restricted to ``formats`` ({column: (title, spec)}); spec '%' means a percentage."""
    shown = {}
    for column, (title, spec) in formats.items():
        if column in ("label", "machine") and not several:
            continue
        values = table[column]
        if spec == "%":
            shown[title] = values.map(_percent)
        elif spec:
            shown[title] = values.map(lambda v, spec=spec: _num(v, spec))
        else:
            shown[title] = values.map(lambda v: "-" if v is None or (not isinstance(v, str) and pd.isna(v)) else v)
    return pd.DataFrame(shown)


def _identical_note(epochs: pd.DataFrame) -> str:
    """Return a sentence on how far apart the accuracy curves of the ok kernels are, per file."""
    parts = []
    for label, rows in epochs[epochs["status"] == "ok"].groupby("label"):
        wide = rows.pivot(index="epoch", columns="implementation", values="test_accuracy")
        if wide.shape[1] > 1:
            gap = float((wide.max(axis=1) - wide.min(axis=1)).max())
            verdict = "identical" if gap == 0 else f"at most {100 * gap:.2f} points apart"
            parts.append(f"{label}: the {wide.shape[1]} ok kernels' test accuracies are {verdict} at every epoch.")
    return " ".join(parts)


def build_sections(inputs: Inputs, out: Path, target: float) -> list[Section]:
    """Return the report's sections, writing every plot and CSV into ``out`` along the way."""
    names = [e["name"] for _, d in inputs.runs for e in d["implementations"]]
    names += [e["name"] for _, d in inputs.sweeps for p in d["points"] for e in p["implementations"]]
    if inputs.benchmarks is not None:
        names += [n for n in inputs.benchmarks["implementation"] if isinstance(n, str)]
    palette = plots.colours(names)
    sections = []
    if inputs.runs:
        sections.append(_summary_section(inputs, out, palette))
        accuracy = _accuracy_section(inputs, out, palette)
        if accuracy is not None:
            sections.append(accuracy)
        sections.append(_time_to_accuracy_section(inputs, out, palette, target))
        sections.append(_efficiency_section(inputs, out, palette))
    sections.append(_scaling_section(inputs, out, palette))
    if inputs.benchmarks is not None:
        counted = _counted(inputs.benchmarks)
        if not counted.all():
            sections.append(_benchmark_section(inputs.benchmarks[~counted], out, palette))
        if counted.any():
            sections.append(_instructions_section(inputs.benchmarks[counted], out, palette))
    sections.append(_machines_section(inputs, out))
    return sections


def _summary_section(inputs: Inputs, out: Path, palette: dict[str, str]) -> Section:
    """Return the ranked summary of every run file, with the epoch-time plot."""
    summary = summary_table(inputs.runs)
    summary.to_csv(out / "summary.csv", index=False)
    headline = []
    for label, rows in summary.groupby("label", sort=False):
        best = rows[rows["rank"] == 1]
        failed = rows[rows["status"] != "ok"]
        if len(best):
            b = best.iloc[0]
            speed = f", {b['speedup_vs_loop']:.1f}x the loop kernel" if not pd.isna(b["speedup_vs_loop"]) else ""
            headline.append(
                f"{label}: fastest is {b['implementation']} at {b['median_epoch_s']:.3g} s per epoch{speed}."
            )
        if len(failed):
            headline.append(f"Not ranked (not ok): {', '.join(failed['implementation'])}.")
    return Section(
        "Summary and epoch time per implementation",
        [
            *headline,
            "Median over epochs, with min to max; speedup is over the loop kernel of the same file. "
            "Kernels that failed the parity check against the float64 reference (or errored, crashed, timed out, "
            "diverged or were interrupted) are listed with their status and never ranked or timed.",
        ],
        plots.epoch_times(summary, out / "epoch_times.png", palette),
        [_display_summary(summary, len(inputs.runs) > 1)],
        ["summary.csv"],
    )


def _accuracy_section(inputs: Inputs, out: Path, palette: dict[str, str]) -> Section | None:
    """Return the accuracy-per-epoch overlay, or None when no kernel finished ok."""
    epochs = epochs_table(inputs.runs)
    epochs.to_csv(out / "epochs.csv", index=False)
    ok_epochs = epochs[epochs["status"] == "ok"]
    if not len(ok_epochs):
        return None
    return Section(
        "Accuracy per epoch",
        [
            "Test accuracy after every epoch, every ok kernel overlaid. They start from the same "
            "parameters and see the same batches, so their curves should lie on top of each other.",
            _identical_note(epochs),
        ],
        plots.accuracy(ok_epochs, out / "accuracy.png", palette),
        csv=["epochs.csv"],
    )


def _time_to_accuracy_section(inputs: Inputs, out: Path, palette: dict[str, str], target: float) -> Section:
    """Return training seconds to ``target`` test accuracy, with and without compile time."""
    tta = time_to_accuracy_table(inputs.runs, target)
    tta.to_csv(out / "time_to_accuracy.csv", index=False)
    formats = {
        "label": ("file", ""),
        "rank": ("rank", "d"),
        "implementation": ("implementation", ""),
        "epochs": ("epochs", "d"),
        "seconds_excl_compile": ("seconds, compile excluded", ".3g"),
        "seconds_incl_compile": ("seconds, compile included", ".3g"),
        "note": ("note", ""),
    }
    return Section(
        f"Time to {100 * target:g}% test accuracy",
        [
            f"Training seconds until test accuracy first reaches {100 * target:g}% "
            "(set with --target-accuracy), summed over the timed epochs; evaluation is never timed. "
            "Ranked by the time without compilation; the hatched bars add the one-off JIT compile time.",
        ],
        plots.time_to_accuracy(tta, out / "time_to_accuracy.png", palette, target)
        if tta["seconds_excl_compile"].notna().any()
        else None,
        [_display(tta, formats, len(inputs.runs) > 1)],
        ["time_to_accuracy.csv"],
    )


def _efficiency_section(inputs: Inputs, out: Path, palette: dict[str, str]) -> Section:
    """Return achieved GFLOP/s against the roof measured by the same run."""
    efficiency = efficiency_table(inputs.runs)
    efficiency.to_csv(out / "efficiency.csv", index=False)
    formats = {
        "label": ("file", ""),
        "machine": ("machine", ""),
        "implementation": ("implementation", ""),
        "dtype": ("dtype", ""),
        "gflop_per_epoch": ("GFLOP per epoch", ".3g"),
        "median_epoch_s": ("median epoch s", ".4g"),
        "gflops": ("GFLOP/s", ".3g"),
        "roof_gflops": ("roof GFLOP/s", ".1f"),
        "fraction_of_roof": ("of roof", "%"),
    }
    has_roof = efficiency["fraction_of_roof"].notna().any() if len(efficiency) else False
    return Section(
        "Efficiency",
        [
            "Achieved GFLOP/s = FLOPs of one epoch / median epoch seconds. FLOPs are counted from the layer "
            "sizes, per example: forward 2*in*out, weight gradient 2*in*out, and error propagation 2*in*out "
            "for every layer but the first, plus the SGD update, 2 FLOPs per parameter per mini-batch (about "
            "a quarter of the work at batch size 1). These are dense-equivalent counts. The roof is the "
            "GFLOP/s of a large NumPy matrix multiply in the same dtype and thread setting, measured by the "
            "same run (the run file also records SciPy's, the BLAS Numba calls, as roof_scipy).",
            "" if has_roof else "These results files carry no roof measurement (made before it existed).",
        ],
        plots.efficiency(efficiency.dropna(subset=["fraction_of_roof"]), out / "efficiency.png", palette)
        if has_roof
        else None,
        [_display(efficiency, formats, len(inputs.runs) > 1)],
        ["efficiency.csv"],
    )


def _machines_section(inputs: Inputs, out: Path) -> Section:
    """Return what every result ran on, one column per machine."""
    machines = machines_table(inputs.runs, inputs.sweeps, inputs.pytest)
    machines.to_csv(out / "machines.csv")
    return Section(
        "Machines",
        [
            "What every result ran on, one column per machine. Results from different machines are shown side "
            "by side in every table (the file and machine columns), never averaged together."
        ],
        tables=[machines.reset_index()],
        csv=["machines.csv"],
    )


def _scaling_section(inputs: Inputs, out: Path, palette: dict[str, str]) -> Section:
    section = Section("Scaling")
    if not inputs.sweeps:
        section.paragraphs.append("No sweep results were given; run `backprop-bench sweep` and pass its file.")
        return section
    table = scaling_table(inputs.sweeps)
    table.to_csv(out / "scaling.csv", index=False)
    section.paragraphs.append(
        "Cost against work on log-log axes. Left: seconds per mini-batch step against the FLOPs of one step, as the "
        "batch size grows at the base width. Right: seconds per epoch against the FLOPs of one epoch, as the hidden "
        "width grows at the base batch size. A slope of 1 means cost grows in proportion to work; a flat stretch "
        "means fixed per-call overhead dominates. The dotted line is the machine's matrix-multiply roof. "
        "The table gives the median seconds per epoch at every point."
    )
    roofs = {label: roof_gflops(d) for label, d in inputs.sweeps}
    section.figure = plots.scaling(table, out / "scaling.png", palette, roofs)
    section.tables.append(_scaling_grid(table))
    section.csv.append("scaling.csv")
    return section


def _scaling_grid(table: pd.DataFrame) -> pd.DataFrame:
    """Return median epoch seconds (or the status), one row per file x kernel, one column per sweep point."""
    table = table.sort_values(["axis", "batch_size", "width"])
    point = [
        f"batch {b}" if a == "batch" else f"width {w}"
        for a, b, w in zip(table["axis"], table["batch_size"], table["width"])
    ]
    cell = [_num(v, ".3g") if status == "ok" else status for v, status in zip(table["median_epoch_s"], table["status"])]
    table = table.assign(point=point, cell=cell)
    grid = table.pivot_table(index=["label", "implementation"], columns="point", values="cell", aggfunc="first")
    grid = grid[list(dict.fromkeys(point))].rename_axis(columns=None).reset_index()
    return grid.rename(columns={"label": "file"})


def _benchmark_section(frame: pd.DataFrame, out: Path, palette: dict[str, str]) -> Section:
    frame = frame.sort_values(["label", "group", "median_s"], na_position="last")
    frame.to_csv(out / "benchmarks.csv", index=False)
    formats = {
        "label": ("file", ""),
        "machine": ("machine", ""),
        "group": ("group", ""),
        "implementation": ("implementation", ""),
        "rounds": ("rounds", "d"),
        "median_s": ("median s", ".4g"),
        "iqr_s": ("IQR s", ".2g"),
        "gflops": ("GFLOP/s", ".3g"),
        "status": ("status", ""),
    }
    return Section(
        "pytest-benchmark results",
        ["Medians of the pytest-benchmark files given, per benchmark group; whiskers show the interquartile range."],
        plots.benchmarks(frame, out / "benchmarks.png", palette),
        [_display(frame, formats, True)],
        ["benchmarks.csv"],
    )


def _counted(frame: pd.DataFrame) -> pd.Series:
    """Return a mask of the rows that hold instruction counts (from files made with --bench-measure instructions)."""
    if "instructions" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["instructions"].notna()


def _instructions_section(frame: pd.DataFrame, out: Path, palette: dict[str, str]) -> Section:
    """Return the instruction counts of the counted pytest-benchmark files, per benchmark group."""
    frame = frame.sort_values(["label", "group", "instructions"], na_position="last")
    columns = ["label", "machine", "group", "name", "implementation", "dtype", "batch_size", "status"]
    frame[[*columns, "instructions", "instructions_spread", "counted_calls"]].to_csv(
        out / "instructions.csv", index=False
    )
    formats = {
        "label": ("file", ""),
        "machine": ("machine", ""),
        "group": ("group", ""),
        "implementation": ("implementation", ""),
        "counted_calls": ("counted calls", "d"),
        "instructions": ("instructions per call", ",.0f"),
        "instructions_spread": ("spread of the calls", "%"),
        "status": ("status", ""),
    }
    return Section(
        "pytest-benchmark instruction counts",
        [
            "Instructions of one call of each measured function, counted under Valgrind (pytest --bench-measure "
            "instructions): the figure the suite records, the least of the counted calls (what moves a count "
            "only adds work), and how far apart the calls were ((max - min) / that figure). Start-up, imports, "
            "compilation and warm-up are not counted. The times of these files were taken under Valgrind, so "
            "they are not wall times and are not shown; timed files are in the section above.",
        ],
        plots.instructions(frame, out / "instructions.png", palette),
        [_display(frame, formats, True)],
        ["instructions.csv"],
    )


def write_report(paths: list[str | Path], out: str | Path, target: float = DEFAULT_TARGET) -> Path:
    """Write report.html, report.md, the PNGs and the CSVs into ``out``; return the HTML path."""
    inputs = load_inputs(paths)
    out = output_folder(out, "report")
    sections = build_sections(inputs, out, target)
    sources = [label for label, _ in inputs.runs + inputs.sweeps + inputs.pytest]
    (out / "report.md").write_text(render_markdown(sections, sources))
    page = out / "report.html"
    page.write_text(render_html(sections, sources))
    return page
