"""The figures derived from a measured time, each computed here and nowhere else:
`stratbench run`, the asv and pytest-benchmark suites, the loaders, the reports and the
GPU harness all call these.  No TensorFlow, no pandas: the GPU harness imports it too."""

from __future__ import annotations

NOISY_IQR_FRACTION = 0.10  # a case whose IQR exceeds 10% of its median is flagged noisy
FASTEST_MARK, TIE_MARK, NOISY_MARK = "*", "=", "~"


def throughput(size: int, bytes_moved: int | None, median_s: float, roofline_bytes_per_s: float | None = None) -> dict:
    """elements/s (samples/s for a training step), and where the case has a least traffic,
    bytes/s and its fraction of a plain copy's bandwidth (the roofline) when that was measured."""
    out = {"elements_per_s": size / median_s}
    if bytes_moved:
        out["bytes_per_s"] = bytes_moved / median_s
        if roofline_bytes_per_s:
            out["roofline_fraction"] = out["bytes_per_s"] / roofline_bytes_per_s
    return out


def is_noisy(median_s: float, iqr_s: float) -> bool:
    return bool(iqr_s > NOISY_IQR_FRACTION * median_s)


def marked(text: str, fastest: bool, noisy: bool, tie: bool = False) -> str:
    """A table cell: '*' on the fastest of its row, '=' on those tied for fastest, '~' on a noisy timing."""
    return text + (FASTEST_MARK if fastest else "") + (TIE_MARK if tie else "") + (NOISY_MARK if noisy else "")


MARKS_LEGEND = (f"`{FASTEST_MARK}` fastest beyond the 95% interval of its paired ratio to the runner-up, `{TIE_MARK}` "
                f"tied for fastest (the interval does not exclude a difference under 5%), `{NOISY_MARK}` noisy "
                f"(IQR > {NOISY_IQR_FRACTION:.0%} of the median); [low, high]: the 95% interval of a paired ratio")


def over_budget(per_call_s: float, calls_so_far: int, min_rounds: int, case_budget_s: float) -> bool:
    """The too-slow rule: the calls made so far plus the rounds still to take (at one call
    each, at least) would not fit in the case budget."""
    return per_call_s * (calls_so_far + min_rounds) > case_budget_s
