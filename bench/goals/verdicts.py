"""The goals' arithmetic: a goals document's rows, figures per run, and a verdict per cell from every run.

A cell is one goal in one setting (threads, dtype; batch size where the goal has
several). Each run gives the cell a figure; the cell is ``met`` when every run meets
the target, ``not met`` when none does, and ``unstable`` when the runs disagree (a run
without a figure counts as missing the target). An unstable cell is never counted as met.

A file written before files held several runs (no ``run`` in its settings, one roof per
setting, no ``targets``) reads as one run held to the goals of its time, :data:`LEGACY_TARGETS`.
"""

from __future__ import annotations

import statistics

from bench.flops import epoch_flops, sparse_epoch_flops
from bench.goals.session import BATCH_SIZES, NUMBA, PEERS, SIZES, TARGETS

# The goals before batch 10 was held to the roof: what a file without ``targets`` was measured against.
LEGACY_TARGETS = {key: value for key, value in TARGETS.items() if key != "roof_batch10"}
# Which entry of the targets each (goal, batch size) is held to; None: any batch size.
_TARGET = {
    (1, 100): "roof",
    (1, 10): "roof_batch10",
    (2, None): "vs_peer",
    (3, None): "per_example",
    (4, None): "cache_s",
    (5, None): "numba_roof",
    (6, None): "two_threads",
}
_VERDICT = {
    1: "fastest {kernel} at {value:.2f}x roof",
    2: "{kernel} {value:.2f}x best peer",
    3: "{kernel} {value:.1f}x faster than loop at batch 1",
    4: "warm-up from cache {value:.2f} s{parts}",
    5: "numba at {value:.2f}x roof",
    6: "{kernel} takes {value:.2f}x its one-core time",
}
# The rows of goal_table: (goal, batch size, what, target key).
_GOAL_ROWS = (
    (1, 100, "fastest exact kernel / dense roof, batch 100", "roof"),
    (1, 10, "fastest exact kernel / dense roof, batch 10", "roof_batch10"),
    (2, 100, "best Numba kernel / best peer, batch 100", "vs_peer"),
    (2, 10, "best Numba kernel / best peer, batch 10", "vs_peer"),
    (3, None, "batch-1 SGD speed-up over loop", "per_example"),
    (5, None, "dense numba / roof, one core", "numba_roof"),
    (6, None, "fastest kernel, two threads / its one core", "two_threads"),
)
_MARK = {"met": "", "not met": " ✗", "unstable": " unstable"}


def targets(document: dict) -> dict:
    """Return the targets the document was measured against."""
    return document.get("targets") or LEGACY_TARGETS


def runs(document: dict) -> list[dict]:
    """Return one view per run: ``settings``, ``density``, ``datasets``, ``cache_warm_up(_seconds)``, ``n_train``."""
    numbers = sorted({s["run"] for s in document["settings"] if "run" in s})
    if not numbers:
        return [document]
    views = []
    for i, number in enumerate(numbers):
        view = {"run": number, "n_train": document.get("n_train", 60_000)}
        for key in ("settings", "density", "datasets"):
            view[key] = [item for item in document.get(key, []) if item.get("run") == number]
        warm = document.get("cache_warm_up", [])
        view["cache_warm_up"] = warm[i] if i < len(warm) else {}
        view["cache_warm_up_seconds"] = view["cache_warm_up"].get("total")
        views.append(view)
    return views


def _median(entry: dict) -> float | None:
    return statistics.median(entry["seconds"]) if entry.get("seconds") else None


def roof_epochs(setting: dict, batch_size: int, n_train: int) -> list[float]:
    """Return the dense roof's epoch seconds at ``batch_size``: one per round, measured in that round.

    A file with one roof per setting gives one value (its ``roof_epoch_seconds``, a batch-100 epoch, scaled).
    """
    flops = epoch_flops(SIZES, n_train, batch_size)
    for group in setting.get("rounds", []):
        if group["batch_size"] == batch_size:
            return [flops / 1e9 / gflops for gflops in group["roof_gflops"]]
    return [setting["roof_epoch_seconds"] * flops / epoch_flops(SIZES, n_train, 100)]


