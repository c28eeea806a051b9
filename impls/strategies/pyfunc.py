"""pyfunc: the op's vectorised NumPy form (its spec's `numpy`, `numpy_grad`) inside
tf.numpy_function, the gradient by tf.custom_gradient.

The NumPy code runs on the host in the input's precision (float32 for the 16-bit
types, which NumPy has no fast arithmetic for) and hands back the input's dtype,
with the static shape restored (numpy_function loses it).
"""

import numpy as np

from impls.strategy import Strategy


def _in_compute_dtype(func):
    """func on arrays in the compute dtype, its result in the first array's dtype."""

    def call(*arrays):
        dtype = arrays[0].dtype
        compute = np.float64 if dtype == np.float64 else np.float32
        out = func(*(a.astype(compute, copy=False) for a in arrays))
        return np.asarray(out).astype(dtype, copy=False)

    return call


def _numpy_call(func, args, like):
    import tensorflow as tf

    out = tf.numpy_function(_in_compute_dtype(func), args, like.dtype, stateful=False)
    out.set_shape(like.shape)
    return out


def implement(spec):
    import tensorflow as tf

    forward, backward = spec.code("numpy"), spec.code("numpy_grad")

    def fn(x, *axis):  # axis: present for an op along an axis
        @tf.custom_gradient
        def op(x):
            y = _numpy_call(lambda x_: forward(x_, *axis), [x], x)

            def grad(dy):
                inputs = [x, y, dy] if spec.grad_from_output else [x, dy]
                return _numpy_call(lambda *arrays: backward(*arrays, *axis), inputs, x)

            return y, grad

        return op(x)

    return fn


# numpy_function calls back into Python: XLA cannot compile it, a SavedModel cannot keep it;
# on a GPU every call copies to and from the host
STRATEGY = Strategy("pyfunc", implement, needs=("numpy",), xla_compatible=False, serializable=False, order=20)
