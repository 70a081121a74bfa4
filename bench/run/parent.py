"""The parent side of the worker processes: start one per kernel, collect its events, survive its failures.

:func:`run_in_worker` starts ``python -m bench.run.worker`` in a session of its own
with the run's thread settings in its environment, sends it the job, and turns the
JSON lines it streams into Reporter events and a :class:`KernelResult`. A worker
that dies by a signal or exits without a result is ``crashed`` (with the signal and
its last line of output); one still running after ``config.timeout`` seconds is
killed and is ``timeout``. Either way the epochs it finished are kept and the other
kernels carry on. On KeyboardInterrupt the worker is killed at once and the partial
result travels on the exception as ``.result``, as :func:`bench.run.harness.run_kernel`
does in-process.
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
from dataclasses import asdict

from bench.results.schema import KernelResult
from bench.run.config import RunConfig
from bench.run.cpus import usable_cpus
from bench.run.harness import Reporter
from bench.run.trajectory import ensure_reference
from bench.run.worker import EVENTS_FD_VARIABLE

# Thread-pool sizes read at import by BLAS, OpenMP (PyTorch), Numba; XLA's is below.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def worker_env(threads: int) -> dict[str, str]:
    """Return the environment of a worker limited to ``threads`` threads in every framework.

    XLA sizes its intra-op pool once, at import, from the CPUs the process may use
    (the worker's affinity) and from these flags; without them JAX ignores --threads.
    """
    env = dict(os.environ)
    for name in _THREAD_VARIABLES:
        env[name] = str(threads)
    xla = env.get("XLA_FLAGS", "")
    flags = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}"
    env["XLA_FLAGS"] = f"{xla} {flags}".strip()
    return env


def _last_line(log) -> str:
    """Return the last non-empty line the worker printed, for a crash message."""
    log.seek(0)
    lines = [line.strip() for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _signal_name(returncode: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.Signals(-returncode).name
    return f"signal {-returncode}"


class _Events:
    """Splits the worker's byte stream into JSON events and applies them to the result."""

    def __init__(self, result: KernelResult, reporter: Reporter, epochs: int):
        self.result, self.reporter, self.epochs, self.buffer = result, reporter, epochs, b""
        self.final: dict | None = None
        self.started = False

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self.apply(json.loads(line))

    def apply(self, event: dict) -> None:
        kind, result = event["event"], self.result
        if kind == "started":
            result.name = event["name"]
        elif kind == "phase":
            self.reporter.phase(result.name, event["text"])
        elif kind == "epoch":
            result.epoch_seconds.append(event["seconds"])
            result.test_accuracy.append(event["accuracy"])
            self.reporter.epoch_done(result.name, event["epoch"], event["seconds"], event["accuracy"])
        elif kind == "result":
            self.final = event["result"]


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT and SIGTERM inside the block; one that arrived is delivered when it ends."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _drain(read_fd: int, events: _Events) -> None:
    """Apply every complete event still in the pipe (the worker is dead, so the pipe ends)."""
    with contextlib.suppress(OSError, ValueError):
        while chunk := os.read(read_fd, 1 << 16):
            events.feed(chunk)


def _kill(proc: subprocess.Popen) -> None:
    """Kill the worker and everything it started (its own session), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_in_worker(spec: str, config: RunConfig, reporter: Reporter) -> KernelResult:
    """Return the result of checking and timing the kernel ``spec`` in a fresh worker process.

    The reference's trajectory for the workload is made here first, if no earlier call
    cached it, so that no worker computes it (bench.run.verify): the worker loads it.
    """
    result = KernelResult(name=spec, dtype=config.dtype)
    reporter.kernel_started(spec, config.epochs)
    try:
        ensure_reference(config)
        return _run(spec, config, reporter, result)
    finally:
        reporter.kernel_done(result)


def _run(spec: str, config: RunConfig, reporter: Reporter, result: KernelResult) -> KernelResult:
    """Return ``result`` filled in by the worker's events (see run_in_worker)."""
    threads = config.threads or usable_cpus()
    events = _Events(result, reporter, config.epochs)
    job = {"impl": spec, "config": {**asdict(config), "impls": [spec]}, "cpus": threads}
    read_fd, write_fd = os.pipe()
    env = {**worker_env(threads), EVENTS_FD_VARIABLE: str(write_fd)}
    with tempfile.TemporaryFile() as log:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.run.worker"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                pass_fds=(write_fd,),
                env=env,
                start_new_session=True,  # Ctrl-C reaches the parent only; it stops the worker itself
            )
        finally:
            os.close(write_fd)
        try:
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
            deadline = time.monotonic() + config.timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    _kill(proc)
                    result.status = "timeout"
                    result.message = f"still running after --timeout {config.timeout:g} s; stopped"
                    break
                ready, _, _ = select.select([read_fd], [], [], min(remaining, 1.0))
                if ready:
                    # Ctrl-C waits until what was read is applied: an epoch read is an epoch kept.
                    with _signals_held():
                        chunk = os.read(read_fd, 1 << 16)
                        events.feed(chunk)
                    if not chunk:
                        break
            if result.status != "timeout":
                proc.wait()
                if events.final is not None:
                    final = KernelResult(**events.final)
                    result.__dict__.update(final.__dict__)
                else:
                    result.status = "crashed"
                    how = (
                        f"killed by {_signal_name(proc.returncode)}"
                        if proc.returncode < 0
                        else f"exited with status {proc.returncode}"
                    )
                    last = _last_line(log)
                    done = f" after {len(result.epoch_seconds)} epochs" if result.epoch_seconds else ""
                    result.message = f"worker {how}{done}" + (f": {last}" if last else "")
        except KeyboardInterrupt as exc:
            _kill(proc)
            _drain(read_fd, events)  # epochs the worker finished before the interrupt are kept
            result.status, result.message = "interrupted", f"interrupted after {len(result.epoch_seconds)} epochs"
            exc.result = result
            raise
        finally:
            os.close(read_fd)
            if proc.poll() is None:
                _kill(proc)
    return result
