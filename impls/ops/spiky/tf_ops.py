"""spiky in TensorFlow ops (native; graph and xla trace it).

tf.custom_gradient makes the backward pass one select, with the mask recomputed from
x rather than differentiated through floor.
"""

import tensorflow as tf


def _keep(x):
    # Floor-mod as x - floor(x): on the 2-core machine (TF 2.21, float32, 16M elements)
    # it took 19 ms against 567 ms for tf.math.floormod(x, 1), and both agree on every
    # edge case (+-0.5, -1e-9 -> 1.0, 1e7, NaN, +-inf -> NaN).  NaN compares false, so
    # NaN and +-inf drop out with gradient 0.
    r = x - tf.floor(x)
    return r, r <= 0.5


@tf.custom_gradient
def spiky(x):
    r, keep = _keep(x)
    y = tf.where(keep, r, tf.zeros_like(r))

    def grad(dy):
        _, keep = _keep(x)
        return tf.where(keep, dy, tf.zeros_like(dy))

    return y, grad
