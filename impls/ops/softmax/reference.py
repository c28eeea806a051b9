"""The stable softmax in NumPy: the float64 truth and the vectorised form (pyfunc).

softmax(x, axis) = exp(x - m) / sum(exp(x - m)) with m = stop_gradient(max(x)).
Its vector-Jacobian product is y * (dy - sum(dy * y)).  Shifting by m changes no
value, so the ablation without stop_gradient has the same truth.
"""

import numpy as np


def softmax(x, axis=-1) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.size == 0:
        return x.copy()
    with np.errstate(invalid="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


def softmax_grad(x, dy, axis=-1) -> np.ndarray:
    """dx = y * (dy - sum(dy * y)) for upstream gradient dy."""
    y, dy = softmax(x, axis), np.asarray(dy, np.float64)
    if y.size == 0:
        return y
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


def check_values(cols: int = 96) -> np.ndarray:
    """One edge case per row: ordinary, +-1e4 magnitudes, ties in the max, a -inf."""
    rng = np.random.default_rng(0)
    rows = [
        rng.normal(size=cols),
        rng.uniform(-1e4, 1e4, size=cols),
        np.full(cols, 1e4) - rng.uniform(0, 5, size=cols),
        np.full(cols, -1e4) + rng.uniform(0, 5, size=cols),
        np.where(np.arange(cols) % 3 == 0, 2.0, rng.normal(size=cols)),  # tied max
        np.full(cols, 7.0),  # all tied
        np.where(np.arange(cols) == 5, -np.inf, rng.normal(size=cols)),  # one -inf
    ]
    return np.stack(rows)


# --- vectorised, in the array's own precision (pyfunc, pyfunc_seed) --------------
def np_softmax(x, axis):
    if x.size == 0:
        return x.copy()
    with np.errstate(invalid="ignore"):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)  # in place: a second output-sized array costs page faults
        return e


def np_softmax_grad(x, y, dy, axis):
    if y.size == 0:
        return y.copy()
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))
