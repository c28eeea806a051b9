"""pyfunc_seed: the Stack Overflow answer's recipe, for any op, kept faithful.

tf.compat.v1.py_func of a NumPy function, with the gradient -- another py_func --
registered by tf.RegisterGradient under a unique name and attached by
gradient_override_map.  The NumPy function is the op's scalar form vectorised by
np.vectorize, as in the seed, where the spec has one (elementwise ops); else its NumPy
form, called on the array as given (in the input's dtype, as a user writes it), the
gradient from the op's input (and output, with grad_from_output).  Two changes to the seed, both needed for
correctness: np.vectorize is given its output type (the seed lets it guess from the
first element: an int 0 first truncates every later value, and an empty input
raises), and the dtype follows the input instead of the seed's hard-coded float32.

The override map only acts while a graph is being built; eagerly, py_func makes no
op and the gradient is silently None.  So each op is traced inside a tf.function:
its gradient is then derived from the graph, override included, whether the caller
runs eagerly or inside its own tf.function.
"""

import itertools

import numpy as np

from impls.strategy import Strategy


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
    import tensorflow as tf
    from tensorflow.python.util import deprecation

    rnd_name = f"StratbenchPyFuncGrad{next(_unique)}"
    tf.RegisterGradient(rnd_name)(grad)
    g = tf.compat.v1.get_default_graph()
    with g.gradient_override_map({"PyFunc": rnd_name, "PyFuncStateless": rnd_name}):
        with deprecation.silence():
            return tf.compat.v1.py_func(func, inp, Tout, stateful=stateful, name=name)


def _restore_shape(y, like):
    y.set_shape(like.shape)
    return y


def implement(spec):
    import tensorflow as tf
    from tensorflow.python.util import deprecation

    if spec.scalar is not None:  # the seed itself: np.vectorize of the scalar functions
        # Changed: otypes given (see the module docstring).
        np_op = np.vectorize(spec.code("scalar"), otypes=[np.float64])
        np_d_op = np.vectorize(spec.code("scalar_grad"), otypes=[np.float64])

        def _grad(op, grad):
            x = op.inputs[0]
            with deprecation.silence():
                n_gr = tf.compat.v1.py_func(_in_dtype_of(np_d_op), [x], [x.dtype], stateful=False)[0]
            return grad * n_gr

        @tf.function
        def fn(x):
            y = py_func(_in_dtype_of(np_op), [x], [x.dtype], name=spec.name, grad=_grad)[0]
            return _restore_shape(y, x)

        return fn

    forward, backward = spec.code("numpy"), spec.code("numpy_grad")

    def _grad_for(axis):
        def grad_fn(op, grad):
            x = op.inputs[0]
            inputs = [x, op.outputs[0], grad] if spec.grad_from_output else [x, grad]
            with deprecation.silence():
                dx = tf.compat.v1.py_func(_in_dtype_of(lambda *arrays: backward(*arrays, *axis)),
                                          inputs, [x.dtype], stateful=False)[0]
            return _restore_shape(dx, x)

        return grad_fn

    @tf.function
    def fn(x, *axis):
        np_op = _in_dtype_of(lambda x_: forward(x_, *axis))
        y = py_func(np_op, [x], [x.dtype], name=spec.name, grad=_grad_for(axis))[0]
        return _restore_shape(y, x)

    return fn


# py_func calls back into Python: XLA cannot compile it, a SavedModel cannot keep it; on a
# GPU every call copies to and from the host
STRATEGY = Strategy("pyfunc_seed", implement, needs=("scalar", "numpy"), xla_compatible=False, serializable=False,
                    order=10)
