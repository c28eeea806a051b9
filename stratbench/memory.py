"""The memory a case uses: TF's allocator peak and the process's resident peak around a block
(`measure_memory`), what a forward keeps for its backward (`kept_for_backward`), and TF's pool
grown once per worker (`pregrow_tf_pool`).  A figure that cannot be read is None with why."""

from __future__ import annotations

import contextlib
import re

import tensorflow as tf

from stratbench.environment import tf_allocator_stats
from stratbench.steps import in_mode, sync


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


def _trim_malloc() -> None:
    """glibc: hand the heap's free pages back to the OS, so what an earlier case freed
    cannot be reused unseen by the next one (no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


POOL_BYTES = 1 << 30  # TF's caching allocators are grown to this once per worker (pregrow_tf_pool)


def pregrow_tf_pool(device: str = "CPU", nbytes: int = POOL_BYTES) -> None:
    """Grows TF's caching allocator (BFC, oneDNN's) to `nbytes` of touched memory once, so
    that no case's tensors add to the process's resident size, whatever ran before it:
    TF's share of a case is its allocator peak, the process's share what lies outside
    that allocator.  Under TF's plain allocator the memory goes back at once."""
    with tf.device(f"/{device}:0"):
        block = tf.fill([nbytes // 4], 1.0)
        sync()
    del block


@contextlib.contextmanager
def measure_memory(device: str | None):
    """The case's own memory while the block runs, into the dict it yields: TF's allocator
    peak above what was live before (the inputs), and the process's resident peak above
    its size at the start (`own_rss_bytes`: NumPy temporaries of py_func, scratch outside
    TF's allocator; with the heap trimmed first and, in workers, TF's pool grown before any
    case, so earlier cases neither hide nor add to it).  No device: measures nothing.  A
    figure that cannot be read here is None, and `unmeasured` says why: a missing metric
    never fails a case (TF's plain CPU allocator, oneDNN off, keeps no statistics)."""
    peaks = {}
    if device is None:
        yield peaks
        return
    name = f"{device}:0"
    sync()
    why_no_tf_peak = tf_allocator_stats(device)  # resets the peak when it can
    tf_before = None if why_no_tf_peak else tf.config.experimental.get_memory_info(name)["current"]
    _trim_malloc()
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
        unmeasured.append("own_rss_bytes: this system has no /proc/self/clear_refs and VmHWM (Linux only)")
    peaks["rss_start_bytes"] = rss_start
    peaks["own_rss_bytes"] = (peaks["peak_rss_bytes"] - rss_start
                              if peaks["peak_rss_bytes"] is not None and rss_start is not None else None)
    peaks["unmeasured"] = "; ".join(unmeasured)


def kept_for_backward(impl, case, x, dy) -> tuple[int | None, str]:
    """(bytes, '') TF's allocator holds between a forward under a gradient tape and its
    backward, output included: current bytes after the forward minus before it, with the
    op called in its strategy's mode (eager; a tf.function or jit function called from an
    eager tape, which TF splits into a forward that returns what the backward needs); or
    (None, why not)."""
    why = tf_allocator_stats(case.device)
    if why:
        return None, why
    call = lambda v: impl.spec.call(impl.fn, v)  # noqa: E731
    forward = in_mode(call, case.mode)
    name = f"{case.device}:0"
    with tf.device(f"/{name}"):
        for measured in (False, True):  # the first pass traces and compiles
            sync()
            before = tf.config.experimental.get_memory_info(name)["current"]
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = forward(x)
            sync()
            kept = tf.config.experimental.get_memory_info(name)["current"] - before
            tape.gradient(y, x, output_gradients=dy)
            del tape, y
    return int(kept), ""
