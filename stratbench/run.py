"""`stratbench run`: verify, measure the machine's memory bandwidth (stratbench/roofline.py),
then measure every selected case in comparison groups: the strategies of one case, the
roofline of its traffic (and, at each series' smallest size, each strategy's call floor),
sampled in shuffled rounds that alternate between two worker processes
(stratbench/measurement.py)."""

from __future__ import annotations

import dataclasses
import pathlib
import time

import pandas as pd

import impls
from stratbench import capabilities, environment, matrix, metrics, status, verify
from stratbench.limits import floor_series, limits_of, projected_too_slow, roofline_figures
from stratbench.engine import EntryFailed, answers, sample
from stratbench.measurement import group_figures
from stratbench.results import RunStore, measuring_columns
from stratbench.timing import ROOFLINE_KEY, Floor, RooflineEntry, Settings, floor_key
from stratbench.worker import live_noting


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
    roofline: bool = True  # time each group's memory roofline with it (stratbench/roofline.py)
    processes: int = 2  # worker processes per setting that a group's rounds alternate between
    baseline: str = matrix.BASELINE  # the strategy each speedup is over
    # live worker pools (env -> workers) to measure in and leave open, for a caller that makes several
    # runs in one process; None: the run starts its own and closes them at its end
    workers: dict | None = None


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
        row |= metrics.throughput(case.size, case.bytes_moved, row["median_s"])
        if case.bytes_moved and not row.get("roofline_bytes_per_s"):
            note = f"roofline_fraction: {measured.get('why_no_roofline') or 'the roofline was not measured'}"
            row["unmeasured"] = "; ".join(filter(None, [row.get("unmeasured"), note]))
    return row


def _skip_reason(case, devices_present, failed) -> str:
    impl = impls.get(case.op, case.strategy)
    if not impl.available:
        return f"unavailable: {impl.reason}"
    if case.device not in devices_present:
        return f"no {case.device} visible to TensorFlow on this machine"
    if case.device not in impl.devices:
        return f"{case.strategy} does not run on {case.device}"
    if case.dtype not in impl.dtypes:
        return f"{case.strategy} does not support {case.dtype}"
    return failed.get((case.env, case.op, case.strategy), "")


def run(options: Options, progress=None, log=print) -> tuple[pd.DataFrame, pathlib.Path]:
    """Measure options.cases; returns the run's table and its directory."""
    import tensorflow as tf

    progress = progress or (lambda items, desc: items)
    env = environment.capture()
    if options.machine:
        env["machine"] = options.machine
    run_id = environment.run_id(env) + (time.strftime("-%Y%m%dT%H%M%S") if options.fresh else "")
    store = RunStore(options.out / env["machine"] / run_id, env)
    measured_with = options.settings.describe()
    done = store.measured(options.settings)
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
    # env -> its live workers: the correctness gate's, then the measuring's
    workers = options.workers if options.workers is not None else {}
    try:
        failed = verify.gate(todo, options, progress, effective, workers) if options.verify else {}

        to_measure, not_measured = [], []
        for case in todo:
            reason = _skip_reason(case, devices_present, failed)
            if reason:
                outcome = status.FAILED_VERIFY if reason.startswith("failed verify") else status.SKIPPED
                not_measured.append(_row(case, env, run_id, outcome, reason, effective.get(case.env),
                                         **measuring_columns(options.settings)))
            else:
                to_measure.append(case)
        store.add(*not_measured)

        limits = limits_of(store, options, log)
        # Comparison groups (one case, every strategy; at the smallest shape of a floor series
        # their call floors too), each sampled in rounds that alternate between
        # `options.processes` workers of its setting.
        smallest = {}
        for case in options.cases:
            smallest[floor_series(case)] = min(smallest.get(floor_series(case), case.size), case.size)
        envs = list(dict.fromkeys(c.env for c in options.cases))
        groups = {}
        for case in to_measure:
            groups.setdefault(group_key(case), []).append(case)
        ordered = sorted(groups.values(), key=lambda g: (envs.index(g[0].env), g[0].op,
                                                         matrix.DIRECTIONS.index(g[0].direction), g[0].size))
        bar = progress(ordered, "measure")
        for group in bar:
            label = group[0].key.replace(f"/{group[0].strategy}/", "/")
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(label, refresh=True)
            _measure_group(group, options, store, env, run_id, effective, workers, limits,
                           floors=group[0].size == smallest[floor_series(group[0])])
        for problem in filter(None, (environment.not_in_effect(name, effective.get(name)) for name in envs)):
            log(f"warning: {problem}")
        store.update_environment(settings={
            name: {"variables": environment.ENV_SETTINGS[name], "help": environment.ENV_HELP[name],
                   "effective": effective.get(name)}
            for name in envs
        })
        if options.capabilities:  # in a worker that measured, if one lives: no TensorFlow start of its own
            pairs = dict.fromkeys((c.op, c.strategy) for c in options.cases)
            alive = [w for w in workers.get(envs[0], []) if w and w.alive]
            capabilities.measure(pairs, store.directory, log, progress, options.verbose, env=envs[0],
                                 worker=alive[0] if alive else None)
    finally:
        for pool in workers.values() if options.workers is None else ():
            for worker in pool:
                worker.close()
    table = store.table()  # the folder may hold other cases too: show the ones asked for
    return table[table["key"].isin({c.key for c in options.cases})].reset_index(drop=True), store.directory


def group_key(case) -> tuple:
    """What the strategies of one comparison group share: everything but the strategy."""
    return (case.env, case.op, case.direction, case.dtype, case.device, case.shape)


