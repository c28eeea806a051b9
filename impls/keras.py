"""Keras 3 layers for any op under any strategy, and the small MLP the training benchmark uses.

    model = keras.Sequential([keras.layers.Dense(256), impls.keras.OpLayer("spiky", strategy="xla"), ...])

`supports_jit` is the strategy's own answer (impls.Impl.xla_compatible), so Keras
does not try to XLA-compile a model holding a py_func or a custom op.  The layer is
registered for Keras saving under the package "stratbench"; a model saved with a
custom_op layer loads where this module (and so the op library) can be imported, a
user's op where its module is named again (--op-module / STRATBENCH_OP_MODULES).
"""

from __future__ import annotations

import keras

import impls

MLP_FEATURES = 64  # input width of the benchmark MLP
MLP_HIDDEN = 256
MLP_CLASSES = 10


@keras.saving.register_keras_serializable(package="stratbench")
class OpLayer(keras.layers.Layer):
    """A registered op as a layer: elementwise, or along `axis` for an op that takes one."""

    def __init__(self, op: str, strategy: str = "native", axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.op, self.strategy, self.axis = op, strategy, axis
        self.impl = impls.get(op, strategy)
        if not self.impl.available:
            raise ValueError(f"strategy {strategy!r} for {op} is unavailable here: {self.impl.reason}")
        self.supports_jit = self.impl.xla_compatible

    def call(self, x):
        return self.impl.spec.call(self.impl.fn, x, self.axis)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config() | {"op": self.op, "strategy": self.strategy, "axis": self.axis}


def mlp(op: str, strategy: str, seed: int = 0) -> keras.Model:
    """A small classifier that uses `op` under `strategy` where its spec says a model
    would: as the hidden activations (ending in logits), or as the output (ReLU hidden
    layers, the op's output the probabilities; see mlp_loss)."""
    keras.utils.set_random_seed(seed)
    hidden = impls.spec(op).mlp_position == "hidden"
    activation = (lambda: OpLayer(op, strategy)) if hidden else keras.layers.ReLU
    layers = [keras.Input((MLP_FEATURES,)), keras.layers.Dense(MLP_HIDDEN), activation(),
              keras.layers.Dense(MLP_HIDDEN), activation(), keras.layers.Dense(MLP_CLASSES)]
    if not hidden:
        layers.append(OpLayer(op, strategy))
    return keras.Sequential(layers)


def mlp_loss(op: str) -> keras.losses.Loss:
    """A hidden-activation MLP ends in logits; an output-position one in the op's probabilities."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=impls.spec(op).mlp_position == "hidden")
