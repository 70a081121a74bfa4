"""implementations/kernels/numba_cache.py: the Numba modules' on-disk cache sees an edit of any of them."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from implementations.kernels import numba_common, numba_sparse, simd
from implementations.kernels.numba_cache import NUMBA_MODULES, sources_stamp

KERNELS = Path(numba_sparse.__file__).resolve().parent


def test_every_module_here_with_numba_functions_is_in_the_group_and_joins_it_first():
    imports_numba = re.compile(r"^(from|import) numba\b", re.MULTILINE)
    uses_numba = {p.stem for p in KERNELS.glob("*.py") if imports_numba.search(p.read_text())} - {"numba_cache"}
    assert uses_numba == set(NUMBA_MODULES)
    for name in NUMBA_MODULES:
        source = (KERNELS / f"{name}.py").read_text()
        first_cached = re.search(r"^@\w+\(.*cache=True", source, re.MULTILINE)
        joins = source.find("\nimport implementations.kernels.numba_cache")
        assert 0 <= joins < (first_cached.start() if first_cached else len(source)), name


def test_the_kernels_cached_functions_carry_the_groups_stamp():
    group = sources_stamp(KERNELS, NUMBA_MODULES)
    for function in (numba_sparse._train_epoch, simd.scatter, numba_common.backprop):
        stamp = function._cache._impl.locator.get_source_stamp()
        assert stamp[1] == group


def test_the_stamp_changes_with_any_file_of_the_group_and_no_other(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.py").write_text(f"x = '{name}'\n")
    before = sources_stamp(tmp_path, ("a", "b"))
    (tmp_path / "c.py").write_text("x = 'changed'\n")
    assert sources_stamp.__wrapped__(tmp_path, ("a", "b")) == before
    (tmp_path / "b.py").write_text("x = 'changed'\n")
    assert sources_stamp.__wrapped__(tmp_path, ("a", "b")) != before


RUN = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
if {share}:
    from implementations.kernels.numba_cache import share_stamp
    share_stamp(Path({root!r}) / "pkg", ("helper", "user"))
from pkg.user import g
print(g())
"""


def _package(root: Path) -> None:
    """Write pkg: helper.f returns 1; user.g, cached, returns helper.f(), also cached."""
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "helper.py").write_text("from numba import njit\n\n@njit(cache=True)\ndef f():\n    return 1\n")
    user = "from numba import njit\nfrom pkg.helper import f\n\n@njit(cache=True)\ndef g():\n    return f()\n"
    (root / "pkg" / "user.py").write_text(user)


def _g(root: Path, share: bool) -> str:
    code = textwrap.dedent(RUN.format(root=str(root), share=share))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_an_edit_of_a_callees_module_alone_reaches_its_cached_callers(tmp_path):
    """Numba alone keeps the old callee in the caller's cache (the control); under a shared stamp it does not."""
    for share in (False, True):
        root = tmp_path / f"share-{share}"
        root.mkdir()
        _package(root)
        assert _g(root, share) == "1"  # compiled, and cached
        helper = root / "pkg" / "helper.py"
        helper.write_text(helper.read_text().replace("return 1", "return 22"))
        assert _g(root, share) == ("22" if share else "1")


def test_without_numbas_list_of_locators_nothing_changes_and_nothing_fails(tmp_path, monkeypatch):
    from implementations.kernels import numba_cache

    before = list(numba_cache._locator_list())
    monkeypatch.setattr(numba_cache, "_locator_list", lambda: None)
    numba_cache.share_stamp(tmp_path, ("a",))
    monkeypatch.undo()
    assert numba_cache._locator_list() == before
    numba_cache._groups.pop(tmp_path.resolve())
    numba_cache._shared.pop(tmp_path.resolve() / "a.py")
