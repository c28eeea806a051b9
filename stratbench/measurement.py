"""The one Measurement: every per-call sample of a comparison group, with the process and
round it came from, sampled in shuffled rounds until the ratios are known well enough.

A comparison group is what a decision compares: the strategies of one case (op, direction,
dtype, device, shape, setting), with their call floors at small sizes (`stratbench run`,
asv's harness pass), or one case at two commits (`stratbench compare`), or one case
against itself with more elements (`stratbench noise`).  Its entries are sampled in
rounds, in a new random order each round, so every ratio comes from samples taken
seconds apart (stratbench/stats.py).  Where the entries live (this process, one worker,
a worker per commit) is the sampler's business: `sample_rounds` only asks for samples.
No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from typing import Callable

import numpy as np
import pandas as pd

from stratbench import metrics, stats, status

# steal: the share of the machine's CPU time the hypervisor gave other guests during the
# sample's round (None where the system does not report it)
SAMPLE_COLUMNS = ["key", "process", "round", "seconds", "calls", "steal"]


def cpu_ticks() -> list[int] | None:
    """The machine's CPU time counters since boot (the first line of /proc/stat: user, nice,
    system, idle, iowait, irq, softirq, steal, ...), or None where there is no such file."""
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def steal_between(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of CPU time between two cpu_ticks() readings that a hypervisor took for other
    guests (steal time: a vCPU ready to run that did not), or None where it is not reported."""
    if not before or not after or len(before) < 8 or len(after) < 8:
        return None
    spent = [b - a for a, b in zip(before[:8], after[:8])]  # guest time is already counted in user
    total = sum(spent)
    return round(spent[7] / total, 4) if total > 0 else None  # ticks of 10 ms: no finer than that


@dataclasses.dataclass
class Measurement:
    """Samples of one group: (entry, process, round) -> seconds per call."""

    samples: list = dataclasses.field(default_factory=list)  # dicts with SAMPLE_COLUMNS (key = entry)

    def add(self, entry: str, process: int, round_: int, seconds: float, calls: int, steal: float | None = None) -> None:
        self.samples.append({"key": entry, "process": process, "round": round_, "seconds": seconds, "calls": calls,
                             "steal": steal})

    def rounds(self, entry: str, process: int | None = None) -> dict:
        """(process, round) -> seconds per call of one entry (of one process's rounds if given):
        the pairing key of its samples."""
        return {(s["process"], s["round"]): s["seconds"] for s in self.samples
                if s["key"] == entry and process in (None, s["process"])}

    def processes(self) -> list[int]:
        return sorted({s["process"] for s in self.samples})

    def entries(self) -> list[str]:
        return list(dict.fromkeys(s["key"] for s in self.samples))

    def time(self, entry: str) -> stats.Interval:
        """Median seconds per call with its 95% interval."""
        return stats.median_interval(self.rounds(entry).values())

    def median(self, entry: str) -> float:
        """Median seconds per call: `time(entry).value` without its interval, for choosing the
        fastest after every round (the interval's binomial test takes milliseconds)."""
        return float(np.median(list(self.rounds(entry).values())))

    def ratio(self, numerator: str, denominator: str, process: int | None = None) -> stats.Interval:
        """Paired time ratio numerator / denominator (above 1: the numerator is slower), over
        every round or over one process's."""
        return stats.paired_ratio(self.rounds(numerator, process), self.rounds(denominator, process))

    def summary(self, entry: str) -> dict:
        """The figures of one entry that go into its row of the tidy table."""
        values = sorted(self.rounds(entry).values())
        mine = [s for s in self.samples if s["key"] == entry]
        time_ = stats.median_interval(values)
        q1, q3 = (pd.Series(values).quantile([0.25, 0.75]).tolist() if values else (math.nan, math.nan))
        return {"median_s": time_.value, "ci_low_s": time_.low, "ci_high_s": time_.high, "iqr_s": q3 - q1,
                "noisy": metrics.is_noisy(time_.value, q3 - q1, time_.low, time_.high), "samples": len(values),
                "calls_per_sample": max((s["calls"] for s in mine), default=None),
                "processes": len({s["process"] for s in mine}), "cpu_steal": self.steal(entry)}

    def steal(self, entry: str | None = None) -> float | None:
        """The mean steal of the rounds the samples (of one entry, if given) were taken in;
        None where none was recorded."""
        steal = [s["steal"] for s in self.samples if entry in (None, s["key"])
                 and s.get("steal") is not None and not math.isnan(s["steal"])]
        return float(np.mean(steal)) if steal else None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.samples, columns=SAMPLE_COLUMNS)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "Measurement":
        return cls(frame.reindex(columns=SAMPLE_COLUMNS).to_dict("records"))  # older runs kept no steal