def roof_multiple(seconds: list[float], roofs: list[float]) -> float:
    """Return the median over rounds of epoch / roof epoch, each pair from the same round (one roof: all rounds)."""
    if len(roofs) == 1:
        return statistics.median(seconds) / roofs[0]
    return statistics.median(s / r for s, r in zip(seconds, roofs, strict=False))


def table_rows(run: dict) -> list[dict]:
    """Return one row per (setting, kernel, batch size) of one run: median ms, roof multiple, GFLOP/s, vs best peer.

    ``gflops`` is dense-equivalent; ``actual_gflops`` counts the multiply-adds a sparse-input
    kernel really does. ``roof_multiple`` pairs each epoch with the roof of its round.
    """
    rows = []
    n_train = run.get("n_train", 60_000)
    for setting in run["settings"]:
        for batch_size in BATCH_SIZES:
            entries = [e for e in setting["epochs"] if e["batch_size"] == batch_size]
            peers = [m for e in entries if e["name"] in PEERS and (m := _median(e)) is not None]
            best_peer = min(peers) if peers else None
            dense = epoch_flops(SIZES, n_train, batch_size)
            roofs = roof_epochs(setting, batch_size, n_train)
            for entry in entries:
                median = _median(entry)
                density = entry.get("input_density") if entry.get("sparse_input") else None
                actual = dense if density is None else sparse_epoch_flops(SIZES, n_train, batch_size, density)
                timed = median is not None
                rows.append(
                    {
                        "run": setting.get("run", 1),
                        "kernel": entry["name"],
                        "dtype": setting["dtype"],
                        "threads": setting["threads"],
                        "batch_size": batch_size,
                        "sparse_input": bool(entry.get("sparse_input")),
                        "median_epoch_ms": 1e3 * median if timed else None,
                        "spread_ms": 1e3 * (max(entry["seconds"]) - min(entry["seconds"])) if timed else None,
                        "roof_multiple": roof_multiple(entry["seconds"], roofs) if timed else None,
                        "gflops": dense / median / 1e9 if timed else None,
                        "actual_gflops": actual / median / 1e9 if timed else None,
                        "vs_best_peer": median / best_peer if timed and best_peer is not None else None,
                        "status": entry["status"],
                    }
                )
    return rows


def paired_one_core(setting: dict, kernel: str) -> float | None:
    """Return the median over rounds of kernel's batch-100 epoch in ``setting`` over its one-core epoch of the same
    round (``one_core``, timed beside it), or None where the setting has no such pairs."""
    many = next((e for e in setting["epochs"] if (e["name"], e["batch_size"]) == (kernel, 100)), None)
    one = next((e for e in setting.get("one_core", []) if (e["name"], e["batch_size"]) == (kernel, 100)), None)
    if not (many and one and many["seconds"] and len(many["seconds"]) == len(one["seconds"])):
        return None
    return statistics.median(a / b for a, b in zip(many["seconds"], one["seconds"], strict=True))


def _fastest(rows: list[dict], batch_size: int, names: tuple[str, ...] | None = None) -> dict | None:
    timed = [r for r in rows if r["batch_size"] == batch_size and r["median_epoch_ms"] is not None]
    timed = [r for r in timed if names is None or r["kernel"] in names]
    return min(timed, key=lambda r: r["median_epoch_ms"], default=None)


