"""What figures are measured against: the memory roofline tool (stratbench/roofline.py) and
each strategy's call floor (timing.prepare_floor)."""

import numpy as np
import pandas as pd
import pytest

import impls
from stratbench import metrics, roofline, timing
from stratbench.matrix import Case
from stratbench.measurement import Rounds



def test_the_tool_measures_each_pattern_on_one_thread_and_tf_threads():
    rows = roofline.measure([(1, 1, 1 << 20), (2, 1, 4096), (1, 0, 1 << 20)], threads=2, trial_budget_s=0.01)
    assert set(rows["threads"]) == {1, 2}
    assert set(map(tuple, rows[["reads", "writes", "array_bytes"]].drop_duplicates().to_numpy())) == \
        {(1, 1, 1 << 20), (2, 1, 4096), (1, 0, 1 << 20)}
    assert (rows["seconds"] > 0).all()
    assert set(rows.loc[rows["writes"] == 0, "store"]) == {"ordinary"}  # no stores to make streaming
    roof = roofline.Roofline(rows)
    assert roof.seconds((1, 1, 1 << 20)) == rows.loc[(rows["reads"] == 1) & (rows["writes"] == 1), "seconds"].min()
    assert roof.seconds((2, 2, 1 << 20)) is None and roof.missing([(2, 2, 8), (1, 1, 1 << 20)]) == [(2, 2, 8)]


def test_the_tool_refuses_a_pattern_it_does_not_know():
    import subprocess

    done = subprocess.run([str(roofline.tool()), "1", "1", "0.01", "3:1:64:ordinary"], capture_output=True, text=True)
    assert done.returncode == 2 and "R and W 0-2" in done.stderr


def test_a_case_knows_its_traffic():
    assert Case("spiky", "xla", "backward", "float16", "CPU", (1000,)).traffic == (2, 1, 2000)
    assert Case("spiky", "xla", "forward_backward", "float32", "CPU", (10,)).bytes_moved == 160
    assert Case("spiky", "xla", "train_step", "float32", "CPU", (10,)).traffic is None


@pytest.mark.parametrize("strategy", impls.STRATEGIES)
@pytest.mark.parametrize("direction", ["forward", "backward", "forward_backward"])
def test_each_strategy_has_a_floor_that_does_no_work(strategy, direction):
    available, why = impls.declaration(strategy).availability(timing.FLOOR_SPEC)
    if not available:
        pytest.skip(f"{strategy} cannot make a call floor here: {why}")
    case = Case("spiky", strategy, direction, "float32", "CPU", (100_000,))
    prepared = timing.prepare_floor(case)
    x, dy = prepared.inputs[0]
    assert x.shape == timing.FLOOR_SHAPE  # the case's shape does not matter: the floor moves nothing
    out = prepared.step(x, dy)
    want = {"forward": [x], "backward": [dy], "forward_backward": [x, dy]}[direction]
    got = list(out) if isinstance(out, (tuple, list)) else [out]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_train_step_has_no_floor():
    with pytest.raises(ValueError, match="train_step has no call floor"):
        timing.prepare_floor(Case("spiky", "xla", "train_step", "float32", "CPU", (64,)))


def test_call_bound_and_exceeded_marks():
    assert metrics.is_call_bound(3e-4, 2e-4) is True and metrics.is_call_bound(5e-4, 2e-4) is False
    assert metrics.is_call_bound(1.0, None) is None and metrics.is_call_bound(1.0, float("nan")) is None
    assert metrics.exceeds_roofline(1.06) and not metrics.exceeds_roofline(1.04) and not metrics.exceeds_roofline(None)
    row = {"call_bound": "True", "roofline_fraction": 1.2}  # as read back from a CSV
    assert metrics.marked("1 ms", False, False, **metrics.row_marks(row)) == "1 ms^!"


def test_the_paired_roofline_chooses_its_fastest_kernel_and_times_passes():
    entry = roofline.Paired((2, 1, 1 << 20), threads=2, trials=1, trial_s=0.001)
    assert (entry.threads, entry.store) in {(t, s) for t in (1, 2) for s in roofline.STORES}
    assert 0 < entry.run(3) < 1
    assert roofline.Paired((1, 0, 4096), threads=2, trials=1, trial_s=0.001).store == "ordinary"  # nothing to stream
    with pytest.raises(roofline.Unmeasured, match="could not allocate"):
        roofline.Paired((3, 1, 64))


