"""`stratbench agree`: do two or more runs of the same command agree on what a user decides by?

Compares `stratbench run` folders of the same cases (A/A: the same command, one run after the
other), per comparison group (op, direction, dtype, device, shape, setting) and each pair of runs:

- every in-group speedup (each strategy's time over every other's, paired within its run):
  how many are within 10% of the other run's, and the contradicted rankings (one run has A
  ahead of B by more than 5%, the other B ahead of A by more than 5%);
- the winner: the same, or both runs declare a tie (`rank` 'tie'), else a winner change;
- each strategy's time over the first run's fastest, in the other run: inside the first
  run's 95% interval or within 5% of it;
- at each (op, direction, setting)'s largest size, the same for the stored speedups over the
  baseline, and the winner changes there;
- first, for each run that recorded it, the CPU time a hypervisor gave other guests during
  its rounds (steal).

`pool=K` pools the samples of each K runs in a row (each run's rounds and processes kept apart)
and compares the pooled sets as if each were one run sampled in K windows (the largest-size
figures: single runs only).  Runs from before paired rounds (no samples.csv.gz) are compared
by their medians.  The functions return data; `text` says it in lines.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import pathlib

import pandas as pd

from stratbench import results, status
from stratbench.measurement import Measurement, group_figures

GROUP = ["op", "direction", "dtype", "device", "shape", "env"]  # what the strategies of one comparison group share
WITHIN = 0.10  # an in-group speedup agrees with the other run's within this
CONTRADICTED = 0.05  # a ranking is contradicted where each run has its own order beyond this
NEAR = 0.05  # a ratio outside the first run's interval still agrees within this


@dataclasses.dataclass
class Figures:
    """The in-group figures of one run, or of several runs' samples pooled."""

    runs: list[pathlib.Path]
    ratios: dict  # (group, a, b) -> time of a over time of b (paired within the run; medians before paired rounds)
    winners: dict  # group -> its 'fastest' strategy, or 'tie' (the lowest median before paired rounds)
    fastest: dict  # group -> its strategy of the lowest median
    vs_fastest: dict  # (group, strategy) -> stats.Interval of its time over `fastest`'s (None: none paired)


@dataclasses.dataclass
class Largest:
    """Two single runs at each (op, direction, setting)'s largest size."""

    speedups: int  # speedups over the baseline in both runs
    inside: int  # of them, the second run's inside the first's 95% interval
    agreeing: int  # inside, or within NEAR of the first's
    off: list  # (group, strategy, speedup, low, high, second run's speedup) of the others
    groups: int  # groups with a winner in the first run
    ties: int  # of them, declared ties in the first run
    winner_changes: list  # (group, first run's winner, second run's)


@dataclasses.dataclass
class Pair:
    """How two runs (or pooled sets) agree; `first` and `second` count from 1, in the order given."""

    first: int
    second: int
    groups: int  # comparison groups both measured
    speedups: int  # in-group speedups both have (each ordered pair of strategies)
    within: int  # of them, within WITHIN of the other run's
    contradictions: list  # (group, a, b, first run's a/b, second's): opposite orders, each beyond CONTRADICTED
    winner_changes: list  # (group, first's winner, second's): not both ties
    outside: list  # (group, strategy, fastest, Interval in the first run, ratio in the second)
    largest: Largest | None  # single runs only

    @property
    def share(self) -> float:
        return self.within / self.speedups if self.speedups else math.nan


@dataclasses.dataclass
class Agreement:
    sets: list[list[pathlib.Path]]  # the runs compared, one per set (several with pooling)
    steal: list[tuple[int, str]]  # (run number, its steal line) of the runs that recorded steal
    pairs: list[Pair]
    pool: int = 1


def label(group) -> str:
    """A group as op/direction/shape, with its dtype, device and setting where not the default's."""
    op, direction, dtype, device, shape, env = group
    extra = [v for v, default in ((dtype, "float32"), (device, "CPU"), (env, "default")) if v != default]
    return "/".join(map(str, (op, direction, shape, *extra)))


def pooled_samples(run_dirs) -> pd.DataFrame | None:
    """The samples of `run_dirs` as one run's: run i's processes and rounds renumbered apart;
    None where a run has none (made before paired rounds)."""
    frames = [results.read_samples(d) for d in run_dirs]
    if any(f is None for f in frames):
        return None
    return pd.concat([f.assign(process=f["process"] + 1000 * i, round=f["round"] + 1_000_000 * i)
                      for i, f in enumerate(frames)], ignore_index=True)


