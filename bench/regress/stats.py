"""Statistics of the regression checks: intervals on ratios of typical times, verdicts, thresholds.

Timings are skewed and heavy-tailed (a busy neighbour adds a long tail), so the
statistic of one run is the median of its rounds, and a side of several runs is
summarised by the geometric mean of its run medians. The noise that matters on a
shared machine is *between* processes: identical runs' medians move by 5-30%,
while rounds within one process share the machine's state of the moment. So:

- with at least two runs per side, the interval on the ratio candidate / base is a
  t-interval on the log run medians (:func:`t_interval`): every run counts once,
  whatever its number of rounds, and with few runs the interval widens as it should
  (t with few degrees of freedom) instead of pretending, as a bootstrap of three
  runs did (at most 10 distinct resamples). From five runs a side it is Yuen's
  trimmed version: the fastest and slowest run of each side are set aside from the
  mean (their spread still counts, winsorized), because a whole process beside a
  busy neighbour is the commonest outlier here; below five it is Welch's;
- with one run per side, only the within-run noise is visible: a bootstrap of the
  raw round times (:func:`bootstrap_interval`), or, without raw times, the rule that
  the interquartile ranges must not overlap. The threshold then has to absorb the
  between-run noise, which is why ``--against`` runs six processes per side.

A benchmark is a REGRESSION when the interval's lower end lies above its threshold
(default 1.25x): a one-sided test at 2.5% of "the candidate is at most threshold x
slower". One present in the base but absent from the candidate is MISSING, also a
failure. This module is NumPy and the standard library only; loading files is
:mod:`bench.regress.pytest_files`'s job and printing is the CLI's.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats

from bench.errors import BenchError

PAIRWISE_THRESHOLD = 1.25
# Pairwise, on instruction counts: five counted runs of one commit put every benchmark within
# 0.19% (19 of 22 within 0.1%; results/reference/instructions/repeat.json), so 0.5% is 2.6 times
# the worst spread, and a change of 1% is flagged (docs/benchmarks-and-regressions.md).
INSTRUCTIONS_THRESHOLD = 1.005
CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 2000
SEED = 20240601
# Share of runs set aside at each end of a side (Yuen's trimmed t): one of five or more.
TRIM = 0.2


@dataclass
class Timings:
    """One benchmark in one results file (one process): its raw round times (or None) and summary statistics."""

    source: str
    data: np.ndarray | None
    median: float
    q1: float
    q3: float


@dataclass
class Side:
    """Every run of one benchmark on one side (base or candidate)."""

    name: str
    group: str | None
    runs: list[Timings]

    @property
    def raw(self) -> bool:
        """Return True when every run carries its raw round times."""
        return all(run.data is not None for run in self.runs)

    @property
    def log_medians(self) -> np.ndarray:
        """Return the log of every run's median, shape (runs,)."""
        return np.log([run.median for run in self.runs])

    @property
    def median(self) -> float:
        """Return the geometric mean of the per-run medians (the median itself for one run)."""
        return float(np.exp(np.mean(self.log_medians)))


@dataclass(frozen=True)
class Interval:
    """A ratio (candidate / base, or after / before) and its confidence interval."""

    ratio: float
    low: float
    high: float
    method: str


# --------------------------------------------------------------------------- Student's t, without SciPy


