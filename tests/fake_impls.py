"""Impls that exist only in the tests: a slow one of known duration, and faulty ones.

`stratbench run` resolves them through Options(resolve="fake_impls:get") in its
worker processes; any other strategy name falls through to impls.get.
"""

import dataclasses
import os
import signal
import time

import tensorflow as tf

import impls
from impls.ops.spiky import reference  # the fakes stand in for spiky

SLEEP_S = 0.02


def _through_numpy(body):
    def fn(x):
        y = tf.numpy_function(lambda a: body(a).astype(a.dtype), [x], x.dtype, stateful=True)
        y.set_shape(x.shape)
        return y

    return fn


def _sleepy(a):
    time.sleep(SLEEP_S)
    return reference.spiky(a)


def _hang(a):
    time.sleep(3600)
    return a


def _crash(a):
    os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does


def _broken(x):
    raise ValueError("broken on purpose")


def _oom_at_1000(a):
    """Notes its worker's pid (STRATBENCH_TEST_PIDS), then runs out of memory from 1000 elements on."""
    with open(os.environ["STRATBENCH_TEST_PIDS"], "a") as f:
        f.write(f"{os.getpid()}\n")
    if a.size >= 1000:
        raise MemoryError("out of memory on purpose")
    return reference.spiky(a)


FAKES = {
    "sleepy": _through_numpy(_sleepy),
    "hang": _through_numpy(_hang),
    "crash": _through_numpy(_crash),
    "broken": _broken,
    "oom": _through_numpy(_oom_at_1000),
    "wrong": tf.identity,  # fails the correctness gate
}


def get(op, strategy):
    if strategy == "unbuilt":
        return dataclasses.replace(impls.get(op, "graph"), strategy=strategy, available=False,
                                   reason="the compiled op failed to build: error: on purpose")
    if strategy in FAKES:
        return dataclasses.replace(impls.get(op, "graph"), strategy=strategy, fn=FAKES[strategy], xla_compatible=False)
    return impls.get(op, strategy)
