"""The softmaxes in TensorFlow ops: the StopGradient page's stable_softmax along an axis
(native; graph and xla trace it), and tf.nn.softmax, what TensorFlow ships."""

import tensorflow as tf


def _stable_softmax(x, axis, stop_gradient):
    m = tf.reduce_max(x, axis=axis, keepdims=True)
    if stop_gradient:
        m = tf.stop_gradient(m)
    numerator = tf.exp(x - m)
    return numerator / tf.reduce_sum(numerator, axis=axis, keepdims=True)


def softmax(x, axis=-1):
    return _stable_softmax(x, axis, stop_gradient=True)


def softmax_nosg(x, axis=-1):
    return _stable_softmax(x, axis, stop_gradient=False)


def builtin_softmax(x, axis=-1):
    return tf.nn.softmax(x, axis=axis)
