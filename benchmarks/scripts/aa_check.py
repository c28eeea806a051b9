"""Do runs of the same code agree?  Compares two or more `stratbench run` folders of the same
cases (A/A: the same command, one run after the other) on what a user decides by.

    python benchmarks/scripts/aa_check.py [--pool K] RUN_DIR RUN_DIR [RUN_DIR ...]

Per comparison group (op, direction, dtype, device, shape, setting) and each pair of runs:
- every in-group speedup (each strategy's time over every other's, paired within its run):
  the share within 10% of the other run's, and the contradictions (one run has A ahead of B
  by more than 5%, the other has B ahead of A by more than 5%);
- the winner: the same, or both runs declare a tie (`rank` 'tie'), else a winner change;
- each strategy's speedup over the fastest of the first run, in the other run: inside the
  first run's 95% interval or within 5% of it;
- at each (op, direction)'s largest size, the same for the stored speedups over the baseline,
  and the winner changes there (the default run's A/A target);
- first, for each run that recorded it, the CPU time a hypervisor gave other guests during
  its rounds (steal).

--pool K pools the samples of each K runs in a row (in the order given; each run's rounds
and processes kept apart) and compares the pooled sets as if each were one run sampled in K
windows: what sampling a group in several windows would buy (largest sizes: single runs only).
"""

from __future__ import annotations

import itertools
import math
import pathlib
import sys

import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from stratbench import results  # noqa: E402
from stratbench.measurement import Measurement, group_figures  # noqa: E402
from stratbench.tables import steal_line  # noqa: E402

GROUP = ["op", "direction", "dtype", "device", "shape", "env"]


def pooled_samples(run_dirs) -> pd.DataFrame | None:
    """The samples of `run_dirs` as one group's: run i's processes and rounds renumbered apart."""
    frames = [results.read_samples(d) for d in run_dirs]
    if any(f is None for f in frames):
        return None  # a run before paired rounds
    return pd.concat([f.assign(process=f["process"] + 1000 * i, round=f["round"] + 1_000_000 * i)
                      for i, f in enumerate(frames)], ignore_index=True)


def in_group_ratios(run_dirs) -> tuple[dict, dict, dict]:
    """Of one run, or of runs' pooled samples (the first run's cases):
    ({(group, a, b): paired time ratio a/b}, {group: winner or 'tie'}, {(group, s): Interval vs fastest})."""
    table = results.load(run_dirs[0])
    table = table[table["status"] == "ok"]
    samples = pooled_samples(run_dirs)
    measurement = Measurement.from_frame(samples) if samples is not None else None  # None: a run before paired rounds
    ratios, winners, vs_fastest = {}, {}, {}
    for group, rows in table.groupby(GROUP):
        keys = dict(zip(rows["strategy"], rows["key"]))
        medians = dict(zip(rows["strategy"], rows["median_s"]))
        for a, b in itertools.permutations(keys, 2):
            ratios[(group, a, b)] = measurement.ratio(keys[a], keys[b]).value if measurement else medians[a] / medians[b]
        best = rows.loc[rows["median_s"].idxmin(), "strategy"]
        if measurement:
            ranks = rows["rank"]
            if len(run_dirs) > 1:  # pooled: ranked again from every run's samples
                pooled = group_figures(measurement, dict(zip(rows["key"], rows["strategy"])), None)
                ranks = [pooled.get(k, {}).get("rank", "") for k in rows["key"]]
            fastest = [s for s, r in zip(rows["strategy"], ranks) if r == "fastest"]
            winners[group] = fastest[0] if fastest else "tie"
        else:  # no ties without intervals: the lowest median wins
            winners[group] = best
        for s in keys:
            vs_fastest[(group, s)] = measurement.ratio(keys[s], keys[best]) if measurement and s != best else None
        vs_fastest[(group, "__best__")] = best
    return ratios, winners, vs_fastest


