"""The truth every strategy is held to: float64 NumPy, written for clarity, not speed.

spiky(x) = r if r <= 0.5 else 0, with r = x mod 1 taken as floor-mod (r in [0, 1)).
Its derivative is 1 where r <= 0.5 and 0 elsewhere; NaN and +-inf have r = NaN, so
they give 0 with gradient 0, as the seed's Python does.

softmax(x, axis) = exp(x - m) / sum(exp(x - m)) with m = stop_gradient(max(x)).
Its vector-Jacobian product is y * (dy - sum(dy * y)).  Shifting by m changes no
value, so `softmax_nosg` (the same without stop_gradient) has the same truth.
"""

from __future__ import annotations

import numpy as np


# How close a strategy must come to this reference, per dtype, for values and gradients:
# |got - ref| <= atol + rtol * |ref|, ref computed from the input as rounded to that dtype.
# The 16-bit tolerances cover a softmax normalised over ~100 elements in that precision.
TOLERANCES = {  # dtype: (rtol, atol)
    "float64": (1e-10, 1e-12),
    "float32": (2e-5, 1e-6),
    "float16": (5e-3, 2e-3),
    "bfloat16": (4e-2, 1.6e-2),
}


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def spiky_keep(x) -> np.ndarray:
    """Boolean mask where spiky passes its input through (r <= 0.5)."""
    with np.errstate(invalid="ignore"):  # inf mod 1 is NaN, which is the point
        r = np.mod(_f64(x), 1.0)
        return r <= 0.5


def spiky(x) -> np.ndarray:
    x = _f64(x)
    with np.errstate(invalid="ignore"):
        r = np.mod(x, 1.0)
    return np.where(spiky_keep(x), r, 0.0)


def spiky_grad(x, dy) -> np.ndarray:
    """dx for upstream gradient dy."""
    return np.where(spiky_keep(x), _f64(dy), 0.0)


def softmax(x, axis: int = -1) -> np.ndarray:
    x = _f64(x)
    if x.size == 0:
        return x.copy()
    with np.errstate(invalid="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


def softmax_grad(x, dy, axis: int = -1) -> np.ndarray:
    """dx = y * (dy - sum(dy * y)) for upstream gradient dy."""
    y, dy = softmax(x, axis), _f64(dy)
    if y.size == 0:
        return y
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


# op name -> (forward, vjp); softmax_nosg shares the truth of softmax.
FUNCTIONS = {
    "spiky": (spiky, spiky_grad),
    "softmax": (softmax, softmax_grad),
    "softmax_nosg": (softmax, softmax_grad),
}
