"""Which estimator of a paired ratio resolves more: the median of the per-round ratios or
their Hodges-Lehmann estimate (what stratbench/stats.py uses)?  Measures `stratbench
noise`'s known changes (spiky xla forward 16M against itself, +10% and +20% elements) in
fresh workers per rerun, as `stratbench noise` does, and judges every rerun's samples with
both estimators (first pass only: `compare.judged`'s verdict, which since 2026-12-03 is
compare's screen, and before that was compare's rule for each pass).

    python benchmarks/scripts/estimator_ab.py [RERUNS]
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from stratbench import cli, matrix, stats  # noqa: E402
from stratbench.compare import NOISE_CHANGES, UNCHANGED, Pool, Version, judged, measure_versions, more_elements  # noqa: E402

ESTIMATORS = {"median": stats.median_interval, "hodges-lehmann": stats.hodges_lehmann_interval}


def main(reruns: int) -> None:
    case = matrix.Case("spiky", "xla", "forward", "float32", "CPU", (16_000_000,))
    settings = cli._settings(cli.build_parser().parse_args(["noise"]))  # `stratbench noise`'s own defaults
    verdicts = {name: {change: [] for change, _ in NOISE_CHANGES} for name in ESTIMATORS}
    for rerun in range(reruns):
        versions = {"A": Version(case)} | {change: Version(more_elements(case, factor)) for change, factor in NOISE_CHANGES}
        pool = Pool(2, case.env)
        try:
            m = measure_versions(versions, pool, settings)
        finally:
            pool.close()
        for name, estimator in ESTIMATORS.items():
            stats.hodges_lehmann_interval = estimator  # what paired_ratio calls
            for change, _ in NOISE_CHANGES:
                verdicts[name][change].append(judged(m, change, "A"))
        stats.hodges_lehmann_interval = ESTIMATORS["hodges-lehmann"]
        print(f"rerun {rerun + 1} of {reruns}", flush=True)
    for name, by_change in verdicts.items():
        print(name + ": " + "; ".join(
            f"{change} flagged {sum(v['verdict'] != UNCHANGED for v in rows)} of {len(rows)} "
            f"(median ratio {sorted(v['ratio'] for v in rows)[len(rows) // 2]:.3f}, "
            f"median half width {sorted(v['half_width'] for v in rows)[len(rows) // 2]:.1%})"
            for change, rows in by_change.items()))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
