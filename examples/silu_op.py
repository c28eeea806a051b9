"""A user's own op, measured by stratbench with no edit to it: SiLU (swish), x * sigmoid(x).

    stratbench verify --op-module examples/silu_op.py --ops silu
    stratbench run    --op-module examples/silu_op.py --ops silu --quick

Give what you have: reference, reference_grad and native are enough for the native,
graph and xla strategies; numpy/numpy_grad add pyfunc and pyfunc_seed, scalar forms
make pyfunc_seed the seed's np.vectorize recipe, builtin adds what TensorFlow ships.
"""

import math

import numpy as np
import tensorflow as tf

from impls.spec import OpSpec


# The truth, in float64 NumPy, written for clarity: every strategy is held to it.
def silu(x):
    x = np.asarray(x, np.float64)
    return x / (1 + np.exp(-x))


def silu_grad(x, dy):  # the vector-Jacobian product: dy * d silu / dx
    x = np.asarray(x, np.float64)
    s = 1 / (1 + np.exp(-x))
    return np.asarray(dy, np.float64) * s * (1 + x * (1 - s))


# The TensorFlow code you would ship (autodiff gives its gradient).
def tf_silu(x):
    return x * tf.sigmoid(x)


# Optional: NumPy in the array's own precision (pyfunc), the gradient from x and dy.
def np_silu(x):
    return x / (1 + np.exp(-x))


def np_silu_grad(x, dy):
    s = 1 / (1 + np.exp(-x))
    return dy * s * (1 + x * (1 - s))


# Optional: of one number, as the Stack Overflow seed writes spiky (pyfunc_seed).
def silu_scalar(x):
    return x / (1 + math.exp(-x)) if x > -700 else 0.0  # math.exp overflows past 709


def d_silu_scalar(x):
    if x < -700:
        return 0.0
    s = 1 / (1 + math.exp(-x))
    return s * (1 + x * (1 - s))


SPEC = OpSpec(
    name="silu",
    summary="silu(x) = x * sigmoid(x)",
    kind="elementwise",  # or "axis" for an op along an axis, called f(x, axis)
    reference=silu,
    reference_grad=silu_grad,
    native=tf_silu,
    numpy=np_silu,
    numpy_grad=np_silu_grad,
    scalar=silu_scalar,
    scalar_grad=d_silu_scalar,
    builtin=lambda x: tf.nn.silu(x),
    sizes=((1_000,), (100_000,), (1_000_000,)),  # optional; default 1e3 .. 1.6e7 elements
)