@dataclasses.dataclass
class Rounds:
    """How a group is sampled: at least min_rounds rounds; then until every contender's ratio
    to the fastest is known within ±precision (or is resolved slower than it), or max_rounds,
    or the group's budget of seconds after min_rounds."""

    min_rounds: int = stats.MIN_ROUNDS
    max_rounds: int = 60
    precision: float = 0.03
    group_budget_s: float = 8.0
    far_behind: float = 10.0  # a contender this much slower than the fastest (whole interval) leaves the rounds (py_func)
    # A contender slower than the fastest beyond the tie margin, its ratio known within this,
    # leaves the rounds too: the rounds go to the contenders whose order is still open (0: never).
    resolved: float = 0.10
    seed: int | None = None  # the order of each round: random unless a seed is given


def sample_rounds(sampler: Callable[[str, int, int], float], entries: dict, rounds: Rounds,
                  contenders=None, keep=(), processes: int = 1, measurement: Measurement | None = None,
                  on_round=None) -> Measurement:
    """Samples `entries` ({name: calls per sample}) in shuffled rounds: sampler(name, round,
    process) -> seconds per call; round r runs in process r % processes, after one unrecorded
    round in each (the first samples after a setup are slow: allocator growth, first touch).
    `contenders` (default: every entry) are the ones whose ratios to the fastest decide when
    to stop; a contender far behind the fastest leaves the rounds, except those in `keep`
    (the baseline); the others (call floors) are sampled while any contender is.
    Returns the Measurement (samples appended to `measurement`)."""
    measurement = measurement or Measurement()
    contenders = [c for c in (contenders if contenders is not None else entries) if c in entries]
    rng = random.Random(rounds.seed)
    for process in range(processes):
        for name in entries:
            sampler(name, 0, process)
    active = list(entries)
    started = None  # the budget counts from the end of min_rounds, once slow entries far behind have left
    for r in range(rounds.max_rounds):
        order = active[:]
        rng.shuffle(order)
        before, times = cpu_ticks(), {name: sampler(name, r, r % processes) for name in order}
        steal = steal_between(before, cpu_ticks())  # what the machine lost to other guests in this round
        for name in order:
            measurement.add(name, r % processes, r, times[name], entries[name], steal)
        if on_round:
            on_round(r)
        if r + 1 < rounds.min_rounds:
            continue
        started = started or time.perf_counter()
        settled, active = _settled(measurement, contenders, rounds), []
        if all(settled.values()) or time.perf_counter() - started > rounds.group_budget_s:
            break
        fastest = min(contenders, key=measurement.median)
        far = {c for c in contenders if c != fastest and c not in keep
               and _behind(measurement.ratio(c, fastest), rounds)}
        active = [name for name in entries if name not in far]
    return measurement


def _settled(measurement: Measurement, contenders: list, rounds: Rounds) -> dict:
    """contender -> whether its ratio to the fastest is known well enough to stop."""
    if len(contenders) < 2:
        return {c: measurement.time(c).half_width <= rounds.precision for c in contenders}
    fastest = min(contenders, key=measurement.median)
    out = {}
    for c in contenders:
        if c == fastest:
            continue
        ratio = measurement.ratio(c, fastest)
        out[c] = ratio.half_width <= rounds.precision or _behind(ratio, rounds)
    return out


def _behind(ratio: stats.Interval, rounds: Rounds) -> bool:
    """Whether a contender's time over the fastest's says it need not be sampled any more:
    far behind, or slower beyond the tie margin and known within ±rounds.resolved."""
    return ratio.low > rounds.far_behind or (ratio.low > 1 + stats.TIE_MARGIN and ratio.half_width <= rounds.resolved)


