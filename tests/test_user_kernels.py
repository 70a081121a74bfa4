"""Kernels from outside the package: a file, an importable module, an entry point, a Nielsen-style class.

Each route is run through ``backprop-bench run`` once; the Nielsen adapter is checked
against the reference directly; the examples are run exactly as examples/README.md
shows them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import numpy as np
import pytest

import implementations
from implementations import BUILTIN, Registry
from implementations.core import init_params
from implementations.plugins import nielsen
from implementations.plugins.loader import GROUP
from implementations.plugins.validate import display_path
from tests.conftest import EXAMPLES, HONEST, ROOT, SMALL, params_equal, random_batch, run_cli


@pytest.fixture(autouse=True)
def own_registry(registry) -> Registry:
    """Every test here has a fresh registry (tests/conftest.py): what it resolves does not leak into others' runs."""
    return registry


def run_entries(capsys, tmp_path, *impls: str, args=SMALL) -> tuple[int, dict[str, dict]]:
    """Return (exit status, {name: entry}) of ``backprop-bench run`` over ``impls``."""
    out = tmp_path / "r.json"
    flags = [flag for impl in impls for flag in ("--impl", impl)]
    status, _, err = run_cli(capsys, "run", *args, *flags, "--out", str(out))
    assert "Traceback" not in err
    return status, {e["name"]: e for e in json.loads(out.read_text())["implementations"]}


def add_to_path(monkeypatch, folder: Path) -> None:
    """Make ``folder`` importable here and in the worker processes a run starts."""
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))


# --- the three routes in, each through run ------------------------------------------------


def test_a_kernel_file_in_a_temporary_folder_runs(tmp_path, capsys):
    kernel = tmp_path / "elsewhere" / "fast_kernel.py"
    kernel.parent.mkdir()
    source = (EXAMPLES / "my_kernel.py").read_text().replace('name = "my-kernel"\n', "")
    kernel.write_text(source)  # no `name`: the file's stem names it
    status, entries = run_entries(capsys, tmp_path, str(kernel), "vectorized")
    assert status == 0, entries
    assert entries["fast_kernel"]["status"] == "ok"
    assert entries["fast_kernel"]["test_accuracy"] == entries["vectorized"]["test_accuracy"]


def test_an_importable_module_runs(tmp_path, capsys, monkeypatch):
    package = tmp_path / "site" / "bbtest_pkg" / "kernels"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    shutil.copy(EXAMPLES / "my_kernel.py", package / "fast.py")
    add_to_path(monkeypatch, tmp_path / "site")
    assert implementations.resolve("bbtest_pkg.kernels.fast") == "my-kernel"
    status, entries = run_entries(capsys, tmp_path, "bbtest_pkg.kernels.fast")
    assert status == 0 and entries["my-kernel"]["status"] == "ok", entries


def install_entry_point(site: Path, name: str, value: str, module_source: str, dist: str = "bbtest-kernels") -> None:
    """Lay out an installed distribution in ``site``: a module and a dist-info naming it as an entry point."""
    module = value.split(":")[0]
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(module_source)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{name} = {value}\n")


def test_an_entry_point_kernel_is_available_and_runs(tmp_path, capsys, monkeypatch):
    install_entry_point(tmp_path / "site", "bbtest-ep", "bbtest_ep_kernel", (EXAMPLES / "my_kernel.py").read_text())
    add_to_path(monkeypatch, tmp_path / "site")
    assert "bbtest-ep" in implementations.registry.names()  # so a run with no --impl includes it
    assert implementations.get("bbtest-ep").source.startswith("entry point bbtest-ep = bbtest_ep_kernel")
    status, entries = run_entries(capsys, tmp_path, "bbtest-ep", "vectorized")
    assert status == 0, entries
    assert entries["bbtest-ep"]["test_accuracy"] == entries["vectorized"]["test_accuracy"]


def test_an_entry_point_may_name_a_nielsen_class(tmp_path, monkeypatch):
    source = (EXAMPLES / "network_matrix.py").read_text()
    install_entry_point(tmp_path / "site", "bbtest-net", "bbtest_net:Network", source)
    add_to_path(monkeypatch, tmp_path / "site")
    impl = implementations.get("bbtest-net")
    params = init_params([9, 7, 3], 1)
    X, Y = random_batch([9, 7, 3], 5, 2)
    reference = implementations.get("vectorized").gradients(params, X, Y)
    assert implementations.max_rel_error(impl.gradients(params, X, Y), reference) < 1e-12


def test_an_entry_point_taking_a_built_in_name_is_reported_not_loaded(tmp_path, monkeypatch):
    install_entry_point(tmp_path / "site", "loop", "bbtest_clash", (EXAMPLES / "my_kernel.py").read_text())
    add_to_path(monkeypatch, tmp_path / "site")
    assert implementations.get("loop").source == "implementations.kernels.loop"
    reason = implementations.registry.unavailable()["loop (bbtest_clash)"]
    assert "two kernels are named 'loop'" in reason and "bbtest_clash" in reason
    assert "implementations.kernels.loop (built in)" in reason


