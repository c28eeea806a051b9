"""custom_op: a compiled TensorFlow op, C++ CPU kernels and CUDA GPU kernels (impls/kernels/).

The library is built on first use against the TensorFlow installed here (see
impls/kernels/build.py); if it cannot be built, the strategy is unavailable with the
compiler's message as its reason and every other strategy keeps working.
"""

import functools

import tensorflow as tf
from tensorflow.python.framework import ops as tf_ops

from impls.kernels import build

DTYPES = ("float16", "bfloat16", "float32", "float64")
XLA_COMPATIBLE = False  # XLA cannot compile a custom op
SERIALIZABLE = True  # once this module has loaded the library in the loading process


@functools.lru_cache(maxsize=None)
def _load():
    """(library module, has CUDA kernels), or BuildError."""
    path, with_cuda = build.build()
    library = tf.load_op_library(str(path))
    _register_gradients(library)
    return library, with_cuda


def _register_gradients(library):
    def spiky_grad(op, dy):
        return library.spiky_grad(op.inputs[0], dy)

    def softmax_grad(op, dy):
        return library.stable_softmax_grad(op.inputs[0], dy)

    for op_type, fn in (("Spiky", spiky_grad), ("StableSoftmax", softmax_grad)):
        try:
            tf_ops.RegisterGradient(op_type)(fn)
        except KeyError:  # registered by an earlier import of this module (importlib.reload)
            pass


def availability():
    try:
        _load()
        return True, ""
    except build.BuildError as e:
        return False, f"the compiled op failed to build: {e}"
    except tf.errors.NotFoundError as e:
        return False, f"the compiled op failed to load: {e}"


def built_with_cuda() -> bool:
    return _load()[1]


def __getattr__(name):
    if name == "DEVICES":  # GPU only when the library has the CUDA kernels
        try:
            return ("CPU", "GPU") if built_with_cuda() else ("CPU",)
        except (build.BuildError, tf.errors.NotFoundError):
            return ("CPU",)
    raise AttributeError(name)


def spiky(x):
    return _load()[0].spiky(x)


def softmax(x, axis=-1):
    """The kernel runs along the last axis; any other axis is moved there and back."""
    library = _load()[0]
    rank = x.shape.rank
    if axis == -1 or (rank is not None and axis % rank == rank - 1):
        return library.stable_softmax(x)
    if rank is None:  # e.g. a SavedModel signature of unknown rank
        raise ValueError(f"softmax (custom_op strategy): axis {axis} needs an input of known rank; "
                         "accepted with unknown rank: axis=-1")
    axis = axis % rank
    perm = [d for d in range(rank) if d != axis] + [axis]
    inverse = [perm.index(d) for d in range(rank)]
    return tf.transpose(library.stable_softmax(tf.transpose(x, perm)), inverse)


FUNCTIONS = {"spiky": spiky, "softmax": softmax}
