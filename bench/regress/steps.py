"""Find the commits where a benchmark's time or count changed: a penalised change-point search, an interval per step.

Input: one value per commit in commit order, the log of that commit's median time
(or instruction count), all from one machine, one configuration and one measure
(never mixed), and the :class:`Noise` of that measure. Three stages:

1. **One-off runs.** A process that ran beside a busy neighbour is not a step.
   A commit more than ``OUTLIER`` robust sigmas (from the median absolute
   deviation of successive differences) off the median of its neighbourhood (the
   five commits around it; the first five at the start) is set aside; the chart
   draws it hollow. The newest two commits are left to the rules on short segments
   below, since a new step there would look like an outlier.
2. **Search.** ``ruptures``' exact penalised search for a piecewise-constant mean
   (``KernelCPD`` with a linear kernel: the least-squares cost, solved by PELT in
   C), with the penalty ``PENALTY * sigma^2 * log(n)``. Here sigma is the standard
   deviation of successive differences of the kept commits, clipped at ``CLIP``
   robust sigmas, and never below the measure's ``sigma_floor``: the median absolute
   deviation alone underrates heavy-tailed noise (by up to half in the simulations,
   which doubled the false steps), while a step adds one large difference among n.
   A segment of at most ``BLIP`` commits that leaves the level and comes back is
   set aside too, and the search runs again. A change at the
   newest commit alone cannot be told from a one-off run: it is returned, but as
   unconfirmed (:attr:`Step.confirmed`), until the next commit shows it again.
3. **Judgement.** Consecutive changes in the same direction separated by at most
   ``RAMP`` commits are one *drift* (several small steps, each under any
   threshold, that add up). Each step or drift gets a pooled t-interval
   (:func:`bench.regress.stats.t_interval`) on the ratio of the levels after and before
   it, and is kept only when the interval excludes 1 and the change is at least
   the measure's ``min_change``. At this penalty the search already asks for a t of
   about 4.7 at 40 commits, so the interval rarely removes a step: it is the figure the
   table quotes, and the guard for short segments.

The constants were chosen on seeded simulations of 40-commit histories with the
noise of tests/conftest.py's ``simulated_run`` (run medians moving about 5%
between processes, 5% of processes 1.1-1.4x slower beside a busy neighbour):

=======  ============  ==================  ==============  ==================
penalty  A/A, 1 bench  A/A, 16 benchmarks  1.25x step      1.15x / 1.10x step
=======  ============  ==================  ==============  ==================
4        1.5%          15% with any step   95.5% found     -
5        0.5%          7%                  96%             84% / 52%
6        0.5%          5%                  96.5%           80% / 43%
8        0%            3%                  96.5%           73% / 27%
=======  ============  ==================  ==============  ==================

(200 histories a cell, 100 for 16 benchmarks; a step is "found" alone and at the
right commit, within one.) tests/test_history_steps.py holds the seeded checks.

Instruction counts (``--bench-measure instructions``) keep the search and its
penalty and change only the two figures of :class:`Noise` (:data:`INSTRUCTIONS`);
tests/test_history_instructions.py holds their seeded checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import ruptures

from bench.regress.stats import CONFIDENCE, t_interval

PENALTY = 6.0
# Successive differences beyond this many robust sigmas are clipped before the noise is measured.
CLIP = 4.0
# Outlying runs: a segment this short that leaves and returns is set aside, not a step.
BLIP = 2
# Same-direction changes at most this many commits apart are one drift.
RAMP = 3
# A commit this many sigmas off the median of its neighbourhood (two each side) is a one-off run.
OUTLIER = 3.5


@dataclass(frozen=True)
class Noise:
    """What a measure's noise allows: the least noise assumed, and the least change worth a line.

    ``sigma_floor`` bounds the noise between commits (a standard deviation of log values)
    from below, so that a series that happens to repeat exactly does not make every tiny
    difference a step; ``min_change`` is the smallest ratio reported, however clear.
    """

    sigma_floor: float
    min_change: float


# Wall time: no machine keeps run medians steadier than 0.1%, and a 1% step is not worth a line
# (run medians move about 5% between processes on these machines).
TIME = Noise(sigma_floor=1e-3, min_change=1.03)
# Instruction counts repeat within 0.2% between runs (19 of 22 benchmarks within 0.1%), most far closer: numba's
# float64 epoch 76,739,798 vs 76,739,535 in two runs (0.0003%), its batch-10 gradients 1,258,854 vs
# 1,258,833 (0.002%). The floor, 0.01%, lies above those repeats (such series read as steady at the
# floor, not as noiseless) and below the 0.1% bound, so a benchmark that moves that much measures its
# own, larger sigma. The least change reported, 0.4%, is twice the worst repeat measured (0.19%), so
# no repeat of a count makes one, and below 0.5%, so one commit that adds 0.5% is shown on its own: the first
# commits of a drift appear on the page before their sum reaches the 1% gate.
INSTRUCTIONS = Noise(sigma_floor=1e-4, min_change=1.004)
NOISES = {"time": TIME, "instructions": INSTRUCTIONS}


@dataclass(frozen=True)
class Step:
    """A change of level: the first commit at the new level is ``end``; for a step ``start == end``.

    Indices are positions in the series given to :func:`detect_steps`. ``ratio`` is
    the level after over the level before, with its interval; ``before`` and
    ``after`` are the number of commits each level was judged on.
    """

    start: int
    end: int
    ratio: float
    low: float
    high: float
    before: int
    after: int

    @property
    def drift(self) -> bool:
        """Return True when the change spread over several commits."""
        return self.end > self.start

    @property
    def confirmed(self) -> bool:
        """Return True when at least two commits show the new level (one could be a one-off run)."""
        return self.after >= 2

    @property
    def slower(self) -> bool:
        """Return True for a slowdown."""
        return self.ratio > 1.0


def robust_sigma(values: np.ndarray, noise: Noise = TIME) -> float:
    """Return the noise between successive values, from the median absolute deviation of their differences."""
    diffs = np.diff(values)
    if diffs.size == 0:
        return noise.sigma_floor
    mad = float(np.median(np.abs(diffs - np.median(diffs))))
    return max(mad / 0.6745 / math.sqrt(2.0), noise.sigma_floor)


def noise_sigma(values: np.ndarray, noise: Noise = TIME) -> float:
    """Return the noise between successive values from the standard deviation of their differences.

    Differences beyond ``CLIP`` robust sigmas are clipped first, so that one outlying
    run (which makes two large differences) does not hide every step of a series.
    """
    diffs = np.diff(values)
    if diffs.size < 2:
        return noise.sigma_floor
    bound = CLIP * robust_sigma(values, noise) * math.sqrt(2.0)
    diffs = np.clip(diffs, -bound, bound)
    return max(float(diffs.std()) / math.sqrt(2.0), noise.sigma_floor)


def _segments(values: np.ndarray, sigma: float) -> list[tuple[int, int]]:
    """Return [(begin, end)) bounds of the penalised least-squares piecewise-constant fit of ``values``."""
    n = values.size
    if n < 2:
        return [(0, n)]
    algo = ruptures.KernelCPD(kernel="linear", min_size=1).fit(values.reshape(-1, 1))
    bounds = [0, *(int(b) for b in algo.predict(pen=PENALTY * sigma**2 * math.log(n)))]
    return list(zip(bounds[:-1], bounds[1:]))


def _running_median(values: np.ndarray) -> np.ndarray:
    """Return the median of each value's neighbourhood: the five commits around it (the first five at the start)."""
    n = values.size
    begins = [max(0, min(i - 2, n - 5)) for i in range(n)]
    return np.array([np.median(values[b : b + 5]) for b in begins])