# --- Nielsen-style classes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "form"), [("book_network.py", nielsen.PER_EXAMPLE), ("book_network_matrix.py", nielsen.PER_BATCH)]
)
def test_nielsen_classes_pass_check_unmodified(capsys, file, form):
    status, out, err = run_cli(capsys, "check", str(HONEST / file), "--no-speed")
    assert status == 0, out + err
    assert out.strip().splitlines()[-1].startswith(f"PASS {Path(file).stem}: agrees with the float64 reference")
    assert f"per {form.removeprefix('per-')}:" in out.splitlines()[0]


def test_nielsen_classes_reach_the_accuracy_of_vectorized_at_every_epoch(tmp_path, capsys):
    files = [str(HONEST / "book_network.py"), str(HONEST / "book_network_matrix.py")]
    status, entries = run_entries(capsys, tmp_path, "vectorized", *files, args=[*SMALL[:2], "--epochs", "3"])
    assert status == 0, entries
    reference = entries["vectorized"]["test_accuracy"]
    assert len(reference) == 3
    for name in ("book_network", "book_network_matrix"):
        assert entries[name]["status"] == "ok" and entries[name]["test_accuracy"] == reference, entries[name]


def test_the_adapter_around_the_reference_reproduces_it_bit_for_bit():
    wrapped = implementations.get(implementations.resolve(f"nielsen:{HONEST / 'reference_network.py'}"))
    reference = implementations.get("vectorized")
    params = init_params([784, 30, 10], 1)
    X, Y = random_batch([784, 30, 10], 230, 3)
    # More batches than the adapter checks in full, so its fast path is covered too.
    for batch_size in (1, 7, 100):
        expected = reference.train_epoch(params, X, Y, batch_size, 3.0)
        assert params_equal(wrapped.train_epoch(params, X, Y, batch_size, 3.0), expected)


def test_the_form_comes_from_what_backprop_returns_not_from_names(tmp_path):
    # Per batch in everything but its name and docstring; the adapter must not be misled.
    source = (EXAMPLES / "network_matrix.py").read_text().replace("class Network", "class PerExampleNetwork")
    source = source.replace('"""Return (nabla_b', '"""Per example: x (784, 1). Return (nabla_b')
    (tmp_path / "misleading.py").write_text(source)
    impl = implementations.get(implementations.resolve(str(tmp_path / "misleading.py")))
    impl.warm_up([9, 7, 3], "float64")
    assert "per batch:" in impl.details()
    # Per example, and it cannot take two columns at all.
    strict = (
        (EXAMPLES / "network.py")
        .read_text()
        .replace("activation = x\n", 'activation = x\n        assert x.shape[1] == 1, "one example at a time"\n')
    )
    (tmp_path / "strict.py").write_text(strict)
    impl = implementations.get(implementations.resolve(str(tmp_path / "strict.py")))
    impl.warm_up([9, 7, 3], "float64")
    assert "per example:" in impl.details() and "raised AssertionError" in impl.details()


def test_a_file_with_several_classes_needs_the_class_named(tmp_path):
    source = (EXAMPLES / "network.py").read_text()
    source += "\n\nclass Other(Network):\n    name = 'other-net'\n"
    (tmp_path / "two.py").write_text(source)
    with pytest.raises(implementations.KernelLoadError, match=r"several classes .*nielsen:.*two.py:Network"):
        implementations.resolve(str(tmp_path / "two.py"))
    assert implementations.resolve(f"nielsen:{tmp_path / 'two.py'}:Network") == "two"
    assert implementations.resolve(f"nielsen:{tmp_path / 'two.py'}:Other") == "other-net"


def test_resolving_the_same_file_twice_loads_it_once():
    spec = str(HONEST / "book_network.py")
    name = implementations.resolve(spec)
    impl = implementations.get(name)
    assert implementations.resolve(spec) == name and implementations.get(spec) is impl
    assert implementations.resolve(os.path.relpath(spec)) == name


def test_a_module_path_of_a_built_in_resolves_to_the_built_in():
    assert implementations.resolve("implementations.kernels.loop") == "loop"


# --- the examples, exactly as examples/README.md shows them -------------------------------


def readme_commands() -> list[str]:
    """Return every backprop-bench command in examples/README.md's console blocks."""
    text = (EXAMPLES / "README.md").read_text()
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.startswith("backprop-bench ")]


def test_the_readme_shows_a_complete_kernel_under_30_lines():
    assert len((EXAMPLES / "my_kernel.py").read_text().splitlines()) < 30
    assert len(readme_commands()) == 3


