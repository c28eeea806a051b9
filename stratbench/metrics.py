"""The figures derived from a measured time, each computed here and nowhere else:
`stratbench run`, the asv and pytest-benchmark suites, the loaders, the reports and the
GPU harness all call these.  No TensorFlow, no pandas: the GPU harness imports it too."""

from __future__ import annotations

import math

# A timing is noisy where the 95% interval of its median is wider than ±10% of it (half its
# width in logs, as stats.Interval.half_width); results kept without that interval (fewer
# than stats.MIN_ROUNDS rounds, asv, pytest-benchmark, runs before paired rounds): where
# their IQR exceeds 10% of the median.
NOISY_HALF_WIDTH = 0.10
NOISY_IQR_FRACTION = 0.10
ROOFLINE_EXCEEDED = 1.05  # a fraction of the memory roofline above this is a defect (of the model or the timing)
CALL_BOUND = 2.0  # a case within this factor of its strategy's call floor is mostly the call, not the op
FASTEST_MARK, TIE_MARK, NOISY_MARK, CALL_BOUND_MARK, EXCEEDED_MARK = "*", "=", "~", "^", "!"


def throughput(size: int, bytes_moved: int | None, median_s: float, roofline_bytes_per_s: float | None = None) -> dict:
    """elements/s (samples/s for a training step), and where the case has a least traffic,
    bytes/s and its fraction of a plain copy's bandwidth (the roofline) when that was measured."""
    out = {"elements_per_s": size / median_s}
    if bytes_moved:
        out["bytes_per_s"] = bytes_moved / median_s
        if roofline_bytes_per_s:
            out["roofline_fraction"] = out["bytes_per_s"] / roofline_bytes_per_s
    return out


def is_call_bound(median_s: float, floor_s: float | None) -> bool | None:
    """Whether a time is within CALL_BOUND of its call floor (None without a floor)."""
    if floor_s is None or floor_s != floor_s:
        return None
    return bool(median_s < CALL_BOUND * floor_s)


def exceeds_roofline(roofline_fraction: float | None) -> bool:
    return roofline_fraction is not None and roofline_fraction == roofline_fraction and roofline_fraction > ROOFLINE_EXCEEDED


def _number(value) -> float | None:
    """A finite float of a row's cell, or None (None, NaN, '' or text read back from CSV)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def is_noisy(median_s: float, iqr_s: float | None = None, ci_low_s: float | None = None,
             ci_high_s: float | None = None) -> bool | None:
    """The noisy mark, defined here only: the 95% interval of the median time wider than
    ±NOISY_HALF_WIDTH (half its width in logs), or, without that interval, the IQR above
    NOISY_IQR_FRACTION of the median; None when neither was recorded."""
    median, low, high, iqr = (_number(v) for v in (median_s, ci_low_s, ci_high_s, iqr_s))
    if median is None or median <= 0:
        return None
    if low is not None and high is not None and low > 0:
        return bool((math.log(high) - math.log(low)) / 2 > NOISY_HALF_WIDTH)
    if iqr is not None:
        return bool(iqr > NOISY_IQR_FRACTION * median)
    return None


def _cells(row):
    """A getter of a tidy row's cells by name: a dict, a Series or an itertuples row (None where absent)."""
    return row.get if hasattr(row, "get") else lambda name: getattr(row, name, None)


def is_noisy_row(row) -> bool:
    """is_noisy of a tidy row: what every table marks `~`, computed from the row's figures (runs
    made before the `noisy` cell was filled in left it empty)."""
    get = _cells(row)
    return bool(is_noisy(get("median_s"), get("iqr_s"), get("ci_low_s"), get("ci_high_s")))


def median_spread(row) -> tuple[float, float] | None:
    """(low, high) of a row's median time: its 95% interval, else median ± IQR/2; None
    without either."""
    get = _cells(row)
    median, low, high, iqr = (_number(get(c)) for c in ("median_s", "ci_low_s", "ci_high_s", "iqr_s"))
    if median is None:
        return None
    if low is not None and high is not None:
        return low, high
    return (median - iqr / 2, median + iqr / 2) if iqr is not None else None


