"""Pages of tables and plots, rendered twice: self-contained HTML and Markdown (``report`` and ``history``).

The HTML page fetches nothing: plots are embedded as PNG data URIs, a Content
Security Policy forbids scripts and every other source, and every string (a title,
a paragraph, a table cell, most of them taken from results files) is HTML-escaped.
The Markdown page links the PNG and CSV files written beside it.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.errors import BenchError


@dataclass
class Section:
    """One part of the page: a title, plain-text paragraphs, at most one figure, tables, CSV files."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    figure: Path | None = None
    tables: list[pd.DataFrame] = field(default_factory=list)
    csv: list[str] = field(default_factory=list)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:0.3em 0.6em;
text-align:left}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}.note{color:#555;font-size:0.9em}"""


def render_html(sections: list[Section], sources: list[str], title: str = "backprop-bench report") -> str:
    """Return the self-contained HTML page; every string from the results is escaped."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # No script, no fetch: images come only from data URIs.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">",
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="note">From {len(sources)} results file(s): {e(", ".join(sources))}</p>',
    ]
    for section in sections:
        parts.append(f"<section><h2>{e(section.title)}</h2>")
        parts += [f"<p>{e(p)}</p>" for p in section.paragraphs if p]
        if section.figure is not None:
            data = base64.b64encode(section.figure.read_bytes()).decode("ascii")
            parts.append(f'<p><img alt="{e(section.title)}" src="data:image/png;base64,{data}"></p>')
        for table in section.tables:
            parts.append(table.to_html(index=False, escape=True, na_rep="-", border=0))
        if section.csv:
            links = ", ".join(f'<a href="{e(name)}">{e(name)}</a>' for name in section.csv)
            parts.append(f'<p class="note">Raw numbers: {links}</p>')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _md(value) -> str:
    """Return ``value`` as Markdown text that renders literally (no HTML, no table breaks)."""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: pd.DataFrame) -> str:
    """Return ``table`` as a GitHub-flavoured Markdown table, every cell escaped."""
    lines = ["| " + " | ".join(_md(c) for c in table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join("-" if v is None else _md(v) for v in row) + " |")
    return "\n".join(lines)


def render_markdown(sections: list[Section], sources: list[str], title: str = "backprop-bench report") -> str:
    """Return the page as Markdown, linking the PNG and CSV files beside it."""
    parts = [f"# {_md(title)}", "", f"From {len(sources)} results file(s): {_md(', '.join(sources))}", ""]
    for section in sections:
        parts += [f"## {_md(section.title)}", ""]
        for paragraph in filter(None, section.paragraphs):
            parts += [_md(paragraph), ""]
        if section.figure is not None:
            parts += [f"![{_md(section.title)}]({section.figure.name})", ""]
        for table in section.tables:
            parts += [markdown_table(table), ""]
        if section.csv:
            parts += ["Raw numbers: " + ", ".join(f"[{name}]({name})" for name in section.csv), ""]
    return "\n".join(parts)


def output_folder(out: str | Path, what: str) -> Path:
    """Return ``out`` as a folder ready for a page's files, or raise BenchError naming it (``what``: "report")."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BenchError(f"{out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"{out}: cannot create the {what} folder: {exc.strerror or exc}") from None
    return out
