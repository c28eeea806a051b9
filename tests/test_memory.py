"""Memory a user can act on: what a forward keeps for its backward (checked on ops whose
saved bytes are known exactly), and figures that do not depend on what ran before."""

import types

import pytest

from stratbench import memory, timing
from stratbench.matrix import Case
from stratbench.measurement import Rounds
from stratbench.worker import Worker

N = 1 << 20  # a power of two: allocator rounding adds nothing
FAST = timing.Settings(target_sample_s=0.01, rounds=Rounds(max_rounds=6), case_budget_s=20)


def known_op(keeps: str):
    """An op with a custom gradient that keeps `keeps` for its backward: 'y' (its output only,
    4 bytes per float32 element) or 'y+z' (its output and one fresh tensor: 8 bytes)."""
    import tensorflow as tf

    @tf.custom_gradient
    def op(x):
        y = tf.exp(x)
        if keeps == "y":
            return y, lambda dy: dy * y
        z = x * 2.0
        return y, lambda dy: dy * y * z

    return op


def kept_by_known_op(keeps: str, strategy: str) -> int:
    """Runs in a worker: memory.kept_for_backward of the known op in `strategy`'s mode."""
    impl = types.SimpleNamespace(spec=types.SimpleNamespace(call=lambda fn, x: fn(x)), fn=known_op(keeps))
    case = Case("spiky", strategy, "forward_backward", "float32", "CPU", (N,))
    x, dy = timing.make_inputs(case)
    kept, why = memory.kept_for_backward(impl, case, x, dy)
    assert not why, why
    return kept


@pytest.fixture(scope="module")
def bfc_worker():
    """A worker whose allocator keeps statistics on any CPU (oneDNN off, TF's BFC pool)."""
    worker = Worker(env="bfc")
    yield worker
    worker.close()


@pytest.mark.parametrize("strategy", ["native", "graph", "xla"])
def test_kept_for_backward_is_exact_for_an_op_that_keeps_only_its_output(bfc_worker, strategy):
    outcome, kept = bfc_worker.ask("call", (kept_by_known_op, ("y", strategy)), None, 120)
    assert outcome == "ok", kept
    if strategy == "xla":
        # XLA's forward returns y, and for the backward its own copies (y, and exp(x) again):
        # three outputs, no aliasing between the outputs of a compiled function
        assert kept == 3 * 4 * N
    else:
        assert kept == 4 * N


@pytest.mark.parametrize("strategy", ["native", "graph"])
def test_kept_for_backward_counts_each_saved_tensor(bfc_worker, strategy):
    outcome, kept = bfc_worker.ask("call", (kept_by_known_op, ("y+z", strategy)), None, 120)
    assert outcome == "ok", kept
    assert kept == 8 * N


def _figures(worker, case):
    for kind, payload in (("group", case), ("add", case)):
        outcome, answer = worker.ask(kind, payload, FAST, 300)
        assert outcome == "ok", answer
    outcome, figures = answer
    assert outcome == "ok", figures
    return figures


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["pyfunc", "native"])
def test_memory_figures_do_not_depend_on_what_ran_before(bfc_worker, strategy):
    """The same case measured first and after other cases in one worker: the same TF figures.
    At 16M elements, as published at the largest size."""
    case = Case("spiky", strategy, "forward_backward", "float32", "CPU", (16 * N,))
    first = _figures(bfc_worker, case)
    for other in (Case("gelu", "pyfunc", "forward_backward", "float32", "CPU", (4 * N,)),  # NumPy temporaries
                  Case("gelu", "native", "forward_backward", "float32", "CPU", (32 * N,))):  # TF tensors, 2x the size
        _figures(bfc_worker, other)
    last = _figures(bfc_worker, case)
    assert first["peak_tf_bytes"] >= 8 * 16 * N
    assert abs(first["peak_tf_bytes"] - last["peak_tf_bytes"]) <= 4096  # a small tensor more or less
    assert first["kept_for_backward_bytes"] == last["kept_for_backward_bytes"]
    if strategy == "native":  # nothing outside TF's pool: the process figure is pages and Python objects
        assert abs(first["own_rss_bytes"] - last["own_rss_bytes"]) <= 1 << 20, (first, last)
    # py_func's process figure is a range, not a number: the same case in one worker, ten times
    # in a row, read 136-302 MB at 16M (one or two of its 64 MB arrays alive at the peak or not),
    # so only its floor is asserted, first and last: its NumPy temporaries, outside TF's allocator
    if strategy == "pyfunc":
        assert min(first["own_rss_bytes"], last["own_rss_bytes"]) >= 4 * 16 * N, (first, last)
