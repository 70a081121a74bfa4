"""The documentation against the repository: what README.md and docs/*.md quote must be true of it.

- **No path of a development machine** in any text file of the repository: the files git
  tracks, plus the untracked ones it would add (so a new page is checked before its first
  commit). The rule: no absolute path into a home or scratch folder of some machine
  (``/work/``, ``/root/``, ``/home/NAME/``, ``/Users/NAME/``, ``/tmp/NAME``) and no
  virtual environment's interpreter named by an absolute path (``.../.venv/bin/python``).
  Such a path means nothing on another machine. Relative paths (``.venv/bin/activate`` in
  ``.ci/run``, a CI template's own ``.venv``) and system paths of installed packages
  (``/usr/share/...``) are fine. One exception, in JSON files only: the value of ``path``,
  which a benchmark results file records as a fact about the run (the temporary worktree it
  imported the kernels from, which ``compare --against`` checks). ``data_source`` is no
  exception: a run records it relative to its folder. This file is skipped: it spells the
  patterns out.
- **Every ``backprop-bench`` command quoted** in a ``console`` block parses with the real
  parser (a cheap but real check that every quoted subcommand and option exists), and every
  ``--bench-*`` option and ``BACKPROP_BENCH_*`` variable quoted exists in the code.
- **The quick start is what CI runs:** the README's quick-start block is a run of
  consecutive lines of ``.ci/run``.
- **The README's goals table** is the one ``bench.goals.goal_table`` makes from the committed
  reference goals file.
- **The README stays short** (at most 250 lines), its kernel file is ``examples/my_kernel.py``
  byte for byte, the kernels page has one table row per built-in kernel (the README names each and links to it), and
  every relative link in the README and docs/ points at a file (and heading) that exists.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

import implementations
from bench.cli import build_parser
from bench.goals import goal_table

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250
# The goals file whose table the README shows (bench.goals.goal_table).
GOALS_FILE = ROOT / "results" / "reference" / "goals.json"

# An absolute path into a home or scratch folder, or a venv interpreter by absolute path. The
# look-behind keeps URLs and relative paths out ("github.com/x/work/" is not "/work/").
MACHINE_PATH = re.compile(
    r"(?<![\w.~-])(?:/work/|/root/|/home/[A-Za-z_][\w.-]*/|/Users/[\w.-]+/|/tmp/[\w.-])"
    r"|/[\w./-]*\.venv[\w.-]*/bin/python"
)
# JSON keys whose values a run records as facts about itself (see the module docstring).
RECORDED_PATH_KEY = re.compile(r'^\s*"path":')


def repository_files() -> list[Path]:
    """Return the files git tracks or would add (untracked, not ignored) that exist, or skip without git."""
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot list the repository's files")
    paths = (ROOT / name for name in done.stdout.decode().split("\0") if name)
    return [p for p in paths if p.is_file() and p.resolve() != Path(__file__).resolve()]


def text_of(path: Path) -> str | None:
    """Return the file's text, or None for a binary file (a NUL byte in its first 8 KiB)."""
    data = path.read_bytes()
    return None if b"\0" in data[:8192] else data.decode("utf-8", errors="replace")


def test_no_path_of_a_development_machine_anywhere():
    found = []
    for path in repository_files():
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if path.suffix == ".json" and RECORDED_PATH_KEY.match(line):
                continue
            match = MACHINE_PATH.search(line)
            if match:
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)!r} in {line.strip()[:120]}")
    assert not found, "paths of a development machine:\n" + "\n".join(found)


def test_the_machine_path_rule_catches_what_it_should():
    for bad in ("cd /work/main", "PYTHON=/srv/x/.venv/bin/python", "/tmp/bb-aa", "/home/alice/x", "'/root/data'"):
        assert MACHINE_PATH.search(bad), bad
    for fine in (".venv/bin/activate", "source .venv/bin/python", "https://github.com/o/work/x", "/usr/share/data"):
        assert not MACHINE_PATH.search(fine), fine


# --- commands quoted in console blocks ------------------------------------------------------

CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```", re.M | re.S)
SEPARATORS = {"&&", "||", ";", "|"}


def console_lines(path: Path) -> list[str]:
    """Return the command lines of the file's ``console`` blocks, continuation lines joined."""
    lines = []
    for block in CONSOLE_BLOCK.findall(path.read_text()):
        lines += [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    return lines


def commands(line: str) -> list[list[str]]:
    """Return the argument lists of the ``backprop-bench`` commands on one shell line (after the program name)."""
    found, segment = [], []
    for token in [*shlex.split(line, comments=True), ";"]:
        if token not in SEPARATORS:
            segment.append(token)
            continue
        if "backprop-bench" in segment and not any(re.fullmatch(r"<[^>]+>", t) for t in segment):
            found.append(segment[segment.index("backprop-bench") + 1 :])
        segment = []
    return found


QUOTED = [
    pytest.param(argv, id=f"{path.relative_to(ROOT)}: backprop-bench {' '.join(argv)}"[:100])
    for path in PAGES
    for line in console_lines(path)
    for argv in commands(line)
]


@pytest.mark.parametrize("argv", QUOTED)
def test_a_quoted_command_parses(argv, capsys):
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # --help exits 0; an unknown option or bad value exits 2
        assert exc.code == 0, capsys.readouterr().err


def test_the_readme_quotes_the_main_commands():
    quoted = {argv[0] for line in console_lines(README) for argv in commands(line) if argv}
    assert {"run", "report", "compare", "check"} <= quoted, quoted


def test_quoted_benchmark_options_and_variables_exist():
    plugin = (ROOT / "bench" / "benchmarks" / "plugin.py").read_text()
    options = set(re.findall(r'addoption\(\s*"(--bench-[\w-]+)"', plugin))
    code = "".join(p.read_text() for p in [*(ROOT / "bench").rglob("*.py"), *(ROOT / ".ci").iterdir()])
    for path in PAGES:
        quoted = {o for line in console_lines(path) for o in re.findall(r"--bench-[\w-]+", line)}
        assert quoted <= options, f"{path.name}: unknown {sorted(quoted - options)}"
        for variable in set(re.findall(r"BACKPROP_BENCH_[A-Z_]+", path.read_text())):
            assert variable in code, f"{path.name}: {variable} is not used anywhere in bench/ or .ci/"


# --- the README -----------------------------------------------------------------------------


def test_the_quick_start_is_what_ci_runs():
    section = README.read_text().split("## Quick start", 1)[1]
    block = CONSOLE_BLOCK.search(section).group(1)
    quick = [line.strip() for line in block.splitlines() if line.strip()]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert len(quick) >= 2 and quick[0].startswith("pip install")
    runs = [i for i in range(len(ci)) if ci[i : i + len(quick)] == quick]
    assert runs, f".ci/run does not run the quick start verbatim: {quick}"


def test_the_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_the_readme_goals_table_is_made_from_the_reference_goals_file():
    document = json.loads(GOALS_FILE.read_text())
    assert goal_table(document) in README.read_text(), f"regenerate it: bench.goals.goal_table on {GOALS_FILE.name}"


def test_the_readme_kernel_file_is_the_example():
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.M | re.S)
    example = (ROOT / "examples" / "my_kernel.py").read_text()
    assert example in blocks, "README's kernel file differs from examples/my_kernel.py"


def test_every_builtin_kernel_is_in_the_kernels_table_and_named_in_the_readme():
    """The table is written once (the kernels page); the README names every kernel and links to it."""
    table = (ROOT / "docs" / "kernels-and-tolerances.md").read_text()
    missing = [row.name for row in implementations.BUILTIN if f"| `{row.name}` |" not in table]
    assert not missing, f"kernels-and-tolerances.md has no table row for {missing}"
    readme = README.read_text()
    assert not [row.name for row in implementations.BUILTIN if f"`{row.name}`" not in readme]
    assert "| `loop` |" not in readme and "docs/kernels-and-tolerances.md#the-kernels" in readme


def slug(heading: str) -> str:
    """Return GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_point_at_files_and_headings_that_exist(page):
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        name, _, anchor = target.partition("#")
        path = (page.parent / name).resolve() if name else page
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
            if anchor not in {slug(h) for h in headings}:
                broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"