def clearly_faster(a, b) -> bool:
    """Whether row a is faster than row b beyond their spreads (median_spread: the 95%
    intervals of the medians, or the IQRs), for results without paired rounds; without a
    spread, never."""
    sa, sb = median_spread(a), median_spread(b)
    return sa is not None and sb is not None and sa[1] < sb[0]


def allocator_bytes(value) -> float | None:
    """A figure of TF's allocator (peak_tf_bytes, kept_for_backward_bytes) where it was
    measured, else None.  Every case allocates its output at least, so a recorded 0 is an
    allocator that did not count the case's tensors (oneDNN's counts no small ones): not
    measured, never 0 bytes."""
    value = _number(value)
    return value if value else None


ALLOCATOR_COLUMNS = ("peak_tf_bytes", "kept_for_backward_bytes")  # the figures allocator_bytes reads


def allocator_zeros_unmeasured(table):
    """The table with a 0 from TF's allocator as not measured (NaN), as allocator_bytes reads it."""
    return table.assign(**{c: table[c].map(allocator_bytes) for c in ALLOCATOR_COLUMNS if c in table})


ALLOCATOR_ZERO = ("TF's allocator counted none of the case's tensors (0 recorded; oneDNN's allocator does not "
                  "count small ones)")


def marked(text: str, fastest: bool, noisy: bool, tie: bool = False, call_bound: bool = False,
           exceeded: bool = False) -> str:
    """A table cell: '*' on the fastest of its row, '=' on those tied for fastest, '~' on a noisy
    timing, '^' on a call-bound one, '!' where the roofline is exceeded."""
    return (text + (FASTEST_MARK if fastest else "") + (TIE_MARK if tie else "") + (NOISY_MARK if noisy else "")
            + (CALL_BOUND_MARK if call_bound else "") + (EXCEEDED_MARK if exceeded else ""))


def row_marks(row) -> dict:
    """marked()'s call_bound and exceeded flags of a tidy row (absent columns: not marked)."""
    return {"call_bound": str(row.get("call_bound")) == "True",  # a bool, numpy's, or read back from CSV
            "exceeded": exceeds_roofline(row.get("roofline_fraction"))}


NOISY_LEGEND = (f"`{NOISY_MARK}` noisy time (the 95% interval of the median is wider than ±{NOISY_HALF_WIDTH:.0%}; "
                f"without one, IQR > {NOISY_IQR_FRACTION:.0%} of the median)")


def marks_legend(times: bool = True) -> str:
    """What the marks of a table mean; `times`: its cells show a median time, the only thing
    the noisy mark is about (a table of speedups alone, the headline, has none: each speedup
    shows its own interval)."""
    noisy = f"{NOISY_LEGEND}, " if times else ""
    return (f"`{FASTEST_MARK}` fastest beyond the 95% interval of its paired ratio to the runner-up (results kept "
            f"without paired rounds: the spread of its median clear of every other's), `{TIE_MARK}` tied for fastest "
            f"(the interval does not exclude a difference under 5%), {noisy}`{CALL_BOUND_MARK}` call-bound (under "
            f"{CALL_BOUND:g}x its strategy's call floor: the call, not the op), `{EXCEEDED_MARK}` roofline exceeded "
            f"(over {ROOFLINE_EXCEEDED:g} of the memory roofline: a defect); [low, high]: a paired ratio's 95% interval "
            "(of this run, or where a rerun lands: the caption says which)")


MARKS_LEGEND = marks_legend()
SPEEDUP_MARKS_LEGEND = marks_legend(times=False)


def over_budget(per_call_s: float, calls_so_far: int, min_rounds: int, case_budget_s: float) -> bool:
    """The too-slow rule: the calls made so far plus the rounds still to take (at one call
    each, at least) would not fit in the case budget."""
    return per_call_s * (calls_so_far + min_rounds) > case_budget_s
