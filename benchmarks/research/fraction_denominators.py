"""Would another denominator make custom_op's roofline fraction agree between runs?  For
the 9 custom_op cases at the largest sizes, each run's fraction as shipped (the paired
ratio) and as it would be against: the median of the per-round ratios, the faster worker's
roofline, each worker against its own roofline (the larger), and the roofline's 10th
percentile; then how many pairs of runs agree within 10% under each.  It reads the runs'
stored samples, so it needs no new measurement.

    python benchmarks/research/fraction_denominators.py RUN_DIR RUN_DIR [RUN_DIR ...]
"""
import itertools
import sys

import pandas as pd

CASES = [(op, d, size) for op, size in [("spiky", "16000000"), ("gelu", "16000000"), ("softmax", "4096x2048")]
         for d in ("forward", "backward", "forward_backward")]
METHODS = ("shipped", "paired_median", "faster_worker", "per_worker_max", "roofline_p10")


def fractions(run: str) -> dict:
    samples = pd.read_csv(f"{run}/samples.csv.gz")  # seconds: per call, one row per (key, process, round)
    cases = pd.read_csv(f"{run}/cases.csv")
    out = {}
    for op, direction, size in CASES:
        tail = f"/{direction}/float32/CPU/default/{size}"
        kernel = samples[samples.key == f"{op}/custom_op{tail}"]
        roofline = samples[samples.key.str.startswith(f"roofline:{op}/") & samples.key.str.endswith(tail)]
        paired = kernel.merge(roofline, on=["process", "round"], suffixes=("_op", "_rf"))
        by_worker = roofline.groupby("process").seconds.median()
        row = cases[(cases.op == op) & (cases.direction == direction) & (cases.strategy == "custom_op")
                    & (cases["shape"].astype(str) == size)]
        out[(op, direction)] = {
            "shipped": row.roofline_fraction.iloc[0],
            "paired_median": (paired.seconds_rf / paired.seconds_op).median(),
            "faster_worker": by_worker.min() / kernel.seconds.median(),
            "per_worker_max": max(by_worker[p] / kernel[kernel.process == p].seconds.median() for p in by_worker.index),
            "roofline_p10": roofline.seconds.quantile(0.1) / kernel.seconds.median(),
        }
    return out


def main(runs: list[str]) -> None:
    found = {run: fractions(run) for run in runs}
    for method in METHODS:
        agree, total, off = 0, 0, []
        for a, b in itertools.combinations(runs, 2):
            for case, figures in found[a].items():
                x, y = figures[method], found[b][case][method]
                total += 1
                if abs(x - y) / min(x, y) <= 0.10:
                    agree += 1
                else:
                    off.append(f"{case[0]} {case[1]} {x:.2f}/{y:.2f}")
        print(f"{method:15s} within 10%: {agree} of {total}; apart: {', '.join(off) or 'none'}")


if __name__ == "__main__":
    main(sys.argv[1:])
