"""`stratbench in-model`: what an op costs as one node of a step that is already running,
against what it costs to call from Python.

At 1e3-1e5 elements a case measured alone is its strategy's call floor (about 0.1 ms for
a jit function, 0.2 ms for a tf.function here): it says which calling convention is
cheapest, not which op.  Inside a model the op is one node of a step that is called
once.  So each strategy's step applies the op to K different inputs (different, so no
compiler merges the applications) and, in the same rounds, to one; the cost of one
application inside the step is (time of K - time of 1) / (K - 1), per round, with its
95% interval.  Each strategy runs in its production mode (native: K eager calls).
"""

from __future__ import annotations

import pandas as pd
import tensorflow as tf

from stratbench import stats, status, timing
from stratbench.steps import in_mode
from stratbench.matrix import Case
from stratbench.measurement import Measurement, Rounds, sample_rounds

APPLICATIONS = 16
SIZES = (1_000, 10_000, 100_000)
DIRECTIONS = ("forward", "forward_backward")
AXIS_COLS = 100  # an op along an axis runs on [n / 100, 100]
ROUNDS = Rounds(min_rounds=6, max_rounds=30, precision=0.05, group_budget_s=4.0, resolved=0.0)  # both entries every round


def shape_of(spec, size: int) -> tuple[int, ...]:
    return (max(1, size // AXIS_COLS), AXIS_COLS) if spec.takes_axis else (size,)


def prepare_applications(impl, case: Case, applications: int) -> timing.Prepared:
    """One step applying impl to `applications` different inputs (forward: the outputs;
    forward_backward: the outputs and every input's gradient), in the case's mode."""
    call = lambda x: impl.spec.call(impl.fn, x)  # noqa: E731

    def forward(xs, dys):
        return [call(x) for x in xs]

    def forward_backward(xs, dys):
        with tf.GradientTape() as tape:
            tape.watch(xs)
            ys = [call(x) for x in xs]
        return ys, tape.gradient(ys, xs, output_gradients=dys)

    step = in_mode({"forward": forward, "forward_backward": forward_backward}[case.direction], case.mode)
    pairs = [timing.make_inputs(case, seed=k) for k in range(applications)]
    return timing.Prepared(step, [([x for x, _ in pairs], [dy for _, dy in pairs])], case.device)


def marginal(measurement: Measurement, many: str, one: str, applications: int) -> stats.Interval:
    """Seconds one more application adds, per round: (t_many - t_one) / (applications - 1)."""
    a, b = measurement.rounds(many), measurement.rounds(one)
    return stats.median_interval([(a[k] - b[k]) / (applications - 1) for k in a.keys() & b.keys()])


def measure(cases, resolve, applications: int = APPLICATIONS, settings: timing.Settings | None = None) -> list[dict]:
    """Rows for one group of cases (same op, direction, shape): each strategy's cost per
    application inside one step and its call from Python (the step with one application)."""
    settings = settings or timing.Settings(rounds=ROUNDS)
    entries, calls, rows = {}, {}, []
    for case in cases:
        row = {"op": case.op, "strategy": case.strategy, "direction": case.direction, "dtype": case.dtype,
               "shape": case.shape_text, "size": case.size, "mode": case.mode, "applications": applications,
               "status": status.OK, "reason": ""}
        try:
            impl = resolve(case.op, case.strategy)
            if not impl.available:
                raise RuntimeError(f"unavailable: {impl.reason}")
            both = {k: prepare_applications(impl, case, k) for k in (applications, 1)}
            warmed = {k: timing.warm_up(prepared, settings)["calls"] for k, prepared in both.items()}
            for k in both:
                entries[(case.strategy, k)], calls[(case.strategy, k)] = both[k], warmed[k]
        except timing.TooSlow as e:
            row |= {"status": status.TOO_SLOW, "reason": str(e)}
        except Exception as e:
            row |= {"status": status.ERROR, "reason": status.summary(e)}
        rows.append(row)
    if not entries:
        return rows
    names = {f"{s}x{k}": (s, k) for s, k in entries}
    measurement = sample_rounds(lambda name, round_, process: entries[names[name]].run(calls[names[name]]),
                                {name: calls[key] for name, key in names.items()}, settings.rounds,
                                contenders=[n for n, (s, k) in names.items() if k == applications])
    for row in rows:
        if row["status"] != status.OK:
            continue
        s = row["strategy"]
        per = marginal(measurement, f"{s}x{applications}", f"{s}x1", applications)
        alone = measurement.time(f"{s}x1")
        row |= {"per_application_s": per.value, "per_application_low_s": per.low, "per_application_high_s": per.high,
                "call_s": alone.value, "call_low_s": alone.low, "call_high_s": alone.high,
                "step_s": measurement.time(f"{s}x{applications}").value, "rounds": per.n}
    return rows


def cases(ops, strategies, directions=DIRECTIONS, sizes=SIZES, dtype="float32", device="CPU") -> list[list[Case]]:
    """Groups of cases, one per (op, direction, size): the strategies compared in one set of rounds."""
    import impls

    groups = []
    for op in ops:
        spec = impls.spec(op)
        for direction in directions:
            for size in sizes:
                groups.append([Case(op, s, direction, dtype, device, shape_of(spec, size))
                               for s in impls.strategies_for(op) if s in strategies])
    return [g for g in groups if g]


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows (op, direction, shape), columns strategies: 'per application inside a step (its call from Python)'."""
    from stratbench.results import format_seconds

    import impls

    def cell(r):
        if r["status"] != status.OK:
            return r["status"]
        return f"{format_seconds(r['per_application_s'])} ({format_seconds(r['call_s'])})"

    rows = rows.assign(cell=rows.apply(cell, axis=1))
    out = rows.pivot_table(index=["op", "direction", "size", "shape"], columns="strategy", values="cell", aggfunc="first")
    return out.reindex(columns=[s for s in impls.STRATEGIES if s in out.columns]).fillna("")

