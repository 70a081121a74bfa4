"""One kernel, checked and then timed, in a process of its own (``python -m bench.run.worker``).

The parent (:mod:`bench.run.parent`) starts one worker per kernel, as pyperf and asv do,
so that no kernel inherits another's imports, thread pools, JIT caches in memory or
heap. The worker:

1. limits itself to the run's cores (CPU affinity) before anything else is imported;
   the thread variables (BLAS, OpenMP, Numba, XLA) come from the parent's environment;
2. loads the data, makes the workload and resolves the kernel;
3. runs :func:`bench.run.harness.run_kernel`: warm-up, ``prepare``, parity probe, epochs;
4. streams every event as one JSON line on the file descriptor named by
   ``BACKPROP_BENCH_EVENTS_FD``, the last one being the full result, so the parent
   keeps every finished epoch even if the worker dies.

It records what only the worker can see: the threads each library actually uses,
whether compilation was cold or a cache load, and its peak memory above what it held
before the kernel was imported and the data loaded. The job arrives as JSON on stdin.
"""

from __future__ import annotations

import json
import os
import sys

from bench.run.cpus import limit_cpus, usable_cpus  # imports only os: safe before pinning

EVENTS_FD_VARIABLE = "BACKPROP_BENCH_EVENTS_FD"


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when its parent dies, so a killed run leaves no orphan."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _compile_kind(compile_seconds: float | None) -> str:
    """Return cold, cache, jit or none: what the warm-up did, read from the loaded Numba dispatchers."""
    hits = misses = compiled = 0
    try:
        from numba.core.registry import CPUDispatcher
    except ImportError:
        CPUDispatcher = None
    if CPUDispatcher is not None:
        for name, module in list(sys.modules.items()):
            if module is None or not (name.startswith("implementations") or name.startswith("_backprop_bench_user")):
                continue
            for value in list(vars(module).values()):
                if isinstance(value, CPUDispatcher):
                    hits += sum(value.stats.cache_hits.values())
                    misses += sum(value.stats.cache_misses.values())
                    compiled += len(value.signatures)
    if misses:
        return "cold"
    if hits:
        return "cache"
    if compiled or "jax" in sys.modules or "torch._dynamo" in sys.modules:
        return "jit"
    return "none"


def _threads(cpus: int) -> dict:
    """Return the threads each loaded library will use in this process, read from the libraries."""
    from threadpoolctl import threadpool_info

    threads: dict = {"cpus": cpus}
    threads["blas"] = sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})
    if "numba" in sys.modules:
        threads["numba"] = sys.modules["numba"].get_num_threads()
    if "torch" in sys.modules:
        threads["torch"] = sys.modules["torch"].get_num_threads()
    if "jax" in sys.modules:
        threads["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    return threads


def main() -> int:
    """Run the job on stdin; return the exit status (0 once the result was sent)."""
    job = json.loads(sys.stdin.read())
    limit_cpus(job["cpus"])
    _die_with_parent()
    events = os.fdopen(int(os.environ[EVENTS_FD_VARIABLE]), "w", buffering=1)

    def send(event: dict) -> None:
        events.write(json.dumps(event) + "\n")

    from bench.run.machine import peak_memory_above, reset_peak_memory

    baseline = reset_peak_memory()
    import implementations
    from bench.results.files import json_safe
    from bench.results.schema import KernelResult
    from bench.run.config import RunConfig
    from bench.run.data import load_dataset
    from bench.run.harness import run_kernel
    from bench.run.machine import pinned_threads
    from bench.run.probe import make_workload

    class StreamReporter:
        """Send each harness event to the parent as it happens."""

        def kernel_started(self, name: str, epochs: int) -> None:
            send({"event": "started", "name": name})

        def phase(self, name: str, text: str) -> None:
            send({"event": "phase", "text": text})

        def epoch_done(self, name: str, epoch: int, seconds: float, accuracy: float) -> None:
            send({"event": "epoch", "epoch": epoch, "seconds": seconds, "accuracy": accuracy})

        def kernel_done(self, result: KernelResult) -> None:
            pass

    config = RunConfig(**job["config"])
    cpus = usable_cpus()
    with pinned_threads(cpus):
        try:
            # A name, a file, a module or a nielsen: spec, imported here: a broken kernel fails in one line.
            name = implementations.resolve(job["impl"])
        except Exception as exc:  # an unknown or broken kernel: one line, not a traceback
            result = KernelResult(name=job["impl"], status="error", message=str(exc), dtype=config.dtype)
            send({"event": "result", "result": json_safe(result.to_json())})
            return 0
        send({"event": "phase", "text": "loading data"})
        data = load_dataset(config.dataset, config.data_dir, verify=False)  # the parent verified it
        work = make_workload(config, data)
        result = run_kernel(name, work, config, StreamReporter())
        result.compile_kind = _compile_kind(result.compile_seconds)
        result.threads = {**_threads(cpus), **(result.threads or {})}
    result.peak_memory_bytes = peak_memory_above(baseline)
    send({"event": "result", "result": json_safe(result.to_json())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
