"""graph: the native ops traced once into a tf.function graph (no XLA)."""

import tensorflow as tf

from impls import native
from impls.native import DEVICES, DTYPES, SERIALIZABLE, XLA_COMPATIBLE, availability  # noqa: F401

FUNCTIONS = {op: tf.function(f) for op, f in native.FUNCTIONS.items()}
