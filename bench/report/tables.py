"""The report's tables as raw numbers: one row per implementation x file, never averaged across files.

Each function takes ``(label, document)`` pairs (label: the file name the report
shows) and returns a pandas DataFrame; the report writes each one as a CSV and
formats a copy for the page. Only kernels whose status is ``ok`` get a rank, a
time to accuracy or an efficiency.
"""

from __future__ import annotations

import math

import pandas as pd

from bench.results.frame import run_rows
from bench.results.summary import summary_rows

Labelled = list[tuple[str, dict]]


def _hostname(document: dict) -> str | None:
    return (document.get("machine") or {}).get("hostname")


def roof_gflops(document: dict) -> float | None:
    """Return the GEMM roof stored in a run or sweep document, or None for older files."""
    return (document.get("roof") or {}).get("gflops")


def summary_table(runs: Labelled) -> pd.DataFrame:
    """Return the summary rows of every run file, ok kernels ranked by median epoch time within their file."""
    frames = []
    for label, document in runs:
        rows = pd.DataFrame(summary_rows(document))
        rows.insert(0, "label", label)
        rows.insert(1, "machine", _hostname(document))
        # A kernel that ran another's code at this batch size (delegates_to) is shown, never ranked twice.
        ok = rows["median_epoch_s"].notna() & (rows["status"] == "ok") & rows["delegates_to"].isna()
        rows["rank"] = rows.loc[ok, "median_epoch_s"].rank(method="min").astype("Int64")
        frames.append(rows.sort_values(["rank", "implementation"], na_position="last"))
    return pd.concat(frames, ignore_index=True)


def epochs_table(runs: Labelled) -> pd.DataFrame:
    """Return one row per kernel x epoch: epoch seconds, cumulative seconds, test accuracy after it."""
    rows = []
    for label, document in runs:
        for entry in document["implementations"]:
            seconds, accuracies = entry.get("epoch_seconds") or [], entry.get("test_accuracy") or []
            total = 0.0
            for epoch, (s, a) in enumerate(zip(seconds, accuracies)):
                total += s
                row = {"label": label, "implementation": entry["name"], "status": entry.get("status"), "epoch": epoch}
                rows.append(row | {"epoch_seconds": s, "cumulative_seconds": total, "test_accuracy": a})
    columns = ["label", "implementation", "status", "epoch", "epoch_seconds", "cumulative_seconds", "test_accuracy"]
    return pd.DataFrame(rows, columns=columns)


def time_to_accuracy_table(runs: Labelled, target: float) -> pd.DataFrame:
    """Return training seconds (compile excluded and included) until test accuracy first reaches ``target``.

    Only the timed epochs count (evaluation is never timed), as in MLPerf's and
    DAWNBench's time-to-accuracy; kernels that are not ``ok`` are not ranked.
    """
    rows = []
    for label, document in runs:
        for entry in document["implementations"]:
            row = {"label": label, "implementation": entry["name"], "status": entry.get("status"), "target": target}
            row |= {"epochs": None, "seconds_excl_compile": None, "seconds_incl_compile": None}
            seconds, accuracies = entry.get("epoch_seconds") or [], entry.get("test_accuracy") or []
            hit = next((k for k, a in enumerate(accuracies) if a is not None and a >= target), None)
            if entry.get("status") != "ok":
                row["note"] = f"{entry.get('status')}: not ranked"
            elif hit is None:
                best = max((a for a in accuracies if a is not None), default=0.0)
                row["note"] = f"not reached in {len(accuracies)} epochs (best {100 * best:.2f}%)"
            else:
                compile_s = entry.get("compile_seconds") or 0.0
                row |= {"epochs": hit + 1, "seconds_excl_compile": sum(seconds[: hit + 1]), "note": ""}
                row["seconds_incl_compile"] = row["seconds_excl_compile"] + compile_s
            rows.append(row)
    table = pd.DataFrame(rows)
    table["rank"] = table.groupby("label")["seconds_excl_compile"].rank(method="min").astype("Int64")
    return table.sort_values(["label", "rank", "implementation"], na_position="last", ignore_index=True)


