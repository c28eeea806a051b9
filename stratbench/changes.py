"""`stratbench compare --changed`: which measured code differs between OLD and NEW (`changed`)."""

from __future__ import annotations

import dataclasses

import impls
from impls import modules
from stratbench.sources import WORKING_TREE, Repository, git

# --changed: which measured code differs between OLD and NEW.  The harness (stratbench/, this
# checkout's on both sides), tests, docs, results and benchmarks are not measured code; in
# stratbench's repository an op's folder selects its ops, a strategy's module that strategy,
# impls/kernels/ (the compiled op's shared build and headers) the custom_op strategy, its
# bandwidth/ kernel nothing (the roofline's, which compare does not run), and any other file of
# impls/ (spec.py, strategy.py, the registries: code every case runs) every case.  In a user's
# repository the module files named by a path select what they declare; other files of it are
# not looked at (a module is loaded from its own file).
EVERYTHING = "*"


@dataclasses.dataclass
class Selection:
    """What --changed selects: ops (every strategy of them), strategies (every op under them),
    or everything, each with the changed files that selected it; `ignored`: changed files that
    are no measured code."""

    ops: dict = dataclasses.field(default_factory=dict)  # op -> [files]
    strategies: dict = dataclasses.field(default_factory=dict)  # strategy -> [files]
    everything: list = dataclasses.field(default_factory=list)
    ignored: list = dataclasses.field(default_factory=list)
    unknown: dict = dataclasses.field(default_factory=dict)  # an op folder changed that declares no op here -> files

    def selects(self, case) -> bool:
        return bool(self.everything) or case.op in self.ops or case.strategy in self.strategies

    def __bool__(self) -> bool:
        return bool(self.everything or self.ops or self.strategies)

    def lines(self, ops=None) -> list[str]:
        """One line per op (of `ops`, default every registered one): selected, and why, or not."""
        def files(names):
            return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

        lines = []
        for op in ops if ops is not None else impls.OPS:
            why = ([f"{files(self.everything)} changed (shared by every op)"] if self.everything else []) + \
                ([f"{files(self.ops[op])} changed"] if op in self.ops else []) + \
                [f"its {s} cases: {files(fs)} changed" for s, fs in self.strategies.items()
                 if s in impls.STRATEGIES and s in impls.strategies_for(op)]
            lines.append(f"  {op}: " + ("; ".join(why) if why else "no file of it changed: not compared"))
        lines += [f"  {folder}: {files(fs)} changed, but no op of this checkout is declared there: not measured"
                  for folder, fs in self.unknown.items()]
        if self.ignored:
            lines.append(f"  not measured code (the harness, tests, docs...): {files(self.ignored)}")
        return lines


def changed_files(repo: Repository, old: str, new: str) -> list[str]:
    """Paths (relative to the repository's top) that differ between OLD and NEW; the working
    tree's untracked files that are not ignored count as changed."""
    a, b = repo.commits[old], repo.commits[new]
    if a == b:
        return []
    if WORKING_TREE in (a, b):
        commit = b if a == WORKING_TREE else a
        names = git("diff", "--name-only", "--no-renames", "-z", commit, "--", cwd=repo.top, strip=False).split("\0")
        names += git("ls-files", "-z", "--others", "--exclude-standard", cwd=repo.top, strip=False).split("\0")
    else:
        names = git("diff", "--name-only", "--no-renames", "-z", a, b, "--", cwd=repo.top, strip=False).split("\0")
    return sorted({n for n in names if n})


def _declared_by(module_name: str) -> tuple[list[str], list[str]]:
    """(ops, strategies) of this process's registries declared in module `module_name` (or a
    module of the package `module_name`)."""
    def inside(declared):
        return declared == module_name or declared.startswith(module_name + ".")

    return ([op for op in impls.OPS if inside(impls.spec(op).module)],
            [s for s in impls.STRATEGIES if inside(impls.declaration(s).module)])


def changed(repos: list[Repository], old: str, new: str) -> Selection:
    """What --changed measures: the ops and strategies whose code differs between OLD and NEW."""
    selection = Selection()

    def add(where: dict, names, file):
        for name in names:
            where.setdefault(name, []).append(file)

    for repo in repos:
        named = {rel.as_posix(): (kind, path) for _, kind, path, rel in repo.modules}
        for file in changed_files(repo, old, new):
            parts = file.split("/")
            if file in named:
                kind, path = named[file]
                module = modules.load(str(path), kind).__name__
                ops, strategies = _declared_by(module)
                add(selection.ops, ops, file)
                add(selection.strategies, strategies, file)
            elif not repo.holds_impls or parts[0] != "impls" or len(parts) < 2:
                selection.ignored.append(file)
            elif parts[1] == "ops" and len(parts) > 3:
                ops, _ = _declared_by(f"impls.ops.{parts[2]}")
                add(selection.ops, ops, file)
                if not ops:
                    selection.unknown.setdefault(f"impls/ops/{parts[2]}/", []).append(file)
            elif parts[1] == "strategies" and len(parts) == 3 and file.endswith(".py") and parts[2] != "__init__.py":
                _, strategies = _declared_by(f"impls.strategies.{parts[2][:-3]}")
                add(selection.strategies, strategies or [parts[2][:-3]], file)
            elif parts[1] == "kernels" and len(parts) > 2 and parts[2] == "bandwidth":
                selection.ignored.append(file)
            elif parts[1] == "kernels":
                add(selection.strategies, ["custom_op"], file)
            elif file.endswith((".md", ".txt")) or "__pycache__" in parts:
                selection.ignored.append(file)
            else:  # impls/*.py, the registries, reference.py: shared by every case
                selection.everything.append(file)
    return selection
