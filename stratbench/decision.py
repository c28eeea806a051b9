"""The change detector's rule (`stratbench compare`, `stratbench noise`): when a ratio new/old
of paired rounds is a change.  A first pass over every case screens: a case whose ratio is
beyond the threshold (`judged`; its interval is not asked) is measured once more at the end in
fresh processes with a longer budget, and is reported changed only where the ratio of both
passes' rounds together is beyond the threshold with its interval excluding 1 ± MARGIN
(`change`), and each pass's own ratio is beyond the threshold too (`confirmed`)."""

from __future__ import annotations

import dataclasses

from stratbench import stats
from stratbench.measurement import Measurement

# A change smaller than this is reported unchanged even when resolved, and its interval must
# exclude a change of MARGIN.  Chosen on the AMD VM with the rule below (README, "Is a commit
# slower?"): identical code in two worktrees can run 5-9% apart for a whole compare (softmax
# xla forward 128x128: 0.894 in the first pass, 0.942 in the second), so at 6% two of seven
# A/A compares over the 132 default cases flagged a case; at 7% none did (threshold_scan.py
# on six, one run at 7%), while 10% more elements (about 1.06-1.10x here) was still flagged in
# 5-9 of 10 reruns in eleven sets of reruns and 20% in 9-10 of 10.
THRESHOLD = 0.07
MARGIN = 0.02
# Seconds of rounds a screened case gets when it is measured again (`confirmed`), against the
# first pass's 3: few cases are screened, and four times the rounds narrow the pooled interval
# (the rounds of small cases stop at max_rounds in both passes alike).
CONFIRM_BUDGET_S = 12.0
# A first pass's ratio beyond the threshold earns a second pass whatever its interval (None:
# `change` asks no interval): the first pass's 3 s give intervals of ±4-6%, and an interval
# that had to exclude 1 kept known 1.08x and 1.2x changes from a second look (README).
SCREEN_MARGIN = None
SLOWER, FASTER, UNCHANGED = "slower", "faster", "unchanged"


def change(ratio: stats.Interval, threshold: float = THRESHOLD, by_pass=(), margin: float | None = MARGIN) -> str:
    """The verdict on a time ratio new/old: slower or faster only where its interval excludes
    1 ± margin (None: the interval is not asked), the ratio exceeds the threshold, and so does
    each ratio of `by_pass` (the same ratio in each pass's own processes): a change must
    replicate in fresh processes.  One process can run slow for its life (in A/A comparisons
    on these VMs the first worker started ran 2-6% slower than the other three in the median
    case, up to 20%), and every case of a pass shares the same processes."""
    above = margin is None or ratio.low > 1 + margin
    below = margin is None or ratio.high < 1 / (1 + margin)
    if above and ratio.value > 1 + threshold and all(r > 1 + threshold for r in by_pass):
        return SLOWER
    if below and ratio.value < 1 / (1 + threshold) and all(r < 1 / (1 + threshold) for r in by_pass):
        return FASTER
    return UNCHANGED


def recorded_rule(threshold: float) -> dict:
    """The rule's figures, kept in every row of compare.csv and noise CSVs: a later reader
    (benchmarks/scripts/threshold_scan.py) judges each file by the rule it was made with."""
    return {"threshold": threshold, "margin": MARGIN, "screen_margin": SCREEN_MARGIN}


def rule(threshold: float = THRESHOLD, margin: float = MARGIN, screen_margin: float | None = SCREEN_MARGIN) -> str:
    """The detector's rule in words (compare's summary and --help, noise's report), with the
    screen a file was made with (SCREEN_MARGIN as it records it: older files have 0)."""
    interval = "" if screen_margin is None else \
        f" and whose interval excludes 1{f' ± {screen_margin:.0%}' if screen_margin else ''}"
    return (f"a case whose ratio is beyond {threshold:.0%}{interval} is measured once more in fresh worker processes, "
            f"and is flagged where both passes' rounds together have an interval that excludes 1 ± {margin:.0%} and "
            f"a ratio beyond {threshold:.0%}, and each pass's own ratio is beyond {threshold:.0%} too")


CONFIRM_COLUMNS = tuple(f"confirm_{k}" for k in ("ratio", "low", "high", "rounds", "by_process", "cpu_steal",
                                                  "verdict")) + \
    ("pooled_ratio", "pooled_low", "pooled_high")


def pooled(first: Measurement, again: Measurement) -> Measurement:
    """Both passes' samples as one Measurement, the second's processes numbered after the first's."""
    offset = max(first.processes(), default=-1) + 1
    return Measurement(first.samples + [s | {"process": s["process"] + offset} for s in again.samples])


def confirmed(first: dict, again: dict, both: stats.Interval | None, threshold: float = THRESHOLD) -> dict:
    """A screened case judged on its two passes: the second's figures (`judged`, fresh worker
    processes) as confirm_*, the ratio over both passes' rounds (`both`; None where the second
    could not be measured) as pooled_*, and the verdict `change` gives that ratio with each
    pass's ratio.  A worker process keeps its speed for its life and every case of a pass
    shares the same ones, so a change one set of processes shows must come back in another
    (A/A over the 138 default cases at 10%, each pass judged alone: one flag in each of three
    runs, a different case each time, both processes of one commit 8-19% off).  The first
    pass's rounds count too: judging the second pass alone, each process on its own, lost
    a 1.09x change in half the reruns here (README, "Is a commit slower?")."""
    verdict = change(both, threshold, (first["ratio"], again["ratio"])) if both else UNCHANGED
    return first | {c: again.get(c.removeprefix("confirm_")) for c in CONFIRM_COLUMNS if c.startswith("confirm_")} | {
        "pooled_ratio": both.value if both else None, "pooled_low": both.low if both else None,
        "pooled_high": both.high if both else None, "verdict": verdict}


def for_confirming(settings, budget_s: float = CONFIRM_BUDGET_S):
    """The settings a flagged case is measured again with: a group budget of `budget_s`."""
    budget_s = max(budget_s, settings.rounds.group_budget_s)
    return dataclasses.replace(settings, rounds=dataclasses.replace(settings.rounds, group_budget_s=budget_s))


def judged(m: Measurement, new: str, old: str, threshold: float = THRESHOLD) -> dict:
    """One pass's ratio new/old, its interval, its value in each process's rounds (shown, not
    judged) and the pass's verdict: after a first pass, whether to measure again.  That screen
    asks the ratio alone (SCREEN_MARGIN): a second look costs a case 12 s more, not a verdict."""
    ratio = m.ratio(new, old)
    by_process = [m.ratio(new, old, process).value for process in m.processes()]
    return {"ratio": ratio.value, "low": ratio.low, "high": ratio.high, "half_width": ratio.half_width,
            "rounds": ratio.n, "by_process": " ".join(f"{r:.3f}" for r in by_process),
            "cpu_steal": m.steal(), "verdict": change(ratio, threshold, margin=SCREEN_MARGIN)}
