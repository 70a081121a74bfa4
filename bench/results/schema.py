"""What one kernel did in a run: :class:`KernelResult`, one entry of a results file's ``implementations``,
and the statuses it can end with (docs/harness-and-timing.md, "Statuses").

It is data only: the harness (:mod:`bench.run.harness`) fills it in, the worker streams it,
the results files (:mod:`bench.results.files`) store it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

STATUSES = ("ok", "parity-failed", "mismatch", "error", "diverged", "crashed", "timeout", "interrupted", "pending")


@dataclass
class KernelResult:
    """What one kernel did in a run; serialised as one entry of ``implementations``."""

    name: str
    status: str = "pending"
    message: str | None = None
    dtype: str = "float64"
    fused_epoch: bool = False
    # The kernel whose code actually ran at this batch size, when it is not this one.
    delegates_to: str | None = None
    # A kernel that skips zero inputs, and the non-zero share of the training inputs it saw.
    sparse_input: bool = False
    input_density: float | None = None
    compile_seconds: float | None = None
    # "cold" (compiled now), "cache" (loaded from an on-disk cache), "none" (nothing to compile),
    # or "jit" (compiled, no cache to tell apart); set by the worker.
    compile_kind: str | None = None
    prepare_seconds: float | None = None
    probe: dict | None = None
    grad_max_rel_error: float | None = None
    step_max_rel_error: float | None = None
    rtol: float | None = None
    step_rtol: float | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    diverged_epoch: int | None = None
    # One bench.run.verify.EpochCheck (as a dict) per timed epoch, and the first epoch that departed.
    verification: list[dict] = field(default_factory=list)
    mismatch_epoch: int | None = None
    # Seconds spent checking the timed epochs (never inside an epoch's time).
    verify_seconds: float | None = None
    threads: dict | None = None
    peak_memory_bytes: int | None = None
    machine_load: dict | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """Return a JSON-ready dict."""
        return asdict(self)
