"""The instruction-count measure of the suite: the same benchmarks, counted under Valgrind's callgrind.

``pytest --benchmark-only --bench-measure instructions`` starts pytest again under
``valgrind --tool=callgrind --instr-atstart=no`` (:func:`relaunch`), with the settings below
that make counts repeat. Inside, instrumentation is off: start-up, imports, the parity
probe, warm-up and the reference's trajectory run uninstrumented. Each counted call is
bracketed by Valgrind client requests (pytest-codspeed's C hooks): zero the counters,
start instrumentation, the call, stop, dump the counts under a label
(:class:`Counter`); the dump's total is the instructions of that one call. Every
benchmark counts ``COUNT_ROUNDS`` calls after ``COUNT_WARM_UP`` uncounted ones and records
their minimum, beside pytest-benchmark's times of the same calls (which, taken under
Valgrind, are not wall times: `compare` refuses them as times). The minimum, because what
moves a count between calls only ever adds work (a first call's lazy set-up, the
allocator growing an arena): measured, numba-sparse's gradients at batch 10 counted
1,564,605, 1,542,851 and 1,538,919 after one warm-up call, torch's 1,253,239, 1,245,678 and
1,242,016.

Before Valgrind starts, the Numba kernels are compiled natively for the same pinned
target (:data:`NUMBA_TARGET`) by :mod:`bench.benchmarks.warm`, so that they load from
Numba's on-disk cache inside Valgrind, where compiling is 50-100x slower. Valgrind does
not run AVX-512 code, so the pinned target is AVX2 (haswell) on every machine, and
OpenBLAS is pinned to its Haswell kernels: counts from different machines of the same
software are then of the same code.
"""

from __future__ import annotations

import gc
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MEASURES = ("time", "instructions")
# Counted calls per benchmark, after COUNT_WARM_UP uncounted ones: the minimum is the figure.
COUNT_ROUNDS = 3
COUNT_WARM_UP = 2
# Set in the process that runs under Valgrind: the folder callgrind dumps its counts into.
COUNTING_VARIABLE = "BACKPROP_BENCH_CALLGRIND_DIR"
# Set in the native collection that finds the kernels to warm up: it must not relaunch either.
COLLECTING_VARIABLE = "BACKPROP_BENCH_COLLECTING"
INSTALL_HINT = "install Valgrind (Debian/Ubuntu: sudo apt-get install -y valgrind; macOS: not supported)"
# The code Numba compiles, pinned for the native warm-up and the run under Valgrind alike:
# Numba's cache is keyed on the CPU name and features, and Valgrind reports its own CPU.
NUMBA_TARGET = {
    "NUMBA_CPU_NAME": "haswell",
    "NUMBA_CPU_FEATURES": "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+fma,+fxsr,+lzcnt,+mmx,+movbe,"
    "+popcnt,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave",
}
# What else moves counts: threads (one for every framework), string hashing, BLAS's kernel choice.
DETERMINISTIC_ENV = {
    **NUMBA_TARGET,
    "PYTHONHASHSEED": "0",
    "OPENBLAS_CORETYPE": "Haswell",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    # pytest-codspeed's hooks refuse to load without it; its pytest plugin is turned off (-p no:codspeed).
    "CODSPEED_ENV": "backprop-bench",
}
VALGRIND_OPTIONS = ("--tool=callgrind", "--instr-atstart=no", "--dump-instr=no", "--compress-strings=no")
# Built-in kernels whose counts are not taken, and why (measured: docs/benchmarks-and-regressions.md).
EXCLUDED = {
    "torch-compile": "inductor's generated code computes wrong results under Valgrind (parity probe: update "
    "error 1.8e+49); its code also depends on the host it compiled for",
    "jax": "counts do not repeat: XLA dispatches to its own threads, and three counted calls of one process "
    "differed by up to 3.5%",
}


# Set to count the excluded kernels too: how their exclusion was measured (never for a gate).
COUNT_EXCLUDED_VARIABLE = "BACKPROP_BENCH_COUNT_EXCLUDED"


def excluded() -> dict[str, str]:
    """Return {kernel: why} for the kernels the instruction measure leaves out (none when told to count them)."""
    return {} if os.environ.get(COUNT_EXCLUDED_VARIABLE) else dict(EXCLUDED)


class MeasureError(Exception):
    """The instruction measure cannot run here (no Valgrind, no hooks): one line for the user."""


def counting() -> bool:
    """Return True in the pytest process that runs under Valgrind to count (or collects for its warm-up)."""
    return bool(os.environ.get(COUNTING_VARIABLE) or os.environ.get(COLLECTING_VARIABLE))


