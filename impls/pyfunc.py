"""pyfunc: vectorised NumPy inside tf.numpy_function, gradient by tf.custom_gradient.

The NumPy code runs on the host in the input's precision (float32 for the 16-bit
types, which NumPy has no fast arithmetic for) and hands back the input's dtype,
with the static shape restored (numpy_function loses it).
"""

import numpy as np
import tensorflow as tf

DTYPES = ("float16", "bfloat16", "float32", "float64")
DEVICES = ("CPU", "GPU")  # on a GPU every call copies to and from the host
XLA_COMPATIBLE = False  # numpy_function calls back into Python
SERIALIZABLE = False  # the callback lives in the Python process


def availability():
    return True, ""


def _compute_dtype(dtype):
    return np.float64 if dtype == np.float64 else np.float32


def _np_spiky_keep(x):
    x = x.astype(_compute_dtype(x.dtype), copy=False)
    with np.errstate(invalid="ignore"):
        r = x - np.floor(x)  # floor-mod; NaN for NaN and +-inf, which then compares false
        return r, r <= 0.5


def np_spiky(x):
    r, keep = _np_spiky_keep(x)
    return np.where(keep, r, 0).astype(x.dtype, copy=False)


def np_spiky_grad(x, dy):
    _, keep = _np_spiky_keep(x)
    return np.where(keep, dy, 0).astype(dy.dtype, copy=False)


def np_softmax(x, axis):
    if x.size == 0:
        return x.copy()
    xc = x.astype(_compute_dtype(x.dtype), copy=False)
    with np.errstate(invalid="ignore"):
        e = np.exp(xc - xc.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
    return e.astype(x.dtype, copy=False)


def np_softmax_grad(y, dy, axis):
    if y.size == 0:
        return y.copy()
    yc = y.astype(_compute_dtype(y.dtype), copy=False)
    dyc = dy.astype(yc.dtype, copy=False)
    dx = yc * (dyc - (dyc * yc).sum(axis=axis, keepdims=True))
    return dx.astype(y.dtype, copy=False)


def _numpy_call(func, args, like):
    out = tf.numpy_function(func, args, like.dtype, stateful=False)
    out.set_shape(like.shape)
    return out


@tf.custom_gradient
def spiky(x):
    def grad(dy):
        return _numpy_call(np_spiky_grad, [x, dy], x)

    return _numpy_call(np_spiky, [x], x), grad


def softmax(x, axis=-1):
    @tf.custom_gradient
    def forward(x):
        y = _numpy_call(lambda a: np_softmax(a, axis), [x], x)

        def grad(dy):
            return _numpy_call(lambda y_, dy_: np_softmax_grad(y_, dy_, axis), [y, dy], x)

        return y, grad

    return forward(x)


FUNCTIONS = {"spiky": spiky, "softmax": softmax}