def t_quantile(p: float, df: float) -> float:
    """Return the p-quantile of Student's t with ``df`` degrees of freedom (any real df > 0, Welch's included)."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    return float(scipy.stats.t.ppf(p, df))


# --------------------------------------------------------------------------- intervals on a ratio


def _trimmed(values: np.ndarray, trim: float) -> tuple[float, float, int]:
    """Return (trimmed mean, squared standard error of it, values kept) of ``values`` (Yuen, 1974).

    ``floor(trim * n)`` values are set aside at each end; the spread is that of the
    winsorized values. With nothing trimmed this is the mean and s^2 / n.
    """
    x = np.sort(values)
    n = x.size
    k = math.floor(trim * n)
    kept = n - 2 * k
    winsorized = np.clip(x, x[k], x[n - k - 1])
    variance = float(winsorized.var(ddof=1)) if n > 1 else 0.0
    return float(x[k : n - k].mean()), (n - 1) * variance / (kept * (kept - 1)) if kept > 1 else 0.0, kept


def t_interval(
    base_logs: np.ndarray,
    cand_logs: np.ndarray,
    confidence: float = CONFIDENCE,
    trim: float = 0.0,
    pooled: bool = False,
) -> Interval:
    """Return the ratio exp(mean(cand_logs) - mean(base_logs)) with a t confidence interval.

    ``base_logs`` (n_b,) and ``cand_logs`` (n_c,) are log times, one per run (or per
    commit). By default Welch's interval (the sides may differ in noise); with
    ``trim`` > 0, Yuen's: the means are trimmed means, ``floor(trim * n)`` values set
    aside at each end, so one run beside a busy neighbour does not decide the verdict.
    ``pooled`` assumes one variance for both sides (no trimming), which lets a side of
    a single value borrow the other's spread: the same machine and configuration, as
    in a history. Welch and Yuen need two values per side; pooled, three in all.
    """
    base_logs, cand_logs = np.asarray(base_logs, dtype=float), np.asarray(cand_logs, dtype=float)
    n_b, n_c = base_logs.size, cand_logs.size
    if pooled:
        df = n_b + n_c - 2
        if df < 1:
            raise ValueError("a pooled t-interval needs at least three values in all")
        estimate = float(cand_logs.mean() - base_logs.mean())
        squares = float(((base_logs - base_logs.mean()) ** 2).sum() + ((cand_logs - cand_logs.mean()) ** 2).sum())
        se = math.sqrt(squares / df * (1.0 / n_b + 1.0 / n_c))
        method = f"pooled t-interval ({n_b}+{n_c} values)"
    else:
        if n_b < 2 or n_c < 2:
            raise ValueError("a Welch or Yuen t-interval needs at least two values per side")
        (mean_b, a, kept_b), (mean_c, b, kept_c) = _trimmed(base_logs, trim), _trimmed(cand_logs, trim)
        estimate, se = mean_c - mean_b, math.sqrt(a + b)
        # Welch-Satterthwaite; two sides without any spread get the largest df they could have.
        df = (a + b) ** 2 / (a * a / (kept_b - 1) + b * b / (kept_c - 1)) if a + b > 0 else float(n_b + n_c - 2)
        trimmed = kept_b < n_b or kept_c < n_c
        method = f"{'Yuen' if trimmed else 'Welch'} t-interval on run medians ({n_b}+{n_c} runs"
        method += f", {trim:.0%} trimmed)" if trimmed else ")"
    half = t_quantile(1.0 - (1.0 - confidence) / 2.0, df) * se
    return Interval(math.exp(estimate), math.exp(estimate - half), math.exp(estimate + half), method)


def _bootstrap_log_medians(side: Side, rng: np.random.Generator) -> np.ndarray:
    """Return BOOTSTRAP_SAMPLES resampled mean log medians of a side's runs, rounds resampled within each run."""
    per_run = np.empty((len(side.runs), BOOTSTRAP_SAMPLES))
    for i, run in enumerate(side.runs):
        draws = rng.choice(run.data, size=(BOOTSTRAP_SAMPLES, run.data.size), replace=True)
        per_run[i] = np.log(np.median(draws, axis=1))
    return per_run.mean(axis=0)


def bootstrap_interval(base: Side, cand: Side, confidence: float = CONFIDENCE, seed: int = SEED) -> Interval:
    """Return the ratio of typical times with a percentile bootstrap interval over the rounds of each run.

    Only the noise within each process is resampled, so this is for one run per side.
    """
    rng = np.random.default_rng(seed)
    log_ratios = _bootstrap_log_medians(cand, rng) - _bootstrap_log_medians(base, rng)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.exp(np.quantile(log_ratios, [alpha, 1.0 - alpha]))
    return Interval(cand.median / base.median, float(low), float(high), "bootstrap (raw timings, one run per side)")


def iqr_interval(base: Side, cand: Side) -> Interval:
    """Return the ratio with the range that the interquartile ranges allow (one summary per side, no raw times)."""
    b, c = base.runs[0], cand.runs[0]
    low = c.q1 / b.q3 if b.q3 > 0 else 0.0
    high = c.q3 / b.q1 if b.q1 > 0 else math.inf
    return Interval(cand.median / base.median, low, high, "IQR overlap")


# --------------------------------------------------------------------------- verdicts


@dataclass
class Verdict:
    """The comparison of one benchmark."""

    name: str
    group: str | None
    base: float
    cand: float
    ratio: float
    low: float
    high: float
    threshold: float
    method: str

    @property
    def regression(self) -> bool:
        """Return True when the interval's lower end is above the threshold."""
        return self.low > self.threshold

    @property
    def label(self) -> str:
        """Return the verdict in words, as the table shows it."""
        if self.regression:
            return "REGRESSION"
        if self.ratio > self.threshold:
            return "slower? not clear"
        if self.low > 1.0:
            return "slower, within threshold"
        if self.high < 1 / self.threshold:
            return "faster"
        if self.high < 1.0:
            return "faster, within threshold"
        return "no clear change"