def test_a_roofline_chosen_by_one_worker_is_taken_by_the_others():
    given = roofline.Paired((2, 1, 1 << 20), threads=2, chosen=(1, "streaming"))
    assert (given.threads, given.store) == (1, "streaming") and 0 < given.run(1) < 1
    with pytest.raises(ValueError, match=r"\(3, 'ordinary'\) is not one of"):
        roofline.Paired((2, 1, 1 << 20), threads=2, chosen=(3, "ordinary"))


def test_a_group_times_its_roofline_in_its_rounds():
    cases = [Case("spiky", s, "forward", "float32", "CPU", (1 << 20,)) for s in ("native", "xla")]
    settings = timing.Settings(target_sample_s=0.005, rounds=Rounds(min_rounds=10, max_rounds=10))
    measurement, info = timing.measure_group(cases, impls.get, settings, with_roofline=True)
    assert info[timing.ROOFLINE_KEY][0] == "ok"
    assert info[timing.ROOFLINE_KEY][1]["chosen"][1] in roofline.STORES  # what the other workers are given
    assert len(measurement.rounds(timing.ROOFLINE_KEY)) == len(measurement.rounds(cases[0].key))  # every round
    from stratbench.limits import roofline_figures

    figures = roofline_figures(measurement, cases[1], "")
    assert figures["roofline_fraction_low"] <= figures["roofline_fraction"] <= figures["roofline_fraction_high"]
    assert figures["roofline_bytes_per_s"] > 0
    assert roofline_figures(None, cases[1], "--no-roofline") == {"why_no_roofline": "--no-roofline"}


SHIPPED_LARGEST = [("spiky", (16_000_000,)), ("softmax", (4096, 2048)), ("gelu", (16_000_000,))]
TRIES = 3  # measurements of a group over the roofline before the check fails


def _shipped_cases(op, shape) -> list:
    strategies = [s for s in ("custom_op", "xla") if s in impls.strategies_for(op) and impls.get(op, s).available]
    return [Case(op, s, d, "float32", "CPU", shape) for s in strategies for d in ("forward", "backward")]


@pytest.mark.slow
@pytest.mark.parametrize("op,shape", SHIPPED_LARGEST)
def test_shipped_kernels_stay_under_the_roofline(op, shape):
    """The compiled kernels and XLA at the largest size, each against the roofline timed in
    its group's rounds: a fraction whose 95% interval lies above 1.05 means the roofline (or
    the timing) is wrong. A group over it is measured again, up to TRIES times: under the test
    suite's own load (two xdist workers on two cores) the roofline's two threads, each given half
    the arrays, wait for the slower one, and one CI run saw a fraction of 1.15 that measured 0.54
    alone. A wrong roofline model stays over it in every try."""
    cases = _shipped_cases(op, shape)
    assert cases, f"neither custom_op nor xla is available for {op}"
    settings = timing.Settings(rounds=Rounds(min_rounds=6, max_rounds=6))
    tries = {}
    for direction in ("forward", "backward"):
        group = [c for c in cases if c.direction == direction]
        for attempt in range(TRIES):
            measurement, _ = timing.measure_group(group, impls.get, settings, with_roofline=True)
            fractions = {c.key: measurement.ratio(timing.ROOFLINE_KEY, c.key) for c in group}
            tries[f"{direction}, try {attempt + 1}"] = {k: f"{r.value:.3f} [{r.low:.3f}, {r.high:.3f}]"
                                                        for k, r in fractions.items()}
            if all(r.low <= metrics.ROOFLINE_EXCEEDED for r in fractions.values()):
                break
        else:
            pytest.fail(f"over {metrics.ROOFLINE_EXCEEDED} in all {TRIES} tries:\n{pd.DataFrame(tries).to_string()}")


@pytest.mark.parametrize("n", [1000, 1 << 21])  # in cache, and streamed past the private caches
def test_the_copy_ops_move_the_bytes_they_say(n):
    """compare_custom_op.py's bound for any compiled op of a traffic: x, or x + dy, written into TF's output."""
    import tensorflow as tf

    from impls.strategies import custom_op

    x, dy = tf.random.normal([n], seed=1), tf.random.normal([n], seed=2)
    np.testing.assert_array_equal(custom_op.copy_op(timing.FLOOR_SPEC)(x).numpy(), x.numpy())
    np.testing.assert_array_equal(custom_op.copy_op(timing.FLOOR_SPEC, reads=2)(x, dy).numpy(), (x + dy).numpy())
