"""spiky in NumPy: the float64 truth, the vectorised form (pyfunc) and the seed's scalar form.

spiky(x) = r if r <= 0.5 else 0, with r = x mod 1 taken as floor-mod (r in [0, 1)).
Its derivative is 1 where r <= 0.5 and 0 elsewhere; NaN and +-inf have r = NaN, so
they give 0 with gradient 0, as the seed's Python does.
"""

import numpy as np


def keep(x) -> np.ndarray:
    """Boolean mask where spiky passes its input through (r <= 0.5)."""
    with np.errstate(invalid="ignore"):  # inf mod 1 is NaN, which is the point
        return np.mod(np.asarray(x, np.float64), 1.0) <= 0.5


def spiky(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
        r = np.mod(x, 1.0)
    return np.where(keep(x), r, 0.0)


def spiky_grad(x, dy) -> np.ndarray:
    """dx for upstream gradient dy."""
    return np.where(keep(x), np.asarray(dy, np.float64), 0.0)


def check_values() -> np.ndarray:
    """Edge cases (the seed's example, +-0.5, negatives, integers, 1e7, tiny, NaN, inf), then random values."""
    edges = np.array([0.2, 0.7, 1.2, 1.7, 0.5, -0.5, 1.5, -1.5, -0.3, -0.7, -2.25, -2.75,
                      0.0, 1.0, 3.0, -4.0, 1e7, 1e7 + 0.25, 1e7 + 0.75, -1e7 - 0.25,
                      -1e-9, 1e-9, -1e-30, np.nan, np.inf, -np.inf])
    return np.concatenate([edges, np.random.default_rng(0).uniform(-50, 50, size=256)])


def smooth_values() -> np.ndarray:
    """Away from the jumps at r = 0 and r = 0.5, where no finite difference holds."""
    return np.array([0.1, 0.3, 0.6, 0.8, 1.2, -0.8, -2.4, 5.45])


# --- vectorised, in the array's own precision (pyfunc) --------------------------
def _np_keep(x):
    with np.errstate(invalid="ignore"):
        r = x - np.floor(x)  # floor-mod; NaN for NaN and +-inf, which then compares false
        return r, r <= 0.5


def np_spiky(x):
    r, kept = _np_keep(x)
    return np.where(kept, r, 0)


def np_spiky_grad(x, dy):
    return np.where(_np_keep(x)[1], dy, 0)


# --- the seed's scalar functions, verbatim (pyfunc_seed vectorises them) --------
def spiky_scalar(x):
    r = x % 1
    if r <= 0.5:
        return r
    else:
        return 0


def d_spiky_scalar(x):
    r = x % 1
    if r <= 0.5:
        return 1
    else:
        return 0