def valgrind_version(valgrind: str) -> str:
    """Return ``valgrind --version``'s line, e.g. 'valgrind-3.19.0'."""
    done = subprocess.run([valgrind, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or done.stderr.strip()


def find_valgrind() -> str:
    """Return the path of valgrind, or raise MeasureError saying how to install it."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise MeasureError(f"--bench-measure instructions needs Valgrind, which is not on PATH: {INSTALL_HINT}")
    try:
        import pytest_codspeed.instruments.hooks  # noqa: F401  (its C hooks emit the client requests)
    except ImportError:
        raise MeasureError("--bench-measure instructions needs pytest-codspeed: pip install pytest-codspeed") from None
    return valgrind


def relaunch(args: list[str], cwd: Path, kernels_warm: Callable[[dict[str, str]], None]) -> int:
    """Return the exit status of this pytest command run again under callgrind, after the native Numba warm-up.

    ``args`` are pytest's own arguments; ``kernels_warm(env)`` compiles the kernels natively
    into Numba's cache under ``env``. Callgrind's dumps go to a temporary folder, removed after.
    """
    valgrind = find_valgrind()
    env = {**os.environ, **DETERMINISTIC_ENV}
    start = time.perf_counter()
    kernels_warm(env)
    warm_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="backprop-bench-callgrind-") as folder:
        env[COUNTING_VARIABLE] = folder
        env["BACKPROP_BENCH_NATIVE_WARM_S"] = f"{warm_s:.3f}"
        env["BACKPROP_BENCH_VALGRIND"] = valgrind_version(valgrind)
        command = [
            valgrind,
            *VALGRIND_OPTIONS,
            "--log-file=" + str(Path(folder) / "valgrind.%p.log"),
            f"--callgrind-out-file={Path(folder) / 'callgrind.%p.out'}",
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:codspeed",
            *args,
        ]
        print(f"backprop-bench: counting instructions under Valgrind: {shlex.join(command[:5])} ... pytest", flush=True)
        status = subprocess.run(command, cwd=cwd, env=env, check=False).returncode
        if status not in (0, 1, 2, 3, 4, 5):
            logs = sorted(Path(folder).glob("valgrind.*.log"))
            tail = logs[-1].read_text(errors="replace").strip().splitlines()[-1:] if logs else []
            print(f"backprop-bench: pytest under Valgrind ended with status {status}: {' '.join(tail)}", flush=True)
        return status


class Counter:
    """Counts the instructions of single calls, in a process running under callgrind (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        from pytest_codspeed.instruments.hooks import InstrumentHooks

        self.folder = folder
        self.hooks = InstrumentHooks()
        self.serial = 0
        if not self.hooks.is_instrumented():
            raise MeasureError("counting was asked for, but this process does not run under Valgrind")

    def count(self, fn: Callable[..., Any], *args: Any) -> tuple[Any, int]:
        """Return (fn(*args), the instructions callgrind counted for that call)."""
        self.serial += 1
        label = f"backprop-bench-{self.serial}"
        hooks = self.hooks
        gc.collect()
        gc.disable()  # a collection inside the call would count objects made before it
        try:
            hooks.start_benchmark()
            hooks.callgrind_start_instrumentation()
            try:
                result = fn(*args)
            finally:
                hooks.callgrind_stop_instrumentation()
                hooks.stop_benchmark()
                hooks.set_executed_benchmark(label)  # callgrind dumps the counts since the start, named label
        finally:
            gc.enable()
        return result, self._total(label)

    def _total(self, label: str) -> int:
        """Return the instruction total of the dump triggered by ``label`` (and remove the dump)."""
        trigger = f"desc: Trigger: Client Request: {label}\n"
        for path in sorted(self.folder.glob(f"callgrind.{os.getpid()}.out.*"), key=lambda p: -p.stat().st_mtime):
            text = path.read_text(errors="replace")
            if trigger in text:
                path.unlink()
                for line in text.splitlines():
                    if line.startswith("totals:"):
                        return int(line.split()[1])
                raise MeasureError(f"{path}: a callgrind dump without totals")
        raise MeasureError(f"callgrind wrote no dump for {label} in {self.folder}")


def settings_record(excluded: dict[str, str]) -> dict:
    """Return what the JSON records of a counting run: tool, Valgrind, settings, rounds and excluded kernels."""
    return {
        "tool": "callgrind",
        "valgrind": os.environ.get("BACKPROP_BENCH_VALGRIND"),
        "valgrind_options": list(VALGRIND_OPTIONS),
        "environment": dict(DETERMINISTIC_ENV),
        "count_rounds": COUNT_ROUNDS,
        "count_warm_up": COUNT_WARM_UP,
        "figure": "minimum of the counted calls",
        "native_warm_up_s": float(os.environ.get("BACKPROP_BENCH_NATIVE_WARM_S") or "nan"),
        "excluded": excluded,
    }
