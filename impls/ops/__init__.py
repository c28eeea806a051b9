"""The op registry: every folder here is an op (its __init__.py declares SPEC, or SPECS
for several), plus users' ops from modules named outside the package:

    STRATBENCH_OP_MODULES=my_ops.gelu,path/to/mish.py   (stratbench --op-module does this)
    [project.entry-points."stratbench.ops"] gelu = "my_ops.gelu"

Modules are imported in that order; a name declared twice is an error.  The variable
is read by every process (workers, asv, pytest), so they all see the same ops.
"""

from __future__ import annotations

import dataclasses
import pkgutil

from impls import modules
from impls.spec import OpSpec

ENV_VARIABLE = "STRATBENCH_OP_MODULES"
ENTRY_POINT_GROUP = "stratbench.ops"


class OpModuleError(modules.UserModuleError):
    """An op module could not be imported or declares no valid op."""


def _specs_of(name: str) -> list[OpSpec]:
    try:
        module = modules.load(name, "op")
    except modules.UserModuleError as e:
        raise OpModuleError(str(e)) from e
    specs = getattr(module, "SPECS", None) or ([module.SPEC] if hasattr(module, "SPEC") else [])
    if not specs or not all(isinstance(s, OpSpec) for s in specs):
        raise OpModuleError(f"op module {name!r} must define SPEC = impls.spec.OpSpec(...) "
                            "(or SPECS, a list of them)")
    return [dataclasses.replace(s, module=s.module or module.__name__) for s in specs]


def user_modules() -> list[str]:
    """Op modules named by STRATBENCH_OP_MODULES, then by installed entry points."""
    return modules.named(ENV_VARIABLE, ENTRY_POINT_GROUP)


def discover() -> dict[str, OpSpec]:
    """name -> OpSpec: the folders of this package, then the user's modules."""
    modules = [f"{__name__}.{m.name}" for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name) if m.ispkg]
    found: dict[str, OpSpec] = {}
    for name in modules + user_modules():
        for spec in _specs_of(name):
            if spec.name in found:
                raise OpModuleError(f"op {spec.name!r} of {spec.module} is already declared by {found[spec.name].module}")
            found[spec.name] = spec
    return found