def _ok(run_dir) -> pd.DataFrame:
    table = results.load(run_dir)
    return table[table["status"] == status.OK]


def figures(run_dirs) -> Figures:
    """The in-group figures of one run (a list of one), or of runs' samples pooled, over the
    first run's cases."""
    run_dirs = [pathlib.Path(d) for d in run_dirs]
    table = _ok(run_dirs[0])
    samples = pooled_samples(run_dirs)
    by_key = {} if samples is None else \
        {k: Measurement.from_frame(f).samples for k, f in samples.groupby("key", sort=False)}
    ratios, winners, fastest, vs_fastest = {}, {}, {}, {}
    for group, rows in table.groupby(GROUP):
        keys = dict(zip(rows["strategy"], rows["key"]))
        medians = dict(zip(rows["strategy"], rows["median_s"]))
        m = Measurement([s for k in keys.values() for s in by_key.get(k, [])]) if samples is not None else None
        for a, b in itertools.permutations(keys, 2):
            ratios[(group, a, b)] = m.ratio(keys[a], keys[b]).value if m else medians[a] / medians[b]
        best = rows.loc[rows["median_s"].idxmin(), "strategy"]
        if m:
            ranks = list(rows["rank"])
            if len(run_dirs) > 1:  # pooled: ranked again from every run's samples
                pooled = group_figures(m, dict(zip(rows["key"], rows["strategy"])), None)
                ranks = [pooled.get(k, {}).get("rank", "") for k in rows["key"]]
            first = [s for s, r in zip(rows["strategy"], ranks) if r == "fastest"]
            winners[group] = first[0] if first else "tie"
        else:  # no ties without intervals: the lowest median wins
            winners[group] = best
        fastest[group] = best
        for s in keys:
            vs_fastest[(group, s)] = m.ratio(keys[s], keys[best]) if m and s != best else None
    return Figures(run_dirs, ratios, winners, fastest, vs_fastest)


def _beyond(ratio: float, margin: float) -> bool:
    return abs(math.log(ratio)) > math.log(1 + margin)


def pair(a: Figures, b: Figures, first: int = 1, second: int = 2) -> Pair:
    """How the figures of two runs (or pooled sets) agree, and at the largest sizes where
    each is a single run."""
    shared = [k for k in a.ratios if k in b.ratios and math.isfinite(a.ratios[k]) and math.isfinite(b.ratios[k])]
    within = sum(not _beyond(a.ratios[k] / b.ratios[k], WITHIN) for k in shared)
    high, low = 1 + CONTRADICTED, 1 / (1 + CONTRADICTED)
    contradictions = [(k[0], k[1], k[2], a.ratios[k], b.ratios[k]) for k in shared if k[1] < k[2] and
                      ((a.ratios[k] > high and b.ratios[k] < low) or (a.ratios[k] < low and b.ratios[k] > high))]
    changes = [(g, a.winners[g], b.winners[g]) for g in a.winners
               if g in b.winners and a.winners[g] != b.winners[g]]  # two ties are equal: not a change
    outside = []
    for (group, s), interval in a.vs_fastest.items():
        if interval is None:
            continue
        best = a.fastest[group]
        other = b.ratios.get((group, s, best))
        if other is None or not math.isfinite(other):
            continue
        if not (interval.low <= other <= interval.high) and _beyond(other / interval.value, NEAR):
            outside.append((group, s, best, interval, other))
    largest = largest_sizes(a.runs[0], b.runs[0], a.winners, b.winners) if len(a.runs) == len(b.runs) == 1 else None
    return Pair(first, second, len(a.winners.keys() & b.winners.keys()), len(shared), within, contradictions,
                changes, outside, largest)