def compare_benchmark(base: Side, cand: Side, threshold: float, seed: int = SEED) -> Verdict:
    """Return the verdict for one benchmark present on both sides (the interval as the module docstring says)."""
    if len(base.runs) >= 2 and len(cand.runs) >= 2:
        interval = t_interval(base.log_medians, cand.log_medians, trim=TRIM)
    elif len(base.runs) + len(cand.runs) >= 3:
        # One side has a single run: it borrows the other side's spread between runs.
        interval = t_interval(base.log_medians, cand.log_medians, pooled=True)
    elif base.raw and cand.raw:
        interval = bootstrap_interval(base, cand, seed=seed)
    else:
        interval = iqr_interval(base, cand)
    return Verdict(
        base.name,
        base.group,
        base.median,
        cand.median,
        interval.ratio,
        interval.low,
        interval.high,
        threshold,
        interval.method,
    )


@dataclass
class Comparison:
    """Every verdict, plus what could not be compared."""

    verdicts: list[Verdict]
    missing: list[str]
    only_cand: list[str]
    warnings: list[str]

    @property
    def regressions(self) -> list[Verdict]:
        """Return the verdicts that are regressions."""
        return [v for v in self.verdicts if v.regression]

    @property
    def failed(self) -> bool:
        """Return True when a benchmark regressed or went missing from the candidate."""
        return bool(self.regressions or self.missing)

    @property
    def geometric_mean(self) -> float:
        """Return the geometric mean of the candidate / base ratios."""
        return float(np.exp(np.mean(np.log([v.ratio for v in self.verdicts]))))


def compare_sides(
    base: dict[str, Side],
    cand: dict[str, Side],
    threshold: float = PAIRWISE_THRESHOLD,
    rules: Sequence[tuple[str, float]] = (),
    measure: str = "time",
) -> Comparison:
    """Return the comparison of two loaded sides ({key: Side}), or raise BenchError when they share no benchmark."""
    common = [key for key in base if key in cand]
    if not common:
        raise BenchError("the two sides have no benchmark in common; nothing to compare")
    warnings = []
    for label, side in (("base", base), ("candidate", cand)):
        if any(len(side[key].runs) == 1 and not side[key].raw for key in common):
            warnings.append(
                f"the {label} lacks raw timings for some benchmarks (save them with --benchmark-save-data); "
                "those are judged on summary statistics only, a weaker test"
            )
    if measure == "time" and any(len(base[key].runs) == 1 and len(cand[key].runs) == 1 for key in common):
        warnings.append(
            "one run per side: only the noise within a process is seen, so the threshold alone guards against "
            "the noise between processes; give folders of repeated runs for a t-interval on run medians"
        )
    verdicts = [
        compare_benchmark(
            base[key], cand[key], threshold_for(base[key].name, base[key].group, threshold, rules), seed=SEED + i
        )
        for i, key in enumerate(common)
    ]
    verdicts.sort(key=lambda v: (v.group or "", v.name))
    return Comparison(
        verdicts=verdicts,
        missing=sorted(base[k].name for k in base if k not in cand),
        only_cand=sorted(cand[k].name for k in cand if k not in base),
        warnings=warnings,
    )


# --------------------------------------------------------------------------- thresholds


def parse_threshold(text: str) -> float:
    """Return a threshold ratio (> 1) parsed from text like '1.3', or raise ValueError."""
    value = float(text)
    if not (math.isfinite(value) and value > 1.0):
        raise ValueError(f"a threshold is a ratio above 1, e.g. 1.25, got {text!r}")
    return value


def parse_threshold_for(text: str) -> tuple[str, float]:
    """Return (pattern, threshold) from 'PATTERN=RATIO', e.g. 'test_epoch*=1.5'."""
    pattern, sep, value = text.rpartition("=")
    if not sep or not pattern:
        raise ValueError(f"expected PATTERN=RATIO, e.g. 'test_epoch*=1.5', got {text!r}")
    return pattern, parse_threshold(value)


def threshold_for(name: str, group: str | None, default: float, rules: Sequence[tuple[str, float]]) -> float:
    """Return the threshold of a benchmark: the last rule whose glob matches its name or group, else default."""
    chosen = default
    for pattern, value in rules:
        if fnmatch.fnmatchcase(name, pattern) or (group is not None and fnmatch.fnmatchcase(group, pattern)):
            chosen = value
    return chosen
