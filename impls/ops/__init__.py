"""The op registry: every folder here is an op (its __init__.py declares SPEC, or SPECS
for several), plus users' ops from modules named outside the package:

    STRATBENCH_OP_MODULES=my_ops.gelu,path/to/mish.py   (stratbench --op-module does this)
    [project.entry-points."stratbench.ops"] gelu = "my_ops.gelu"

Modules are imported in that order; a name declared twice is an error.  The variable
is read by every process (workers, asv, pytest), so they all see the same ops.
"""

from __future__ import annotations

import pkgutil

from impls import modules
from impls.spec import OpSpec

ENV_VARIABLE = "STRATBENCH_OP_MODULES"
ENTRY_POINT_GROUP = "stratbench.ops"


class OpModuleError(modules.UserModuleError):
    """An op module could not be imported or declares no valid op."""


def user_modules() -> list[str]:
    """Op modules named by STRATBENCH_OP_MODULES, then by installed entry points."""
    return modules.named(ENV_VARIABLE, ENTRY_POINT_GROUP)


def discover() -> dict[str, OpSpec]:
    """name -> OpSpec: the folders of this package, then the user's modules."""
    package = [f"{__name__}.{m.name}" for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name) if m.ispkg]
    found: dict[str, OpSpec] = {}
    for name in package + user_modules():
        modules.register(found, modules.declared_in(name, "op", OpSpec, "SPEC", "SPECS", OpModuleError), "op",
                         OpModuleError)
    return found