def goal_figures(run: dict, held_to: dict = TARGETS) -> list[dict]:
    """Return one figure per goal and setting of one run: goal, threads, dtype, batch_size, kernel, value, unit, met.

    ``threads`` and ``dtype`` are None for goal 4 (measured once per run); ``batch_size`` is
    set for goals 1 and 2. ``value`` is a multiple ("x") or seconds ("s"). Goals whose target
    is not in ``held_to`` are left out.
    """
    figures, rows = [], table_rows(run)

    def add(goal: int, setting: tuple, kernel: str | None, value: float, unit: str, batch_size=None) -> None:
        key = _TARGET.get((goal, batch_size)) or _TARGET[(goal, None)]
        if key not in held_to:
            return
        met = value >= held_to[key] if goal == 3 else value <= held_to[key]
        figures.append(
            {"goal": goal, "threads": setting[0], "dtype": setting[1], "batch_size": batch_size, "kernel": kernel,
             "value": value, "unit": unit, "met": met}
        )  # fmt: skip

    for setting in run["settings"]:
        key = (setting["threads"], setting["dtype"])
        mine = [r for r in rows if (r["threads"], r["dtype"]) == key]
        for batch_size in BATCH_SIZES:
            if fastest := _fastest(mine, batch_size):
                add(1, key, fastest["kernel"], fastest["roof_multiple"], "x", batch_size)
        for batch_size in BATCH_SIZES:
            best = _fastest(mine, batch_size, NUMBA)
            if best and best["vs_best_peer"] is not None:
                add(2, key, best["kernel"], best["vs_best_peer"], "x", batch_size)
        per_example = {name: _median(entry) for name, entry in setting["per_example"].items()}
        loop = per_example.pop("loop", None)
        timed = [(seconds, name) for name, seconds in per_example.items() if seconds]
        if loop and timed:
            seconds, name = min(timed)
            add(3, key, name, loop / seconds, "x")
        numba = _fastest(mine, 100, ("numba",))
        if key[0] == 1 and numba:
            add(5, key, "numba", numba["roof_multiple"], "x")
        fastest = _fastest(mine, 100)
        one_core = [r for r in rows if (r["threads"], r["dtype"], r["batch_size"]) == (1, key[1], 100)]
        if key[0] == 2 and fastest:
            beside = paired_one_core(setting, fastest["kernel"])
            alone = next((r for r in one_core if r["kernel"] == fastest["kernel"]), None)
            if beside is not None:
                add(6, key, fastest["kernel"], beside, "x")
            elif alone and alone["median_epoch_ms"]:  # a file without one-core epochs in the rounds
                add(6, key, fastest["kernel"], fastest["median_epoch_ms"] / alone["median_epoch_ms"], "x")
    if run.get("cache_warm_up_seconds") is not None:
        add(4, (None, None), None, run["cache_warm_up_seconds"], "s")
    return figures


def _verdict(figures: list[dict | None]) -> str:
    met = [f is not None and f["met"] for f in figures]
    return "met" if all(met) else "not met" if not any(met) else "unstable"


def cells(document: dict) -> list[dict]:
    """Return one cell per goal and setting: goal, threads, dtype, batch_size, ``figures`` (per run, or None), verdict.

    ``verdict`` is ``met`` (every run met it), ``not met`` (none did) or ``unstable``.
    """
    held_to, views = targets(document), runs(document)
    per_run = [{_key(f): f for f in goal_figures(view, held_to)} for view in views]
    keys = list(dict.fromkeys(key for figures in per_run for key in figures))
    out = []
    for key in keys:
        figures = [figures.get(key) for figures in per_run]
        out.append(dict(zip(("goal", "threads", "dtype", "batch_size"), key, strict=True)))
        out[-1].update({"figures": figures, "verdict": _verdict(figures)})
    return out


def _key(figure: dict) -> tuple:
    return figure["goal"], figure["threads"], figure["dtype"], figure["batch_size"]


def _figure_text(figure: dict | None, parts: str = "") -> str:
    return "not measured" if figure is None else _VERDICT[figure["goal"]].format(**figure, parts=parts)


def verdicts(document: dict) -> list[str]:
    """Return one line per goal and setting saying met, NOT met or UNSTABLE, with every run's figure."""
    lines, views = [], runs(document)
    for cell in cells(document):
        if cell["goal"] == 4:
            where = ""
            texts = [_figure_text(f, _warm_parts(view)) for f, view in zip(cell["figures"], views, strict=True)]
        else:
            batch = f" batch {cell['batch_size']}" if cell["batch_size"] else ""
            where = f" threads={cell['threads']} {cell['dtype']}{batch}"
            texts = [_figure_text(f) for f in cell["figures"]]
        shown = texts[0] if len(texts) == 1 else "; ".join(f"run {i} {t}" for i, t in enumerate(texts, 1))
        label = {"met": "(met)", "not met": "(NOT met)", "unstable": "(UNSTABLE: the runs disagree)"}[cell["verdict"]]
        lines.append(f"goal {cell['goal']}{where}: {shown} {label}")
    for view in views:
        prefix = f"run {view['run']} " if len(views) > 1 else ""
        lines += [prefix + line for line in density_lines(view) + dataset_lines(view)]
    return lines


