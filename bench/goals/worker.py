"""One kernel in a worker that times one epoch per round (``python -m bench.goals.worker``).

Like :mod:`bench.run.worker` (pinned first, then the data, the workload and
:func:`bench.run.harness.run_kernel`: warm-up, ``prepare``, parity probe, then epochs
each verified against the reference's trajectory), except that it waits before every
epoch: the harness reports the phase ``epoch N`` just before the epoch's clock starts,
and this worker answers it by sending ``waiting`` and reading one line from stdin. The
parent (:mod:`bench.goals.rounds`) writes that line when the kernel's turn in the round
comes, so the epochs of several kernels interleave while each kernel keeps its one
process, its warm state and its trajectory. Waiting is never inside a timed epoch.

Events go as JSON lines to the file descriptor named by ``BACKPROP_BENCH_EVENTS_FD``:
``waiting``, ``epoch`` (seconds, accuracy) and, last, ``result``. The job (kernel spec,
run configuration, CPUs) is the first line of stdin. If stdin ends while the worker
waits, it stops without a result.
"""

from __future__ import annotations

import json
import os
import sys

# Imports only os and json: safe before pinning. The helpers are the run worker's own, so that
# both workers record threads and compile kind alike.
from bench.run.cpus import limit_cpus, usable_cpus
from bench.run.worker import EVENTS_FD_VARIABLE, _compile_kind, _die_with_parent, _threads

# The phase run_kernel reports just before each timed epoch (bench.run.harness); tested.
EPOCH_PHASE = "epoch "


def main() -> int:
    """Run the job on stdin, an epoch per further line; return the exit status (0 once the result was sent)."""
    job = json.loads(sys.stdin.readline())
    limit_cpus(job["cpus"])
    _die_with_parent()
    events = os.fdopen(int(os.environ[EVENTS_FD_VARIABLE]), "w", buffering=1)

    def send(event: dict) -> None:
        events.write(json.dumps(event) + "\n")

    import implementations
    from bench.results.files import json_safe
    from bench.results.schema import KernelResult
    from bench.run.config import RunConfig
    from bench.run.data import load_dataset
    from bench.run.harness import run_kernel
    from bench.run.machine import pinned_threads
    from bench.run.probe import make_workload

    class GatedReporter:
        """Send the epochs to the parent, and hold each epoch until the parent says go."""

        def kernel_started(self, name: str, epochs: int) -> None:
            pass

        def phase(self, name: str, text: str) -> None:
            if text.startswith(EPOCH_PHASE):
                send({"event": "waiting"})
                if not sys.stdin.readline():  # the parent stopped the rounds
                    raise SystemExit(0)

        def epoch_done(self, name: str, epoch: int, seconds: float, accuracy: float) -> None:
            send({"event": "epoch", "epoch": epoch, "seconds": seconds, "accuracy": accuracy})

        def kernel_done(self, result: KernelResult) -> None:
            pass

    config = RunConfig(**job["config"])
    cpus = usable_cpus()
    with pinned_threads(cpus):
        try:
            name = implementations.resolve(job["impl"])
        except Exception as exc:  # an unknown or broken kernel: one line, not a traceback
            result = KernelResult(name=job["impl"], status="error", message=str(exc), dtype=config.dtype)
            send({"event": "result", "result": json_safe(result.to_json())})
            return 0
        data = load_dataset(config.dataset, config.data_dir, verify=False)  # the parent verified it
        result = run_kernel(name, make_workload(config, data), config, GatedReporter())
        result.compile_kind = _compile_kind(result.compile_seconds)
        result.threads = {**_threads(cpus), **(result.threads or {})}
    send({"event": "result", "result": json_safe(result.to_json())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
