"""Where each side of `stratbench compare` takes its code from (`repositories`, `checkouts`), and
what of it differs (`changed`).

OLD and NEW are commits (or `.`, the working tree with its uncommitted changes, copied: nothing
of it is touched).  stratbench's own ops and strategies (impls/) are imported from a git
worktree of that commit of stratbench's repository, with its own compiled op; a user's op or
strategy module named by a path (--op-module path/to/my_op.py) from the same path in a worktree
of that commit of ITS repository.  When a user's module lives in a repository other than
stratbench's, OLD and NEW name commits of that repository, and stratbench's ops and strategies
are this checkout's on both sides.  The harness (stratbench/) is always this checkout's: a
change to it between OLD and NEW is not measured, and is no change of the measured code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import subprocess
import tempfile

import impls
from impls import modules
from impls import ops as op_registry
from impls import strategies as strategy_registry


class CompareError(ValueError):
    """Bad input to compare (a commit git cannot find, no case selected): the message says what."""



WORKING_TREE = "."  # as OLD or NEW: the working tree, uncommitted and untracked (not ignored) files included


def git(*args, cwd=None, strip=True) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise CompareError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip() if strip else done.stdout


def _top(folder) -> pathlib.Path | None:
    """The top folder of the git repository `folder` is in, or None."""
    done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True)
    return pathlib.Path(done.stdout.strip()).resolve() if done.returncode == 0 and done.stdout.strip() else None


def impls_checkout() -> pathlib.Path | None:
    """The git checkout whose impls/ this process imports (stratbench's own ops and strategies),
    or None where impls is installed elsewhere (site-packages)."""
    folder = pathlib.Path(impls.__file__).resolve().parents[1]
    top = _top(folder)
    return top if top == folder else None


def user_module_paths(environ=None) -> list[tuple[str, str, pathlib.Path]]:
    """(variable, kind, absolute path) of every user module named by a path (not a dotted name)
    in $STRATBENCH_OP_MODULES and $STRATBENCH_STRATEGY_MODULES (where --op-module and
    --strategy-module put them)."""
    environ = os.environ if environ is None else environ
    return [(variable, kind, pathlib.Path(name).resolve())
            for variable, kind in ((op_registry.ENV_VARIABLE, "op"), (strategy_registry.ENV_VARIABLE, "strategy"))
            for name in (m.strip() for m in environ.get(variable, "").split(","))
            if name and modules.is_path(name)]


@dataclasses.dataclass
class Repository:
    """A git repository whose code a compare takes from OLD and NEW: stratbench's own (its impls/:
    `holds_impls`) and/or a user's, holding the modules named by a path (`modules`: (variable,
    kind, absolute path, path relative to `top`))."""

    top: pathlib.Path
    holds_impls: bool = False
    modules: list = dataclasses.field(default_factory=list)
    commits: dict = dataclasses.field(default_factory=dict)  # OLD and NEW as given -> full hash, or WORKING_TREE

    def resolve(self, commit: str) -> str:
        if commit == WORKING_TREE:
            return WORKING_TREE
        try:
            return git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", cwd=self.top)
        except CompareError:
            raise CompareError(f"{commit!r} is not a commit of the repository at {self.top}"
                               f"{self._holding()} (accepted: a commit hash, branch, tag or expression such as "
                               f"HEAD~1, or {WORKING_TREE} for the working tree)") from None

    def _holding(self) -> str:
        held = (["stratbench's ops and strategies"] if self.holds_impls else []) + \
            [str(rel) for _, _, _, rel in self.modules]
        return f", which holds {' and '.join(held)}" if held else ""

    def has(self, commit: str, rel: pathlib.Path) -> bool:
        """Whether file `rel` is in `commit` (as given) of this repository."""
        sha = self.commits[commit]
        if sha == WORKING_TREE:
            return (self.top / rel).is_file()
        return subprocess.run(["git", "cat-file", "-e", f"{sha}:{rel.as_posix()}"], cwd=self.top,
                              capture_output=True).returncode == 0

    def describe(self, commit: str) -> str:
        sha = self.commits[commit]
        return "the working tree" if sha == WORKING_TREE else sha[:12]


def repositories(old: str, new: str, environ=None) -> list[Repository]:
    """The repositories OLD and NEW are taken from, each with its commits resolved; CompareError
    (one line) for a module path outside any git repository, or a commit a repository lacks."""
    repos: dict[pathlib.Path, Repository] = {}
    for variable, kind, path in user_module_paths(environ):
        if not path.is_file():
            raise CompareError(f"{kind} module {path} does not exist")
        top = _top(path.parent)
        if top is None:
            raise CompareError(f"{kind} module {path} is not inside a git repository: compare loads a module named "
                               "by a path from OLD and NEW of its repository (commit it to one, or install it and "
                               "name it as a dotted module, the same code on both sides)")
        repos.setdefault(top, Repository(top)).modules.append((variable, kind, path, path.relative_to(top)))
    own = impls_checkout()
    if own in repos:
        repos[own].holds_impls = True
    elif not repos:
        if own is None:
            raise CompareError(f"stratbench's ops and strategies ({pathlib.Path(impls.__file__).parent}) are not in a "
                               "git checkout, and no --op-module or --strategy-module names a file in one: there is "
                               "no OLD and NEW to take code from")
        repos[own] = Repository(own, holds_impls=True)
    for repo in repos.values():
        repo.commits = {commit: repo.resolve(commit) for commit in (old, new)}
    return list(repos.values())


def sources(repos: list[Repository], old: str, new: str) -> list[str]:
    """Lines saying where each side's code comes from (and a module one side lacks)."""
    lines = []
    for repo in repos:
        what = ("stratbench's ops and strategies" if repo.holds_impls else "") + \
            (" and " if repo.holds_impls and repo.modules else "") + ", ".join(str(rel) for *_, rel in repo.modules)
        lines.append(f"{what}: {old} = {repo.describe(old)}, {new} = {repo.describe(new)} of {repo.top}")
        for commit in dict.fromkeys((old, new)):
            lines += [f"  {rel} is not in {commit} ({repo.describe(commit)}): its {kind}s are not measured there"
                      for _, kind, _, rel in repo.modules if not repo.has(commit, rel)]
    if not any(repo.holds_impls for repo in repos):
        lines.append(f"stratbench's ops and strategies: this checkout's ({pathlib.Path(impls.__file__).parent}) "
                     "on both sides")
    return lines


