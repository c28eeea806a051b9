"""GELU's own facts: the reference at hand-worked points and against the exact (erf) GELU,
and every strategy against what TensorFlow ships."""

import math

import numpy as np
import pytest
import tensorflow as tf

import impls
from impls.ops.gelu import reference
from stratbench.testing import usable

STRATEGIES = impls.strategies_for("gelu")  # declared: one unavailable here skips (usable)


def test_reference_by_hand():
    np.testing.assert_array_equal(reference.gelu([0.0]), [0.0])
    np.testing.assert_allclose(reference.gelu([1.0]), [0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715))])
    np.testing.assert_allclose(reference.gelu_grad([0.0], [2.0]), [1.0])  # gelu'(0) = 1/2, times dy
    assert reference.gelu([20.0])[0] == 20.0 and reference.gelu([-20.0])[0] == 0.0


def test_reference_is_close_to_the_exact_gelu():
    """The tanh form approximates x * Phi(x) to within 1e-3 (Hendrycks & Gimpel)."""
    x = np.linspace(-6, 6, 241)
    exact = x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    assert np.max(np.abs(reference.gelu(x) - exact)) < 1e-3


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matches_tf_nn_gelu_in_float32(strategy):
    x = tf.constant(np.random.default_rng(2).normal(scale=3, size=512), tf.float32)
    np.testing.assert_allclose(usable("gelu", strategy).fn(x).numpy(),
                               tf.nn.gelu(x, approximate=True).numpy(), rtol=2e-5, atol=4e-6)
