"""builtin: what TensorFlow ships for the op (its spec's `builtin`, e.g. tf.nn.softmax), with
TensorFlow's registered gradient."""

from impls.native import DEVICES, DTYPES, SERIALIZABLE, XLA_COMPATIBLE, availability  # noqa: F401


def implement(spec):
    return spec.code("builtin")