@pytest.mark.parametrize(
    "command",
    # --quick still times an epoch of 6,000 images through the harness, the loop kernel included.
    [pytest.param(c, marks=pytest.mark.slow) if "--quick" in c else c for c in readme_commands()],
)
def test_the_examples_run_as_the_readme_shows(command, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    # The speed line times the kernel beside the built-ins; two of them keep this test short.
    monkeypatch.setattr(implementations, "registry", Registry(k for k in BUILTIN if k.name in ("loop", "vectorized")))
    args = shlex.split(command)[1:]
    if args[0] == "run":
        args += ["--out", str(tmp_path / "r.json")]
    status, out, err = run_cli(capsys, *args)
    assert status == 0, out + err
    assert "Traceback" not in err
    if args[0] == "check":
        assert re.search(r"^PASS network", out, flags=re.M)
    if "--quick" in args:
        assert re.search(r"s/epoch on 6000 MNIST images: \S+x the loop.*, \S+x vectorized", out), out


def test_the_minimal_kernel_is_the_reference_in_other_words():
    impl = implementations.get(implementations.resolve(str(EXAMPLES / "my_kernel.py")))
    params = init_params([9, 7, 5, 3], 4)
    X, Y = random_batch([9, 7, 5, 3], 11, 5)
    np.testing.assert_allclose(
        impl.gradients(params, X, Y).weights[0], implementations.get("vectorized").gradients(params, X, Y).weights[0]
    )


def test_user_frame_points_into_the_users_file_past_library_frames(tmp_path):
    kernel = tmp_path / "deep.py"
    kernel.write_text(
        textwrap.dedent(
            """\
            import numpy as np

            def gradients(params, X, Y):
                return np.linalg.inv(X)  # not square: numpy raises in its own Python code

            from implementations.core import predict
            """
        )
    )
    impl = implementations.get(implementations.resolve(str(kernel)))
    params = init_params([4, 3], 1)
    X, Y = random_batch([4, 3], 2, 1)
    with pytest.raises(ValueError) as caught:
        impl.gradients(params, X, Y)
    assert "numpy" in traceback.extract_tb(caught.value.__traceback__)[-1].filename
    assert implementations.user_frame(caught.value).startswith(f"{display_path(str(kernel))}:4, in gradients: return")


# --- the same three routes through sweep and the pytest-benchmark suite --------------------


# `run` takes all three routes in the fast tier; sweep and the suite resolve them the same way.
@pytest.fixture(
    params=["file", pytest.param("module", marks=pytest.mark.slow), pytest.param("entry-point", marks=pytest.mark.slow)]
)
def outside_kernel(request, tmp_path, monkeypatch) -> tuple[str | None, str]:
    """Return (spec to pass, or None for an installed entry point, which needs none; the kernel's name)."""
    source = (EXAMPLES / "my_kernel.py").read_text()
    if request.param == "file":
        kernel = tmp_path / "elsewhere" / "sweep_kernel.py"
        kernel.parent.mkdir()
        kernel.write_text(source.replace('name = "my-kernel"', 'name = "from-a-file"'))
        return str(kernel), "from-a-file"
    site = tmp_path / "site"
    if request.param == "module":
        (site / "bbtest_mod").mkdir(parents=True)
        (site / "bbtest_mod" / "__init__.py").write_text("")
        (site / "bbtest_mod" / "fast.py").write_text(source.replace('name = "my-kernel"', 'name = "from-a-module"'))
        add_to_path(monkeypatch, site)
        return "bbtest_mod.fast", "from-a-module"
    install_entry_point(site, "from-a-package", "bbtest_sweep_ep", source.replace('name = "my-kernel"', ""))
    add_to_path(monkeypatch, site)
    return None, "from-a-package"


def test_a_kernel_from_outside_runs_through_sweep(outside_kernel, tmp_path, capsys):
    spec, name = outside_kernel
    out = tmp_path / "sweep.json"
    impls = ["--impl", spec or name, "--impl", "vectorized"]
    grid = ["--batch-sizes", "10", "--widths", "30", "--base-batch-size", "10", "--train-limit", "200", "--epochs", "1"]
    status, _, err = run_cli(capsys, "sweep", *impls, *grid, "--out", str(out))
    assert status == 0, err
    entries = {e["name"]: e for p in json.loads(out.read_text())["points"] for e in p["implementations"]}
    assert entries[name]["status"] == "ok"
    assert entries[name]["test_accuracy"] == entries["vectorized"]["test_accuracy"]


@pytest.mark.slow
def test_a_kernel_from_outside_runs_through_the_benchmark_suite(outside_kernel, tmp_path):
    spec, name = outside_kernel
    report = tmp_path / "bench.json"
    args = ["--benchmark-only", "-k", f"test_epoch and {name}", f"--benchmark-json={report}", "-p", "no:cacheprovider"]
    args += ["--bench-epoch-rounds", "2", "--bench-dtype", "float64"] + (["--bench-impl", spec] if spec else [])
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "bench" / "benchmarks"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    benchmarks = json.loads(report.read_text())["benchmarks"]
    assert [b["name"] for b in benchmarks] == [f"test_epoch[{name}-float64]"]
    assert benchmarks[0]["extra_info"]["step_max_rel_error"] <= 1e-10  # parity-checked before it was timed
