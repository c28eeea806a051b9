"""Measuring one case in this process: inputs, the step in its production mode,
synchronised timing, TF allocator and RSS peaks, and the copy roofline.

Used by `stratbench run` (inside a worker process) and by the asv and
pytest-benchmark suites.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time

import numpy as np
import tensorflow as tf

import impls
from stratbench import metrics
from stratbench.environment import tf_allocator_stats
from stratbench.matrix import TRAIN_STEP


@dataclasses.dataclass
class Settings:
    target_sample_s: float = 0.1  # calls per sample are chosen so a sample lasts about this long
    min_samples: int = 5
    case_budget_s: float = 30.0  # a case whose calls cannot fit in this is reported too_slow

    def describe(self) -> str:
        """What a stored figure was measured with: a case measured otherwise is measured again."""
        return f"{self.target_sample_s:g} s samples x{self.min_samples}, budget {self.case_budget_s:g} s"


class TooSlow(Exception):
    """One call takes so long that the samples would not fit in the case budget."""


def sync() -> None:
    """Wait for every device to finish queued work (GPU kernels run asynchronously)."""
    tf.test.experimental.sync_devices()


def make_inputs(case, seed: int = 0):
    """x and a real upstream gradient dy, made once on the case's device, outside timing;
    for train_step, a batch of features and its class labels."""
    with tf.device(f"/{case.device}:0"):
        rng = tf.random.Generator.from_seed(seed)
        if case.direction == TRAIN_STEP:
            from impls.keras import MLP_CLASSES, MLP_FEATURES

            features = tf.cast(rng.normal((case.size, MLP_FEATURES)), case.dtype)
            labels = rng.uniform((case.size,), maxval=MLP_CLASSES, dtype=tf.int32)
            return tf.identity(features), tf.identity(labels)
        x = tf.cast(rng.normal(case.shape, stddev=impls.spec(case.op).input_scale), case.dtype)
        dy = tf.cast(rng.normal(case.shape), case.dtype)
        x, dy = tf.identity(x), tf.identity(dy)
    sync()
    return x, dy


def step_function(impl, case):
    """The step for case.direction, taking (x, dy), run the way production runs it.

    forward: y.  backward: dx alone, from x and dy (a strategy that cannot drop its
    forward pays for it here).  forward_backward: (y, dx) from one call.
    """
    def call(x):
        return impl.spec.call(impl.fn, x)

    def forward(x, dy):
        return call(x)

    def backward(x, dy):
        return forward_backward(x, dy)[1]

    def forward_backward(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = call(x)
        return y, tape.gradient(y, x, output_gradients=dy)

    step = {"forward": forward, "backward": backward, "forward_backward": forward_backward,
            TRAIN_STEP: train_step_of(impl, case)}[case.direction]
    if case.mode == "eager":
        return step
    return tf.function(step, jit_compile=case.mode == "xla")


def train_step_of(impl, case):
    """A step(features, labels) that trains the small MLP of impls/keras.py once: forward,
    loss, gradient, Adam update (what a model using the op feels); None unless train_step."""
    if case.direction != TRAIN_STEP:
        return None
    import keras

    from impls.keras import mlp, mlp_loss

    model, loss_fn = mlp(impl.op, impl.strategy), mlp_loss(impl.op)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)  # its slots exist before any tf.function traces

    def train_step(features, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(features, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    return train_step


def time_step(step, args, settings: Settings, device: str | None = None) -> dict:
    """Synchronised timing of step(*args): the first call (tracing, compiling) on its own,
    then warm-up calls, then samples of n calls each; per-call median and IQR.  With a
    device, the warm-up calls also give the memory peaks (see measure_memory)."""
    sync()
    start = time.perf_counter()
    step(*args)
    sync()
    first_call_s = time.perf_counter() - start  # tracing and compiling included

    with measure_memory(device) as memory:
        calls, start = 0, time.perf_counter()
        while calls < 1 or time.perf_counter() - start < settings.target_sample_s / 2:
            step(*args)
            calls += 1
            per_call = (time.perf_counter() - start) / calls
            if metrics.over_budget(per_call, calls, settings.min_samples, settings.case_budget_s):
                raise TooSlow(
                    f"one call takes {per_call:.2f} s after the first; warm-up and {settings.min_samples} samples "
                    f"would exceed the {settings.case_budget_s:g} s case budget (raise --case-budget to measure it)"
                )
        sync()
    per_call = (time.perf_counter() - start) / calls
    n = max(1, round(settings.target_sample_s / per_call))

    samples = []
    for _ in range(settings.min_samples):
        sync()
        start = time.perf_counter()
        for _ in range(n):
            step(*args)
        sync()
        samples.append((time.perf_counter() - start) / n)
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return memory | {
        "median_s": float(median),
        "iqr_s": float(q3 - q1),
        "samples": len(samples),
        "calls_per_sample": n,
        "noisy": metrics.is_noisy(median, q3 - q1),
        "compile_s": max(0.0, first_call_s - float(median)),
    }


def _proc_status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
        return int(match.group(1)) * 1024 if match else None
    except OSError:
        return None


def _reset_peak_rss() -> bool:
    """Linux: set this process's peak RSS (VmHWM) back to its current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def measure_memory(device: str | None):
    """Peaks while the block runs, into the dict it yields: TF's allocator above what was
    live before (the inputs), and the process's resident set, which also sees NumPy
    temporaries that TF's allocator does not.  No device: measures nothing.  A peak that
    cannot be read here is None, and `unmeasured` says why: a missing metric never fails
    a case (TF's plain CPU allocator, oneDNN off, keeps no statistics)."""
    peaks = {}
    if device is None:
        yield peaks
        return
    name = f"{device}:0"
    sync()
    why_no_tf_peak = tf_allocator_stats(device)  # resets the peak when it can
    tf_before = None if why_no_tf_peak else tf.config.experimental.get_memory_info(name)["current"]
    rss_reset = _reset_peak_rss()
    rss_start = _proc_status("VmRSS")
    yield peaks
    sync()
    unmeasured = []
    peaks["peak_tf_bytes"] = None
    if why_no_tf_peak:
        unmeasured.append(f"peak_tf_bytes: {why_no_tf_peak}")
    else:
        peaks["peak_tf_bytes"] = int(tf.config.experimental.get_memory_info(name)["peak"] - tf_before)
    peaks["peak_rss_bytes"] = _proc_status("VmHWM") if rss_reset else None
    if peaks["peak_rss_bytes"] is None:
        unmeasured.append("peak_rss_bytes: this system has no /proc/self/clear_refs and VmHWM (Linux only)")
    peaks["rss_start_bytes"] = rss_start
    peaks["unmeasured"] = "; ".join(unmeasured)


