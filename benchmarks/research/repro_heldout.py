"""Does the reproducibility interval hold on a rerun?  Two default runs made after the spread
was stored and not used in it (held out): at the largest sizes, the share of run B's speedups
inside run A's reproducibility interval (and its within-run one), run A's winners that run B
places behind, the median half-widths, the winners beyond 1.5x, and custom_op's roofline
fractions in both.

    python benchmarks/research/repro_heldout.py RUN_A RUN_B MACHINE/spread.csv [SCALE]

SCALE (default 1) multiplies the stored between-run variance: what a wider allowance for a
spread estimated from few runs would do to the same pair (a what-if, not what ships).
"""
import math, sys, pathlib
import pandas as pd
from stratbench import repro, results

a_dir, b_dir, spread_csv = map(pathlib.Path, sys.argv[1:4])
spread = pd.read_csv(spread_csv)
spread["between_var"] *= float(sys.argv[4]) if len(sys.argv) > 4 else 1.0

def largest(run_dir):
    t = repro.with_repro(results.load(run_dir, repro=False), spread)
    t = t[t["status"] == "ok"]
    return pd.concat([g[g["size"] == g["size"].max()] for _, g in t.groupby(["op", "direction", "env"])])

A, B = largest(a_dir), largest(b_dir)
for name, run_dir in (("A", a_dir), ("B", b_dir)):  # the machine's state: beyond repro.STATE_BEYOND, another one
    ratio = repro.floor_ratio(run_dir, spread, spread_csv.parent)
    print(f"run {name}'s call floors over the A/A runs': " + (f"{ratio:.2f}x" if ratio else "not measured"))
key = ["op", "direction", "dtype", "device", "shape", "env", "strategy"]
m = A.merge(B, on=key, suffixes=("_a", "_b"))
s = m[(m["strategy"] != m["baseline_a"]) & m[["speedup_a", "speedup_b", "speedup_repro_low_a"]].notna().all(axis=1)]
inside_repro = ((s["speedup_b"] >= s["speedup_repro_low_a"]) & (s["speedup_b"] <= s["speedup_repro_high_a"]))
inside_within = ((s["speedup_b"] >= s["speedup_low_a"]) & (s["speedup_b"] <= s["speedup_high_a"]))
print(f"speedups at the largest sizes in both runs: {len(s)}")
print(f"  run B inside run A's reproducibility interval: {inside_repro.sum()} ({inside_repro.mean():.1%})")
print(f"  run B inside run A's within-run interval: {inside_within.sum()} ({inside_within.mean():.1%})")
for r in s[~inside_repro].itertuples():
    print(f"    outside: {r.op} {r.direction} {r.shape} {r.strategy}: A {r.speedup_a:.3f} [{r.speedup_repro_low_a:.3f}, {r.speedup_repro_high_a:.3f}], B {r.speedup_b:.3f}")
hw = [(math.log(h) - math.log(l)) / 2 for l, h in zip(s["speedup_repro_low_a"], s["speedup_repro_high_a"])]
hw_w = [(math.log(h) - math.log(l)) / 2 for l, h in zip(s["speedup_low_a"], s["speedup_high_a"])]
print(f"  median half-width: reproducibility ±{math.expm1(pd.Series(hw).median()):.1%}, within-run ±{math.expm1(pd.Series(hw_w).median()):.1%}")
# winners
groups = ["op", "direction", "dtype", "device", "shape", "env"]
bad, stars, kept_big, lost_big = [], 0, 0, []
for g, ra in A.groupby(groups):
    rb = B.set_index(groups).loc[g] if g in B.set_index(groups).index else None
    win = ra[ra["rank_repro"] == "fastest"]
    within_win = ra[ra["rank"] == "fastest"]
    if len(within_win):
        others = ra[ra["strategy"] != within_win["strategy"].iloc[0]]
        if len(others) and others["vs_fastest"].min() > 1.5:
            if len(win) and win["strategy"].iloc[0] == within_win["strategy"].iloc[0]:
                kept_big += 1
            else:
                lost_big.append((g, within_win["strategy"].iloc[0]))
    if not len(win) or rb is None:
        continue
    stars += 1
    w = win["strategy"].iloc[0]
    rb = rb.reset_index()
    row = rb[rb["strategy"] == w]
    rank_b = row["rank_repro"].iloc[0] if len(row) and pd.notna(row["rank_repro"].iloc[0]) else (row["rank"].iloc[0] if len(row) else None)
    if rank_b not in ("fastest", "tie"):
        bad.append((g, w, rank_b, float(row["vs_fastest"].iloc[0]) if len(row) else None))
print(f"run A's winners (*, reproducibility): {stars}; placed behind by run B beyond the tie margin: {len(bad)}")
for b in bad:
    print("    ", b)
print(f"* beyond 1.5x in run A's own rank that stay *: {kept_big}; that do not: {len(lost_big)} {lost_big}")
# roofline fractions
c = m[(m["strategy"] == "custom_op") & m[["roofline_fraction_a", "roofline_fraction_b"]].notna().all(axis=1)]
c = c.assign(diff=(c["roofline_fraction_b"] / c["roofline_fraction_a"] - 1).abs())
print(f"custom_op roofline fractions at the largest size, A vs B: {len(c)} cases, within 10%: {(c['diff'] <= 0.10).sum()}")
for r in c.itertuples():
    print(f"    {r.op} {r.direction} {r.shape}: {r.roofline_fraction_a:.3f} vs {r.roofline_fraction_b:.3f} ({r.diff:.1%})")