def _snapshot(repo: Repository, into: pathlib.Path) -> None:
    """The working tree's files (tracked and untracked, not ignored) that a worker reads, copied:
    impls/ and each named module's folder.  The working tree and the index are not touched."""
    specs = (["impls"] if repo.holds_impls else []) + sorted({rel.parent.as_posix() for *_, rel in repo.modules})
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *specs, cwd=repo.top,
                  strip=False)
    into.mkdir(parents=True)
    for name in dict.fromkeys(n for n in listed.split("\0") if n):
        source, target = repo.top / name, into / name
        if source.is_symlink() or source.is_file():  # a tracked file deleted in the working tree is left out
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)


@contextlib.contextmanager
def checkouts(repos: list[Repository], old: str, new: str, environ=None):
    """{OLD and NEW as given: (root, variables)}: the impls root of each side (a worktree of that
    commit of stratbench's repository; None: this checkout) and the module variables its workers
    get (each user module path mapped to that commit's worktree of its repository; a module
    that commit lacks left out).  Worktrees and copies are removed afterwards (also on Ctrl-C)."""
    environ = os.environ if environ is None else environ
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="stratbench-compare-"))
    made, worktrees_of = {}, {}  # (top, hash) -> its checkout; top -> worktrees added to it
    try:
        for i, repo in enumerate(repos):
            for commit in (old, new):
                sha = repo.commits[commit]
                if (repo.top, sha) in made:
                    continue
                path = scratch / f"{i}-{repo.top.name}-{'working-tree' if sha == WORKING_TREE else sha[:12]}"
                if sha == WORKING_TREE:
                    _snapshot(repo, path)
                else:
                    git("worktree", "add", "--detach", str(path), sha, cwd=repo.top)
                    worktrees_of.setdefault(repo.top, []).append(path)
                made[(repo.top, sha)] = path

        def side(commit):
            own = next((r for r in repos if r.holds_impls), None)
            root = str(made[(own.top, own.commits[commit])]) if own else None
            moved = {str(path): (repo, rel) for repo in repos for _, _, path, rel in repo.modules}
            variables = []
            for variable in (op_registry.ENV_VARIABLE, strategy_registry.ENV_VARIABLE):
                names = []
                for name in (m.strip() for m in environ.get(variable, "").split(",")):
                    if name and modules.is_path(name):
                        repo, rel = moved[str(pathlib.Path(name).resolve())]
                        there = made[(repo.top, repo.commits[commit])] / rel
                        names += [str(there)] if there.is_file() else []
                    elif name:
                        names.append(name)
                variables.append((variable, ",".join(names)))
            return root, tuple(variables)

        yield {commit: side(commit) for commit in (old, new)}
    finally:
        for top, paths in worktrees_of.items():
            for path in paths:
                subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=top, capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
        for top in worktrees_of:
            subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True)
