"""Every available (op, strategy) of every registered op against its reference: values and gradients."""

import numpy as np
import pytest
import tensorflow as tf

import impls
from impls import reference
from stratbench import correctness
from stratbench.correctness import check

from conftest import ALL_PAIRS, pair_id, takes_axis
from stratbench.testing import usable

MODES = {"eager": False, "in_tf_function": True}


def _assert_ok(result):
    assert result.ok, result


def _impl_dtype_cases():
    return [
        pytest.param(op, s, dtype, id=f"{op}-{s}-{dtype}")
        for op, s in ALL_PAIRS
        for dtype in impls.declaration(s).dtypes
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op,strategy,dtype", _impl_dtype_cases())
def test_edge_cases_in_every_claimed_dtype(op, strategy, dtype, mode):
    impl = usable(op, strategy)
    for axis in (0, -1) if takes_axis(op) else (-1,):
        _assert_ok(check(impl, impl.spec.verify_values(), dtype, axis=axis, in_function=MODES[mode]))


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
    if not takes_axis(op):
        shapes["scalar"] = np.float64(1.3)
    return shapes


def _shape_cases():
    # An op along an axis has no scalar form: test_bad_input.py checks that a scalar is refused.
    return [
        pytest.param(op, s, shape, id=f"{op}-{s}-{shape}")
        for op, s in ALL_PAIRS
        for shape in _shape_values(op)
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op,strategy,shape", _shape_cases())
def test_shapes(op, strategy, shape, mode):
    values = _shape_values(op)[shape]
    impl = usable(op, strategy)
    axes = list(range(-np.ndim(values), np.ndim(values))) if takes_axis(op) else [-1]
    for axis in axes:
        _assert_ok(check(impl, np.asarray(values), "float32", axis=axis, in_function=MODES[mode]))


@pytest.mark.parametrize("op,strategy", ALL_PAIRS, ids=pair_id)
def test_non_contiguous_numpy_input(op, strategy):
    x = np.random.default_rng(4).normal(size=(6, 4)).astype(np.float32).T * 3
    assert not x.flags.c_contiguous
    y = correctness.call(usable(op, strategy), x)
    rtol, atol = reference.tolerances(op, "float32")
    np.testing.assert_allclose(y.numpy(), reference.forward(op, x), rtol=rtol, atol=atol)


@pytest.mark.parametrize("op,strategy", ALL_PAIRS, ids=pair_id)
def test_numeric_gradient(op, strategy):
    impl = usable(op, strategy)
    x = impl.spec.differentiable_values()
    for axis in (0, -1) if takes_axis(op) else (-1,):
        theoretical, numerical = tf.test.compute_gradient(lambda x: correctness.call(impl, x, axis),
                                                          [tf.constant(x, tf.float64)])
        np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)


@pytest.mark.parametrize("op", impls.OPS)
def test_reference_grad_is_the_vjp_of_the_reference(op):
    """An op's reference_grad is held to central differences of its reference (float64)."""
    spec = impls.spec(op)
    x = spec.differentiable_values()
    dy = np.random.default_rng(6).normal(size=x.shape)
    eps = 1e-6
    numerical = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        numerical[i] = np.sum(dy * (reference.forward(op, x + step) - reference.forward(op, x - step))) / (2 * eps)
    np.testing.assert_allclose(reference.vjp(op, x, dy), numerical, atol=1e-6)


@pytest.mark.parametrize("op,strategy", ALL_PAIRS, ids=pair_id)
def test_xla_claim_is_true(op, strategy):
    """xla_compatible says whether fn runs inside tf.function(jit_compile=True)."""
    impl = usable(op, strategy)
    jitted = tf.function(lambda x: correctness.call(impl, x), jit_compile=True)
    x = tf.constant([[0.2, 0.7], [1.2, 1.7]])
    if impl.xla_compatible:
        rtol, atol = reference.tolerances(op, "float32")
        np.testing.assert_allclose(jitted(x).numpy(), correctness.call(impl, x).numpy(), rtol=rtol, atol=atol)
    else:
        with pytest.raises((tf.errors.InvalidArgumentError, tf.errors.UnimplementedError)):
            jitted(x)


@pytest.mark.parametrize("op", impls.OPS)
def test_check_catches_a_wrong_impl(op):
    """The correctness check has teeth: the op's values off by 0.1% fail it."""
    native = impls.get(op, "native")

    def wrong(x, *axis):
        return native.fn(x, *axis) * 1.001

    result = check(impls.Impl(**{**native.__dict__, "fn": wrong}), native.spec.verify_values(), "float32")
    assert not result.forward_ok
