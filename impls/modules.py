"""Users' modules named outside the package (ops and strategies alike): a dotted module
name, importable or found from the current directory, or a .py file path; listed by an
environment variable (which every process reads: workers, asv, pytest) and then by
installed entry points."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import pathlib
import sys


class UserModuleError(ValueError):
    """A user's module could not be imported or declares nothing valid."""


def is_path(name: str) -> bool:
    """Whether a module name is a file path (loaded from that file) rather than a dotted name."""
    return name.endswith(".py") or os.sep in name


def load(name: str, kind: str):
    """The module `name` (a dotted name or a .py path); UserModuleError naming `kind` ("op",
    "strategy") and what went wrong otherwise."""
    try:
        if is_path(name):
            path = pathlib.Path(name).resolve()
            if not path.is_file():
                raise UserModuleError(f"{kind} module file {name!r} does not exist")
            # named by its path, the same in every process: two files of one name (two packages'
            # __init__.py) are two modules
            stem = path.parent.name if path.stem == "__init__" else path.stem
            module_name = f"stratbench_user_{kind}s_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}.{stem}"
            if module_name in sys.modules:
                return sys.modules[module_name]
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]
                raise
            return module
        if os.getcwd() not in sys.path and "" not in sys.path:  # the console script does not see the cwd
            sys.path.append(os.getcwd())
        return importlib.import_module(name)
    except UserModuleError:
        raise
    except Exception as e:
        raise UserModuleError(f"cannot import {kind} module {name!r}: {type(e).__name__}: {e}") from e


def declared_in(name: str, kind: str, cls: type, one: str, several: str, error: type) -> list:
    """The `cls` declarations of module `name`: its `one` (e.g. SPEC) or its list `several`
    (SPECS), each with the module that declared it; `error` (a UserModuleError) otherwise."""
    try:
        module = load(name, kind)
    except UserModuleError as e:
        raise error(str(e)) from e
    found = getattr(module, several, None) or ([getattr(module, one)] if hasattr(module, one) else [])
    if not found or not all(isinstance(item, cls) for item in found):
        raise error(f"{kind} module {name!r} must define {one} = {cls.__module__}.{cls.__name__}(...) "
                    f"(or {several}, a list of them)")
    return [dataclasses.replace(item, module=item.module or module.__name__) for item in found]


def register(found: dict, items: list, kind: str, error: type) -> None:
    """Adds items to found by name; `error` when a name is declared twice."""
    for item in items:
        if item.name in found:
            raise error(f"{kind} {item.name!r} of {item.module} is already declared by {found[item.name].module}")
        found[item.name] = item


def named(env_variable: str, entry_point_group: str) -> list[str]:
    """Module names from `env_variable` (comma-separated), then from installed entry points."""
    listed = [m.strip() for m in os.environ.get(env_variable, "").split(",") if m.strip()]
    points = [ep.value for ep in importlib.metadata.entry_points(group=entry_point_group)]
    return list(dict.fromkeys(listed + points))
