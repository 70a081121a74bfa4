"""Compile the kernels natively into Numba's on-disk cache before the suite runs under Valgrind.

Run by :func:`bench.benchmarks.instructions.relaunch` in a subprocess with the pinned
target (``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES``): pytest collects the session's own
arguments (no test runs) to learn which kernels and dtypes it selects, and each is
readied on the suite's own workload and called the way the benchmarks call it, so that the process
under Valgrind loads compiled code from the cache instead of compiling (50-100x slower
there). It also fills the reference-trajectory cache for the workload. Nothing here is
measured; a kernel that fails here fails again, with its message, in the suite.

    python -m bench.benchmarks.warm SPEC_JSON
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator

import pytest

import implementations
from bench.benchmarks.fixtures import GRADIENT_BATCHES, SEED, SIZES
from bench.benchmarks.instructions import COLLECTING_VARIABLE
from bench.results.schema import KernelResult
from bench.run.config import RunConfig
from bench.run.data import load_dataset
from bench.run.harness import get_ready
from bench.run.probe import make_workload


def warm(names: list[str], dtypes: list[str] | None, train_size: int, impls: list[str]) -> Iterator[str]:
    """Yield one line per kernel and dtype readied (or why not), once it is compiled for the suite's calls."""
    for spec in impls:
        names.append(implementations.resolve(spec))
    data = load_dataset("mnist")
    for dtype in dtypes or list(implementations.DTYPES):
        config = RunConfig(impls=[], sizes=SIZES, seed=SEED, dtype=dtype, train_limit=train_size, epochs=1)
        work = make_workload(config, data)
        for name in dict.fromkeys(names):
            impl = implementations.get(name)
            if dtype not in impl.dtypes:
                continue
            result = KernelResult(name=name, dtype=dtype)
            try:
                if get_ready(impl, work, config, result):
                    for batch in GRADIENT_BATCHES:
                        impl.gradients(work.params0, work.X[:batch], work.Y[:batch])
                    impl.predict(work.params0, work.X_test[:100])
                yield f"{name} {dtype}: compiled in {result.compile_seconds or 0:.1f} s"
            except Exception as exc:  # the suite reports it properly; here it only stays uncompiled
                yield f"{name} {dtype}: not warmed ({type(exc).__name__}: {exc})"


class _Selection:
    """A pytest plugin that records the (kernel, dtype) pairs a collection selects."""

    def __init__(self) -> None:
        self.pairs: dict[str, set[str]] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            params = getattr(getattr(item, "callspec", None), "params", {})
            if "impl_name" in params and not item.get_closest_marker("skip"):
                self.pairs.setdefault(params["impl_name"], set()).add(params["dtype"])


def selected(args: list[str]) -> dict[str, set[str]]:
    """Return {kernel: dtypes} that pytest ``args`` select in the suite, from a collection (nothing runs)."""
    selection = _Selection()
    os.environ[COLLECTING_VARIABLE] = "1"  # no second relaunch from this collection
    listing = io.StringIO()  # the list of tests is for no one: the run under Valgrind prints its own
    with contextlib.redirect_stdout(listing), contextlib.redirect_stderr(listing):
        status = pytest.main(
            ["--collect-only", "-qq", "-p", "no:codspeed", "-p", "no:cacheprovider", "-p", "no:warnings", *args],
            plugins=[selection],
        )
    if status not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        print(listing.getvalue()[-2000:], flush=True)
    return selection.pairs


def main() -> int:
    spec = json.loads(sys.argv[1])
    pairs = selected(list(spec["args"]))
    dtypes = sorted({d for ds in pairs.values() for d in ds})
    for line in warm(sorted(pairs), dtypes or None, int(spec["train_size"]), []):
        print(f"  warm-up (native): {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
