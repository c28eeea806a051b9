"""The figures derived from a measured time, each computed here and nowhere else:
`stratbench run`, the asv and pytest-benchmark suites, the loaders, the reports and the
GPU harness all call these.  No TensorFlow, no pandas: the GPU harness imports it too."""

from __future__ import annotations

NOISY_IQR_FRACTION = 0.10  # a case whose IQR exceeds 10% of its median is flagged noisy
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


def is_noisy(median_s: float, iqr_s: float) -> bool:
    return bool(iqr_s > NOISY_IQR_FRACTION * median_s)


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


MARKS_LEGEND = (f"`{FASTEST_MARK}` fastest beyond the 95% interval of its paired ratio to the runner-up, `{TIE_MARK}` "
                f"tied for fastest (the interval does not exclude a difference under 5%), `{NOISY_MARK}` noisy "
                f"(IQR > {NOISY_IQR_FRACTION:.0%} of the median), `{CALL_BOUND_MARK}` call-bound (under "
                f"{CALL_BOUND:g}x its strategy's call floor: the call, not the op), `{EXCEEDED_MARK}` roofline exceeded "
                f"(over {ROOFLINE_EXCEEDED:g} of the memory roofline: a defect); [low, high]: the 95% interval of a paired ratio")


def over_budget(per_call_s: float, calls_so_far: int, min_rounds: int, case_budget_s: float) -> bool:
    """The too-slow rule: the calls made so far plus the rounds still to take (at one call
    each, at least) would not fit in the case budget."""
    return per_call_s * (calls_so_far + min_rounds) > case_budget_s
