"""builtin: what TensorFlow ships for the op (its spec's `builtin`, e.g. tf.nn.softmax), with
TensorFlow's registered gradient."""

from impls.strategy import Strategy


def implement(spec):
    return spec.code("builtin")


STRATEGY = Strategy("builtin", implement, needs=("builtin",), order=70)
