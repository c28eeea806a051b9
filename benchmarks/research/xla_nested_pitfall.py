"""A pitfall a Keras/TF user can hit: a tf.function(jit_compile=True) called inside
another jit-compiled function, differentiated through reduce_max, is recompiled on
every call.  Standalone (TensorFlow only), so it can go into a TensorFlow bug report.

    python benchmarks/research/xla_nested_pitfall.py [--steps 10]

It times one training step (forward, softmax without stop_gradient, loss, gradient,
SGD update) of a two-layer model three ways:

  nested  the softmax is its own tf.function(jit_compile=True), called inside a
          jit-compiled train step: the trap;
  inline  the same softmax code traced straight into the jit-compiled step: what
          stratbench's `xla` strategy does inside a caller's XLA compile;
  outer   the jit softmax inside a plain tf.function step (only the op compiled).

Measured on the 2-core development VM (TF 2.21): nested 0.3-0.8 s a step, inline and
outer a few ms -- with stop_gradient on the max, nested is fast too.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def softmax_nosg(x):
    m = tf.reduce_max(x, axis=-1, keepdims=True)  # differentiated through: no stop_gradient
    e = tf.exp(x - m)
    return e / tf.reduce_sum(e, axis=-1, keepdims=True)


def make_step(softmax, jit_step: bool, batch: int = 256, features: int = 64, hidden: int = 256, classes: int = 10):
    rng = np.random.default_rng(0)
    w1 = tf.Variable(rng.normal(size=(features, hidden)).astype("float32") * 0.1)
    w2 = tf.Variable(rng.normal(size=(hidden, classes)).astype("float32") * 0.1)
    x = tf.constant(rng.normal(size=(batch, features)).astype("float32"))
    labels = tf.constant(rng.integers(0, classes, size=batch))

    def step():
        with tf.GradientTape() as tape:
            probabilities = softmax(tf.nn.relu(x @ w1) @ w2)
            picked = tf.gather(probabilities, labels, batch_dims=1)
            loss = -tf.reduce_mean(tf.math.log(picked + 1e-7))
        for var, grad in zip((w1, w2), tape.gradient(loss, (w1, w2))):
            var.assign_sub(0.01 * grad)
        return loss

    return tf.function(step, jit_compile=jit_step)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant, after one warm-up (default 10)")
    args = parser.parse_args(argv)
    jitted = tf.function(softmax_nosg, jit_compile=True)
    variants = {"nested": make_step(jitted, jit_step=True), "inline": make_step(softmax_nosg, jit_step=True),
                "outer": make_step(jitted, jit_step=False)}
    print(f"TensorFlow {tf.__version__}; median seconds per training step over {args.steps} steps")
    for name, step in variants.items():
        step()  # trace and compile
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            step().numpy()
            times.append(time.perf_counter() - start)
        print(f"  {name:7s} {np.median(times) * 1e3:9.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
