"""WHAT stratbench measures: every registered op (impls/ops/<name>/, and users' op
modules) under every strategy.

    import impls
    impl = impls.get("spiky", "native")
    y = impl.fn(x)                       # an op along an axis: impl.fn(x, axis=-1)

Each strategy is one declaration in its own module (impls/strategies/<name>.py, or a
user's: impls/strategy.py says what it holds), whose `implement(spec)` turns any op spec
(impls/spec.py) into a raw function.  This registry adds one input check in front of
every raw function, so every strategy rejects bad input the same way, before any work.
No TensorFlow is imported until an Impl is made.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Callable

from impls import ops as _ops
from impls import strategies as _strategies
from impls.spec import FLOAT_DTYPES, OpSpec  # noqa: F401
from impls.strategy import Strategy


def _named() -> tuple[str, str]:
    """The users' op and strategy modules named now: the registries are read once per value
    (the CLI's --op-module sets the variable; a test may set it), so none needs resetting."""
    return os.environ.get(_ops.ENV_VARIABLE, ""), os.environ.get(_strategies.ENV_VARIABLE, "")


@functools.lru_cache(maxsize=None)
def _registries(op_modules: str, strategy_modules: str) -> tuple[dict[str, OpSpec], dict[str, Strategy]]:
    return _ops.discover(), _strategies.discover()


def _registry() -> dict[str, OpSpec]:
    return _registries(*_named())[0]


def _strategy_registry() -> dict[str, Strategy]:
    return _registries(*_named())[1]


def __getattr__(name):
    if name == "OPS":  # every registered op, the package's folders first, then the user's modules
        return tuple(_registry())
    if name == "STRATEGIES":  # every registered strategy, in the order tables show them
        return tuple(_strategy_registry())
    raise AttributeError(f"module 'impls' has no attribute {name!r}")


def _look_up(registry: dict, name: str, kind: str, option: str, variable: str):
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(registry)}"
                         f" (add yours with {option} or {variable})")
    return registry[name]


def spec(op: str) -> OpSpec:
    """The OpSpec of `op`; ValueError naming the registered ops otherwise."""
    return _look_up(_registry(), op, "op", "--op-module", _ops.ENV_VARIABLE)


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


def declaration(name: str) -> Strategy:
    """The Strategy declared as `name`; ValueError naming the registered strategies otherwise."""
    return _look_up(_strategy_registry(), name, "strategy", "--strategy-module", _strategies.ENV_VARIABLE)


def strategies_for(op: str) -> tuple[str, ...]:
    """The strategies that implement `op` (available here or not)."""
    s = spec(op)
    return tuple(name for name, declared in _strategy_registry().items() if declared.implements(s))


def get(op: str, strategy: str) -> Impl:
    """The Impl of `op` under `strategy`; ValueError naming the valid names otherwise."""
    return _impl(op, strategy, *_named())


@functools.lru_cache(maxsize=None)
def _impl(op: str, strategy: str, *named: str) -> Impl:  # made once per op, strategy and registry
    s, declared = spec(op), declaration(strategy)
    if not declared.implements(s):
        raise ValueError(
            f"strategy {strategy!r} does not implement op {op!r} (its spec has no {' or '.join(declared.needs)}); "
            f"strategies for {op}: {', '.join(strategies_for(op))}"
        )
    available, reason = declared.availability(s)
    return Impl(
        op=op,
        strategy=strategy,
        fn=_checked(s, strategy, declared.dtypes, declared.implement(s)),
        devices=declared.devices_for(s),
        dtypes=declared.dtypes,
        xla_compatible=declared.xla_compatible,
        serializable=declared.serializable,
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
