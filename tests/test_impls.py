"""Every available (op, strategy) against impls/reference.py: values and gradients."""

import numpy as np
import pytest
import tensorflow as tf

import impls
from stratbench import correctness
from stratbench.correctness import check

from conftest import AVAILABLE, SOFTMAXES, SPIKY, pair_id

MODES = {"eager": False, "in_tf_function": True}


def _assert_ok(result):
    assert result.ok, result


def _impl_dtype_cases():
    return [
        pytest.param(op, s, dtype, id=f"{op}-{s}-{dtype}")
        for op, s in AVAILABLE
        for dtype in impls.get(op, s).dtypes
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op,strategy,dtype", _impl_dtype_cases())
def test_edge_cases_in_every_claimed_dtype(op, strategy, dtype, mode):
    impl = impls.get(op, strategy)
    if op == "spiky":
        _assert_ok(check(impl, correctness.spiky_mixed(), dtype, in_function=MODES[mode]))
    else:
        for axis in (0, -1):
            _assert_ok(check(impl, correctness.softmax_rows(), dtype, axis=axis, in_function=MODES[mode]))


def _shape_values(op):
    rng = np.random.default_rng(3)
    shapes = {
        "empty": rng.normal(size=(0,)),
        "1d": rng.normal(size=(17,)) * 3,
        "2d": rng.normal(size=(5, 9)) * 3,
        "4d": rng.normal(size=(2, 3, 4, 5)) * 3,
        "transposed": (rng.normal(size=(9, 5)) * 3).T,
        "empty_rows": rng.normal(size=(0, 4)),
    }
    if op == "spiky":
        shapes["scalar"] = np.float64(1.3)
    return shapes


def _shape_cases():
    # softmax has no scalar form: test_bad_input.py checks that a scalar is refused.
    return [
        pytest.param(op, s, shape, id=f"{op}-{s}-{shape}")
        for op, s in AVAILABLE
        for shape in _shape_values(op)
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op,strategy,shape", _shape_cases())
def test_shapes(op, strategy, shape, mode):
    values = _shape_values(op)[shape]
    impl = impls.get(op, strategy)
    axes = [-1] if op == "spiky" else list(range(-np.ndim(values), np.ndim(values)))
    for axis in axes:
        _assert_ok(check(impl, np.asarray(values), "float32", axis=axis, in_function=MODES[mode]))


@pytest.mark.parametrize("op,strategy", AVAILABLE, ids=pair_id)
def test_non_contiguous_numpy_input(op, strategy):
    x = np.random.default_rng(4).normal(size=(6, 4)).astype(np.float32).T * 3
    assert not x.flags.c_contiguous
    forward = impls.reference.FUNCTIONS[op][0]
    y = correctness.call(impls.get(op, strategy), x)
    np.testing.assert_allclose(y.numpy(), forward(x), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op,strategy", SPIKY, ids=pair_id)
def test_seed_example_exactly(op, strategy, mode):
    x = tf.constant([0.2, 0.7, 1.2, 1.7], tf.float32)
    y, dx = correctness.value_and_grad(impls.get(op, strategy), x, tf.ones_like(x), in_function=MODES[mode])
    assert y.dtype == tf.float32
    np.testing.assert_array_equal(y.numpy(), np.array([0.2, 0, 0.20000005, 0], np.float32))
    np.testing.assert_array_equal(dx.numpy(), [1, 0, 1, 0])


@pytest.mark.parametrize("op,strategy", SPIKY, ids=pair_id)
def test_spiky_named_edge_values(op, strategy):
    x = tf.constant([0.5, -0.5, -3.0, 7.0, -1e-9, np.nan, np.inf, -np.inf], tf.float32)
    y, dx = correctness.value_and_grad(impls.get(op, strategy), x, tf.fill(x.shape, 2.0))
    np.testing.assert_array_equal(y.numpy(), [0.5, 0.5, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(dx.numpy(), [2, 2, 2, 2, 0, 0, 0, 0])


@pytest.mark.parametrize("op,strategy", SPIKY, ids=pair_id)
def test_spiky_near_1e7(op, strategy):
    x = np.array([1e7, 1e7 + 0.25, 1e7 + 0.5, 1e7 + 0.75, -1e7 - 0.25], np.float64)
    _assert_ok(check(impls.get(op, strategy), x, "float64"))
    y = impls.get(op, strategy).fn(tf.constant(x, tf.float64)).numpy()
    np.testing.assert_array_equal(y, [0, 0.25, 0.5, 0, 0])


@pytest.mark.parametrize("op,strategy", SOFTMAXES, ids=pair_id)
def test_softmax_large_magnitudes_stay_finite_in_float32(op, strategy):
    x = tf.constant([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, -1e4 + 2, -1e4 + 1, -1e4]], tf.float32)
    for axis in (0, -1):
        y, dx = correctness.value_and_grad(impls.get(op, strategy), x, tf.ones_like(x) * 0.5, axis)
        assert np.isfinite(y.numpy()).all() and np.isfinite(dx.numpy()).all()
        np.testing.assert_allclose(y.numpy().sum(axis=axis), 1.0, rtol=1e-6)


@pytest.mark.parametrize("op,strategy", SOFTMAXES, ids=pair_id)
def test_softmax_tied_max_splits_evenly(op, strategy):
    y = impls.get(op, strategy).fn(tf.constant([[3.0, 3.0, -np.inf, 3.0]], tf.float32)).numpy()
    np.testing.assert_allclose(y, [[1 / 3, 1 / 3, 0, 1 / 3]], rtol=1e-6)


@pytest.mark.parametrize("op,strategy", AVAILABLE, ids=pair_id)
def test_numeric_gradient(op, strategy):
    impl = impls.get(op, strategy)
    if op == "spiky":  # away from the jumps at r = 0 and r = 0.5, where no finite difference holds
        cases = [(lambda x: impl.fn(x), np.array([0.1, 0.3, 0.6, 0.8, 1.2, -0.8, -2.4, 5.45]))]
    else:
        x = np.random.default_rng(5).normal(size=(3, 4))
        cases = [(lambda x, a=a: impl.fn(x, axis=a), x) for a in (0, -1)]
    for f, x in cases:
        theoretical, numerical = tf.test.compute_gradient(f, [tf.constant(x, tf.float64)])
        np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)


@pytest.mark.parametrize("op,strategy", AVAILABLE, ids=pair_id)
def test_xla_claim_is_true(op, strategy):
    """xla_compatible says whether fn runs inside tf.function(jit_compile=True)."""
    impl = impls.get(op, strategy)
    jitted = tf.function(lambda x: correctness.call(impl, x), jit_compile=True)
    x = tf.constant([[0.2, 0.7], [1.2, 1.7]])
    if impl.xla_compatible:
        np.testing.assert_allclose(jitted(x).numpy(), correctness.call(impl, x).numpy(), rtol=1e-6)
    else:
        with pytest.raises((tf.errors.InvalidArgumentError, tf.errors.UnimplementedError)):
            jitted(x)


def test_check_catches_a_wrong_impl():
    """The correctness check has teeth: r < 0.5 instead of r <= 0.5 fails it."""
    native = impls.get("spiky", "native")

    def wrong(x):
        r = x - tf.floor(x)
        return tf.where(r < 0.5, r, tf.zeros_like(r))

    result = check(impls.Impl(**{**native.__dict__, "fn": wrong}), correctness.spiky_mixed(), "float32")
    assert not result.forward_ok


def test_seed_needs_vectorize_otypes():
    """Why pyfunc_seed gives np.vectorize its output type: the seed's guess truncates."""
    from impls import pyfunc_seed

    guessed = np.vectorize(pyfunc_seed._spiky_scalar)  # as in the seed answer
    assert guessed(np.array([0.7, 0.2])).tolist() == [0, 0]  # 0.2 lost to an int output
    np.testing.assert_array_equal(pyfunc_seed.np_spiky(np.array([0.7, 0.2])), [0.0, 0.2])
