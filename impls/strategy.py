"""What a strategy is: one declaration in its module, `STRATEGY = Strategy(...)`.

A strategy turns any op spec (impls/spec.py) into a function of TensorFlow tensors, and
says which ops it can take, how a step calling it runs in production, and what it
supports.  Nothing outside its module names it: the registry, the case matrix, timing,
the capability checks and the report read the declaration.  A declaration is read without
importing TensorFlow (the case matrix is built from it), so a strategy module imports
TensorFlow inside its functions.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from impls.spec import FLOAT_DTYPES, OpSpec

# How a step that calls the strategy runs: eagerly, inside one tf.function, or compiled by XLA
# (tf.function(jit_compile=True)).
MODES = ("eager", "tf.function", "xla")
DEVICES = ("CPU", "GPU")


def always_available(spec: OpSpec) -> tuple[bool, str]:
    return True, ""


@dataclasses.dataclass(frozen=True)
class Strategy:
    name: str  # a Python identifier: it names table columns, results and the CLI's choices
    implement: Callable[[OpSpec], Callable]  # spec -> fn(x), or fn(x, axis=-1) for an op along an axis
    mode: str = "tf.function"  # one of MODES
    needs: tuple[str, ...] = ()  # OpSpec fields it builds from: an op qualifies with any one; () any op
    dtypes: tuple[str, ...] = FLOAT_DTYPES  # the input dtypes it accepts (tf.DType names)
    devices: tuple[str, ...] | Callable[[OpSpec], tuple[str, ...]] = DEVICES  # or spec -> devices
    xla_compatible: bool = True  # usable inside tf.function(jit_compile=True)
    serializable: bool = True  # survives tf.saved_model save and load
    availability: Callable[[OpSpec], tuple[bool, str]] = always_available  # (usable here, why not)
    reload_note: str = ""  # what a process loading its SavedModel does first (implement does it too)
    order: int = 100  # its place in tables and figures (the package's 10-70; users' after)
    module: str = ""  # the module that declares it (the registry fills it in)

    def __post_init__(self):
        where = f"strategy {self.name!r}" + (f" of {self.module}" if self.module else "")
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"{where}: name must be a Python identifier, e.g. 'keras_activation'")
        if not callable(self.implement):
            raise ValueError(f"{where}: implement must be a function spec -> fn(x)")
        if self.mode not in MODES:
            raise ValueError(f"{where}: mode {self.mode!r} is not one of {', '.join(MODES)}")
        fields = {f.name for f in dataclasses.fields(OpSpec)}
        unknown = [n for n in self.needs if n not in fields]
        if unknown:
            raise ValueError(f"{where}: needs names {', '.join(unknown)}, not OpSpec fields ({', '.join(sorted(fields))})")
        if not self.dtypes or not set(self.dtypes) <= set(FLOAT_DTYPES):
            raise ValueError(f"{where}: dtypes {self.dtypes!r} must be some of {', '.join(FLOAT_DTYPES)}")
        if not callable(self.devices) and not (self.devices and set(self.devices) <= set(DEVICES)):
            raise ValueError(f"{where}: devices {self.devices!r} must be some of {', '.join(DEVICES)} "
                             "(or a function of the spec)")

    def implements(self, spec: OpSpec) -> bool:
        """Whether the spec has what this strategy builds an op from."""
        return not self.needs or any(getattr(spec, field) is not None for field in self.needs)

    def devices_for(self, spec: OpSpec) -> tuple[str, ...]:
        return self.devices(spec) if callable(self.devices) else self.devices
