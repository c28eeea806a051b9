"""`stratbench run`: verify, then measure every selected case, one worker per strategy."""

from __future__ import annotations

import dataclasses
import itertools
import pathlib
import time

import pandas as pd

import impls
from stratbench import capabilities, environment, matrix, verify
from stratbench.results import RunStore, format_seconds
from stratbench.timing import Settings
from stratbench.worker import CaseTimeout, Worker, WorkerDied, load_callable


@dataclasses.dataclass
class Options:
    cases: list
    out: pathlib.Path = pathlib.Path("results")
    settings: Settings = dataclasses.field(default_factory=Settings)
    case_timeout_s: float = 300.0  # a case still running after this is killed and recorded
    machine: str | None = None
    fresh: bool = False
    verify: bool = True
    verbose: bool = False
    capabilities: bool = True  # also fill the run's capability matrix (stratbench/capabilities.py)
    resolve: str = "impls:get"  # "module:function" giving the Impl of (op, strategy); tests swap it


def _row(case, env, run_id, status="ok", reason="", **measured) -> dict:
    row = {
        "op": case.op, "strategy": case.strategy, "direction": case.direction, "device": case.device,
        "dtype": case.dtype, "size": case.size, "shape": case.shape_text, "mode": case.mode,
        "status": status, "reason": reason, "commit": env["commit"], "run_id": run_id,
        "machine": env["machine"], "key": case.key,
    } | measured
    if status == "ok":
        row["elements_per_s"] = case.size / row["median_s"]  # samples/s for train_step
        if case.bytes_moved:
            row["bytes_per_s"] = case.bytes_moved / row["median_s"]
        if row.get("roofline_bytes_per_s"):
            row["roofline_fraction"] = row["bytes_per_s"] / row["roofline_bytes_per_s"]
    return row


def _skip_reason(case, resolve, devices_present, failed) -> str:
    impl = resolve(case.op, case.strategy)
    if not impl.available:
        return f"unavailable: {impl.reason}"
    if case.device not in devices_present:
        return f"no {case.device} visible to TensorFlow on this machine"
    if case.device not in impl.devices:
        return f"{case.strategy} does not run on {case.device}"
    if case.dtype not in impl.dtypes:
        return f"{case.strategy} does not support {case.dtype}"
    return failed.get((case.op, case.strategy), "")


def _verify_gate(pairs, dtypes, resolve, progress) -> dict:
    """(op, strategy) -> reason, for every pair that fails the correctness gate in the dtypes to be timed."""
    failed = {}
    for op, strategy in progress(pairs, "verify"):
        impl = resolve(op, strategy)
        if impl.available:
            row = verify.verify_one(impl, [d for d in dtypes if d in impl.dtypes])
            if row["forward"] != "pass" or row["gradient"] != "pass":
                failed[(op, strategy)] = f"failed verify: forward {row['forward']}, gradient {row['gradient']}: {row['note']}"
    return failed


def run(options: Options, progress=None, log=print) -> tuple[pd.DataFrame, pathlib.Path]:
    """Measure options.cases; returns the run's table and its directory."""
    import tensorflow as tf

    progress = progress or (lambda items, desc: items)
    resolve = load_callable(options.resolve)
    env = environment.capture()
    if options.machine:
        env["machine"] = options.machine
    run_id = environment.run_id(env) + (time.strftime("-%Y%m%dT%H%M%S") if options.fresh else "")
    store = RunStore(options.out / env["machine"] / run_id, env)
    done = store.measured()
    todo = [c for c in options.cases if c.key not in done]
    if done:
        log(f"resuming run {run_id}: {len(options.cases) - len(todo)} of {len(options.cases)} cases already measured")

    devices_present = {"CPU"} | ({"GPU"} if tf.config.list_physical_devices("GPU") else set())
    pairs = sorted({(c.op, c.strategy) for c in todo})
    dtypes = sorted({c.dtype for c in todo})
    failed = _verify_gate(pairs, dtypes, resolve, progress) if options.verify else {}

    to_measure = []
    for case in todo:
        reason = _skip_reason(case, resolve, devices_present, failed)
        if reason:
            status = "failed_verify" if reason.startswith("failed verify") else "skipped"
            store.add(_row(case, env, run_id, status, reason))
        else:
            to_measure.append(case)

    rooflines = _measure_rooflines(to_measure, options, progress, log)
    # One fresh worker per strategy: its peak RSS is its own, and start-ups stay few.
    to_measure.sort(key=lambda c: impls.STRATEGIES.index(c.strategy) if c.strategy in impls.STRATEGIES else -1)
    bar = progress(to_measure, "measure")
    for _, group in itertools.groupby(bar, key=lambda c: c.strategy):
        worker = None
        for case in group:
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(case.key, refresh=True)
            projected = _projected_too_slow(case, store, options.settings)
            if projected:
                store.add(_row(case, env, run_id, "too_slow", projected))
                continue
            worker = worker if worker and worker.alive else Worker(options.resolve, options.verbose)
            roofline = rooflines.get((case.device, case.bytes_moved))
            try:
                status, result = worker.ask("case", case, options.settings, options.case_timeout_s)
            except CaseTimeout:
                status, result = "timeout", f"still running after the {options.case_timeout_s:g} s case limit; killed"
            except WorkerDied as e:
                status, result = "crashed", str(e)
            if status == "ok":
                store.add(_row(case, env, run_id, roofline_bytes_per_s=roofline, **result))
            else:
                store.add(_row(case, env, run_id, status, result))
        if worker:
            worker.close()
    if options.capabilities:
        pairs = dict.fromkeys((c.op, c.strategy) for c in options.cases)
        capabilities.measure(pairs, store.directory, log, progress, options.verbose, options.resolve)
    return store.table(), store.directory


