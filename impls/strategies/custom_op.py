"""custom_op: a compiled TensorFlow op, C++ CPU kernels and CUDA GPU kernels from each
op's kernels/ folder (impls/ops/<op>/kernels/), built into a library of its own.

A spec's `custom_op` names its op in snake case (`stable_softmax`: the library's
function, C++ op StableSoftmax) and the gradient op `<name>_grad`, which takes x, dy
and the forward op's attributes (an op along an axis may take `axis`); the kernels are
compiled with these names (impls/kernels/build.py's `defines`), so their sources spell
none.  The library is built on first use against the TensorFlow installed here;
if it cannot be built, the strategy is unavailable for that op with the compiler's message
as its reason, and every other op and strategy keeps working.
"""

import functools
import inspect

from impls.kernels import build
from impls.strategy import Strategy


@functools.lru_cache(maxsize=None)
def _load(lib: build.Library):
    """(the loaded library `lib`, has CUDA kernels), or BuildError."""
    import tensorflow as tf

    path, with_cuda = build.build(lib)
    return tf.load_op_library(str(path)), with_cuda


@functools.lru_cache(maxsize=None)
def _compiled_op(lib: build.Library):
    """The op function of library `lib`, its gradient registered."""
    from tensorflow.python.framework import ops as tf_ops

    library, name, op_type = _load(lib)[0], lib.entry, build.op_type(lib.entry)
    forward, backward = getattr(library, name, None), getattr(library, name + "_grad", None)
    if forward is None or backward is None:
        raise LookupError(f"the compiled library of {lib.name} has no ops {op_type} and {op_type}Grad")

    # the gradient op's attributes (e.g. axis) are the forward op's
    attributes = [a for a in inspect.signature(backward).parameters if a not in ("x", "dy", "name")]

    def grad(op, dy):
        return backward(op.inputs[0], dy, **{a: op.get_attr(a) for a in attributes})

    try:
        tf_ops.RegisterGradient(op_type)(grad)
    except KeyError:  # registered by an earlier import of this module (importlib.reload)
        pass
    return forward


def compiled_op(spec):
    """The spec's compiled op (its custom_op), from the library of its kernels folder."""
    return _compiled_op(build.library_of(spec))


def availability(spec):
    import tensorflow as tf

    try:
        compiled_op(spec)
        return True, ""
    except build.BuildError as e:
        return False, f"the compiled op failed to build: {e}"
    except tf.errors.NotFoundError as e:
        return False, f"the compiled op failed to load: {e}"
    except LookupError as e:
        return False, str(e)


def copy_op(spec, reads: int = 1):
    """The copy op of the library that holds `spec`'s call floor (impls/kernels/floor.cc,
    float32 and float64 on the CPU): x copied into a fresh TF output by the elementwise
    kernels' own path (<name>_copy), or with `reads=2`, x + dy so (<name>_add)."""
    return getattr(_load(build.library_of(spec))[0], f"{build.library_of(spec).entry}_{('copy', 'add')[reads - 1]}")


def built_with_cuda(spec) -> bool:
    return _load(build.library_of(spec))[1]


def devices(spec):
    """GPU only when the op's library has the CUDA kernels."""
    import tensorflow as tf

    try:
        return ("CPU", "GPU") if built_with_cuda(spec) else ("CPU",)
    except (build.BuildError, tf.errors.NotFoundError):
        return ("CPU",)


def implement(spec):
    import tensorflow as tf

    if not spec.takes_axis:
        @tf.autograph.experimental.do_not_convert  # a plain op call: nothing for AutoGraph to convert
        def elementwise(x):
            return compiled_op(spec)(x)

        return elementwise

    def along_axis(x, axis=-1):
        """An op with an `axis` attribute runs along any axis itself; otherwise the kernel
        runs along the last axis and any other axis is moved there and back."""
        forward = compiled_op(spec)
        if "axis" in inspect.signature(forward).parameters:
            return forward(x, axis=axis)
        rank = x.shape.rank
        if axis == -1 or (rank is not None and axis % rank == rank - 1):
            return forward(x)
        if rank is None:  # e.g. a SavedModel signature of unknown rank
            raise ValueError(f"{spec.name} (custom_op strategy): axis {axis} needs an input of known rank; "
                             "accepted with unknown rank: axis=-1")
        axis = axis % rank
        perm = [d for d in range(rank) if d != axis] + [axis]
        inverse = [perm.index(d) for d in range(rank)]
        return tf.transpose(forward(tf.transpose(x, perm)), inverse)

    return along_axis


STRATEGY = Strategy("custom_op", implement, needs=("custom_op",), devices=devices,
                    xla_compatible=False,  # XLA cannot compile a custom op
                    availability=availability,
                    reload_note="after loading the op library, as any user of the op must",  # its availability check loads it
                    order=60)
