"""Which threshold should `stratbench compare` flag changes at?  Recomputes the verdicts of
stored comparisons at several thresholds with the detector's own rule (decision.change; a
file from before 2026-12-03 by the rule it was made with):
A/A comparisons (the same code twice) must flag nothing; known changes (`stratbench noise`
CSVs: +10% and +20% elements) should be flagged as often as possible.

    python benchmarks/research/threshold_scan.py --aa DIR [DIR ...] --noise CSV [CSV ...] \
        [--thresholds 0.05,0.06,0.07,0.08,0.10]

DIR is a `stratbench compare --out` folder (compare.csv), CSV a noise table (OUT/noise_CASE.csv of
`stratbench noise --out OUT`; results/noise/*.csv).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from stratbench import decision, stats  # noqa: E402


UNCONFIRMED = "flagged, not measured again"  # screened below the run's own threshold: no second pass to judge


def verdicts(table: pd.DataFrame, threshold: float) -> pd.Series:
    """The detector's verdict on every measured row of a compare.csv or noise CSV at
    `threshold`: its first pass screened with decision.change, and a screened row judged on both
    passes' rounds (pooled_*) with each pass's ratio; the screen as the file records it
    (screen_margin; a file without the column: the margin).  Files from before 2026-12-03 have no
    pooled_* columns: they are judged by the rule they were made with, each pass on its own with
    every process beyond the threshold."""
    measured = table.dropna(subset=["ratio", "low", "high"])

    def interval(row, prefix=""):
        return stats.Interval(row[prefix + "ratio"], row[prefix + "low"], row[prefix + "high"], 0)

    def by_process(row, prefix=""):  # the ratio in each worker process's rounds (absent before 2026-12)
        return [float(r) for r in str(row.get(prefix + "by_process", "")).split() if r != "nan"]

    def one(row):
        if "pooled_ratio" in row:  # the rule as shipped
            screen = row.get("screen_margin", decision.MARGIN)  # recorded since 2026-12-03's screen change
            first = decision.change(interval(row), threshold, margin=None if pd.isna(screen) else screen)
            if first == decision.UNCHANGED:
                return first
            if pd.isna(row["pooled_ratio"]):
                return UNCONFIRMED
            return decision.change(interval(row, "pooled_"), threshold, (row["ratio"], row["confirm_ratio"]))
        first = decision.change(interval(row), threshold, by_process(row))
        if "confirm_ratio" not in row or first == decision.UNCHANGED:
            return first  # a run before confirmation, or nothing to confirm
        if pd.isna(row["confirm_ratio"]):
            return UNCONFIRMED
        return first if decision.change(interval(row, "confirm_"), threshold, by_process(row, "confirm_")) == first \
            else decision.UNCHANGED

    return measured.apply(one, axis=1)


def flagged(v: pd.Series) -> str:
    text = f"{int(v.isin([decision.SLOWER, decision.FASTER]).sum())} of {len(v)}"
    return text + (f" (+{int((v == UNCONFIRMED).sum())} not measured again)" if (v == UNCONFIRMED).any() else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aa", nargs="+", default=[], help="compare --out folders of the same code twice")
    parser.add_argument("--noise", nargs="+", default=[], help="stratbench noise CSVs")
    parser.add_argument("--thresholds", default="0.04,0.05,0.06,0.07,0.08,0.09,0.10")
    args = parser.parse_args(argv)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    aa = [pd.read_csv(pathlib.Path(d) / "compare.csv") for d in args.aa]
    noise = pd.concat([pd.read_csv(f) for f in args.noise], ignore_index=True) if args.noise else pd.DataFrame()
    rows = []
    for t in thresholds:
        row = {"threshold": t}
        for d, table in zip(args.aa, aa):
            v = verdicts(table, t)
            row[f"A/A flagged: {pathlib.Path(d).name}"] = flagged(v)
        for change, group in (noise.groupby("change", sort=False) if len(noise) else []):
            v = verdicts(group, t)
            row[f"noise {change}"] = flagged(v)
        rows.append(row)
    print(pd.DataFrame(rows).set_index("threshold").T.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
