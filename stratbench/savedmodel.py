"""The SavedModel cell of the capability matrix: an (op, strategy)'s value and gradient saved
where it runs (`save`), then loaded and called by a fresh Python process and held to the
reference (`reload_in_fresh_process`), so a strategy that only works in the process that made
it is found out."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from stratbench import status


def _saved_model_step(impl, rank: int):
    import tensorflow as tf

    from stratbench import correctness

    module = tf.Module()
    module.value_and_grad = tf.function(
        lambda x, dy: correctness.value_and_grad(impl, x, dy),
        input_signature=[tf.TensorSpec([None] * rank, tf.float32)] * 2,  # any batch size
    )
    return module


def _reload(jobs: list[dict]) -> None:
    """In a fresh process (`python -m stratbench.savedmodel JOBS`): each job's SavedModel
    loaded and called on its inputs, the outputs saved beside them; a failure printed as
    one line, '<path> <why>'."""
    import numpy as np
    import tensorflow as tf

    import impls

    for job in jobs:
        try:
            impls.get(job["op"], job["strategy"])  # what its declaration's reload_note says a loader does first
            data = np.load(job["inputs"])
            y, dx = tf.saved_model.load(job["path"]).value_and_grad(data["x"], data["dy"])
            np.savez(job["outputs"], y=y.numpy(), dx=dx.numpy())
        except Exception as e:
            print(job["path"], status.summary(e, limit=240), flush=True)


def save(impl, directory: pathlib.Path) -> dict:
    """Saves impl's value-and-gradient as a SavedModel; the job for reload_in_fresh_process."""
    import numpy as np

    values = impl.spec.verify_values()
    dy = np.random.default_rng(1).normal(size=values.shape)
    stem = directory / f"{impl.op}-{impl.strategy}"
    np.savez(f"{stem}-inputs.npz", x=values.astype(np.float32), dy=dy.astype(np.float32))
    import tensorflow as tf

    tf.saved_model.save(_saved_model_step(impl, values.ndim), str(stem))
    return {"op": impl.op, "strategy": impl.strategy, "path": str(stem),
            "inputs": f"{stem}-inputs.npz", "outputs": f"{stem}-outputs.npz"}


def reload_in_fresh_process(jobs: list[dict], timeout_s: float = 300) -> dict:
    """(op, strategy) -> Cell: the saved jobs loaded and called by one new Python process,
    their outputs held to the reference.  If that process dies, each job it left without
    an answer is loaded again alone, so a crash costs the job that caused it."""
    import numpy as np

    import impls
    from stratbench.capabilities import NO, YES, Cell
    from stratbench.correctness import _compare

    if not jobs:
        return {}
    try:
        done = subprocess.run([sys.executable, "-m", __name__, json.dumps(jobs)], capture_output=True, text=True,
                              timeout=timeout_s, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        said, ended = done.stdout, f"the loading process exited {done.returncode}: {done.stderr.strip()[-200:]}"
        died = done.returncode != 0
    except subprocess.TimeoutExpired as e:
        said, ended, died = e.stdout or "", f"the loading process ran past {timeout_s:g} s and was stopped", True
    said = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in said.splitlines() if " " in line}
    cells = {}
    for job in jobs:
        pair = (job["op"], job["strategy"])
        if not pathlib.Path(job["outputs"]).exists():
            if died and len(jobs) > 1 and job["path"] not in said:
                cells |= reload_in_fresh_process([job], timeout_s)
                continue
            cells[pair] = Cell(NO, f"saved, but the reload failed: {said.get(job['path']) or ended}")
            continue
        data, out = np.load(job["inputs"]), np.load(job["outputs"])
        spec = impls.spec(job["op"])
        want_y, want_dx = spec.expected(data["x"], data["dy"])
        ok = _compare(out["y"].astype(np.float64), want_y, spec.tolerances["float32"])[0] and \
            _compare(out["dx"].astype(np.float64), want_dx, spec.tolerances["float32"])[0]
        reload_note = impls.declaration(job["strategy"]).reload_note
        note = f" ({reload_note})" if reload_note else ""
        cells[pair] = Cell(YES, "reloaded values and gradients match" + note) if ok else \
            Cell(NO, "reloaded, but its values or gradients are wrong")
    return cells


if __name__ == "__main__":
    _reload(json.loads(sys.argv[1]))