def group_figures(measurement: Measurement, contenders: dict, baseline: str | None,
                  margin: float = stats.TIE_MARGIN) -> dict:
    """Per contender ({entry: strategy name}), the group's paired figures: its speedup over
    the baseline strategy's entry (baseline time / its time), its time over the fastest's,
    and its rank: 'fastest' when it beats
    every other contender beyond the interval and the margin, 'tie' when it cannot be told
    apart from the fastest (the fastest of a tie is 'tie' too), else ''."""
    names = [c for c in contenders if measurement.rounds(c)]
    if not names:
        return {}
    fastest = min(names, key=measurement.median)
    base = next((c for c in names if contenders[c] == baseline), None)
    out = {}
    for c in names:
        vs_fastest = measurement.ratio(c, fastest) if c != fastest else stats.Interval(1.0, 1.0, 1.0, 0)
        speedup = measurement.ratio(base, c) if base else stats.NO_INTERVAL
        out[c] = {"speedup": speedup.value, "speedup_low": speedup.low, "speedup_high": speedup.high,
                  "vs_fastest": vs_fastest.value, "vs_fastest_low": vs_fastest.low, "vs_fastest_high": vs_fastest.high,
                  "rank": ""}
    tied = [c for c in names if c != fastest and stats.verdict(measurement.ratio(c, fastest), margin) != "slower"]
    if len(names) > 1:
        out[fastest]["rank"] = "tie" if tied else "fastest"
    for c in tied:
        out[c]["rank"] = "tie"
    return out


def speedup_of(row, group: pd.DataFrame, baseline: str) -> stats.Interval:
    """A tidy row's speedup over `baseline` in its comparison group (the rows of its case):
    the paired speedup with its 95% interval where the run stored one over this baseline,
    else the ratio of the medians with no interval (other tools' results, another baseline);
    NO_INTERVAL without the baseline in the group.  Every speedup shown is this one."""
    if row.get("baseline") == baseline and pd.notna(row.get("speedup")):
        low, high = row.get("speedup_repro_low"), row.get("speedup_repro_high")  # the reproducibility interval
        if not (pd.notna(low) and pd.notna(high)):  # where the machine type has a stored spread, else the run's
            low, high = row.get("speedup_low"), row.get("speedup_high")
        return stats.Interval(float(row["speedup"]), float(low) if pd.notna(low) else math.nan,
                              float(high) if pd.notna(high) else math.nan,
                              int(row["samples"]) if pd.notna(row.get("samples")) else 0)
    base = group.loc[(group["strategy"] == baseline) & (group["status"] == status.OK), "median_s"]
    if not len(base) or not pd.notna(row.get("median_s")):
        return stats.NO_INTERVAL
    return stats.Interval(float(base.iloc[0]) / float(row["median_s"]), math.nan, math.nan, 0)


def speedup_text(row, group: pd.DataFrame, baseline: str) -> str:
    """'2.18x [2.10, 2.25]' (speedup_of, its interval where there is one); '' without the baseline."""
    speedup = speedup_of(row, group, baseline)
    if not math.isfinite(speedup.value):
        return ""
    interval = f" [{speedup.low:.2f}, {speedup.high:.2f}]" if math.isfinite(speedup.low) else ""
    return f"{speedup.value:.2f}x{interval}"


def rank_of(row, group: pd.DataFrame) -> tuple[bool, bool]:
    """(fastest, tied for fastest) of a row within its comparison group: the paired rank from
    reproducibility intervals where there are some (stratbench/repro.py), else from the run's
    own, else the lowest median."""
    if "rank_repro" in group and group["rank_repro"].notna().any():
        return row.get("rank_repro") == "fastest", row.get("rank_repro") == "tie"
    if "rank" in group and group["rank"].notna().any():
        return row.get("rank") == "fastest", row.get("rank") == "tie"
    ok = group[group["status"] == status.OK]
    return bool(row["median_s"] == ok["median_s"].min()), False
