"""The softmaxes' own facts: the reference by hand, large magnitudes, ties, -inf.
(What every op must satisfy is tested for them too, in tests/, by the registry.)"""

import numpy as np
import pytest
import tensorflow as tf

import impls
from impls.ops.softmax import reference
from stratbench.testing import usable
from stratbench import correctness

PAIRS = [(op, s) for op in ("softmax", "softmax_nosg") for s in impls.strategies_for(op)]  # unavailable: skips (usable)


@pytest.fixture
def custom_op():
    """The compiled softmax, for the tests of its kernel's paths (skipped where it cannot build)."""
    return usable("softmax", "custom_op")


def test_rows_sum_to_one_and_are_shift_invariant():
    x = np.random.default_rng(0).normal(size=(4, 7))
    for axis in (0, 1, -1):
        y = reference.softmax(x, axis)
        np.testing.assert_allclose(y.sum(axis=axis), 1.0)
        np.testing.assert_allclose(reference.softmax(x + 1e4, axis), y, rtol=1e-9)


def test_vjp_matches_jacobian():
    x, dy = np.random.default_rng(1).normal(size=(2, 5))
    y = reference.softmax(x)
    jacobian = np.diag(y) - np.outer(y, y)
    np.testing.assert_allclose(reference.softmax_grad(x, dy), jacobian.T @ dy, atol=1e-15)


def test_empty_and_minus_inf():
    assert reference.softmax(np.zeros((0, 3))).shape == (0, 3)
    assert reference.softmax(np.zeros((3, 0))).shape == (3, 0)
    np.testing.assert_array_equal(reference.softmax([[0.0, -np.inf, 0.0]]), [[0.5, 0.0, 0.5]])


@pytest.mark.parametrize("op,strategy", PAIRS)
def test_large_magnitudes_stay_finite_in_float32(op, strategy):
    x = tf.constant([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, -1e4 + 2, -1e4 + 1, -1e4]], tf.float32)
    for axis in (0, -1):
        y, dx = correctness.value_and_grad(usable(op, strategy), x, tf.ones_like(x) * 0.5, axis)
        assert np.isfinite(y.numpy()).all() and np.isfinite(dx.numpy()).all()
        np.testing.assert_allclose(y.numpy().sum(axis=axis), 1.0, rtol=1e-6)


@pytest.mark.parametrize("op,strategy", PAIRS)
def test_tied_max_splits_evenly(op, strategy):
    y = usable(op, strategy).fn(tf.constant([[3.0, 3.0, -np.inf, 3.0]], tf.float32)).numpy()
    np.testing.assert_allclose(y, [[1 / 3, 1 / 3, 0, 1 / 3]], rtol=1e-6)


# 16 MiB in every dtype, rows of 2053 (unaligned): along the rows the compiled kernel
# streams outputs this big past the private caches (StreamOutput in impls/kernels/stratbench.h);
# down the columns each softmax runs over thousands of rows (the sums' precision), split
# into slabs that are merged.
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_custom_op_at_16_mib_matches_the_reference(custom_op, dtype, axis):
    cols = 2053
    rows = -(-(16 << 20) // (cols * np.dtype(dtype if dtype != "bfloat16" else "float16").itemsize))
    values = np.random.default_rng(2).normal(scale=4, size=(rows, cols))
    result = correctness.check(custom_op, values, dtype, axis=axis)
    assert result.ok, f"{dtype}: forward error {result.forward_err:.3g}, gradient {result.gradient_err:.3g} {result.detail}"


# The compiled kernel's other paths (softmax.cc): along any other axis in place, a chunk of
# 1024 inner positions at a time (kChunk; these shapes leave a partial chunk), and rows
# shorter than 16 (kShortRow), in every dtype.
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("shape,axis", [((3, 5, 1100), 1), ((7, 2500), 0), ((2, 3, 4, 5), -3), ((6,), 0),
                                        ((1000, 2), -1), ((300, 15), 1), ((40, 1), -1)])
def test_custom_op_kernel_paths_match_the_reference(custom_op, dtype, shape, axis):
    values = np.random.default_rng(3).normal(scale=4, size=shape)
    result = correctness.check(custom_op, values, dtype, axis=axis, in_function=True)
    assert result.ok, f"forward error {result.forward_err:.3g}, gradient {result.gradient_err:.3g} {result.detail}"


# Along a non-last axis the kernel takes the max a block of rows at a time and rescales the
# sums so far to it, and splits a column's rows into slabs merged at the end (300 rows: 2 to
# 4 slabs for 1 to 2 threads): a max that rises down the axis (every block), columns of -inf
# through the first blocks and a whole slab, and a column of -inf alone must give what the
# reference gives.
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("rows", [37, 300])
def test_custom_op_rescales_as_the_max_rises_along_the_axis(custom_op, dtype, rows):
    rng = np.random.default_rng(4)
    values = np.linspace(0, 12, rows)[:, None] + rng.normal(scale=0.5, size=(rows, 1030))
    values[:3, ::7] = -np.inf
    values[:rows // 2, 1::7] = -np.inf
    values[:, 2] = -np.inf
    result = correctness.check(custom_op, values, dtype, axis=0, in_function=True)
    assert result.ok, f"forward error {result.forward_err:.3g}, gradient {result.gradient_err:.3g} {result.detail}"
