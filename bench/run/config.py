"""The configuration of a run and of a sweep, stored verbatim in each results file's ``config``.

The options a run and a sweep share live once, in :class:`WorkloadConfig`; the command
line defines them once too (:mod:`bench.cli.options`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

# A kernel's worker is stopped (status ``timeout``) after this many seconds: generous,
# since the loop kernel takes minutes on full MNIST over ten epochs.
DEFAULT_TIMEOUT = 3600.0


@dataclass
class WorkloadConfig:
    """The options shared by ``run`` and ``sweep``: which kernels, what data, how trained, on how many threads."""

    impls: list[str] = field(default_factory=list)
    epochs: int = 10
    eta: float = 3.0
    seed: int = 1
    shuffle: bool = False
    train_limit: int | None = None
    dataset: str = "mnist"
    data_dir: str | None = None
    dtype: str = "float64"
    threads: int | None = None
    verify_data: bool = True
    timeout: float = DEFAULT_TIMEOUT


@dataclass
class RunConfig(WorkloadConfig):
    """Every option of a run."""

    sizes: list[int] = field(default_factory=lambda: [784, 30, 10])
    batch_size: int = 100


@dataclass
class SweepConfig(WorkloadConfig):
    """Every option of a sweep: two lines through a grid of (batch size, hidden width) points."""

    epochs: int = 2
    # 5000 images keep the slowest point (loop at width 1000, ~1 ms per example on one
    # core) near five seconds per epoch, so the default sweep takes a minute or two.
    train_limit: int | None = 5000
    batch_sizes: list[int] = field(default_factory=lambda: [1, 10, 100, 1000])
    widths: list[int] = field(default_factory=lambda: [30, 100, 300, 1000])
    base_batch_size: int = 100
    base_width: int = 30

    def grid(self) -> list[tuple[int, int]]:
        """Return the (batch_size, width) points to measure, batch line first, without repeats."""
        points = [(b, self.base_width) for b in self.batch_sizes]
        points += [(self.base_batch_size, w) for w in self.widths]
        return list(dict.fromkeys(points))

    def run_config(self, batch_size: int, width: int) -> RunConfig:
        """Return the RunConfig of one grid point."""
        shared = {f.name: getattr(self, f.name) for f in fields(WorkloadConfig)}
        return RunConfig(**shared, sizes=[784, width, 10], batch_size=batch_size)