def _measure_group(group, options, store, env, run_id, effective, workers, limits, floors=False) -> None:
    """Measure one comparison group (with its call floors if `floors`) and store its rows and
    samples.  A case that hangs, crashes or fails its worker costs that case only: the
    workers are replaced and the group is measured again without it; a failing floor
    costs the group its floors."""
    env_name = group[0].env
    measuring = measuring_columns(options.settings)
    cases, excluded = [], {}  # excluded: key -> (status, why)
    for case in group:
        projected = projected_too_slow(case, store.rows.values(), options.settings)
        if projected:
            excluded[case.key] = (status.TOO_SLOW, projected)
        else:
            cases.append(case)
    measurement, infos = None, {}
    why_no_roofline = limits.why_no_roofline
    while any(c.key not in excluded for c in cases):
        pool = workers[env_name] = live_noting(workers.get(env_name) or [None] * options.processes,
                                                 options.verbose, env_name, effective)
        try:
            measurement, infos = _sample_group([c for c in cases if c.key not in excluded], pool, options, floors,
                                               with_roofline=not why_no_roofline)
            break
        except EntryFailed as e:
            if e.key.startswith(floor_key("")):
                floors = False
            elif e.key == ROOFLINE_KEY:
                why_no_roofline = f"the roofline entry failed: {e.reason}"
            else:
                excluded[e.key] = (e.status, e.reason)
            if e.status in status.NEEDS_FRESH_WORKER:
                for worker in pool:
                    worker.close(kill=True)  # its memory and threads are suspect: the rest get fresh ones
                workers.pop(env_name, None)
    if ROOFLINE_KEY in infos and infos[ROOFLINE_KEY][0] != status.OK:
        why_no_roofline = f"the roofline entry failed: {infos[ROOFLINE_KEY][1]}"
    figures = group_figures(measurement, {c.key: c.strategy for c in cases}, options.baseline) if measurement else {}
    for case in group if measurement else ():
        if measurement.rounds(floor_key(case.strategy)):
            limits.floors[(floor_series(case), case.strategy)] = measurement.time(floor_key(case.strategy)).value
    rows = []
    for case in group:
        outcome, info = excluded.get(case.key) or infos[case.key]
        if outcome != status.OK:
            rows.append(_row(case, env, run_id, outcome, info, effective.get(env_name), **measuring))
            continue
        memory = {k: v for k, v in info.items() if k != "calls"}
        summary = measurement.summary(case.key)
        rows.append(_row(case, env, run_id, effective=effective[env_name], **measuring,
                         baseline=options.baseline, **roofline_figures(measurement, case, why_no_roofline),
                         **limits.figures(case, summary["median_s"]),
                         **memory, **summary, **figures.get(case.key, {})))
    store.add(*rows)
    if measurement:
        samples = measurement.frame()
        samples["key"] = samples["key"].replace({floor_key(c.strategy): f"{floor_key('')}{c.key}" for c in group}
                                               | {ROOFLINE_KEY: f"{ROOFLINE_KEY}:{group[0].key}"})
        store.add_samples(samples)


def _ask(workers, kind, payload, key, options) -> list:
    """Each of `workers`' answer to `kind` with `payload`, asked of all at once."""
    return answers([(w, kind, payload) for w in workers], options.settings, options.case_timeout_s, key)


def _add_roofline(entry, pool, options) -> list:
    """Each worker's answer to adding the roofline `entry`: the first worker alone, which chooses
    the kernel's threads and stores with the cores to itself, then the others, given its choice."""
    said = _ask(pool[:1], "add", entry, ROOFLINE_KEY, options)
    outcome, result = said[0]
    if outcome != status.OK or result[0] != status.OK or len(pool) == 1:
        return said  # a failed entry is not sampled: the others need not set it up
    return said + _ask(pool[1:], "add", dataclasses.replace(entry, chosen=result[1]["chosen"]), ROOFLINE_KEY, options)


def _sample_group(cases, pool, options, floors: bool = False, with_roofline: bool = False) -> tuple:
    """(Measurement, {key: (status, warm-up figures or why)}) of one group in the pool's workers,
    with each strategy's call floor if `floors` (not for train_step, whose fixed costs are the
    model's) and the roofline of its traffic if `with_roofline` (train_step has none)."""
    _ask(pool, "group", cases[0], cases[0].key, options)
    infos, calls = {}, {}
    entries = [(c.key, c) for c in cases] + [(floor_key(c.strategy), Floor(c))
                                             for c in cases if floors and c.direction != matrix.TRAIN_STEP]
    if with_roofline and cases[0].traffic:
        entries.append((ROOFLINE_KEY, RooflineEntry(cases[0])))
    for key, case in entries:
        said = _add_roofline(case, pool, options) if key == ROOFLINE_KEY else _ask(pool, "add", case, key, options)
        failed = next((a for a in said if a[0] != status.OK), None)
        if failed:  # the worker answered with an error of its own (not the entry's)
            raise EntryFailed(key, *failed)
        infos[key] = next((a[1] for a in said if a[1][0] != status.OK), said[0][1])
        if infos[key][0] == status.OK:
            calls[key] = max(a[1][1]["calls"] for a in said)
    contenders = [c.key for c in cases if c.key in calls]
    if not contenders:
        return None, infos
    keep = [c.key for c in cases if c.strategy == options.baseline]
    return sample(lambda name: pool, calls, options.settings.rounds, options.case_timeout_s, len(pool),
                  contenders=contenders, keep=keep), infos
