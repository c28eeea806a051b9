"""pyfunc_seed: the Stack Overflow answer's recipe, kept faithful.

np.vectorize of a scalar Python function and of its derivative, wrapped by
tf.compat.v1.py_func, with the gradient registered by tf.RegisterGradient under a
unique name and attached by gradient_override_map.  Two changes, both needed for
correctness and both marked below: the output type of np.vectorize is given
(the seed lets it guess from the first element: an int 0 first truncates every
later value, and an empty input raises), and the dtype follows the input instead
of the seed's hard-coded float32.

The override map only acts while a graph is being built; eagerly, py_func makes no
op and the gradient is silently None.  So each op is traced inside a tf.function:
its gradient is then derived from the graph, override included, whether the caller
runs eagerly or inside its own tf.function.
"""

import itertools

import numpy as np
import tensorflow as tf
from tensorflow.python.util import deprecation

from impls import reference

DTYPES = ("float16", "bfloat16", "float32", "float64")
DEVICES = ("CPU", "GPU")  # on a GPU every call copies to and from the host
XLA_COMPATIBLE = False  # py_func calls back into Python
SERIALIZABLE = False  # the callback lives in the Python process


def availability():
    return True, ""


# --- the seed's scalar functions, verbatim --------------------------------------
def _spiky_scalar(x):
    r = x % 1
    if r <= 0.5:
        return r
    else:
        return 0


def _d_spiky_scalar(x):
    r = x % 1
    if r <= 0.5:
        return 1
    else:
        return 0


# Changed: otypes given (see the module docstring).
np_spiky = np.vectorize(_spiky_scalar, otypes=[np.float64])
np_d_spiky = np.vectorize(_d_spiky_scalar, otypes=[np.float64])


def _in_dtype_of(func):
    """The seed's np_spiky_32, for the input's dtype rather than float32 only."""

    def call(*arrays):
        with np.errstate(invalid="ignore"):  # inf % 1 is NaN, as in the seed
            return np.asarray(func(*arrays)).astype(arrays[0].dtype)

    return call


# --- the seed's py_func with a gradient -----------------------------------------
_unique = itertools.count()


def py_func(func, inp, Tout, stateful=True, name=None, grad=None):
    # Changed: a counter instead of np.random.randint, whose names can collide
    # (registering a name twice raises KeyError).
    rnd_name = f"StratbenchPyFuncGrad{next(_unique)}"
    tf.RegisterGradient(rnd_name)(grad)
    g = tf.compat.v1.get_default_graph()
    with g.gradient_override_map({"PyFunc": rnd_name, "PyFuncStateless": rnd_name}):
        with deprecation.silence():
            return tf.compat.v1.py_func(func, inp, Tout, stateful=stateful, name=name)


def _spiky_grad(op, grad):
    x = op.inputs[0]
    with deprecation.silence():
        n_gr = tf.compat.v1.py_func(_in_dtype_of(np_d_spiky), [x], [x.dtype], stateful=False)[0]
    return grad * n_gr


def _restore_shape(y, like):
    y.set_shape(like.shape)
    return y


@tf.function
def spiky(x):
    y = py_func(_in_dtype_of(np_spiky), [x], [x.dtype], name="spiky", grad=_spiky_grad)[0]
    return _restore_shape(y, x)


# --- softmax: the same recipe with a NumPy softmax and its NumPy VJP -------------
def _softmax_grad_for(axis):
    def grad_fn(op, grad):
        x = op.inputs[0]
        with deprecation.silence():
            dx = tf.compat.v1.py_func(
                _in_dtype_of(lambda x_, dy_: reference.softmax_grad(x_, dy_, axis)),
                [x, grad], [x.dtype], stateful=False,
            )[0]
        return _restore_shape(dx, x)

    return grad_fn


@tf.function
def softmax(x, axis=-1):
    np_softmax = _in_dtype_of(lambda x_: reference.softmax(x_, axis))
    y = py_func(np_softmax, [x], [x.dtype], name="softmax", grad=_softmax_grad_for(axis))[0]
    return _restore_shape(y, x)


FUNCTIONS = {"spiky": spiky, "softmax": softmax}
