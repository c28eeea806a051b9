"""spiky's own facts: its reference by hand, the seed's example, its named edge values.
(What every op must satisfy is tested for spiky too, in tests/, by the registry.)"""

import numpy as np
import pytest
import tensorflow as tf

import impls
from impls.ops.spiky import reference
from stratbench.testing import usable
from stratbench import correctness

STRATEGIES = impls.strategies_for("spiky")  # declared: one unavailable here skips (usable)


def test_reference_by_hand():
    x = [0.5, -0.5, 1.5, -0.25, -0.75, 3.0, -4.0, 1e7 + 0.25, 1e7 + 0.75, -1e-9, np.nan, np.inf, -np.inf]
    want_y = [0.5, 0.5, 0.5, 0.0, 0.25, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0]
    want_g = [1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    np.testing.assert_array_equal(reference.spiky(x), want_y)
    np.testing.assert_array_equal(reference.spiky_grad(x, np.ones(len(x))), want_g)
    np.testing.assert_array_equal(reference.spiky_grad([0.2, 0.7], [3.0, 5.0]), [3.0, 0.0])


@pytest.mark.parametrize("in_function", [False, True])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_seed_example_exactly(strategy, in_function):
    x = tf.constant([0.2, 0.7, 1.2, 1.7], tf.float32)
    y, dx = correctness.value_and_grad(usable("spiky", strategy), x, tf.ones_like(x), in_function=in_function)
    assert y.dtype == tf.float32
    np.testing.assert_array_equal(y.numpy(), np.array([0.2, 0, 0.20000005, 0], np.float32))
    np.testing.assert_array_equal(dx.numpy(), [1, 0, 1, 0])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_named_edge_values(strategy):
    x = tf.constant([0.5, -0.5, -3.0, 7.0, -1e-9, np.nan, np.inf, -np.inf], tf.float32)
    y, dx = correctness.value_and_grad(usable("spiky", strategy), x, tf.fill(x.shape, 2.0))
    np.testing.assert_array_equal(y.numpy(), [0.5, 0.5, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(dx.numpy(), [2, 2, 2, 2, 0, 0, 0, 0])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_near_1e7(strategy):
    x = np.array([1e7, 1e7 + 0.25, 1e7 + 0.5, 1e7 + 0.75, -1e7 - 0.25], np.float64)
    assert correctness.check(usable("spiky", strategy), x, "float64").ok
    y = usable("spiky", strategy).fn(tf.constant(x, tf.float64)).numpy()
    np.testing.assert_array_equal(y, [0, 0.25, 0.5, 0, 0])


def test_seed_needs_vectorize_otypes():
    """Why pyfunc_seed gives np.vectorize its output type: the seed's guess truncates."""
    guessed = np.vectorize(reference.spiky_scalar)  # as in the seed answer
    assert guessed(np.array([0.7, 0.2])).tolist() == [0, 0]  # 0.2 lost to an int output
    fixed = np.vectorize(reference.spiky_scalar, otypes=[np.float64])
    np.testing.assert_array_equal(fixed(np.array([0.7, 0.2])), [0.0, 0.2])
