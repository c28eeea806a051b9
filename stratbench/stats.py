"""Statistics of paired samples, each computed here and nowhere else.

A comparison group's entries (strategies of one case, the copy reference, or one case at
two commits) are sampled in rounds, in a shuffled order each round, so the samples of
one round were taken seconds apart and share the machine's state.  A ratio is then the
Hodges-Lehmann estimate of the per-round ratios (the median of their pairwise means, in
logs), with the 95% interval that inverts the Wilcoxon signed-rank test: the drift of the
machine over minutes cancels in each round's ratio, and what is left is in the interval.
It needs only a symmetric spread of the per-round log ratios, and from the same rounds it
varies less than their median (three runs' samples recomputed: 80-84% of in-group speedups
within 10% between runs against 71-78%; the detector's intervals a fifth narrower with as
many flags; README, "How stratbench measures").  No TensorFlow: the loaders and reports
use it too.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

CONFIDENCE = 0.95
MIN_ROUNDS = 6  # the fewest rounds whose order statistics give a 95% interval of the median
# A difference counts only where the whole interval lies beyond 1 by more than this; any
# other pair is a tie (equal, or not resolved).  Smaller differences flipped between runs
# of the same code on these shared machines (README, "How stratbench measures").
TIE_MARGIN = 0.05
# How a run's ratios were estimated, as its `measured_with` says (timing.Settings.describe)
# and captions read back.
RATIO_ESTIMATOR = "Hodges-Lehmann ratios"


@dataclasses.dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% interval; n is how many values (rounds) it rests on."""

    value: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        """Half the interval's width, relative (0.03: about ±3%)."""
        if not (self.low > 0 and math.isfinite(self.high)):
            return math.inf
        return (math.log(self.high) - math.log(self.low)) / 2

    def text(self) -> str:
        if not math.isfinite(self.half_width):
            return f"{self.value:.2f}x (interval unknown: {self.n} rounds)"
        return f"{self.value:.2f}x [{self.low:.2f}, {self.high:.2f}]"


NO_INTERVAL = Interval(math.nan, math.nan, math.nan, 0)


def median_interval(values) -> Interval:
    """The median of `values` with its distribution-free 95% interval (NaN bounds below
    MIN_ROUNDS values)."""
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(values) == 0:
        return NO_INTERVAL
    median = float(np.median(values))
    if len(values) < MIN_ROUNDS:
        return Interval(median, math.nan, math.nan, len(values))
    from scipy import stats  # here, not at import: a worker (which never summarises) starts 0.7 s sooner

    ci = stats.quantile_test(values, p=0.5).confidence_interval(CONFIDENCE)
    return Interval(median, float(ci.low), float(ci.high), len(values))


@functools.lru_cache(maxsize=None)
def _signed_rank_rank(n: int) -> int:
    """k such that the k-th smallest and k-th largest of the n(n+1)/2 pairwise means of n
    values bound their Hodges-Lehmann estimate with CONFIDENCE (at least): from the exact
    null distribution of the signed-rank statistic (each rank in or out with probability 1/2)."""
    distribution = np.zeros(n * (n + 1) // 2 + 1)
    distribution[0] = 1.0
    for rank in range(1, n + 1):
        distribution[rank:] = (distribution[rank:] + distribution[:-rank]) / 2  # the sum is a new array
        distribution[:rank] /= 2
    below = np.cumsum(distribution)
    return max(1, int(np.searchsorted(below, (1 - CONFIDENCE) / 2, side="right")))


def hodges_lehmann_interval(values) -> Interval:
    """The Hodges-Lehmann estimate of `values`' centre (the median of all pairwise means
    (v_i + v_j) / 2, i <= j) with its 95% interval from the signed-rank test (NaN bounds
    below MIN_ROUNDS values)."""
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(values) == 0:
        return NO_INTERVAL
    i, j = np.triu_indices(len(values))
    means = np.sort((values[i] + values[j]) / 2)
    estimate = float(np.median(means))
    if len(values) < MIN_ROUNDS:
        return Interval(estimate, math.nan, math.nan, len(values))
    k = _signed_rank_rank(len(values))
    return Interval(estimate, float(means[k - 1]), float(means[-k]), len(values))


def paired_ratio(numerator: dict, denominator: dict) -> Interval:
    """numerator / denominator from rounds both took part in ({round id: seconds}): the
    Hodges-Lehmann estimate of the per-round log ratios, with its 95% interval, back in
    ratios.  For a time ratio, above 1 means the numerator is slower (so baseline/strategy
    is the strategy's speedup)."""
    shared = sorted(set(numerator) & set(denominator))
    logs = [math.log(numerator[r] / denominator[r]) for r in shared if numerator[r] > 0 and denominator[r] > 0]
    interval = hodges_lehmann_interval(logs)
    return Interval(*(math.exp(v) if math.isfinite(v) else math.nan for v in (interval.value, interval.low, interval.high)),
                    interval.n)


def verdict(ratio: Interval, margin: float = TIE_MARGIN) -> str:
    """'faster', 'slower' or 'tie' for a time ratio new/old (or a strategy over another):
    a difference counts only where the interval excludes 1 by more than `margin`."""
    if ratio.low > 1 + margin:
        return "slower"
    if ratio.high < 1 / (1 + margin):
        return "faster"
    return "tie"
