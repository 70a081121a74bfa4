"""Every results file kind, its schema and envelope; atomic writes and safe reads.

Kinds: ``backprop-bench run`` (:data:`RUN_KIND`), ``backprop-bench sweep``
(:data:`SWEEP_KIND`), ``backprop-bench goals`` (:data:`GOALS_KIND`), and
pytest-benchmark JSON (:data:`PYTEST_KIND`, recognised by its content: it has no
``kind`` field). :func:`kind_of` tells them apart; :func:`envelope` writes the
fields every file of ours starts with.

A run file is plain JSON (never pickle): ``schema``, ``kind``, ``created``,
``config``, ``machine``, ``roof`` (the large-GEMM GFLOP/s of this dtype and thread
setting), ``reference_check``, ``unavailable``, ``data_source``, ``n_train`` and
``implementations`` (one object per kernel); a resumed run adds ``resumed``. Writes go to a temporary file in the
same folder and are renamed over the target, so a killed process leaves either
the old file or the new one, never half of one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import tempfile
from pathlib import Path

from bench.errors import BenchError

SCHEMA = 1
RUN_KIND = "backprop-bench run"
SWEEP_KIND = "backprop-bench sweep"
GOALS_KIND = "backprop-bench goals"
PYTEST_KIND = "pytest-benchmark"
# Which list holds the entries of each of our kinds.
_ENTRIES = {RUN_KIND: "implementations", SWEEP_KIND: "points", GOALS_KIND: "settings"}


def now() -> str:
    """Return the current UTC time in ISO 8601, to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def envelope(kind: str, config: dict) -> dict:
    """Return the fields every results file of ``kind`` starts with; ``config`` is stored verbatim."""
    return {"schema": SCHEMA, "kind": kind, "created": now(), "config": config}


def json_safe(value):
    """Return value with non-finite floats replaced by None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _umask() -> int:
    """Return the process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, document: dict) -> None:
    """Write ``document`` as JSON to ``path`` through a temporary file and a rename."""
    path = Path(path)
    text = json.dumps(json_safe(document), indent=2, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a results file gets the usual mode.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: str | Path) -> Path:
    """Return ``path`` once its folder exists and accepts a file, or raise BenchError."""
    path = Path(path)
    if path.is_dir():
        raise BenchError(f"output path {path} is a folder; name a .json file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise BenchError(f"cannot write results to {path}: {exc.strerror or exc}") from None
    return path


def read_json(path: str | Path) -> dict:
    """Return the JSON object in ``path``, or raise BenchError naming the file."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BenchError(f"{path}: is a folder, not a results file") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path}: not valid JSON (truncated or corrupt?): {exc}") from None
    if not isinstance(document, dict):
        raise BenchError(f"{path}: not a results file (the JSON is not an object)")
    return document


def check_document(document: dict, path: str | Path, kind: str) -> dict:
    """Return ``document`` if it is a ``kind`` file of this schema with its list of entries, else raise BenchError."""
    entries = _ENTRIES[kind]
    if document.get("kind") != kind:
        raise BenchError(f"{path}: not a {kind} results file")
    if document.get("schema") != SCHEMA:
        raise BenchError(f"{path}: results schema {document.get('schema')!r} is not the supported {SCHEMA}")
    if not isinstance(document.get(entries), list):
        raise BenchError(f"{path}: results file has no {entries!r} list")
    return document


def kind_of(document: dict, path: str | Path = "<document>") -> str:
    """Return the kind of a parsed results document (one of the ``*_KIND`` names), or raise BenchError."""
    kind = document.get("kind")
    if kind in _ENTRIES:
        return check_document(document, path, kind)["kind"]
    if isinstance(document.get("benchmarks"), list) and isinstance(document.get("machine_info"), dict):
        return PYTEST_KIND
    raise BenchError(f"{path}: unknown kind of file (neither pytest-benchmark JSON nor a backprop-bench results file)")


def read_run(path: str | Path) -> dict:
    """Return a ``backprop-bench run`` results document, or raise BenchError naming the file."""
    return check_document(read_json(path), path, RUN_KIND)


def read_sweep(path: str | Path, document: dict | None = None) -> dict:
    """Return a sweep document (parsed from ``path`` unless given), or raise BenchError naming the file."""
    return check_document(read_json(path) if document is None else document, path, SWEEP_KIND)


def slug(text: str, fallback: str) -> str:
    """Return ``text`` as a file-name-safe word (letters, digits, '.', '_', '-'; at most 80), or ``fallback``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:80] or fallback
