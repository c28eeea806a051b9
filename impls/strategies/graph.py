"""graph: the op's native code traced once into a tf.function graph (no XLA)."""

from impls.strategy import Strategy


def implement(spec):
    import tensorflow as tf

    return tf.function(spec.code("native"))


STRATEGY = Strategy("graph", implement, order=40)
