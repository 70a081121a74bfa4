"""``backprop-bench goals``: the fast-kernel goals, measured side by side on one machine, twice, in one command.

Each of ``runs`` independent runs (default two) measures, per thread setting and dtype,
full-MNIST epochs of every kernel at batch sizes 100 and 10 in interleaved rounds: every
kernel gets ready in a worker of its own (compile, prepare, parity probe; not timed), then
each round times one epoch of every kernel and the dense roof (a large GEMM, same dtype and
threads), in an order that rotates each round; then per-example SGD (batch size 1) of the
Numba kernels against ``loop`` on a subset, in rounds too; and, in a fresh process, how long
the Numba kernels take to load from the on-disk cache. Every timed epoch is verified against
the reference's trajectory, as in ``run``. A goal is met only when every run meets it, and
unstable when the runs disagree. Finally, at batch 100 on one thread, ``numba`` against
``numba-sparse`` on synthetic inputs of chosen zero fractions, to find the density where the
dense kernel wins, and on each real data set that is found here (MNIST, and Fashion-MNIST at
about 50% zeros).

FLOPs are dense-equivalent (:func:`bench.flops.epoch_flops`), so a kernel that
skips zero inputs can exceed 100% of the dense roof; the multiply-adds such a
kernel actually does are given beside them (:func:`bench.flops.sparse_epoch_flops`).
A kernel's roof multiple is the median over rounds of its epoch over the roof's epoch
measured in the same round.

The goals (targets in :data:`TARGETS`, written into every file):

1. the fastest exact kernel takes at most 1.0x the dense roof's time per epoch at batch 100,
   and at most 1.3x at batch 10;
2. the best Numba kernel takes at most 0.5x the best of PyTorch (eager and compiled) and
   JAX, at batch 100 and at batch 10;
3. per-example SGD (batch 1) is at least 50x faster than ``loop``;
4. warm-up from the cache takes at most 0.5 s;
5. the dense ``numba`` kernel is at most 1.5x the roof on one core;
6. with two threads, the fastest kernel takes at most 0.6x its own one-core time, both
   timed in the same rounds (the one-thread setting's fastest kernel is timed on one core
   beside the two-thread setting's kernels).

The package: :mod:`~bench.goals.session` (what is measured, runs and settings),
:mod:`~bench.goals.rounds` (interleaved rounds, parent side), :mod:`~bench.goals.worker`
(a kernel's worker that waits between epochs), :mod:`~bench.goals.verdicts` (rows,
figures, cells, verdicts and the Markdown table).
"""

from bench.goals.session import (
    BATCH_SIZES,
    DATASETS,
    KERNELS,
    NUMBA,
    PEERS,
    PER_EXAMPLE,
    SIZES,
    TARGETS,
    ZERO_FRACTIONS,
    cache_warm_up,
    dataset_points,
    density_sweep,
    measure,
    measure_run,
)
from bench.goals.verdicts import (
    LEGACY_TARGETS,
    cells,
    dataset_lines,
    density_lines,
    goal_figures,
    goal_table,
    roof_multiple,
    runs,
    table_rows,
    targets,
    verdicts,
)

__all__ = [
    "BATCH_SIZES", "DATASETS", "KERNELS", "LEGACY_TARGETS", "NUMBA", "PEERS", "PER_EXAMPLE", "SIZES", "TARGETS",
    "ZERO_FRACTIONS", "cache_warm_up", "cells", "dataset_lines", "dataset_points", "density_lines", "density_sweep",
    "goal_figures", "goal_table", "measure", "measure_run", "roof_multiple", "runs", "table_rows", "targets",
    "verdicts",
]  # fmt: skip