@tf.autograph.experimental.do_not_convert
def _snapshot(x):
    return tf.raw_ops.Snapshot(input=x)


@tf.autograph.experimental.do_not_convert
def _deep_copy(x):
    return tf.raw_ops.DeepCopy(x=x)


def copy_step(device: str, bytes_moved: int, copy=_snapshot):
    """(step, args): a plain TF copy that moves `bytes_moved` (half read, half written)."""
    elements = max(1, bytes_moved // 2 // 4)
    with tf.device(f"/{device}:0"):
        x = tf.identity(tf.random.uniform([elements]))
    return tf.function(copy), (x,)


def copy_bandwidth(device: str, bytes_moved: int, settings: Settings) -> dict:
    """Bytes/s of the fastest plain TF copy that moves `bytes_moved` on `device`: the
    roofline of an elementwise op moving the same bytes."""
    best = None
    for copy in (_snapshot, _deep_copy):
        step, args = copy_step(device, bytes_moved, copy)
        with tf.device(f"/{device}:0"):
            timing = time_step(step, args, settings)
        if best is None or timing["median_s"] < best["median_s"]:
            best = timing | {"method": copy.__name__.strip("_")}
    return best | {"bytes_per_s": args[0].shape[0] * 8 / best["median_s"]}


def interleaved(steps: dict, rounds: int = 15, target_sample_s: float = 0.05) -> dict:
    """Per-call sample times of several (step, args), measured in alternating order in one
    process (round r runs them forwards, round r+1 backwards), so that ratios taken sample
    by sample see the same machine state.  Returns name -> list of per-call seconds."""
    calls = {}
    for name, (step, args) in steps.items():
        step(*args)  # trace and compile
        sync()
        start, n = time.perf_counter(), 0
        while n < 2 or time.perf_counter() - start < target_sample_s:
            step(*args)
            n += 1
        sync()
        calls[name] = max(1, round(target_sample_s * n / (time.perf_counter() - start)))
    samples = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            step, args = steps[name]
            sync()
            start = time.perf_counter()
            for _ in range(calls[name]):
                step(*args)
            sync()
            samples[name].append((time.perf_counter() - start) / calls[name])
    return samples


def run_case(impl, case, settings: Settings) -> dict:
    """Time and memory of one case; raises TooSlow or whatever the step raises."""
    x, dy = make_inputs(case)
    step = step_function(impl, case)
    with tf.device(f"/{case.device}:0"):
        return time_step(step, (x, dy), settings, device=case.device)