def _blips(values: np.ndarray, segments: list[tuple[int, int]]) -> list[int]:
    """Return the indices of one-off runs: short inner segments that leave the level and come back.

    A short first segment is set aside too: the oldest commit or two cannot be told
    from a one-off run, as the newest cannot.
    """
    found = list(range(*segments[0])) if len(segments) > 1 and segments[0][1] - segments[0][0] <= BLIP else []
    for (b0, e0), (b1, e1), (b2, e2) in zip(segments, segments[1:], segments[2:]):
        if e1 - b1 <= BLIP:
            up, down = values[b1:e1].mean() - values[b0:e0].mean(), values[b2:e2].mean() - values[b1:e1].mean()
            if up * down < 0:
                found.extend(range(b1, e1))
    return found


def fit(values: np.ndarray, noise: Noise = TIME) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Return (kept mask, segments over the kept values) after setting one-off runs aside.

    ``values`` has shape (n,); segments index the kept values, in order.
    """
    values = np.asarray(values, dtype=float)
    kept = np.abs(values - _running_median(values)) <= OUTLIER * robust_sigma(values, noise)
    # The newest two commits have no neighbours after them, so a new step looks like an outlier there:
    # the short-segment rules below decide (and a change at the newest commit alone is unconfirmed).
    kept[-BLIP:] = True
    sigma = noise_sigma(values[kept], noise)
    for _ in range(5):
        segments = _segments(values[kept], sigma)
        blips = _blips(values[kept], segments)
        if not blips:
            break
        kept[np.flatnonzero(kept)[blips]] = False
    return kept, segments


def _changes(values: np.ndarray, segments: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return (first segment, last segment) index pairs: each change, runs of same-direction ones merged."""
    changes: list[tuple[int, int]] = []
    for i in range(1, len(segments)):
        sign = np.sign(values[slice(*segments[i])].mean() - values[slice(*segments[i - 1])].mean())
        if changes:
            first, last = changes[-1]
            previous = np.sign(values[slice(*segments[last])].mean() - values[slice(*segments[last - 1])].mean())
            gap = segments[last][1] - segments[last][0]
            if last == i - 1 and sign == previous and gap <= RAMP:
                changes[-1] = (first, i)
                continue
        changes.append((i, i))
    return changes


def detect_steps(values: np.ndarray, confidence: float = CONFIDENCE, noise: Noise = TIME) -> list[Step]:
    """Return the clear steps and drifts in a series of log values (one per commit, commit order), oldest first.

    ``noise`` is the measure's: :data:`TIME` for times, :data:`INSTRUCTIONS` for counts.
    """
    values = np.asarray(values, dtype=float)
    if values.size < 3:
        return []
    kept, segments = fit(values, noise)
    index = np.flatnonzero(kept)
    y = values[kept]
    steps = []
    for first, last in _changes(y, segments):
        before, after = y[slice(*segments[first - 1])], y[slice(*segments[last])]
        if before.size + after.size < 3:
            continue
        interval = t_interval(before, after, confidence, pooled=True)
        clear = interval.low > 1.0 or interval.high < 1.0
        big = max(interval.ratio, 1.0 / interval.ratio) >= noise.min_change
        if clear and big:
            # A drift starts at the first commit of its first intermediate level.
            start, end = int(index[segments[first][0]]), int(index[segments[last][0]])
            steps.append(Step(start, end, interval.ratio, interval.low, interval.high, before.size, after.size))
    return steps
