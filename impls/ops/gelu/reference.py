"""GELU (tanh approximation) in NumPy: the float64 truth, the vectorised form, the scalar form.

gelu(x) = 0.5 x (1 + t), t = tanh(u), u = c (x + a x^3), c = sqrt(2/pi), a = 0.044715.
gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2).
"""

import math

import numpy as np

C = math.sqrt(2 / math.pi)
A = 0.044715


def gelu(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return 0.5 * x * (1 + np.tanh(C * (x + A * x * x * x)))


def gelu_grad(x, dy) -> np.ndarray:
    x = np.asarray(x, np.float64)
    t = np.tanh(C * (x + A * x * x * x))
    return np.asarray(dy, np.float64) * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * A * x * x))


def check_values() -> np.ndarray:
    """Zero, the bend near -0.75 (least value), both tails where tanh saturates, then random values."""
    edges = np.array([0.0, -0.0, 1e-6, -1e-6, 0.5, -0.5, -0.75, 1.0, -1.0, 2.0, -2.0,
                      3.0, -3.0, 5.0, -5.0, 8.0, -8.0, 20.0, -20.0])
    return np.concatenate([edges, np.random.default_rng(0).normal(scale=3.0, size=256)])


# --- vectorised, in the array's own precision (pyfunc) --------------------------
def np_gelu(x):
    return 0.5 * x * (1 + np.tanh(C * (x + A * x * x * x)))


def np_gelu_grad(x, dy):
    t = np.tanh(C * (x + A * x * x * x))
    return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * A * x * x))


# --- of one number, as the seed writes spiky (pyfunc_seed vectorises them) -------
def gelu_scalar(x):
    return 0.5 * x * (1 + math.tanh(C * (x + A * x * x * x)))


def d_gelu_scalar(x):
    t = math.tanh(C * (x + A * x * x * x))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * A * x * x)
