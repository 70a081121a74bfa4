"""The speed step of ``backprop-bench check``: the harness times one MNIST epoch of the kernel beside
the built-in kernels (:func:`speed`, through :func:`bench.run.execute.execute`, parity checked
and verified as in ``run``), never a timer of its own; unless the harness recorded the kernel
"ok" (parity-failed, error, mismatch, ...) the step and the verdict are FAIL. Built-in kernels
that fail there are only left out of the comparison.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import implementations
from bench.check.steps import CheckResult, CheckStep, Failure, run_step
from bench.run.config import RunConfig
from bench.run.execute import execute
from bench.run.harness import Reporter, SilentReporter

# --quick times the speed line on this many training images instead of all 60,000.
QUICK_TRAIN_LIMIT = 6000
SPEED_LABEL = "speed, one MNIST epoch"


def add_speed(
    result: CheckResult,
    spec: str,
    train_limit: int | None = None,
    seed: int = 1,
    threads: int | None = None,
    reporter: Reporter | None = None,
    measure: bool = True,
) -> None:
    """Add the speed step to ``result``: the harness times one MNIST epoch; FAIL unless the kernel's entry is "ok".

    After a failed step nothing is added (a wrong kernel is not timed); with ``measure``
    False (``--no-speed``) the step is recorded as skipped. A FAIL here makes the verdict FAIL.
    """
    if not result.passed:
        return
    if not measure:
        result.steps.append(CheckStep(SPEED_LABEL, "skipped", "--no-speed"))
        return
    timing = speed(spec, result.name, train_limit, seed, threads, reporter)
    run_step(result, SPEED_LABEL, lambda: _judge_speed(timing))


def _judge_speed(timing: Speed) -> str:
    """Return the speed line when the harness timed the kernel; raise Failure with its status and message otherwise."""
    if timing.name not in timing.seconds:
        raise Failure(f"the harness's MNIST run: {timing.problem or 'no time recorded'}")
    return speed_line(timing)


@dataclass
class Speed:
    """One epoch's seconds on MNIST for the kernel and every built-in kernel, as the harness timed them."""

    name: str
    n_train: int
    seconds: dict[str, float]
    problem: str | None = None  # why the kernel itself has no time


def speed(
    spec: str,
    name: str,
    train_limit: int | None = None,
    seed: int = 1,
    threads: int | None = None,
    reporter: Reporter | None = None,
) -> Speed:
    """Return one epoch's time of the kernel and of every built-in kernel, run by the harness on MNIST.

    Each kernel is checked against the reference on the MNIST probe before it is
    timed, exactly as in ``run``; the results file goes to a temporary folder.
    """
    others = [other for other in implementations.registry.available(builtin=True) if other != name]
    config = RunConfig(impls=[spec, *others], epochs=1, train_limit=train_limit, seed=seed, threads=threads)
    with tempfile.TemporaryDirectory() as folder:
        document, _ = execute(config, Path(folder) / "check.json", reporter or SilentReporter())
    seconds, problem = {}, None
    for entry in document["implementations"]:
        mine = entry["name"] in (name, spec)
        if entry["status"] == "ok" and entry["epoch_seconds"]:
            seconds[name if mine else entry["name"]] = entry["epoch_seconds"][0]
        elif mine:
            # Any status but "ok" (parity-failed, error, crashed, timeout, diverged, mismatch) is the kernel's own.
            problem = f"{entry['status']}: {entry.get('message') or ''}".strip(": ")
    return Speed(name=name, n_train=document["n_train"], seconds=seconds, problem=problem)


def _times(ratio: float) -> str:
    """Return a speed ratio as "13x" or "0.52x"."""
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


def speed_line(result: Speed) -> str:
    """Return e.g. "0.31 s/epoch on 60000 MNIST images: 13x the loop, 0.5x vectorized, 0.4x numba (the fastest ...)"."""
    mine = result.seconds.get(result.name)
    if mine is None:
        return f"speed: not measured ({result.problem or 'no time recorded'})"
    parts = []
    if "loop" in result.seconds:
        parts.append(f"{_times(result.seconds['loop'] / mine)} the loop")
    builtins = {n: s for n, s in result.seconds.items() if n != result.name}
    fastest = min(builtins, key=builtins.get) if builtins else None
    if "vectorized" in result.seconds:
        parts.append(f"{_times(result.seconds['vectorized'] / mine)} vectorized")
    if fastest is not None and fastest not in ("loop", "vectorized"):
        parts.append(f"{_times(builtins[fastest] / mine)} {fastest}")
    if fastest is not None:
        index = {"loop": 0, "vectorized": len(parts) - 1}.get(fastest, len(parts) - 1)
        parts[index] += " (the fastest built-in)"
    return f"{mine:.3g} s/epoch on {result.n_train} MNIST images: " + ", ".join(parts)