def _projected_too_slow(case, store, settings) -> str:
    """Why `case` cannot fit its budget, judged from the same series' largest smaller
    case measured in this run (time scales at least linearly with size); else ''.
    Not for train_step, whose fixed per-step costs do not scale with the batch."""
    if case.direction == matrix.TRAIN_STEP:
        return ""
    smaller = [
        r for r in store.rows.values()
        if r["status"] == "ok" and r["size"] < case.size and r["key"].rsplit("/", 1)[0] == case.key.rsplit("/", 1)[0]
    ]
    if not smaller:
        return ""
    base = max(smaller, key=lambda r: r["size"])
    per_call = base["median_s"] * case.size / base["size"]
    if per_call * (2 + settings.min_samples) <= settings.case_budget_s:
        return ""
    return (f"projected {per_call:.2f} s per call from the {base['shape']} case; warm-up and "
            f"{settings.min_samples} samples would exceed the {settings.case_budget_s:g} s case budget "
            f"(raise --case-budget to measure it)")


def _measure_rooflines(cases, options, progress, log) -> dict:
    """(device, bytes) -> copy bytes/s, measured once per run in a worker of its own."""
    needed = sorted({(c.device, c.bytes_moved) for c in cases if c.bytes_moved})
    if not needed:
        return {}
    rooflines = {}
    copy_settings = dataclasses.replace(options.settings, target_sample_s=min(0.05, options.settings.target_sample_s))
    worker = Worker("impls:get", options.verbose)
    try:
        for device, nbytes in progress(needed, "copy roofline"):
            status, result = worker.ask("copy", (device, nbytes), copy_settings, options.case_timeout_s)
            if status == "ok":
                rooflines[(device, nbytes)] = result["bytes_per_s"]
            else:
                log(f"copy roofline for {nbytes} bytes on {device} not measured: {result}")
    finally:
        worker.close()
    return rooflines


def comparison(table: pd.DataFrame, baseline: str = "native") -> pd.DataFrame:
    """Rows are cases, columns strategies; each cell the median with its speedup over
    `baseline`, '*' on the fastest in the row, '~' on a noisy one (IQR > 10% of median)."""
    if table.empty:
        return pd.DataFrame()
    index = ["op", "direction", "device", "dtype", "shape"]
    table = table.assign(
        op_order=table["op"].map(impls.OPS.index),
        direction_order=table["direction"].map(matrix.DIRECTIONS.index),
    ).sort_values(["op_order", "direction_order", "device", "dtype", "size"], kind="stable")
    cells = {}
    for keys, group in table.groupby(index, sort=False):
        ok = group[group["status"] == "ok"]
        base = ok.loc[ok["strategy"] == baseline, "median_s"]
        best = ok["median_s"].min() if len(ok) else None
        row = {}
        for _, r in group.iterrows():
            if r["status"] != "ok":
                row[r["strategy"]] = r["status"]
                continue
            text = format_seconds(r["median_s"])
            if len(base):
                text += f" ({float(base.iloc[0]) / r['median_s']:.2f}x)"
            text += ("*" if r["median_s"] == best else "") + ("~" if r["noisy"] else "")
            row[r["strategy"]] = text
        cells[keys] = row
    out = pd.DataFrame.from_dict(cells, orient="index")
    out.index.names = index
    order = [s for s in impls.STRATEGIES if s in out.columns]
    return out[order].fillna("")
