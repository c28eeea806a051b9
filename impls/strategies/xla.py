"""xla: the op's native code compiled by XLA, tf.function(jit_compile=True).

Called where XLA is already compiling the caller (a jit_compile=True step, a Keras
model with jit_compile), the op's native code is traced inline and compiled once with
the caller, instead of nesting a jit function in a jit function: that nesting,
differentiated through a reduce_max, recompiled on every call, 0.3-0.8 s
a training step (benchmarks/research/xla_nested_pitfall.py reproduces it).
"""

import functools

from impls.strategy import Strategy


def _compiled(raw):
    import tensorflow as tf
    from tensorflow.python.framework import ops
    from tensorflow.python.ops import control_flow_util

    def in_xla_compile() -> bool:
        """True while tracing a function that XLA compiles (jit_compile=True, or inside one)."""
        return not tf.executing_eagerly() and control_flow_util.GraphOrParentsInXlaContext(ops.get_default_graph())

    jitted = tf.function(raw, jit_compile=True)

    @functools.wraps(raw)
    def fn(*args, **kwargs):
        return raw(*args, **kwargs) if in_xla_compile() else jitted(*args, **kwargs)

    fn.jitted = jitted  # the jit function itself, for tests that count its traces
    return fn


def implement(spec):
    return _compiled(spec.code("native"))


STRATEGY = Strategy("xla", implement, mode="xla", order=50)