def largest_sizes(run_a, run_b, winners_a: dict, winners_b: dict) -> str:
    """At each (op, direction, setting)'s largest size: the second run's speedups over the
    baseline inside the first run's 95% interval or within 5% of it, and the winner changes
    (winners_*: in_group_ratios' winners of each run)."""
    def largest(run_dir):
        t = results.load(run_dir)
        t = t[t["status"] == "ok"]
        return pd.concat([g[g["size"] == g["size"].max()] for _, g in t.groupby(["op", "direction", "env"])])

    a, b = largest(run_a), largest(run_b)
    m = a.merge(b, on=GROUP + ["strategy"], suffixes=("_1", "_2"))
    # a run without its baseline (--strategies without native) has no speedups over it
    m = m[(m["strategy"] != m["baseline_1"]) & m[["speedup_1", "speedup_low_1", "speedup_2"]].notna().all(axis=1)]
    inside = (m["speedup_2"] >= m["speedup_low_1"]) & (m["speedup_2"] <= m["speedup_high_1"])
    near = (m["speedup_2"] / m["speedup_1"]).map(lambda r: abs(math.log(r)) <= math.log(1.05))
    lines = [f"  largest sizes: {int((inside | near).sum())} of {len(m)} speedups over the baseline in the first "
             f"run's interval or within 5% ({int(inside.sum())} inside)"]
    lines += [f"    {r.op}/{r.direction}/{r.shape} {r.strategy}: {r.speedup_1:.2f}x [{r.speedup_low_1:.2f}, "
              f"{r.speedup_high_1:.2f}] then {r.speedup_2:.2f}x" for r in m[~(inside | near)].itertuples()]
    groups = [g for g, _ in a.groupby(GROUP)]
    wa = {g: winners_a[g] for g in groups if g in winners_a}
    changes = [g for g in wa if g in winners_b and wa[g] != winners_b[g]]  # two ties are equal: not a change
    lines.append(f"  largest sizes: winner changes (not both ties) {len(changes)} of {len(wa)} groups "
                 f"({sum(w == 'tie' for w in wa.values())} ties in the first run)")
    lines += [f"    {g[0]}/{g[1]}/{g[4]}: {wa[g]} then {winners_b[g]}" for g in changes]
    return "\n".join(lines)


def main(argv) -> int:
    pool = 1
    if argv[:1] == ["--pool"]:
        if len(argv) < 2 or not argv[1].isdigit() or int(argv[1]) < 1:
            print(f"--pool wants a whole number of runs to pool, at least 1; got {argv[1:2]}", file=sys.stderr)
            return 2
        pool, argv = int(argv[1]), argv[2:]
    runs = [pathlib.Path(a) for a in argv]
    if len(runs) < 2 * pool or len(runs) % pool:
        print(__doc__ + f"\n(got {len(runs)} runs: want a multiple of --pool {pool}, at least two sets)", file=sys.stderr)
        return 2
    sets = [runs[i:i + pool] for i in range(0, len(runs), pool)]
    if pool > 1:
        for k, s in enumerate(sets):
            print(f"set {k + 1}: " + " + ".join(map(str, s)))
    for k, line in enumerate(steal_line(results.load(run)) for run in runs):  # a run disturbed by other guests?
        if line:
            print(f"run {k + 1}: {line}")
    data = [in_group_ratios(s) for s in sets]
    for (i, (ra, wa, fa)), (j, (rb, wb, fb)) in itertools.combinations(enumerate(data), 2):
        shared = [k for k in ra if k in rb and math.isfinite(ra[k]) and math.isfinite(rb[k])]
        within = sum(abs(math.log(ra[k] / rb[k])) <= math.log(1.10) for k in shared)
        contradictions = [k for k in shared if k[1] < k[2] and
                          ((ra[k] > 1.05 and rb[k] < 1 / 1.05) or (ra[k] < 1 / 1.05 and rb[k] > 1.05))]
        changes = [g for g in wa if g in wb and wa[g] != wb[g] and not (wa[g] == "tie" and wb[g] == "tie")]
        outside = []
        for (group, s), interval in fa.items():
            if s == "__best__" or interval is None:
                continue
            best = fa[(group, "__best__")]
            other = rb.get((group, s, best))
            if other is None or not math.isfinite(other):
                continue
            inside = interval.low <= other <= interval.high or abs(math.log(other / interval.value)) <= math.log(1.05)
            if not inside:
                outside.append(f"{'/'.join(map(str, group[:2]))} {s}/{best}: {interval.text()} then {other:.2f}x")
        print(f"{'sets' if pool > 1 else 'runs'} {i + 1} and {j + 1}: {within} of {len(shared)} in-group speedups within 10% "
              f"({within / max(1, len(shared)):.0%}); {len(contradictions)} contradicted by more than 5%"
              + "".join(f"\n  contradiction: {'/'.join(map(str, k[0][:2]))} {k[1]}/{k[2]}: {ra[k]:.2f} then {rb[k]:.2f}"
                        for k in contradictions)
              + f"\n  winner changes (not both ties): {len(changes)}"
              + "".join(f"\n    {'/'.join(map(str, g[:2]))} {g[4]}: {wa[g]} then {wb[g]}" for g in changes)
              + f"\n  ratios to the fastest outside the first run's interval and beyond 5%: {len(outside)}"
              + "".join(f"\n    {o}" for o in outside)
              + ("\n" + largest_sizes(runs[i], runs[j], wa, wb) if pool == 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