def efficiency_table(runs: Labelled) -> pd.DataFrame:
    """Return achieved GFLOP/s per ok kernel (FLOPs from bench.results.frame) and its fraction of its file's roof."""
    frames = []
    for label, document in runs:
        rows = pd.DataFrame(run_rows(document, label))
        rows = rows[(rows["status"] == "ok") & rows["gflops"].notna()]
        roof = roof_gflops(document)
        frames.append(
            pd.DataFrame(
                {
                    "label": label,
                    "machine": rows["machine"],
                    "implementation": rows["implementation"],
                    "dtype": rows["dtype"],
                    "gflop_per_epoch": rows["gflop"],
                    "median_epoch_s": rows["median_s"],
                    "gflops": rows["gflops"],
                    "roof_gflops": roof,
                    "fraction_of_roof": rows["gflops"] / roof if roof else None,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sort_values(["label", "gflops"], ascending=[True, False])


def scaling_table(sweeps: Labelled) -> pd.DataFrame:
    """Return one row per sweep point x kernel x axis it lies on, with cost and work per step and per epoch."""
    rows = []
    for label, document in sweeps:
        config, roof = document.get("config") or {}, roof_gflops(document)
        for point in document["points"]:
            steps = math.ceil(point["n_train"] / point["batch_size"])
            axes = [a for a, key in (("batch", "base_width"), ("width", "base_batch_size")) if _on(point, config, key)]
            for entry in point["implementations"]:
                times = sorted(entry.get("epoch_seconds") or [])
                ok = entry.get("status") == "ok" and times
                median = float(pd.Series(times).median()) if ok else None
                gflops = point["epoch_flops"] / median / 1e9 if median else None
                for axis in axes:
                    rows.append(
                        {
                            "label": label,
                            "machine": _hostname(document),
                            "implementation": entry["name"],
                            "status": entry.get("status"),
                            "axis": axis,
                            "batch_size": point["batch_size"],
                            "width": point["width"],
                            "n_train": point["n_train"],
                            "epoch_flops": point["epoch_flops"],
                            "median_epoch_s": median,
                            "steps_per_epoch": steps,
                            "flops_per_step": point["epoch_flops"] / steps,
                            "seconds_per_step": median / steps if median else None,
                            "gflops": gflops,
                            "fraction_of_roof": gflops / roof if gflops and roof else None,
                        }
                    )
    return pd.DataFrame(rows)


def _on(point: dict, config: dict, key: str) -> bool:
    """Return True when the point lies on the sweep line that holds ``key`` at its base value."""
    field_name = "width" if key == "base_width" else "batch_size"
    return point[field_name] == config.get(key)


def _blas(blas: list[dict]) -> str | None:
    text = "; ".join(f"{b.get('internal_api')} {b.get('version')}, {b.get('num_threads')} threads" for b in blas)
    return text or None


def _pytest_machine(document: dict) -> dict:
    info = document.get("machine_info") or {}
    extra = info.get("backprop_bench") or {}
    return {
        "hostname": info.get("node"),
        "cpu_model": info.get("cpu_model") or (info.get("cpu") or {}).get("brand_raw"),
        "logical_cores": (info.get("cpu") or {}).get("count"),
        "python": info.get("python_version"),
        **{k: v for k, v in extra.items() if isinstance(v, str | int | float)},
    }


def machines_table(runs: Labelled, sweeps: Labelled, pytest: Labelled) -> pd.DataFrame:
    """Return one column per machine (hostname, CPU) and one row per property; roofs listed per file."""
    columns: dict[tuple, dict] = {}
    documents = [(label, d, d.get("machine") or {}) for label, d in runs + sweeps]
    documents += [(label, d, _pytest_machine(d)) for label, d in pytest]
    for label, document, machine in documents:
        key = (machine.get("hostname"), machine.get("cpu_model"))
        column = columns.setdefault(key, {"files": [], "roof GFLOP/s": []})
        column["files"].append(label)
        if roof_gflops(document):
            roof = document["roof"]
            column["roof GFLOP/s"].append(f"{roof['gflops']:.1f} ({roof.get('dtype')}, {label})")
        versions = machine.get("versions") or {}
        blas = [b for b in machine.get("blas") or [] if b.get("user_api") == "blas"]
        numba = machine.get("numba") or {}
        threads = (document.get("config") or {}).get("threads")
        properties = {
            "hostname": machine.get("hostname"),
            "CPU model": machine.get("cpu_model"),
            "cores (logical / usable)": f"{machine.get('logical_cores')} / {machine.get('usable_cores', '?')}",
            "CPU flags": " ".join(machine.get("cpu_flags") or []) or None,
            "platform": machine.get("platform"),
            "Python": machine.get("python"),
            "NumPy / Numba": f"{versions.get('numpy', '?')} / {versions.get('numba', '?')}" if versions else None,
            "BLAS": _blas(blas),
            "Numba threads (layer)": f"{numba.get('num_threads')} ({numba.get('threading_layer')})" if numba else None,
            "thread limit of the run": "none" if threads is None else threads,
        }
        for name, value in properties.items():
            if value is not None and name not in column:
                column[name] = value
    table = {}
    for (hostname, cpu), column in columns.items():
        header = str(hostname) if sum(h == hostname for h, _ in columns) == 1 else f"{hostname} ({cpu})"
        table[header] = {k: "; ".join(map(str, v)) if isinstance(v, list) else v for k, v in column.items()}
    frame = pd.DataFrame(table)
    order = [name for name in frame.index if name not in ("files", "roof GFLOP/s")] + ["roof GFLOP/s", "files"]
    return frame.loc[order].rename_axis("property")
