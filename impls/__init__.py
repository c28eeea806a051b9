"""WHAT stratbench measures: spiky and stop-gradient softmax under every strategy.

    import impls
    impl = impls.get("spiky", "native")
    y = impl.fn(x)                       # softmax: impl.fn(x, axis=-1)

Each strategy lives in its own module (impls/<strategy>.py) that declares
FUNCTIONS (op -> raw function) and what it supports. This registry adds one input
check in front of every raw function, so every strategy rejects bad input the same
way, before any work.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from typing import Callable

OPS = ("spiky", "softmax", "softmax_nosg")
STRATEGIES = ("pyfunc_seed", "pyfunc", "native", "graph", "xla", "custom_op", "builtin")
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
# Which ops each strategy implements, declared here so the case matrix can be built
# without importing TensorFlow (a test holds each module's FUNCTIONS to it).
IMPLEMENTS = {
    "pyfunc_seed": ("spiky", "softmax"),
    "pyfunc": ("spiky", "softmax"),
    "native": OPS,
    "graph": OPS,
    "xla": OPS,
    "custom_op": ("spiky", "softmax"),
    "builtin": ("softmax",),
}


@dataclasses.dataclass(frozen=True)
class Impl:
    """One op under one strategy, and what it supports."""

    op: str
    strategy: str
    fn: Callable  # fn(x) for spiky, fn(x, axis=-1) for the softmaxes
    devices: tuple[str, ...]  # "CPU", "GPU"
    dtypes: tuple[str, ...]  # tf.DType names
    xla_compatible: bool  # usable inside tf.function(jit_compile=True)
    serializable: bool  # survives tf.saved_model save and load
    available: bool = True
    reason: str = ""  # why it is unavailable here


def _check_names(op: str, strategy: str) -> None:
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; valid ops: {', '.join(OPS)}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")


def _module(strategy: str):
    return importlib.import_module(f"impls.{strategy}")


def strategies_for(op: str) -> tuple[str, ...]:
    """The strategies that implement `op` (available here or not)."""
    _check_names(op, STRATEGIES[0])
    return tuple(s for s in STRATEGIES if op in IMPLEMENTS[s])


@functools.lru_cache(maxsize=None)
def get(op: str, strategy: str) -> Impl:
    """The Impl of `op` under `strategy`; ValueError naming the valid names otherwise."""
    _check_names(op, strategy)
    if op not in IMPLEMENTS[strategy]:
        raise ValueError(
            f"strategy {strategy!r} does not implement op {op!r}; "
            f"strategies for {op}: {', '.join(strategies_for(op))}"
        )
    module = _module(strategy)
    available, reason = module.availability()
    return Impl(
        op=op,
        strategy=strategy,
        fn=_checked(op, strategy, module.DTYPES, module.FUNCTIONS[op]),
        devices=module.DEVICES,
        dtypes=module.DTYPES,
        xla_compatible=module.XLA_COMPATIBLE,
        serializable=module.SERIALIZABLE,
        available=available,
        reason=reason,
    )


def available() -> list[tuple[str, str]]:
    """The (op, strategy) pairs usable on this machine right now."""
    return [(op, s) for op in OPS for s in strategies_for(op) if get(op, s).available]


def _checked(op: str, strategy: str, dtypes: tuple[str, ...], raw: Callable) -> Callable:
    """`raw` behind one input check shared by every strategy."""
    import tensorflow as tf

    where = f"{op} ({strategy} strategy)"
    accepted = f"accepted: tensors of dtype {', '.join(dtypes)}"

    def as_tensor(x):
        if x is None:
            raise TypeError(f"{where}: input is None; {accepted}")
        if not isinstance(x, (tf.Tensor, tf.Variable)):
            try:
                x = tf.convert_to_tensor(x)
            except (TypeError, ValueError) as e:
                raise TypeError(f"{where}: cannot make a tensor of {type(x).__name__} ({e}); {accepted}") from None
        if x.dtype.name not in dtypes:
            raise TypeError(f"{where}: input dtype {x.dtype.name} is not supported; {accepted}")
        return x

    if op == "spiky":

        @functools.wraps(raw)
        def fn(x):
            return raw(as_tensor(x))

    else:

        @functools.wraps(raw)
        def fn(x, axis=-1):
            x = as_tensor(x)
            rank = x.shape.rank
            if isinstance(axis, bool) or not isinstance(axis, int):
                raise TypeError(f"{where}: axis must be a Python int, got {type(axis).__name__}")
            if rank == 0:
                raise ValueError(f"{where}: input must have at least one dimension (softmax runs along an axis); got a scalar")
            if rank is not None and not -rank <= axis < rank:
                raise ValueError(f"{where}: axis {axis} is out of range for a rank-{rank} input; accepted: {-rank}..{rank - 1}")
            return raw(x, axis)

    return fn
