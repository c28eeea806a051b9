"""Bad input: the same kind of error from every strategy, naming op, strategy and dtypes."""

import numpy as np
import pytest
import tensorflow as tf

import impls

from conftest import ALL_PAIRS, pair_id, takes_axis

BAD_INPUTS = {
    "int32": lambda: tf.constant([1, 2, 3]),
    "bool": lambda: tf.constant([True, False]),
    "complex64": lambda: tf.constant([1 + 2j], tf.complex64),
    "string": lambda: tf.constant(["a", "b"]),
    "None": lambda: None,
    "list_of_strings": lambda: ["a", "b"],
    "numpy_int64": lambda: np.arange(3),
}


@pytest.mark.parametrize("bad", BAD_INPUTS)
@pytest.mark.parametrize("op,strategy", ALL_PAIRS, ids=pair_id)
def test_bad_dtype_raises_type_error_naming_everything(op, strategy, bad):
    impl = impls.get(op, strategy)
    with pytest.raises(TypeError) as err:
        impl.fn(BAD_INPUTS[bad]())
    message = str(err.value)
    assert op in message and strategy in message
    assert all(d in message for d in impl.dtypes)


def test_bad_input_is_rejected_before_any_work():
    calls = []
    fn = impls._checked(impls.spec("spiky"), "probe", impls.FLOAT_DTYPES, lambda x: calls.append(x))
    for make in BAD_INPUTS.values():
        with pytest.raises(TypeError):
            fn(make())
    assert calls == []
    fn(tf.constant([1.0]))
    assert len(calls) == 1


@pytest.mark.parametrize("op,strategy", [p for p in ALL_PAIRS if takes_axis(p[0])], ids=pair_id)
def test_an_op_along_an_axis_rejects_scalar_and_bad_axis(op, strategy):
    fn = impls.get(op, strategy).fn
    with pytest.raises(ValueError, match=f"{op}.*{strategy}.*scalar"):
        fn(tf.constant(1.0))
    with pytest.raises(ValueError, match="axis 2 is out of range.*-2..1"):
        fn(tf.zeros((2, 3)), axis=2)
    with pytest.raises(TypeError, match="axis must be a Python int"):
        fn(tf.zeros((2, 3)), axis=0.5)


def test_unknown_op_lists_valid_ops():
    with pytest.raises(ValueError, match="unknown op 'relu'; valid ops: " + ", ".join(impls.OPS)):
        impls.get("relu", "native")


def test_unknown_strategy_lists_valid_strategies():
    with pytest.raises(ValueError, match="unknown strategy 'cuda'.*pyfunc_seed.*builtin"):
        impls.get("spiky", "cuda")


def test_strategy_without_that_op_lists_the_ops_strategies():
    with pytest.raises(ValueError, match="'builtin' does not implement op 'spiky'.*native"):
        impls.get("spiky", "builtin")
    with pytest.raises(ValueError, match="'pyfunc' does not implement op 'softmax_nosg'"):
        impls.get("softmax_nosg", "pyfunc")
