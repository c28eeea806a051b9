"""xla: the native ops compiled by XLA, tf.function(jit_compile=True)."""

import tensorflow as tf

from impls import native
from impls.native import DEVICES, DTYPES, SERIALIZABLE, XLA_COMPATIBLE, availability  # noqa: F401

FUNCTIONS = {op: tf.function(f, jit_compile=True) for op, f in native.FUNCTIONS.items()}
