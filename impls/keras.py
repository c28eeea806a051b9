"""Keras 3 layers for the ops under any strategy, and the small MLP the training benchmark uses.

    model = keras.Sequential([keras.layers.Dense(256), impls.keras.Spiky(strategy="xla"), ...])

`supports_jit` is the strategy's own answer (impls.Impl.xla_compatible), so Keras
does not try to XLA-compile a model holding a py_func or a custom op.  The layers
are registered for Keras saving under the package "stratbench"; a model saved with
a custom_op layer loads where this module (and so the op library) can be imported.
"""

from __future__ import annotations

import keras

import impls

MLP_FEATURES = 64  # input width of the benchmark MLP
MLP_HIDDEN = 256
MLP_CLASSES = 10


def _usable_impl(op: str, strategy: str):
    impl = impls.get(op, strategy)
    if not impl.available:
        raise ValueError(f"strategy {strategy!r} for {op} is unavailable here: {impl.reason}")
    return impl


@keras.saving.register_keras_serializable(package="stratbench")
class Spiky(keras.layers.Layer):
    """spiky(x) = (x mod 1) where that is <= 0.5, else 0; elementwise, any shape."""

    def __init__(self, strategy: str = "native", **kwargs):
        super().__init__(**kwargs)
        self.strategy = strategy
        self.impl = _usable_impl("spiky", strategy)
        self.supports_jit = self.impl.xla_compatible

    def call(self, x):
        return self.impl.fn(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config() | {"strategy": self.strategy}


@keras.saving.register_keras_serializable(package="stratbench")
class StableSoftmax(keras.layers.Layer):
    """exp(x - m) / sum(exp(x - m)) along `axis`; m = max(x) behind stop_gradient
    (op="softmax") or differentiated through (op="softmax_nosg", the ablation)."""

    def __init__(self, strategy: str = "native", axis: int = -1, op: str = "softmax", **kwargs):
        super().__init__(**kwargs)
        if op not in ("softmax", "softmax_nosg"):
            raise ValueError(f"StableSoftmax op must be 'softmax' or 'softmax_nosg', got {op!r}")
        self.strategy, self.axis, self.op = strategy, axis, op
        self.impl = _usable_impl(op, strategy)
        self.supports_jit = self.impl.xla_compatible

    def call(self, x):
        return self.impl.fn(x, axis=self.axis)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config() | {"strategy": self.strategy, "axis": self.axis, "op": self.op}


def layer(op: str, strategy: str) -> keras.layers.Layer:
    """The layer of `op` under `strategy`."""
    return Spiky(strategy) if op == "spiky" else StableSoftmax(strategy, op=op)


def mlp(op: str, strategy: str, seed: int = 0) -> keras.Model:
    """A small classifier that uses `op` under `strategy` where a model would: spiky as
    the hidden activations, a softmax as the output (probabilities; see mlp_loss)."""
    keras.utils.set_random_seed(seed)
    activation = (lambda: layer(op, strategy)) if op == "spiky" else keras.layers.ReLU
    layers = [keras.Input((MLP_FEATURES,)), keras.layers.Dense(MLP_HIDDEN), activation(),
              keras.layers.Dense(MLP_HIDDEN), activation(), keras.layers.Dense(MLP_CLASSES)]
    if op != "spiky":
        layers.append(layer(op, strategy))
    return keras.Sequential(layers)


def mlp_loss(op: str) -> keras.losses.Loss:
    """spiky's MLP ends in logits; the softmax MLPs end in the op's probabilities."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=op == "spiky")
