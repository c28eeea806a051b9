"""The op registry: every folder here is an op (its __init__.py declares SPEC, or SPECS
for several), plus users' ops from modules named outside the package:

    STRATBENCH_OP_MODULES=my_ops.gelu,path/to/mish.py   (stratbench --op-module does this)
    [project.entry-points."stratbench.ops"] gelu = "my_ops.gelu"

Modules are imported in that order; a name declared twice is an error.  The variable
is read by every process (workers, asv, pytest), so they all see the same ops.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import pathlib
import pkgutil
import sys

from impls.spec import OpSpec

ENV_VARIABLE = "STRATBENCH_OP_MODULES"
ENTRY_POINT_GROUP = "stratbench.ops"


class OpModuleError(ValueError):
    """An op module could not be imported or declares no valid op."""


def _import(name: str):
    """A dotted module name (importable, or found from the current directory) or a .py file path."""
    if name.endswith(".py") or os.sep in name:
        path = pathlib.Path(name).resolve()
        if not path.is_file():
            raise OpModuleError(f"op module file {name!r} does not exist")
        module_name = f"stratbench_user_ops.{path.stem}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module
    if os.getcwd() not in sys.path and "" not in sys.path:  # the console script does not see the cwd
        sys.path.append(os.getcwd())
    return importlib.import_module(name)


def _specs_of(name: str) -> list[OpSpec]:
    try:
        module = _import(name)
    except OpModuleError:
        raise
    except Exception as e:
        raise OpModuleError(f"cannot import op module {name!r}: {type(e).__name__}: {e}") from e
    specs = getattr(module, "SPECS", None) or ([module.SPEC] if hasattr(module, "SPEC") else [])
    if not specs or not all(isinstance(s, OpSpec) for s in specs):
        raise OpModuleError(f"op module {name!r} must define SPEC = impls.spec.OpSpec(...) "
                            "(or SPECS, a list of them)")
    import dataclasses

    return [dataclasses.replace(s, module=s.module or module.__name__) for s in specs]


def user_modules() -> list[str]:
    """Op modules named by STRATBENCH_OP_MODULES, then by installed entry points."""
    named = [m.strip() for m in os.environ.get(ENV_VARIABLE, "").split(",") if m.strip()]
    points = [ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]
    return list(dict.fromkeys(named + points))


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
