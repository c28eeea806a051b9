"""GELU in TensorFlow ops as a user writes it (native; graph and xla trace it; autodiff
gives the gradient), and tf.nn.gelu, what TensorFlow ships."""

import math

import tensorflow as tf

C = math.sqrt(2 / math.pi)


def gelu(x):
    return 0.5 * x * (1 + tf.tanh(C * (x + 0.044715 * x * x * x)))


def builtin_gelu(x):
    return tf.nn.gelu(x, approximate=True)
