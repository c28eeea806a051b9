"""builtin: what TensorFlow ships, tf.nn.softmax and its registered gradient."""

import tensorflow as tf

from impls.native import DEVICES, DTYPES, SERIALIZABLE, XLA_COMPATIBLE, availability  # noqa: F401


def softmax(x, axis=-1):
    return tf.nn.softmax(x, axis=axis)


FUNCTIONS = {"softmax": softmax}
