"""`stratbench run`: verify, then measure every selected case, one worker per strategy."""

from __future__ import annotations

import dataclasses
import itertools
import pathlib
import time

import pandas as pd

import impls
from stratbench import capabilities, environment, matrix, metrics, status
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


def _row(case, env, run_id, outcome=status.OK, reason="", effective=None, **measured) -> dict:
    effective = effective or {}
    row = {
        "op": case.op, "strategy": case.strategy, "direction": case.direction, "device": case.device,
        "dtype": case.dtype, "size": case.size, "shape": case.shape_text, "mode": case.mode,
        "env": case.env, "onednn": effective.get("onednn"), "cpu_allocator": effective.get("cpu_allocator"),
        "status": outcome, "reason": reason, "commit": env["commit"], "tensorflow": env.get("tensorflow"), "run_id": run_id,
        "machine": env["machine"], "key": case.key,
    } | measured
    if outcome == status.OK:
        row |= metrics.throughput(case.size, case.bytes_moved, row["median_s"], row.get("roofline_bytes_per_s"))
        if case.bytes_moved and not row.get("roofline_bytes_per_s"):
            note = "roofline_fraction: the copy of the same bytes was not measured (see the run's log)"
            row["unmeasured"] = "; ".join(filter(None, [row.get("unmeasured"), note]))
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
    return failed.get((case.env, case.op, case.strategy), "")


def _live_worker(worker, resolve_spec, verbose, env_name, effective) -> Worker:
    """`worker` while it lives, else a fresh one under setting `env_name`; notes in
    `effective` what TensorFlow does under that setting."""
    worker = worker if worker and worker.alive else Worker(resolve_spec, verbose, env_name)
    effective[env_name] = worker.environment
    return worker


def _verify_gate(cases, options, resolve, progress, effective) -> dict:
    """(env, op, strategy) -> reason, for every pair that fails the correctness gate in the
    dtypes to be timed, checked in a worker of each environment setting (oneDNN replaces
    some of TensorFlow's kernels, so a pair correct under one setting is checked under each)."""
    failed = {}
    wanted = {}
    for c in cases:
        wanted.setdefault((c.env, c.op, c.strategy), set()).add(c.dtype)
    for env_name in dict.fromkeys(env_name for env_name, _, _ in wanted):
        worker = None
        pairs = [(op, s) for e, op, s in wanted if e == env_name and resolve(op, s).available]
        for op, strategy in progress(pairs, f"verify ({env_name})"):
            impl = resolve(op, strategy)
            dtypes = sorted(d for d in wanted[(env_name, op, strategy)] if d in impl.dtypes)
            try:
                worker = _live_worker(worker, options.resolve, options.verbose, env_name, effective)
                outcome, row = worker.ask("call", ("stratbench.verify:verify_pair", (op, strategy, dtypes)), None,
                                          options.case_timeout_s)
            except (CaseTimeout, WorkerDied) as e:
                outcome, row = status.ERROR, f"{type(e).__name__}: {e}"
            if outcome != status.OK:
                failed[(env_name, op, strategy)] = f"failed verify: the check itself failed: {row}"
            elif row["forward"] != "pass" or row["gradient"] != "pass":
                failed[(env_name, op, strategy)] = (f"failed verify: forward {row['forward']}, "
                                                    f"gradient {row['gradient']}: {row['note']}")
        if worker:
            worker.close()
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
    measured_with = options.settings.describe()
    done = store.measured(measured_with)
    todo = [c for c in options.cases if c.key not in done]
    if len(todo) < len(options.cases):
        log(f"resuming run {run_id}: {len(options.cases) - len(todo)} of {len(options.cases)} cases already "
            f"measured with {measured_with}")
    otherwise = {c.key for c in todo} & (store.measured() - done)
    if otherwise:
        log(f"{len(otherwise)} cases were stored with other measuring settings: measuring them again with "
            f"{measured_with} (their stored figures are replaced)")

    devices_present = {"CPU"} | ({"GPU"} if tf.config.list_physical_devices("GPU") else set())
    effective = {}  # env setting -> what TensorFlow did in its workers (environment.effective)
    failed = _verify_gate(todo, options, resolve, progress, effective) if options.verify else {}

    to_measure = []
    for case in todo:
        reason = _skip_reason(case, resolve, devices_present, failed)
        if reason:
            outcome = status.FAILED_VERIFY if reason.startswith("failed verify") else status.SKIPPED
            store.add(_row(case, env, run_id, outcome, reason, effective.get(case.env), measured_with=measured_with))
        else:
            to_measure.append(case)

    rooflines = _measure_rooflines(to_measure, options, progress, log, effective)
    # One fresh worker per (setting, strategy): its peak RSS is its own, and start-ups stay few.
    envs = list(dict.fromkeys(c.env for c in options.cases))
    to_measure.sort(key=lambda c: (envs.index(c.env),
                                   impls.STRATEGIES.index(c.strategy) if c.strategy in impls.STRATEGIES else -1))
    bar = progress(to_measure, "measure")
    for (env_name, _), group in itertools.groupby(bar, key=lambda c: (c.env, c.strategy)):
        worker = None
        for case in group:
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(case.key, refresh=True)
            projected = projected_too_slow(case, store.rows.values(), options.settings)
            if projected:
                store.add(_row(case, env, run_id, status.TOO_SLOW, projected, effective.get(env_name),
                               measured_with=measured_with))
                continue
            roofline = rooflines.get((case.env, case.device, case.bytes_moved))
            try:
                worker = _live_worker(worker, options.resolve, options.verbose, env_name, effective)
                outcome, result = worker.ask("case", case, options.settings, options.case_timeout_s)
            except CaseTimeout:
                outcome, result = status.TIMEOUT, f"still running after the {options.case_timeout_s:g} s case limit; killed"
            except WorkerDied as e:
                outcome, result = status.CRASHED, str(e)
            if outcome in status.NEEDS_FRESH_WORKER and worker:
                worker.close(kill=True)  # its memory and threads are suspect: the next case gets a fresh one
                worker = None
            if outcome == status.OK:
                store.add(_row(case, env, run_id, effective=effective[env_name], roofline_bytes_per_s=roofline,
                               measured_with=measured_with, **result))
            else:
                store.add(_row(case, env, run_id, outcome, result, effective.get(env_name),
                               measured_with=measured_with))
        if worker:
            worker.close()
    for problem in filter(None, (environment.not_in_effect(name, effective.get(name)) for name in envs)):
        log(f"warning: {problem}")
    store.update_environment(settings={
        name: {"variables": environment.ENV_SETTINGS[name], "help": environment.ENV_HELP[name],
               "effective": effective.get(name)}
        for name in envs
    })
    if options.capabilities:
        pairs = dict.fromkeys((c.op, c.strategy) for c in options.cases)
        capabilities.measure(pairs, store.directory, log, progress, options.verbose, options.resolve, env=envs[0])
    table = store.table()  # the folder may hold other cases too: show the ones asked for
    return table[table["key"].isin({c.key for c in options.cases})].reset_index(drop=True), store.directory


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
              if r["status"] == status.OK and r["key"].rsplit("/", 1)[0] == case.series and 0 < r["size"] < case.size]
    if not series:
        return ""
    base = max(series, key=lambda r: r["size"])
    fastest = min(series, key=lambda r: r["median_s"])
    floor = fastest["median_s"] if fastest is not base else 0.0
    work = base["median_s"] - floor
    if base["median_s"] < MIN_PROJECTION_BASE_S or work < (WORK_OVER_FLOOR - 1) * floor:
        return ""  # mostly per-call overhead: it says nothing about a larger case, which is measured
    per_call = floor + work * case.size / base["size"]
    if not metrics.over_budget(per_call, 2, settings.min_samples, settings.case_budget_s):
        return ""
    overhead = f", less {floor:.3g} s of per-call overhead (the {fastest['shape']} case)" if floor else ""
    return (f"projected {per_call:.2f} s per call, linearly in size from the {base['shape']} case's "
            f"{base['median_s']:.3g} s per call{overhead}; warm-up and {settings.min_samples} samples would exceed "
            f"the {settings.case_budget_s:g} s case budget (raise --case-budget to measure it)")


