"""The capability matrix: what each (op, strategy) survives in production, found by
exercising it, never declared.

Every cell is a Cell(status, detail) with status yes | no | skipped.  check_pair runs
inside a worker process (one per strategy, as in `stratbench run`), so a crash costs
one strategy; the SavedModel it writes is reloaded by a fresh Python process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import tempfile
import threading
import time

from stratbench import savedmodel, status

CHECKS = {
    "forward": "values match the reference (float32, eager and in tf.function)",
    "gradient": "gradients match the reference (float32, eager and in tf.function)",
    "eager": "values and gradients correct when called eagerly",
    "tf_function": "values and gradients correct inside a caller's tf.function",
    "jit_compile": "values and gradients correct inside tf.function(jit_compile=True)",
    "gpu": "values and gradients correct on GPU:0",
    "savedmodel": "tf.saved_model.save, then load and call in a fresh Python process",
    "keras": "a Keras 3 model with the layer trains with model.fit, saves to .keras and loads",
    "dtypes": "dtypes whose values and gradients match the reference",
    "threads": "correct when called from 4 Python threads at once",
    "thread_scaling": "throughput of 2 threads over 1 (forward, production mode)",
}
YES, NO, SKIPPED = "yes", "no", "skipped"
FILE = "capabilities.json"


@dataclasses.dataclass
class Cell:
    status: str
    detail: str = ""


def _failed(error: Exception) -> Cell:
    return Cell(NO, status.summary(error, limit=240))


def _attempt(fn) -> Cell:
    """fn() -> Cell, or a 'no' naming the error it raised."""
    try:
        return fn()
    except Exception as e:
        return _failed(e)


def _check(impl, dtype="float32", **how):
    """correctness.Check of impl on the verify inputs, or the exception it raised."""
    from stratbench import correctness

    values = impl.spec.verify_values()
    try:
        return correctness.check(impl, values, dtype, **how)
    except Exception as e:
        return e


def _cell(check, part="ok") -> Cell:
    """A cell from _check's answer: part is ok (both), forward_ok or gradient_ok."""
    if isinstance(check, Exception):
        return _failed(check)
    if getattr(check, part):
        return Cell(YES)
    return Cell(NO, f"max error: values {check.forward_err:.1e}, gradients {check.gradient_err:.1e} {check.detail}".strip())


def _gpu(impl) -> Cell:
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return Cell(SKIPPED, "no GPU visible to TensorFlow on this machine")
    if "GPU" not in impl.devices:
        return Cell(NO, f"{impl.strategy} has no GPU kernel")
    with tf.device("/GPU:0"):
        return _cell(_check(impl, in_function=True))


def _keras(impl, directory: pathlib.Path) -> Cell:
    import keras
    import numpy as np

    from impls.keras import MLP_CLASSES, MLP_FEATURES, mlp, mlp_loss

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, MLP_FEATURES)).astype("float32")
    labels = rng.integers(0, MLP_CLASSES, size=256)
    model = mlp(impl.op, impl.strategy)
    model.compile(optimizer="adam", loss=mlp_loss(impl.op))  # jit_compile="auto" honours supports_jit
    history = model.fit(x, labels, epochs=2, batch_size=64, verbose=0)
    losses = history.history["loss"]
    if not np.all(np.isfinite(losses)):
        return Cell(NO, f"model.fit gave a non-finite loss {losses}")
    path = directory / f"{impl.op}-{impl.strategy}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    if not np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6):
        return Cell(NO, "the reloaded model predicts differently")
    return Cell(YES, f"fit loss {losses[0]:.3f} -> {losses[-1]:.3f}; reloaded from .keras")


def _dtypes(impl) -> Cell:
    good = [d for d in impl.dtypes if _cell(_check(impl, d, in_function=True)).status == YES]
    bad = [d for d in impl.dtypes if d not in good]
    return Cell(YES if good else NO, ",".join(good) + (f" (claimed but wrong: {','.join(bad)})" if bad else ""))


def _production_forward(impl):
    """(call, inputs): the forward in its production mode, and 4 distinct inputs."""
    import tensorflow as tf

    from stratbench import matrix, timing

    case = matrix.Case(impl.op, impl.strategy, "forward", "float32", "CPU", impl.spec.probe_shape)
    prepared = timing.prepare(impl, case, input_sets=4)
    return (lambda args: prepared.step(*args)), prepared.inputs, tf