def largest_sizes(run_a, run_b, winners_a: dict, winners_b: dict) -> Largest:
    """At each (op, direction, setting)'s largest size: the second run's speedups over the
    baseline inside the first run's 95% interval or within NEAR of it, and the winner changes
    (winners_*: each run's `figures(...).winners`)."""
    def largest(run_dir):
        t = _ok(run_dir)
        return pd.concat([g[g["size"] == g["size"].max()] for _, g in t.groupby(["op", "direction", "env"])]) \
            if len(t) else t

    a, b = largest(run_a), largest(run_b)
    m = a.merge(b, on=GROUP + ["strategy"], suffixes=("_1", "_2"))
    # a run without its baseline (--strategies without native) has no speedups over it
    m = m[(m["strategy"] != m["baseline_1"]) & m[["speedup_1", "speedup_low_1", "speedup_2"]].notna().all(axis=1)]
    inside = (m["speedup_2"] >= m["speedup_low_1"]) & (m["speedup_2"] <= m["speedup_high_1"])
    near = (m["speedup_2"] / m["speedup_1"]).map(lambda r: not _beyond(r, NEAR)).astype(bool)
    off = [(tuple(getattr(r, c) for c in GROUP), r.strategy, r.speedup_1, r.speedup_low_1, r.speedup_high_1,
            r.speedup_2) for r in m[~(inside | near)].itertuples()]
    groups = [g for g, _ in a.groupby(GROUP)] if len(a) else []
    first = {g: winners_a[g] for g in groups if g in winners_a}
    changes = [(g, first[g], winners_b[g]) for g in first if g in winners_b and first[g] != winners_b[g]]
    return Largest(len(m), int(inside.sum()), int((inside | near).sum()), off, len(first),
                   sum(w == "tie" for w in first.values()), changes)


def agree(runs, pool: int = 1) -> Agreement:
    """Every pair of runs (or of pooled sets of `pool` runs in a row) compared; ValueError
    (results.NotResults where a folder holds no run) on bad input."""
    runs = [pathlib.Path(r) for r in runs]
    if pool < 1:
        raise ValueError(f"pool wants a whole number of runs of at least 1, got {pool}")
    if len(runs) < 2 * pool or len(runs) % pool:
        raise ValueError(f"got {len(runs)} runs: want at least two" + (
            f" sets of {pool} (a multiple of {pool})" if pool > 1 else ""))
    sets = [runs[i:i + pool] for i in range(0, len(runs), pool)]
    steal = [(k + 1, line) for k, line in enumerate(steal_of(run) for run in runs) if line]
    data = [figures(s) for s in sets]
    pairs = [pair(a, b, i + 1, j + 1) for (i, a), (j, b) in itertools.combinations(enumerate(data), 2)]
    return Agreement(sets, steal, pairs, pool)


def steal_of(run_dir) -> str:
    """The run's steal in one line ('' where it recorded none)."""
    from stratbench.tables import steal_line

    return steal_line(results.load(run_dir))


def text(agreement: Agreement) -> str:
    """The agreement in lines, as `stratbench agree` prints it."""
    kind = "sets" if agreement.pool > 1 else "runs"
    lines = []
    if agreement.pool > 1:
        lines += [f"set {k + 1}: " + " + ".join(map(str, s)) for k, s in enumerate(agreement.sets)]
    else:
        lines += [f"run {k + 1}: {s[0]}" for k, s in enumerate(agreement.sets)]
    lines += [f"run {k}: {line}" for k, line in agreement.steal]
    for p in agreement.pairs:
        lines.append(f"{kind} {p.first} and {p.second}: {p.groups} comparison groups in both; {p.within} of "
                     f"{p.speedups} in-group speedups within {WITHIN:.0%}"
                     + (f" ({p.share:.0%})" if p.speedups else "")
                     + f"; {len(p.contradictions)} rankings contradicted by more than {CONTRADICTED:.0%}")
        lines += [f"  contradiction: {label(g)} {x}/{y}: {r1:.2f} then {r2:.2f}" for g, x, y, r1, r2 in p.contradictions]
        lines.append(f"  winner changes (not both ties): {len(p.winner_changes)}")
        lines += [f"    {label(g)}: {w1} then {w2}" for g, w1, w2 in p.winner_changes]
        lines.append(f"  times over the first's fastest outside its 95% interval and beyond {NEAR:.0%}: {len(p.outside)}")
        lines += [f"    {label(g)} {s}/{best}: {interval.text()} then {other:.2f}x" for g, s, best, interval, other in p.outside]
        if p.largest:
            big = p.largest
            lines.append(f"  largest sizes: {big.agreeing} of {big.speedups} speedups over the baseline in the first "
                         f"run's interval or within {NEAR:.0%} ({big.inside} inside)")
            lines += [f"    {label(g)} {s}: {v:.2f}x [{lo:.2f}, {hi:.2f}] then {v2:.2f}x" for g, s, v, lo, hi, v2 in big.off]
            lines.append(f"  largest sizes: winner changes (not both ties) {len(big.winner_changes)} of {big.groups} "
                         f"groups ({big.ties} ties in the first run)")
            lines += [f"    {label(g)}: {w1} then {w2}" for g, w1, w2 in big.winner_changes]
    return "\n".join(lines)

