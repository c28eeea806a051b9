"""WHAT stratbench measures: every registered op (impls/ops/<name>/, and users' op
modules) under every strategy.

    import impls
    impl = impls.get("spiky", "native")
    y = impl.fn(x)                       # an op along an axis: impl.fn(x, axis=-1)

Each strategy lives in its own module (impls/<strategy>.py) with `implement(spec)`,
which turns any op spec (impls/spec.py) into a raw function, and what it supports.
This registry adds one input check in front of every raw function, so every strategy
rejects bad input the same way, before any work.  No TensorFlow is imported until an
Impl is made.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from typing import Callable

from impls import ops as _ops
from impls.spec import FLOAT_DTYPES, OpSpec  # noqa: F401

STRATEGIES = ("pyfunc_seed", "pyfunc", "native", "graph", "xla", "custom_op", "builtin")
# What a strategy needs from an op spec, read without importing TensorFlow (the case
# matrix is built from it).
NEEDS = {
    "pyfunc_seed": lambda s: s.scalar is not None or s.numpy is not None,
    "pyfunc": lambda s: s.numpy is not None,
    "native": lambda s: True,
    "graph": lambda s: True,
    "xla": lambda s: True,
    "custom_op": lambda s: s.custom_op is not None,
    "builtin": lambda s: s.builtin is not None,
}
WHAT_IT_NEEDS = {"pyfunc_seed": "scalar or numpy forms", "pyfunc": "numpy and numpy_grad",
                 "custom_op": "a custom_op kernel", "builtin": "a builtin"}


@functools.lru_cache(maxsize=None)
def _registry() -> dict[str, OpSpec]:
    return _ops.discover()


def reload_ops() -> None:
    """Read the op modules again (after STRATBENCH_OP_MODULES changed)."""
    _registry.cache_clear()
    get.cache_clear()


def __getattr__(name):
    if name == "OPS":  # every registered op, the package's folders first, then the user's modules
        return tuple(_registry())
    raise AttributeError(f"module 'impls' has no attribute {name!r}")


def spec(op: str) -> OpSpec:
    """The OpSpec of `op`; ValueError naming the registered ops otherwise."""
    registry = _registry()
    if op not in registry:
        raise ValueError(f"unknown op {op!r}; valid ops: {', '.join(registry)}"
                         f" (add yours with --op-module or {_ops.ENV_VARIABLE})")
    return registry[op]


@dataclasses.dataclass(frozen=True)
class Impl:
    """One op under one strategy, and what it supports."""

    op: str
    strategy: str
    fn: Callable  # fn(x) for an elementwise op, fn(x, axis=-1) for one along an axis
    devices: tuple[str, ...]  # "CPU", "GPU"
    dtypes: tuple[str, ...]  # tf.DType names
    xla_compatible: bool  # usable inside tf.function(jit_compile=True)
    serializable: bool  # survives tf.saved_model save and load
    available: bool = True
    reason: str = ""  # why it is unavailable here

    @property
    def spec(self) -> OpSpec:
        return spec(self.op)


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")


def strategies_for(op: str) -> tuple[str, ...]:
    """The strategies that implement `op` (available here or not)."""
    s = spec(op)
    return tuple(name for name in STRATEGIES if NEEDS[name](s))


@functools.lru_cache(maxsize=None)
def get(op: str, strategy: str) -> Impl:
    """The Impl of `op` under `strategy`; ValueError naming the valid names otherwise."""
    s = spec(op)
    _check_strategy(strategy)
    if not NEEDS[strategy](s):
        raise ValueError(
            f"strategy {strategy!r} does not implement op {op!r} (its spec has no {WHAT_IT_NEEDS[strategy]}); "
            f"strategies for {op}: {', '.join(strategies_for(op))}"
        )
    module = importlib.import_module(f"impls.{strategy}")
    available, reason = module.availability(s)
    return Impl(
        op=op,
        strategy=strategy,
        fn=_checked(s, strategy, module.DTYPES, module.implement(s)),
        devices=module.devices(s) if callable(getattr(module, "devices", None)) else module.DEVICES,
        dtypes=module.DTYPES,
        xla_compatible=module.XLA_COMPATIBLE,
        serializable=module.SERIALIZABLE,
        available=available,
        reason=reason,
    )


def available() -> list[tuple[str, str]]:
    """The (op, strategy) pairs usable on this machine right now."""
    return [(op, s) for op in _registry() for s in strategies_for(op) if get(op, s).available]


def _checked(s: OpSpec, strategy: str, dtypes: tuple[str, ...], raw: Callable) -> Callable:
    """`raw` behind one input check shared by every strategy."""
    import tensorflow as tf

    where = f"{s.name} ({strategy} strategy)"
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

    if not s.takes_axis:

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
                raise ValueError(f"{where}: input must have at least one dimension (it runs along an axis); got a scalar")
            if rank is not None and not -rank <= axis < rank:
                raise ValueError(f"{where}: axis {axis} is out of range for a rank-{rank} input; accepted: {-rank}..{rank - 1}")
            return raw(x, axis)

    return fn
