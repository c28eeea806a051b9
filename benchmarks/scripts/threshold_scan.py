"""Which threshold should `stratbench compare` flag changes at?  Recomputes the verdicts of
stored comparisons at several thresholds with the detector's own rule (compare.change):
A/A comparisons (the same code twice) must flag nothing; known changes (`stratbench noise`
CSVs: +10% and +20% elements) should be flagged as often as possible.

    python benchmarks/scripts/threshold_scan.py --aa DIR [DIR ...] --noise CSV [CSV ...] \
        [--thresholds 0.05,0.06,0.07,0.08,0.10]

DIR is a `stratbench compare --out` folder (compare.csv), CSV a `stratbench noise --out` file.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from stratbench import compare, stats  # noqa: E402


def verdicts(table: pd.DataFrame, threshold: float) -> pd.Series:
    """compare.change on every measured row of a compare.csv or noise CSV at `threshold`."""
    measured = table.dropna(subset=["ratio", "low", "high"])

    def one(row):
        # by_process: the ratio in each worker process's rounds (absent from compares before 2026-12)
        by_process = [float(r) for r in str(row.get("by_process", "")).split() if r != "nan"]
        return compare.change(stats.Interval(row["ratio"], row["low"], row["high"], int(row["rounds"])),
                              threshold, by_process)

    return measured.apply(one, axis=1)


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
            row[f"A/A flagged: {pathlib.Path(d).name}"] = f"{int((v != compare.UNCHANGED).sum())} of {len(v)}"
        for change, group in (noise.groupby("change", sort=False) if len(noise) else []):
            v = verdicts(group, t)
            row[f"noise {change}"] = f"{int((v != compare.UNCHANGED).sum())} of {len(v)}"
        rows.append(row)
    print(pd.DataFrame(rows).set_index("threshold").T.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
