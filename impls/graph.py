"""graph: the op's native code traced once into a tf.function graph (no XLA)."""

import tensorflow as tf

from impls.native import DEVICES, DTYPES, SERIALIZABLE, XLA_COMPATIBLE, availability  # noqa: F401


def implement(spec):
    return tf.function(spec.code("native"))