def _warm_parts(view: dict) -> str:
    own = [f"{name} {seconds:.2f}" for name, seconds in view.get("cache_warm_up", {}).items() if name != "total"]
    return f" ({', '.join(own)})" if own else ""


def _cell_text(cell: dict | None, digits: int, unit: str = "x") -> str:
    if cell is None:
        return "-"
    figures = cell["figures"]
    kernels = {f["kernel"] for f in figures if f is not None}
    shown = []
    for f in figures:
        value = "-" if f is None else f"{f['value']:.{digits}f}{'x' if unit == 'x' else ' s'}"
        shown.append(value if len(kernels) <= 1 or f is None or f["kernel"] is None else f"{f['kernel']} {value}")
    head = f"{kernels.pop()} " if len(kernels) == 1 and None not in kernels else ""
    return head + ", ".join(shown) + _MARK[cell["verdict"]]


def _number(target: float) -> str:
    return f"{target:g}" if target >= 10 else f"{target:.1f}"


def goal_table(document: dict) -> str:
    """Return the goals as a Markdown table: a row per goal, a column per setting; each cell every run's figure.

    A cell is marked ✗ when no run met the goal and "unstable" when the runs disagree.
    """
    held_to, found = targets(document), {_key(c): c for c in cells(document)}
    settings = list(dict.fromkeys((s["threads"], s["dtype"]) for s in document["settings"]))
    head = ["goal", "target", *(f"{t} thread{'s' * (t > 1)}, {d}" for t, d in settings)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for goal, batch_size, what, key in _GOAL_ROWS:
        if key not in held_to:
            continue
        sign = ">=" if goal == 3 else "<="
        cells_ = [_cell_text(found.get((goal, t, d, batch_size)), 1 if goal == 3 else 2) for t, d in settings]
        lines.append(f"| {goal}. {what} | {sign} {_number(held_to[key])}x | " + " | ".join(cells_) + " |")
    warm = _cell_text(found.get((4, None, None, None)), 2, "s")
    target = f"<= {_number(held_to['cache_s'])} s"
    lines.append(f"| 4. warm-up from the Numba cache | {target} | {warm} |" + " |" * (len(settings) - 1))
    return "\n".join(lines) + "\n"


def density_lines(run: dict) -> list[str]:
    """Return one line per dtype: numba-sparse's time over numba's at each zero fraction, and where dense wins."""
    lines = []
    for dtype in dict.fromkeys(p["dtype"] for p in run.get("density", [])):
        ratios = []
        for point in (p for p in run["density"] if p["dtype"] == dtype):
            dense, sparse = _median(point["epochs"].get("numba", {})), _median(point["epochs"].get("numba-sparse", {}))
            if dense and sparse:
                ratios.append((point["zero_fraction"], sparse / dense))
        if ratios:
            shown = ", ".join(f"{100 * z:.0f}% zeros {r:.2f}x" for z, r in ratios)
            dense_wins = [z for z, r in ratios if r >= 1.0]
            where = (
                f"dense wins up to {100 * max(dense_wins):.0f}% zeros" if dense_wins else "sparse wins at every density"
            )
            lines.append(f"density {dtype}: numba-sparse / numba at batch 100: {shown}; {where}")
    return lines


def dataset_lines(run: dict) -> list[str]:
    """Return one line per real data set and dtype: its zero share and numba-sparse's time over numba's."""
    lines = []
    for point in run.get("datasets", []):
        label = f"{point['dataset']} {point['dtype']}"
        if point.get("skipped"):
            lines.append(f"{label}: not measured: {point['skipped']}")
            continue
        dense, sparse = _median(point["epochs"].get("numba", {})), _median(point["epochs"].get("numba-sparse", {}))
        if dense and sparse:
            winner = "sparse wins" if sparse < dense else "dense wins"
            lines.append(
                f"{label}: {100 * point['zero_fraction']:.0f}% zeros, numba-sparse / numba at batch 100 "
                f"{sparse / dense:.2f}x ({winner})"
            )
    return lines
