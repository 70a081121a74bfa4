"""Interleaved rounds: every kernel's worker kept ready, and each round times one epoch of each, beside the roof.

A shared machine has slow phases (a neighbour, a throttled core); timing all of one
kernel's epochs and then all of the next one's lets a phase land on one kernel only.
Here every kernel gets ready first in a worker of its own (:mod:`bench.goals.worker`:
warm-up, ``prepare`` and parity probe, one worker at a time, none of it timed), then
round r times epoch r of every kernel, one after another, and (with ``roof``) the
dense roof once (:func:`bench.run.roof.measure_roof`, on the workers' CPUs). The order rotates by one place
each round, the roof included, so no kernel always follows the same neighbour. Every
epoch is verified against the reference's trajectory in its worker, as in ``run``; a
kernel that fails (parity, mismatch, divergence, crash, timeout) drops out of the
later rounds and is never timed again.

Before each kernel's epoch and before the roof, the rounds wait until the machine is
quiet (:func:`wait_until_quiet`): OpenBLAS's idle threads keep spinning for about 0.1 s
after a call (its THREAD_TIMEOUT), and a worker that has sent its result may still be
exiting. Without the wait, the kernel that ran after the roof's two-thread GEMM was
measured up to 2.8x slower than in the rounds where it did not (numba-sparse, two
threads, float32: 160 and 122 ms against 44-60), and every kernel after the first to
finish in the last round 2-10x slower. A worker is also stopped as soon as its result
is in.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace

from bench.results.schema import KernelResult
from bench.run.config import RunConfig
from bench.run.cpus import busy_cpu_seconds, limit_cpus, usable_cpus
from bench.run.machine import pinned_threads
from bench.run.parent import worker_env
from bench.run.roof import measure_roof
from bench.run.trajectory import ensure_reference
from bench.run.worker import EVENTS_FD_VARIABLE

# The roof's place in a round's order.
ROOF = "roof"
# A kernel's one-core worker in the rounds of a setting with more threads is keyed by its name and this.
ALONE = " on one core"
# The machine counts as quiet when its CPUs were busy for at most QUIET_CORES cores' worth over
# a window of QUIET_WINDOW_S (/proc/stat counts in 10 ms ticks: one tick is 0.1 cores here).
QUIET_CORES, QUIET_WINDOW_S = 0.15, 0.1
# Waiting gives up after this long: a machine that never gets quiet is timed as it is.
QUIET_MAX_WAIT_S = 3.0


def wait_until_quiet(max_wait: float = QUIET_MAX_WAIT_S) -> float:
    """Return the seconds waited until a window of QUIET_WINDOW_S had at most QUIET_CORES busy (max ``max_wait``).

    Returns at once where /proc/stat cannot be read.
    """
    start = time.monotonic()
    while time.monotonic() - start < max_wait:
        before = busy_cpu_seconds()
        if before is None:
            break
        time.sleep(QUIET_WINDOW_S)
        after = busy_cpu_seconds()
        if after is not None and after - before <= QUIET_CORES * QUIET_WINDOW_S:
            break
    return time.monotonic() - start


class RoundWorker:
    """One kernel's worker: started, made ready, then driven one epoch at a time (``epoch``), then ``finish``."""

    def __init__(self, spec: str, config: RunConfig):
        self.result = KernelResult(name=spec, dtype=config.dtype)
        self.timeout, self.buffer, self.final, self.stopped = config.timeout, b"", False, False
        threads = config.threads or usable_cpus()
        job = {"impl": spec, "config": {**asdict(config), "impls": [spec]}, "cpus": threads}
        self.read_fd, write_fd = os.pipe()
        self.log = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.goals.worker"],
                stdin=subprocess.PIPE,
                stdout=self.log,
                stderr=self.log,
                pass_fds=(write_fd,),
                env={**worker_env(threads), EVENTS_FD_VARIABLE: str(write_fd)},
                start_new_session=True,  # Ctrl-C reaches the parent only; it stops the workers
            )
        finally:
            os.close(write_fd)
        self._say(json.dumps(job))

    @property
    def running(self) -> bool:
        """Return True while the kernel waits for its next epoch."""
        return not self.final

    def ready(self) -> bool:
        """Return True once the worker waits for its first epoch (False: it failed before, see ``result``)."""
        self._until_waiting()
        return self.running

    def epoch(self) -> float | None:
        """Return the seconds of the kernel's next epoch, verified, or None if it failed (see ``result``)."""
        before = len(self.result.epoch_seconds)
        if not self._say("go"):
            self._until_waiting()  # it died: collect how
            return None
        self._until_waiting()
        timed = self.result.status in ("pending", "ok") and len(self.result.epoch_seconds) > before
        return self.result.epoch_seconds[-1] if timed else None

    def finish(self) -> KernelResult:
        """Return the kernel's result once its worker ended (it is stopped if it still waits)."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        if not self.final:
            self._until_waiting()
        if not self.final:
            self._end("stopped", "stopped before its last epoch")
        self.stop()
        return self.result

    def stop(self) -> None:
        """Kill the worker and everything it started, and release its pipe and log (once)."""
        if self.stopped:
            return
        self.stopped = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
        self.log.close()

    def _say(self, line: str) -> bool:
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, ValueError):
            return False

    def _until_waiting(self) -> None:
        """Apply events until the worker waits for an epoch or has sent its result (or died, or timed out)."""
        deadline = time.monotonic() + self.timeout
        while not self.final:
            for line in self._lines():
                event = json.loads(line)
                if event["event"] == "epoch":
                    self.result.epoch_seconds.append(event["seconds"])
                    self.result.test_accuracy.append(event["accuracy"])
                elif event["event"] == "result":
                    self.result, self.final = KernelResult(**event["result"]), True
                    self.stop()  # all it had to say is in: do not let it exit beside the next timed epoch
                elif event["event"] == "waiting":
                    return
            if self.final:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._end("timeout", f"still running after --timeout {self.timeout:g} s; stopped")
                return
            ready, _, _ = select.select([self.read_fd], [], [], min(remaining, 1.0))
            if ready:
                chunk = os.read(self.read_fd, 1 << 16)
                if not chunk:
                    self.proc.wait()
                    self._end("crashed", f"worker exited ({self._how()}){self._last_line()}")
                    return
                self.buffer += chunk

    def _lines(self) -> list[bytes]:
        *lines, self.buffer = self.buffer.split(b"\n")
        return [line for line in lines if line.strip()]

    def _end(self, status: str, message: str) -> None:
        self.result.status, self.result.message, self.final = status, message, True

    def _how(self) -> str:
        code = self.proc.returncode
        return f"signal {-code}" if code is not None and code < 0 else f"status {code}"

    def _last_line(self) -> str:
        self.log.seek(0)
        lines = [line.strip() for line in self.log.read().decode(errors="replace").splitlines() if line.strip()]
        return f": {lines[-1][:300]}" if lines else ""


@contextlib.contextmanager
def _on_workers_cpus(n: int | None):
    """Run the block on the CPUs the setting's workers are pinned to (their first ``n``), then restore.

    Linux pins the calling thread only: the roof's one-thread GEMM runs in it; a BLAS pool
    started earlier keeps its own CPUs (the same ones on a machine with ``n`` cores).
    """
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    limit_cpus(n)
    try:
        yield
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)


def start_worker(spec: str, config: RunConfig) -> RoundWorker:
    """Return a started worker for ``spec`` (tests replace this with one that needs no process)."""
    return RoundWorker(spec, config)


def rotation(lineup: list[str], round_index: int) -> list[str]:
    """Return the order of round ``round_index``: ``lineup`` rotated left by that many places."""
    shift = round_index % len(lineup)
    return lineup[shift:] + lineup[:shift]


def interleave(
    names: list[str], config: RunConfig, roof: bool, say: Callable[[str], None], alone: tuple[str, ...] = ()
) -> dict:
    """Return the rounds of ``names``: ``config.epochs`` rounds, one epoch of each kernel per round.

    Each kernel of ``alone`` is also timed on one core (one thread, the first CPU) in every
    round, in a worker of its own keyed ``name + ALONE``: its epochs on ``config.threads``
    and on one core are then measured side by side, as goal 6 compares them.

    Keys: ``results`` ({name: KernelResult}, each ``epoch_seconds[r]`` timed in round r),
    ``roof_gflops`` (one per round, measured in that round; empty without ``roof``),
    ``roof`` (how it was measured), ``order`` (per round, the kernels and ``roof`` in
    the order they ran) and ``quiet_wait_seconds`` (per round, the seconds spent waiting
    for quiet CPUs before its items).
    """
    ensure_reference(config)  # the trajectory every worker checks against, made once here
    workers: dict[str, RoundWorker] = {}
    out: dict = {"results": {}, "roof_gflops": [], "roof": None, "order": [], "quiet_wait_seconds": []}
    jobs = {name: (name, config) for name in names}
    jobs.update({name + ALONE: (name, replace(config, threads=1)) for name in alone})
    try:
        for key, (spec, job_config) in jobs.items():
            say(f"getting {key} ready (compile, prepare, parity probe; not timed)")
            workers[key] = start_worker(spec, job_config)
            if not workers[key].ready():
                say(f"{key}: {workers[key].result.status}: {workers[key].result.message}")
        lineup = [*jobs, ROOF] if roof else list(jobs)
        for round_index in range(config.epochs):
            order, shown, waited = [], [], 0.0
            for item in rotation(lineup, round_index):
                if item == ROOF or workers[item].running:
                    waited += wait_until_quiet()
                if item == ROOF:
                    with _on_workers_cpus(config.threads), pinned_threads(config.threads):
                        measured = measure_roof(config.dtype)
                    out["roof_gflops"].append(measured["gflops"])
                    out["roof"] = {k: v for k, v in measured.items() if k not in ("gflops", "seconds")}
                    shown.append(f"roof {measured['gflops']:.0f} GFLOP/s")
                elif workers[item].running:
                    seconds = workers[item].epoch()
                    shown.append(f"{item} {'-' if seconds is None else f'{1e3 * seconds:.0f} ms'}")
                else:
                    continue
                order.append(item)
            out["order"].append(order)
            out["quiet_wait_seconds"].append(waited)
            say(f"round {round_index + 1}/{config.epochs}: {', '.join(shown)} (waited {waited:.1f} s for quiet CPUs)")
        for name, worker in workers.items():
            out["results"][name] = worker.finish()
    finally:
        for worker in workers.values():
            worker.stop()
    return out
