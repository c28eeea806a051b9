"""Which estimator of a paired ratio resolves more: the median of the per-round ratios or
their Hodges-Lehmann estimate (what stratbench/stats.py uses)?  Measures `stratbench
noise`'s known changes (spiky xla forward 16M against itself, +10% and +20% elements) in
fresh workers per rerun, as `stratbench noise` does with its default settings, and judges
every rerun's samples with both estimators (first pass only: the verdict of compare's
screen, `decision.change` without an interval margin, which is what `decision.judged` gives).

    python benchmarks/research/estimator_ab.py [RERUNS]
"""

from __future__ import annotations

import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from stratbench import commands, matrix, stats  # noqa: E402
from stratbench.compare import Pool, Version, measure_versions  # noqa: E402
from stratbench.decision import SCREEN_MARGIN, THRESHOLD, UNCHANGED, change  # noqa: E402
from stratbench.noise import NOISE_CHANGES, more_elements  # noqa: E402

# each: the per-round log ratios -> their centre with its 95% interval
ESTIMATORS = {"median": stats.median_interval, "hodges-lehmann": stats.hodges_lehmann_interval}


def paired_ratio(m, new: str, old: str, estimator) -> stats.Interval:
    """new / old from the rounds both took part in, as stats.paired_ratio takes it, with `estimator`."""
    a, b = m.rounds(new), m.rounds(old)
    logs = [math.log(a[r] / b[r]) for r in sorted(set(a) & set(b)) if a[r] > 0 and b[r] > 0]
    centre = estimator(logs)
    return stats.Interval(*(math.exp(v) if math.isfinite(v) else math.nan
                            for v in (centre.value, centre.low, centre.high)), centre.n)


def main(reruns: int) -> None:
    case = matrix.Case("spiky", "xla", "forward", "float32", "CPU", (16_000_000,))
    settings = commands.default_settings("noise")  # `stratbench noise`'s own defaults
    verdicts = {name: {change_: [] for change_, _ in NOISE_CHANGES} for name in ESTIMATORS}
    for rerun in range(reruns):
        versions = {"A": Version(case)} | {name: Version(more_elements(case, factor)) for name, factor in NOISE_CHANGES}
        pool = Pool(2, case.env)
        try:
            m = measure_versions(versions, pool, settings)
        finally:
            pool.close()
        for name, estimator in ESTIMATORS.items():
            for known, _ in NOISE_CHANGES:
                ratio = paired_ratio(m, known, "A", estimator)
                verdicts[name][known].append({"ratio": ratio.value, "half_width": ratio.half_width,
                                              "verdict": change(ratio, THRESHOLD, margin=SCREEN_MARGIN)})
        print(f"rerun {rerun + 1} of {reruns}", flush=True)
    for name, by_change in verdicts.items():
        print(name + ": " + "; ".join(
            f"{known} flagged {sum(v['verdict'] != UNCHANGED for v in rows)} of {len(rows)} "
            f"(median ratio {sorted(v['ratio'] for v in rows)[len(rows) // 2]:.3f}, "
            f"median half width {sorted(v['half_width'] for v in rows)[len(rows) // 2]:.1%})"
            for known, rows in by_change.items()))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
