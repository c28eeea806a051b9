"""A strategy of your own, measured on every op with no edit to stratbench (the README's
"Your own strategy"): the op's TensorFlow code under `tf.recompute_grad` inside one
tf.function, the way Keras users save activation memory in training. Its backward runs
the forward again from `x`, so between the passes it keeps no intermediate: less memory
for one more forward.

    stratbench run --strategy-module examples/recompute_strategy.py --strategies native,graph,recompute
"""

from impls.strategy import Strategy


def implement(spec):
    """spec -> fn(x), or fn(x, axis=-1) for an op along an axis: spec.code("native") is the op's
    TensorFlow code (see impls/spec.py for the other forms an op may declare)."""
    import tensorflow as tf  # inside: the registry reads the declaration without TensorFlow

    native = spec.code("native")
    if not spec.takes_axis:
        return tf.function(tf.recompute_grad(native))

    @tf.function
    def along_axis(x, axis=-1):  # recompute_grad differentiates tensors only: the axis stays a Python int
        return tf.recompute_grad(lambda x_: native(x_, axis))(x)

    return along_axis


STRATEGY = Strategy(
    name="recompute",
    implement=implement,
    mode="tf.function",  # how a step calling it runs: "eager", "tf.function" or "xla"
    needs=(),  # OpSpec fields it builds from (any one suffices); () takes every op: all have native code
    xla_compatible=True,  # usable inside a jit_compile=True step
    serializable=False,  # tf.saved_model cannot trace recompute_grad's gradient (the capability check says so)
)
