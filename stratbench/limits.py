"""What each case of a run is measured against: its call floor and the paired roofline of its
traffic (`roofline_figures`), the machine's bandwidth for the report (`limits_of`), and the
projection that records a case too slow before it is tried (`projected_too_slow`)."""

from __future__ import annotations

import dataclasses

from stratbench import matrix, metrics, roofline, status
from stratbench.timing import ROOFLINE_KEY


@dataclasses.dataclass
class Limits:
    """What a run's rows are measured against besides their roofline: the call floors found
    so far, (floor_series, strategy) -> seconds; why there are no roofline fractions, if so."""

    why_no_roofline: str = ""
    floors: dict = dataclasses.field(default_factory=dict)

    def figures(self, case, median_s: float) -> dict:
        floor = self.floors.get((floor_series(case), case.strategy))
        return {"floor_s": floor, "call_bound": metrics.is_call_bound(median_s, floor)}


def roofline_figures(measurement, case, why_not: str) -> dict:
    """The case's fraction of its group's roofline, a paired ratio with its 95% interval
    (roofline time / the case's), and the roofline's bandwidth; or why there is none (run._row
    words an empty reason)."""
    if not case.traffic:
        return {}
    if measurement is None or not measurement.rounds(ROOFLINE_KEY):
        return {"why_no_roofline": why_not}
    fraction = measurement.ratio(ROOFLINE_KEY, case.key)
    return {"roofline_bytes_per_s": case.bytes_moved / measurement.time(ROOFLINE_KEY).value,
            "roofline_fraction": fraction.value, "roofline_fraction_low": fraction.low,
            "roofline_fraction_high": fraction.high}


def floor_series(case) -> tuple:
    """The cases that share one call floor per strategy (measured at the smallest of their shapes)."""
    return (case.env, case.op, case.direction, case.dtype, case.device)


# A smaller case predicts a larger one only when its time is mostly work, not the fixed
# per-call cost (about 0.1-0.3 ms for a tf.function here): at least this many times the
# series' smallest measured time, and at least MIN_PROJECTION_BASE_S.
WORK_OVER_FLOOR = 10
MIN_PROJECTION_BASE_S = 0.01


def projected_too_slow(case, rows, settings) -> str:
    """Why `case` cannot fit its budget, judged from the same series' largest smaller
    case among `rows` (the tidy rows measured so far), else ''.  Time is projected linearly in size from that
    case's work (its time above the series' fastest, per-call-overhead case), and only
    when that case was mostly work.  Not for train_step, whose fixed per-step costs do
    not scale with the batch."""
    if case.direction == matrix.TRAIN_STEP:
        return ""
    series = [r for r in rows
              if r["status"] == status.OK and matrix.Case.series_of(r["key"]) == case.series and 0 < r["size"] < case.size]
    if not series:
        return ""
    base = max(series, key=lambda r: r["size"])
    fastest = min(series, key=lambda r: r["median_s"])
    floor = fastest["median_s"] if fastest is not base else 0.0
    work = base["median_s"] - floor
    if base["median_s"] < MIN_PROJECTION_BASE_S or work < (WORK_OVER_FLOOR - 1) * floor:
        return ""  # mostly per-call overhead: it says nothing about a larger case, which is measured
    per_call = floor + work * case.size / base["size"]
    if not metrics.over_budget(per_call, 2, settings.min_rounds, settings.case_budget_s):
        return ""
    overhead = f", less {floor:.3g} s of per-call overhead (the {fastest['shape']} case)" if floor else ""
    return (f"projected {per_call:.2f} s per call, linearly in size from the {base['shape']} case's "
            f"{base['median_s']:.3g} s per call{overhead}; warm-up and {settings.min_rounds} rounds would exceed "
            f"the {settings.case_budget_s:g} s case budget (raise --case-budget to measure it)")


def limits_of(store, options, log) -> Limits:
    """The call floors the run's stored rows already have, and the machine's bandwidth
    figures for the report (measured once per run folder, kept in environment.json)."""
    limits = Limits()
    for row in store.rows.values():
        if row.get("floor_s") is not None:
            case = matrix.Case.from_row(row)
            limits.floors[(floor_series(case), case.strategy)] = row["floor_s"]
    if not options.roofline:
        limits.why_no_roofline = "the roofline was not measured in this run (--no-roofline)"
        return limits
    if (store.environment.get("roofline") or {}).get("machine"):
        return limits
    try:
        log(f"measuring this machine's memory bandwidth (stratbench/roofline.py, {roofline.tf_threads()} threads)")
        store.update_environment(roofline={"threads": roofline.tf_threads(),
                                           "machine": roofline.machine().to_dict("records")})
    except (roofline.Unmeasured, OSError) as e:
        limits.why_no_roofline = str(e)
        log(f"warning: no roofline fractions in this run: {e}")
    return limits