def _threads(impl) -> tuple[Cell, Cell]:
    """Correctness from 4 threads at once, and 2 threads' throughput over 1 thread's."""
    import numpy as np

    call, inputs, tf = _production_forward(impl)
    want = [call(args).numpy() for args in inputs]  # one thread, also traces and compiles
    got, errors = {}, []

    def worker(i):
        try:
            for _ in range(3):
                got[i] = call(inputs[i]).numpy()
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        correct = _failed(errors[0])
    else:
        same = all(np.array_equal(got[i], want[i], equal_nan=True) for i in range(4))
        correct = Cell(YES, "4 threads, 3 calls each, same results as one thread") if same else \
            Cell(NO, "results from concurrent calls differ from one thread's")

    def timed(n_threads, calls=8):
        def run(k):
            for _ in range(calls // n_threads):
                call(inputs[k])
        start = time.perf_counter()
        pool = [threading.Thread(target=run, args=(k,)) for k in range(n_threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        tf.test.experimental.sync_devices()
        return time.perf_counter() - start

    one = min(timed(1) for _ in range(2))
    two = min(timed(2) for _ in range(2))
    ratio = one / two
    verdict = "scales" if ratio > 1.3 else "does not scale (GIL or TF's own threads already busy)"
    scaling = Cell(YES if ratio > 1.3 else NO, f"{ratio:.2f}x: {verdict}; {len(os.sched_getaffinity(0))} cores")
    return correct, scaling


def check_pair(op: str, strategy: str, directory: str) -> dict:
    """Every cell but savedmodel's reload for one (op, strategy); the SavedModel job
    is returned under '_savedmodel_job' for reload_in_fresh_process."""
    import impls

    impl = impls.get(op, strategy)
    if not impl.available:
        return {check: dataclasses.asdict(Cell(SKIPPED, f"unavailable: {impl.reason}")) for check in CHECKS}
    directory = pathlib.Path(directory)
    eager, function = _check(impl), _check(impl, in_function=True)
    cells = {
        "forward": _combined(eager, function, "forward_ok"),
        "gradient": _combined(eager, function, "gradient_ok"),
        "eager": _cell(eager),
        "tf_function": _cell(function),
        "jit_compile": _cell(_check(impl, jit_compile=True)),
        "gpu": _attempt(lambda: _gpu(impl)),
        "keras": _attempt(lambda: _keras(impl, directory)),
        "dtypes": _dtypes(impl),
    }
    try:
        cells["threads"], cells["thread_scaling"] = _threads(impl)
    except Exception as e:
        cells["threads"] = cells["thread_scaling"] = _failed(e)
    try:
        cells["_savedmodel_job"] = savedmodel.save(impl, directory)
    except Exception as e:
        cells["savedmodel"] = Cell(NO, "save failed: " + _failed(e).detail)
    return {name: dataclasses.asdict(c) if isinstance(c, Cell) else c for name, c in cells.items()}


def _combined(eager, function, part) -> Cell:
    """forward or gradient: correct both eagerly and in a tf.function."""
    cells = [_cell(eager, part), _cell(function, part)]
    return next((c for c in cells if c.status != YES), Cell(YES))


def measure(pairs, run_directory, log=print, progress=None, verbose=False, env: str = "default",
            worker=None) -> dict:
    """Fills run_directory/capabilities.json for `pairs` of (op, strategy), checked in one
    worker (`worker`, a live one of setting `env` that the caller keeps and closes, else a
    fresh one; a worker that dies or hangs costs its pair and is replaced), their SavedModels
    then reloaded by one fresh process; pairs already in the file are kept (a rerun resumes).
    Returns {"op/strategy": {check: cell}}."""
    from stratbench.results import _write_atomic
    from stratbench.worker import CaseTimeout, WorkerDied, live

    path = pathlib.Path(run_directory) / FILE
    found = json.loads(path.read_text())["pairs"] if path.exists() else {}
    todo = [(op, s) for op, s in pairs if f"{op}/{s}" not in found]
    progress = progress or (lambda items, desc: items)
    checked, jobs, given = {}, [], worker
    with tempfile.TemporaryDirectory(prefix="stratbench-capabilities-") as scratch:
        try:
            for op, strategy in progress(todo, "capabilities"):
                try:
                    [worker] = live([worker], verbose, env)
                    outcome, result = worker.ask("call", (check_pair, (op, strategy, scratch)), None, 600)
                except (CaseTimeout, WorkerDied) as e:
                    outcome, result = status.ERROR, f"{type(e).__name__}: {e}"
                if outcome != status.OK:
                    log(f"capabilities of {op}/{strategy} not checked: {result}")
                    result = {check: {"status": NO, "detail": f"the check itself failed: {result}"} for check in CHECKS}
                if "_savedmodel_job" in result:
                    jobs.append(result.pop("_savedmodel_job"))
                checked[(op, strategy)] = result
        finally:
            if worker and worker is not given:
                worker.close()
        # after every check, not beside one: thread_scaling is timed
        for pair, cell in savedmodel.reload_in_fresh_process(jobs, timeout_s=max(300, 30 * len(jobs))).items():
            checked[pair]["savedmodel"] = dataclasses.asdict(cell)
    for (op, strategy), result in checked.items():
        found[f"{op}/{strategy}"] = {check: result[check] for check in CHECKS}
    _write_atomic(path, json.dumps({"checks": CHECKS, "env": env, "pairs": found}, indent=1))
    return found


def load(run_directory) -> dict | None:
    """{"op/strategy": {check: cell}} of a run directory, or None when it has none."""
    path = pathlib.Path(run_directory) / FILE
    return json.loads(path.read_text())["pairs"] if path.exists() else None


def table(pairs: dict):
    """A pandas table, one row per (op, strategy), one column per check: yes / no / '-'
    for skipped, the dtypes that pass, and the thread scaling ratio."""
    import pandas as pd

    def text(check, cell):
        if cell["status"] == SKIPPED:
            return "-"
        if check == "dtypes" and cell["status"] == YES:
            return cell["detail"].replace("float", "f").replace("bf16", "bf16")
        if check == "thread_scaling" and cell["detail"][:1].isdigit():
            return cell["detail"].split(":")[0]
        return cell["status"]

    rows = {tuple(key.split("/")): {check: text(check, cell) for check, cell in cells.items()}
            for key, cells in pairs.items()}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.names = ["op", "strategy"]
    return out

