"""`stratbench verify`: every (op, strategy) held to the reference, as a table."""

from __future__ import annotations

import numpy as np
import pandas as pd

import impls
from stratbench import correctness, status
from stratbench.worker import CaseTimeout, WorkerDied, live_noting


def _checks(impl, dtypes):
    """Every (dtype, mode, axis) check of one impl: eager and in a caller's tf.function;
    yields (dtype, what the check was, as words, Check)."""
    values = impl.spec.verify_values()
    for dtype in dtypes:
        for in_function in (False, True):
            for axis in (0, -1) if impl.spec.takes_axis else (-1,):
                how = ("in a tf.function" if in_function else "eager") + (f", axis {axis}" if impl.spec.takes_axis else "")
                yield dtype, how, correctness.check(impl, values, dtype, axis=axis, in_function=in_function)


def verify_one(impl, dtypes=None) -> dict:
    """Values and gradients of impl against the reference, in `dtypes` (default: all it claims)."""
    dtypes = impl.dtypes if dtypes is None else dtypes
    row = {"op": impl.op, "strategy": impl.strategy}
    if not impl.available:
        return row | {"forward": "unavailable", "gradient": "unavailable", "note": impl.reason}
    fwd_err = grad_err = 0.0
    failed = set()
    worst_of = {}  # (dtype, direction) -> the input furthest out of tolerance, with both answers
    forward_ok = gradient_ok = True
    try:
        for dtype, how, c in _checks(impl, dtypes):
            forward_ok &= c.forward_ok
            gradient_ok &= c.gradient_ok
            if not c.ok:
                failed.add(dtype + (f" ({c.detail})" if c.detail else ""))
            for direction, ok, worst in (("forward", c.forward_ok, c.forward_worst),
                                         ("gradient", c.gradient_ok, c.gradient_worst)):
                if not ok and worst and (dtype, direction) not in worst_of:  # the first mode that shows it
                    worst_of[(dtype, direction)] = f"{dtype} {direction} ({how}) worst at {worst}"
            if dtype == "float32":
                fwd_err, grad_err = max(fwd_err, c.forward_err), max(grad_err, c.gradient_err)
    except Exception as e:  # a strategy that raises fails; the others are still verified
        return row | {"forward": "FAIL", "gradient": "FAIL", "note": f"{type(e).__name__}: {str(e)[:200]}"}
    note = "checked " + ",".join(dtypes)
    if failed:
        note = "failed for " + ", ".join(sorted(failed)) + "".join(f"; {w}" for w in worst_of.values())
    return row | {
        "forward": "pass" if forward_ok else "FAIL",
        "gradient": "pass" if gradient_ok else "FAIL",
        "max_err_forward_f32": fwd_err,
        "max_err_gradient_f32": grad_err,
        "note": note,
    }


def verify_pair(op: str, strategy: str, dtypes=None) -> dict:
    """verify_one of (op, strategy) (a worker's call: stratbench run's gate)."""
    return verify_one(impls.get(op, strategy), dtypes)


def verify(pairs, progress=None) -> pd.DataFrame:
    """One row per (op, strategy) in `pairs`; `progress` wraps the iteration (e.g. tqdm)."""
    pairs = list(pairs)
    rows = [verify_one(impls.get(op, s)) for op, s in (progress(pairs) if progress else pairs)]
    columns = ["op", "strategy", "forward", "gradient", "max_err_forward_f32", "max_err_gradient_f32", "note"]
    return pd.DataFrame(rows).reindex(columns=columns)


def passed(table: pd.DataFrame) -> bool:
    """True when something was verified and nothing failed."""
    checked = table[table["forward"] != "unavailable"]
    return len(checked) > 0 and bool(((checked["forward"] == "pass") & (checked["gradient"] == "pass")).all())


def format_table(table: pd.DataFrame) -> str:
    shown = table.copy()
    for col in ("max_err_forward_f32", "max_err_gradient_f32"):
        shown[col] = [("" if np.isnan(v) else f"{v:.1e}") for v in shown[col].astype(float)]
    return shown.to_string(index=False)


def gate(cases, options, progress, effective, workers) -> dict:
    """(env, op, strategy) -> reason, for every pair that fails the correctness gate in the
    dtypes to be timed, checked in the workers of each environment setting (oneDNN replaces
    some of TensorFlow's kernels, so a pair correct under one setting is checked under each).
    The pairs are shared out over the setting's pool, which `workers` (env -> pool) keeps
    for measuring: one start of TensorFlow per worker for the whole run."""
    failed = {}
    wanted = {}
    for c in cases:
        wanted.setdefault((c.env, c.op, c.strategy), set()).add(c.dtype)
    for env_name in dict.fromkeys(env_name for env_name, _, _ in wanted):
        pairs = [(op, s) for e, op, s in wanted if e == env_name and impls.get(op, s).available]
        bar = iter(progress(pairs, f"verify ({env_name})"))
        for start in range(0, len(pairs), options.processes):
            pool = workers[env_name] = live_noting(workers.get(env_name) or [None] * options.processes,
                                                     options.verbose, env_name, effective)
            batch = list(zip(pool, pairs[start:start + len(pool)]))
            for worker, (op, strategy) in batch:
                dtypes = sorted(d for d in wanted[(env_name, op, strategy)] if d in impls.get(op, strategy).dtypes)
                worker.send("call", (verify_pair, (op, strategy, dtypes)), None)
            for worker, (op, strategy) in batch:
                next(bar, None)
                try:
                    outcome, row = worker.answer(options.case_timeout_s)
                except (CaseTimeout, WorkerDied) as e:
                    outcome, row = status.ERROR, f"{type(e).__name__}: {e}"
                if outcome != status.OK:
                    failed[(env_name, op, strategy)] = f"failed verify: the check itself failed: {row}"
                elif row["forward"] != "pass" or row["gradient"] != "pass":
                    failed[(env_name, op, strategy)] = (f"failed verify: forward {row['forward']}, "
                                                        f"gradient {row['gradient']}: {row['note']}")
        next(bar, None)  # the bar ends
    return failed