def _measure_rooflines(cases, options, progress, log, effective) -> dict:
    """(env, device, bytes) -> copy bytes/s, measured once per run and setting, in a worker
    of its own: the allocator changes a copy as much as the op (page faults)."""
    needed = sorted({(c.env, c.device, c.bytes_moved) for c in cases if c.bytes_moved})
    rooflines = {}
    copy_settings = dataclasses.replace(options.settings, target_sample_s=min(0.05, options.settings.target_sample_s))
    for env_name in dict.fromkeys(e for e, _, _ in needed):
        worker = None
        try:
            for _, device, nbytes in progress([n for n in needed if n[0] == env_name], f"copy roofline ({env_name})"):
                try:
                    worker = _live_worker(worker, "impls:get", options.verbose, env_name, effective)
                    outcome, result = worker.ask("copy", (device, nbytes), copy_settings, options.case_timeout_s)
                except (CaseTimeout, WorkerDied) as e:
                    outcome, result = status.ERROR, f"{type(e).__name__}: {e}"
                if outcome == status.OK:
                    rooflines[(env_name, device, nbytes)] = result["bytes_per_s"]
                else:
                    log(f"copy roofline for {nbytes} bytes on {device} ({env_name}) not measured: {result}")
        finally:
            if worker:
                worker.close()
    return rooflines


def comparison(table: pd.DataFrame, baseline: str = "native") -> pd.DataFrame:
    """Rows are cases, columns strategies; each cell the median with its speedup over
    `baseline`, marked fastest and noisy (metrics.marked)."""
    if table.empty:
        return pd.DataFrame()
    index = ["op", "direction", "device", "dtype", "shape"]
    if "env" in table and table["env"].nunique() > 1:  # each setting is its own row: strategies compare within it
        index.insert(3, "env")
    table = table.assign(
        direction_order=table["direction"].map(matrix.DIRECTIONS.index),
    ).sort_values(["op", "direction_order", "device", "dtype", "size"], kind="stable")
    cells = {}
    for keys, group in table.groupby(index, sort=False):
        ok = group[group["status"] == status.OK]
        base = ok.loc[ok["strategy"] == baseline, "median_s"]
        best = ok["median_s"].min() if len(ok) else None
        row = {}
        for _, r in group.iterrows():
            if r["status"] != status.OK:
                row[r["strategy"]] = r["status"]
                continue
            text = format_seconds(r["median_s"])
            if len(base):
                text += f" ({float(base.iloc[0]) / r['median_s']:.2f}x)"
            row[r["strategy"]] = metrics.marked(text, r["median_s"] == best, r["noisy"])
        cells[keys] = row
    out = pd.DataFrame.from_dict(cells, orient="index")
    out.index.names = index
    order = [s for s in impls.STRATEGIES if s in out.columns]
    return out[order].fillna("")
