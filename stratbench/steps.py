"""A case's inputs and its step, run the way production runs it (eager, a tf.function, XLA),
and the device sync every timing and memory probe waits on."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

import impls
from stratbench.matrix import TRAIN_STEP


def sync() -> None:
    """Wait for every device to finish queued work (GPU kernels run asynchronously)."""
    tf.test.experimental.sync_devices()


def make_inputs(case, seed: int = 0):
    """x and a real upstream gradient dy, made once on the case's device, outside timing;
    for train_step, a batch of features and its class labels."""
    with tf.device(f"/{case.device}:0"):
        rng = tf.random.Generator.from_seed(seed)
        if case.direction == TRAIN_STEP:
            from impls.keras import MLP_CLASSES, MLP_FEATURES

            features = tf.cast(rng.normal((case.size, MLP_FEATURES)), case.dtype)
            labels = rng.uniform((case.size,), maxval=MLP_CLASSES, dtype=tf.int32)
            return tf.identity(features), tf.identity(labels)
        x = tf.cast(rng.normal(case.shape, stddev=impls.spec(case.op).input_scale), case.dtype)
        dy = tf.cast(rng.normal(case.shape), case.dtype)
        x, dy = tf.identity(x), tf.identity(dy)
    sync()
    return x, dy


def in_mode(fn: Callable, mode: str) -> Callable:
    """`fn` run the way `mode` runs a step: as it is (eager), traced (tf.function), compiled by XLA."""
    if mode == "eager":
        return fn
    return tf.function(fn, jit_compile=mode == "xla")


def step_function(impl, case):
    """The step for case.direction, taking (x, dy), run the way production runs it.

    forward: y.  backward: dx alone, from x and dy (a strategy that cannot drop its
    forward pays for it here).  forward_backward: (y, dx) from one call.
    """
    def call(x):
        return impl.spec.call(impl.fn, x)

    def forward(x, dy):
        return call(x)

    def backward(x, dy):
        return forward_backward(x, dy)[1]

    def forward_backward(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = call(x)
        return y, tape.gradient(y, x, output_gradients=dy)

    step = {"forward": forward, "backward": backward, "forward_backward": forward_backward,
            TRAIN_STEP: train_step_of(impl, case)}[case.direction]
    return in_mode(step, case.mode)


def train_step_of(impl, case):
    """A step(features, labels) that trains the small MLP of impls/keras.py once: forward,
    loss, gradient, Adam update (what a model using the op feels); None unless train_step."""
    if case.direction != TRAIN_STEP:
        return None
    import keras

    from impls.keras import mlp, mlp_loss

    model, loss_fn = mlp(impl.op, impl.strategy), mlp_loss(impl.op)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)  # its slots exist before any tf.function traces

    def train_step(features, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(features, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    return train_step
