"""`stratbench compare A B` (did a commit make a case slower?) and `stratbench noise` (what
change can this machine resolve?), both from paired rounds (stratbench/measurement.py).

Each version of a case (a commit's, or the same case with more elements) runs in worker
processes of its own, `processes` per version: their rounds alternate in a random order,
so every ratio new/old comes from samples seconds apart, and the process a sample ran in
changes every round (some variance lives in the process: buffer placement).  A first pass
over every case screens: a case whose ratio is beyond the threshold (`judged`; its interval
is not asked) is measured once more at the end in fresh processes with a longer budget,
and is reported changed only where the ratio of both passes' rounds together is
beyond the threshold with its interval excluding 1 ± MARGIN (`change`), and each pass's own
ratio is beyond the threshold too (`confirmed`).

Where each side's code comes from (`repositories`, `checkouts`): OLD and NEW are commits (or
`.`, the working tree with its uncommitted changes, copied: nothing of it is touched).
stratbench's own ops and strategies (impls/) are imported from a git worktree of that commit
of stratbench's repository, with its own compiled op; a user's op or strategy module named by
a path (--op-module path/to/my_op.py) from the same path in a worktree of that commit of ITS
repository.  When a user's module lives in a repository other than stratbench's, OLD and NEW
name commits of that repository, and stratbench's ops and strategies are this checkout's on
both sides.  The harness (stratbench/) is always this checkout's: a change to it between OLD
and NEW is not measured, and is no change of the measured code (`changed`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import subprocess
import tempfile

import pandas as pd

import impls
from impls import modules
from impls import ops as op_registry
from impls import strategies as strategy_registry
from stratbench import status, stats
from stratbench.measurement import Measurement, sample_rounds
from stratbench.worker import CaseTimeout, Worker, WorkerDied, starting

# A change smaller than this is reported unchanged even when resolved, and its interval must
# exclude a change of MARGIN.  Chosen on the AMD VM with the rule below (README, "Is a commit
# slower?"): identical code in two worktrees can run 5-9% apart for a whole compare (softmax
# xla forward 128x128: 0.894 in the first pass, 0.942 in the second), so at 6% two of seven
# A/A compares over the 132 default cases flagged a case; at 7% none did (threshold_scan.py
# on six, one run at 7%), while 10% more elements (about 1.06-1.10x here) was still flagged in
# 5-9 of 10 reruns in eleven sets of reruns and 20% in 9-10 of 10.
THRESHOLD = 0.07
MARGIN = 0.02
# Seconds of rounds a screened case gets when it is measured again (`confirmed`), against the
# first pass's 3: few cases are screened, and four times the rounds narrow the pooled interval
# (the rounds of small cases stop at max_rounds in both passes alike).
CONFIRM_BUDGET_S = 12.0
# A first pass's ratio beyond the threshold earns a second pass whatever its interval (None:
# `change` asks no interval): the first pass's 3 s give intervals of ±4-6%, and an interval
# that had to exclude 1 kept known 1.08x and 1.2x changes from a second look (README).
SCREEN_MARGIN = None
SLOWER, FASTER, UNCHANGED = "slower", "faster", "unchanged"


def change(ratio: stats.Interval, threshold: float = THRESHOLD, by_pass=(), margin: float | None = MARGIN) -> str:
    """The verdict on a time ratio new/old: slower or faster only where its interval excludes
    1 ± margin (None: the interval is not asked), the ratio exceeds the threshold, and so does
    each ratio of `by_pass` (the same ratio in each pass's own processes): a change must
    replicate in fresh processes.  One process can run slow for its life (in A/A comparisons
    on these VMs the first worker started ran 2-6% slower than the other three in the median
    case, up to 20%), and every case of a pass shares the same processes."""
    above = margin is None or ratio.low > 1 + margin
    below = margin is None or ratio.high < 1 / (1 + margin)
    if above and ratio.value > 1 + threshold and all(r > 1 + threshold for r in by_pass):
        return SLOWER
    if below and ratio.value < 1 / (1 + threshold) and all(r < 1 / (1 + threshold) for r in by_pass):
        return FASTER
    return UNCHANGED


def recorded_rule(threshold: float) -> dict:
    """The rule's figures, kept in every row of compare.csv and noise CSVs: a later reader
    (benchmarks/scripts/threshold_scan.py) judges each file by the rule it was made with."""
    return {"threshold": threshold, "margin": MARGIN, "screen_margin": SCREEN_MARGIN}


def rule(threshold: float = THRESHOLD, margin: float = MARGIN, screen_margin: float | None = SCREEN_MARGIN) -> str:
    """The detector's rule in words (compare's summary and --help, noise's report), with the
    screen a file was made with (SCREEN_MARGIN: None since 2026-12-03's second change, 0 before)."""
    interval = "" if screen_margin is None else \
        f" and whose interval excludes 1{f' ± {screen_margin:.0%}' if screen_margin else ''}"
    return (f"a case whose ratio is beyond {threshold:.0%}{interval} is measured once more in fresh worker processes, "
            f"and is flagged where both passes' rounds together have an interval that excludes 1 ± {margin:.0%} and "
            f"a ratio beyond {threshold:.0%}, and each pass's own ratio is beyond {threshold:.0%} too")


CONFIRM_COLUMNS = tuple(f"confirm_{k}" for k in ("ratio", "low", "high", "rounds", "by_process", "cpu_steal",
                                                  "verdict")) + \
    ("pooled_ratio", "pooled_low", "pooled_high")


def pooled(first: Measurement, again: Measurement) -> Measurement:
    """Both passes' samples as one Measurement, the second's processes numbered after the first's."""
    offset = max(first.processes(), default=-1) + 1
    return Measurement(first.samples + [s | {"process": s["process"] + offset} for s in again.samples])


def confirmed(first: dict, again: dict, both: stats.Interval | None, threshold: float = THRESHOLD) -> dict:
    """A screened case judged on its two passes: the second's figures (`judged`, fresh worker
    processes) as confirm_*, the ratio over both passes' rounds (`both`; None where the second
    could not be measured) as pooled_*, and the verdict `change` gives that ratio with each
    pass's ratio.  A worker process keeps its speed for its life and every case of a pass
    shares the same ones, so a change one set of processes shows must come back in another
    (A/A over the 138 default cases at 10%, each pass judged alone: one flag in each of three
    runs, a different case each time, both processes of one commit 8-19% off).  The first
    pass's rounds count too: judging the second pass alone, each process on its own, lost
    a 1.09x change in half the reruns here (README, "Is a commit slower?")."""
    verdict = change(both, threshold, (first["ratio"], again["ratio"])) if both else UNCHANGED
    return first | {c: again.get(c.removeprefix("confirm_")) for c in CONFIRM_COLUMNS if c.startswith("confirm_")} | {
        "pooled_ratio": both.value if both else None, "pooled_low": both.low if both else None,
        "pooled_high": both.high if both else None, "verdict": verdict}


def for_confirming(settings, budget_s: float = CONFIRM_BUDGET_S):
    """The settings a flagged case is measured again with: a group budget of `budget_s`."""
    budget_s = max(budget_s, settings.rounds.group_budget_s)
    return dataclasses.replace(settings, rounds=dataclasses.replace(settings.rounds, group_budget_s=budget_s))


def judged(m: Measurement, new: str, old: str, threshold: float = THRESHOLD) -> dict:
    """One pass's ratio new/old, its interval, its value in each process's rounds (shown, not
    judged) and the pass's verdict: after a first pass, whether to measure again.  That screen
    asks the ratio alone (SCREEN_MARGIN): a second look costs a case 12 s more, not a verdict."""
    ratio = m.ratio(new, old)
    by_process = [m.ratio(new, old, process).value for process in m.processes()]
    return {"ratio": ratio.value, "low": ratio.low, "high": ratio.high, "half_width": ratio.half_width,
            "rounds": ratio.n, "by_process": " ".join(f"{r:.3f}" for r in by_process),
            "cpu_steal": m.steal(), "verdict": change(ratio, threshold, margin=SCREEN_MARGIN)}


class CompareError(ValueError):
    """Bad input to compare (a commit git cannot find, no case selected): the message says what."""


class NotMeasured(RuntimeError):
    """A version could not be measured: (status, why); its workers stay usable unless the
    status says they are suspect (status.NEEDS_FRESH_WORKER)."""

    def __init__(self, outcome: str, why: str):
        super().__init__(f"{outcome}: {why}")
        self.status = outcome


@dataclasses.dataclass
class Version:
    """One side of a comparison: a case, run with the ops and strategies of `root` (a
    commit's worktree; None: this checkout) and the environment `variables` ((name, value)
    pairs: the user's op and strategy modules of that commit)."""

    case: object
    root: str | None = None
    variables: tuple = ()

    @property
    def place(self) -> tuple:
        """Where its code comes from: versions of one place share worker processes."""
        return self.root, self.variables


class Pool:
    """`processes` live workers per place (a checkout root and the user's modules), under one
    environment setting."""

    def __init__(self, processes: int, env: str, verbose: bool = False):
        self.processes, self.env, self.verbose, self.workers = processes, env, verbose, {}

    @staticmethod
    def _place(place) -> tuple:  # a bare root (str or None) is the place of that root with no variables
        return place if isinstance(place, tuple) else (place, ())

    def worker(self, place, process: int) -> Worker:
        root, variables = place = self._place(place)
        workers = self.workers.setdefault(place, [None] * self.processes)
        if not (workers[process] and workers[process].alive):
            workers[process] = Worker(self.verbose, self.env, root, variables=dict(variables))
        return workers[process]

    def counterbalanced(self, places) -> list[tuple]:
        """(place, worker) of every place in ABBA order (process 0 of A, of B, then process 1 of
        B, of A: the order their groups are set up in), the missing workers started side by
        side.  Workers started one after another ran slower the earlier they started, for
        their whole life (by 6-15% from first to fourth, three trials of four workers on the
        same case); started at once, none did (no order in their times)."""
        places = [self._place(p) for p in places]
        fresh = {place: starting(self.workers.get(place) or [None] * self.processes, self.verbose, self.env, place[0],
                                 dict(place[1]))
                 for place in places}  # every place's missing workers started before any is waited for
        self.workers.update({place: [w.ready() for w in workers] for place, workers in fresh.items()})
        return [(place, self.worker(place, p)) for p in range(self.processes)
                for place in (places if p % 2 == 0 else places[::-1])]

    def close(self, kill: bool = False) -> None:
        for workers in self.workers.values():
            for w in workers:
                if w:
                    w.close(kill=kill)
        self.workers = {}


def measure_versions(versions: dict, pool: Pool, settings, timeout_s: float = 300.0) -> Measurement:
    """Paired rounds over `versions` ({name: Version}); raises NotMeasured naming the version
    that could not be set up (an op or strategy its commit lacks, too slow, a failing step)."""
    roots = list(dict.fromkeys(v.place for v in versions.values()))  # places: a root and its variables
    cases = {root: list({v.case.key: v.case for v in versions.values() if v.place == root}.values()) for root in roots}

    def ask_all(kind, payload_of):  # every worker of every root at once: setups run in parallel
        workers = pool.counterbalanced(roots)
        for root, w in workers:
            w.send(kind, payload_of(root), settings)
        return [(root, w.answer(timeout_s)) for root, w in workers]

    for root, (outcome, why) in ask_all("group", lambda root: cases[root][0]):
        if outcome != status.OK:
            raise NotMeasured(outcome, why)
    figures = {}
    for i in range(max(len(c) for c in cases.values())):
        nth = {root: cases[root][min(i, len(cases[root]) - 1)] for root in roots}  # a root with fewer repeats its last
        for root, (outcome, answer) in ask_all("add", nth.get):
            if outcome != status.OK:
                raise NotMeasured(outcome, answer)
            if answer[0] != status.OK:  # the case's own status (too slow, an error in its step)
                raise NotMeasured(answer[0], f"{nth[root].key} at {root[0] or 'this checkout'}: {answer[1]}")
            key = (root, nth[root].key)
            figures[key] = max(figures.get(key, 1), answer[1]["calls"])
    calls = {name: figures[(v.place, v.case.key)] for name, v in versions.items()}

    def sampler(name, round_, process):
        v = versions[name]
        outcome, seconds = pool.worker(v.place, process).ask("sample", (v.case.key, round_ // pool.processes), None, timeout_s)
        if outcome != status.OK:
            raise NotMeasured(outcome, f"{name}: {seconds}")
        return seconds

    rounds = dataclasses.replace(settings.rounds, far_behind=float("inf"), resolved=0.0)  # every version in every round
    return sample_rounds(sampler, calls, rounds, processes=pool.processes)


WORKING_TREE = "."  # as OLD or NEW: the working tree, uncommitted and untracked (not ignored) files included


def _git(*args, cwd=None, strip=True) -> str:
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
            return _git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", cwd=self.top)
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
    listed = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *specs, cwd=repo.top,
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
                    _git("worktree", "add", "--detach", str(path), sha, cwd=repo.top)
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
        names = _git("diff", "--name-only", "--no-renames", "-z", commit, "--", cwd=repo.top, strip=False).split("\0")
        names += _git("ls-files", "-z", "--others", "--exclude-standard", cwd=repo.top, strip=False).split("\0")
    else:
        names = _git("diff", "--name-only", "--no-renames", "-z", a, b, "--", cwd=repo.top, strip=False).split("\0")
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


def compare_commits(old: str, new: str, cases, settings, processes: int = 2, threshold: float = THRESHOLD,
                    progress=None, verbose: bool = False, timeout_s: float = 300.0,
                    confirm_budget_s: float = CONFIRM_BUDGET_S,
                    repos: list[Repository] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per case: old and new seconds per call, the ratio new/old with its interval and
    the verdict; every sample) for `cases` at commits `old` and `new` (either may be
    WORKING_TREE) of `repos` (default: `repositories(old, new)`)."""
    progress = progress or (lambda items, desc: items)
    rows, measured = {}, {}  # case key -> its Measurement (both passes' once measured again)
    repos = repos if repos is not None else repositories(old, new)
    a, b = (old, new) if old != new else (f"{old} (old)", f"{new} (new)")  # the names samples are kept under

    def measure(case, pool, places, settings):  # (judged figures, or why not measured; the Measurement or None)
        versions = {a: Version(case, *places[old]), b: Version(case, *places[new])}
        try:
            m = measure_versions(versions, pool, settings, timeout_s)
        except (NotMeasured, CaseTimeout, WorkerDied) as e:
            if not isinstance(e, NotMeasured) or e.status in status.NEEDS_FRESH_WORKER:
                pool.close(kill=True)  # suspect workers: the next case gets fresh ones
            return {"verdict": "not measured", "reason": str(e)[:300]}, None
        return {"old_s": m.time(a).value, "new_s": m.time(b).value, **judged(m, b, a, threshold), "reason": ""}, m

    with checkouts(repos, old, new) as roots:
        for env in dict.fromkeys(c.env for c in cases):
            env_cases = [c for c in cases if c.env == env]
            for confirming in (False, True):  # then every screened case again, in fresh workers
                todo = [c for c in env_cases if rows[c.key]["verdict"] in (SLOWER, FASTER)] if confirming else env_cases
                pool = Pool(processes, env, verbose)
                try:
                    for case in progress(todo, f"{'confirm' if confirming else 'compare'} ({env})") if todo else ():
                        if confirming:
                            again, m = measure(case, pool, roots, for_confirming(settings, confirm_budget_s))
                            both = pooled(measured[case.key], m) if m else None
                            rows[case.key] = confirmed(rows[case.key], again,
                                                       both.ratio(b, a) if both else None, threshold)
                            measured[case.key] = both or measured[case.key]
                        else:
                            figures, measured[case.key] = measure(case, pool, roots, settings)
                            rows[case.key] = {"key": case.key, "op": case.op, "strategy": case.strategy,
                                              "direction": case.direction, "shape": case.shape_text, "env": env,
                                              **figures, **recorded_rule(threshold)}
                finally:
                    pool.close()
    samples = [kept_samples(m, key) for key, m in measured.items() if m]
    return _with_confirm_columns(pd.DataFrame(list(rows.values()))), \
        (pd.concat(samples, ignore_index=True) if samples else pd.DataFrame())


def kept_samples(m: Measurement, case_key: str, **columns) -> pd.DataFrame:
    """Every sample of `m` as stored with a compare or noise run: its version (the name it was
    sampled under), the case's key and any `columns` (noise: the rerun)."""
    frame = m.frame()
    return frame.assign(version=frame["key"], key=case_key, **columns)


def _with_confirm_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The table with the confirm_* columns even where nothing needed confirming, so that a
    reader can tell a run with the confirmation from one before it."""
    return table.reindex(columns=list(table.columns) + [c for c in CONFIRM_COLUMNS if c not in table])


NOISE_CHANGES = (("A again", 1.0), ("+10% elements", 1.1), ("+20% elements", 1.2))


def more_elements(case, factor: float):
    """`case` with `factor` times its elements (its first dimension scaled): a known change."""
    return case if factor == 1.0 else dataclasses.replace(case, shape=(round(case.shape[0] * factor),) + case.shape[1:])


def noise(case, settings, reruns: int = 3, processes: int = 2, threshold: float = THRESHOLD, progress=None,
          verbose: bool = False, confirm_budget_s: float = CONFIRM_BUDGET_S,
          written=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The detector checked against known changes: `case` against itself (A/A: no change) and
    against the same case with 10% and 20% more elements (a memory-bound case: about 1.1x and
    1.2x), in fresh workers each rerun.  (One row per (rerun, change); every sample, with its
    rerun and version.)  `written(table, samples)` is called after each rerun, so that a
    caller can keep the reruns done (Ctrl-C, a crash)."""
    progress = progress or (lambda items, desc: items)
    rows, samples = [], []
    for rerun in progress(range(reruns), "noise"):
        versions = {"A": Version(case)}
        for name, factor in NOISE_CHANGES:
            versions[name] = Version(more_elements(case, factor))
        verdicts, measured = {}, None
        for confirming in (False, True):  # then every screened change again, in fresh workers (as compare)
            names = [n for n, v in verdicts.items() if v["verdict"] in (SLOWER, FASTER)] if confirming else \
                [n for n, _ in NOISE_CHANGES]
            if not names:
                break
            pool = Pool(processes, case.env, verbose)
            try:
                m = measure_versions({n: versions[n] for n in ["A", *names]}, pool,
                                     for_confirming(settings, confirm_budget_s) if confirming else settings)
            finally:
                pool.close()
            measured = pooled(measured, m) if confirming else m
            for name in names:
                again = judged(m, name, "A", threshold)
                verdicts[name] = confirmed(verdicts[name], again, measured.ratio(name, "A"), threshold) \
                    if confirming else again
        for name, factor in NOISE_CHANGES:
            rows.append({"rerun": rerun, "op": case.op, "strategy": case.strategy, "direction": case.direction,
                         "shape": case.shape_text, "change": name, "elements_ratio": factor,
                         **recorded_rule(threshold), **verdicts[name]})
        samples.append(kept_samples(measured, case.key, rerun=rerun))
        table, kept = _with_confirm_columns(pd.DataFrame(rows)), pd.concat(samples, ignore_index=True)
        if written:
            written(table, kept)
    return table, kept


def resolves(table: pd.DataFrame) -> str:
    """What the noise check says about this machine, in one paragraph."""
    threshold = table["threshold"].iloc[0] if "threshold" in table else None  # not recorded before 2026-12-02
    confirming = "confirm_verdict" in table  # a flag measured again in fresh workers (since 2026-12-02)
    lines = []
    for name, group in table.groupby("change", sort=False):
        flagged = int((group["verdict"] != UNCHANGED).sum())
        lines.append(f"{name}: ratio {group['ratio'].median():.3f} (median of {len(group)} reruns), "
                     f"flagged {flagged} of {len(group)}")
    aa = table[table["change"] == "A again"]["half_width"]
    if "pooled_ratio" in table:  # the rule since 2026-12-03 (the screen's own margin recorded since its change that day)
        screen = table["screen_margin"].iloc[0] if "screen_margin" in table else table["margin"].iloc[0]
        text = rule(threshold, table["margin"].iloc[0], None if pd.isna(screen) else screen)
        text = text[0].upper() + text[1:]
    else:
        excludes = f"excludes 1 ± {table['margin'].iloc[0]:.0%}" if "margin" in table else "excludes 1"
        beyond = f"the {threshold:.0%} threshold" if threshold else "the threshold (not recorded in this file)"
        text = (f"A change is flagged where its interval {excludes} and it exceeds {beyond}, in every worker "
                "process's rounds too"
                + (", and again when measured once more in fresh worker processes" if confirming else ""))
    lines.append(f"A/A interval: ±{aa.median():.1%} (median over reruns). {text}: the flag rates above say which of "
                 "the known changes this machine resolves in this time")
    return "\n".join(lines)
