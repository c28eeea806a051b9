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
ratio is beyond the threshold too (`confirmed`).  A commit's ops and strategies are
imported from a git worktree of that commit, with its own compiled op; the harness is this
checkout's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import shutil
import subprocess
import tempfile

import pandas as pd

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
    commit's worktree; None: this checkout)."""

    case: object
    root: str | None = None


class Pool:
    """`processes` live workers per checkout root, under one environment setting."""

    def __init__(self, processes: int, env: str, verbose: bool = False):
        self.processes, self.env, self.verbose, self.workers = processes, env, verbose, {}

    def worker(self, root, process: int) -> Worker:
        workers = self.workers.setdefault(root, [None] * self.processes)
        if not (workers[process] and workers[process].alive):
            workers[process] = Worker(self.verbose, self.env, root)
        return workers[process]

    def counterbalanced(self, roots) -> list[tuple]:
        """(root, worker) of every root in ABBA order (process 0 of A, of B, then process 1 of
        B, of A: the order their groups are set up in), the missing workers started side by
        side.  Workers started one after another ran slower the earlier they started, for
        their whole life (by 6-15% from first to fourth, three trials of four workers on the
        same case); started at once, none did (no order in their times)."""
        fresh = {root: starting(self.workers.get(root) or [None] * self.processes, self.verbose, self.env, root)
                 for root in roots}  # every root's missing workers started before any is waited for
        self.workers.update({root: [w.ready() for w in workers] for root, workers in fresh.items()})
        return [(root, self.worker(root, p)) for p in range(self.processes)
                for root in (roots if p % 2 == 0 else roots[::-1])]

    def close(self, kill: bool = False) -> None:
        for workers in self.workers.values():
            for w in workers:
                if w:
                    w.close(kill=kill)
        self.workers = {}


def measure_versions(versions: dict, pool: Pool, settings, timeout_s: float = 300.0) -> Measurement:
    """Paired rounds over `versions` ({name: Version}); raises NotMeasured naming the version
    that could not be set up (an op or strategy its commit lacks, too slow, a failing step)."""
    roots = list(dict.fromkeys(v.root for v in versions.values()))
    cases = {root: list({v.case.key: v.case for v in versions.values() if v.root == root}.values()) for root in roots}

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
                raise NotMeasured(answer[0], f"{nth[root].key} at {root or 'this checkout'}: {answer[1]}")
            key = (root, nth[root].key)
            figures[key] = max(figures.get(key, 1), answer[1]["calls"])
    calls = {name: figures[(v.root, v.case.key)] for name, v in versions.items()}

    def sampler(name, round_, process):
        v = versions[name]
        outcome, seconds = pool.worker(v.root, process).ask("sample", (v.case.key, round_ // pool.processes), None, timeout_s)
        if outcome != status.OK:
            raise NotMeasured(outcome, f"{name}: {seconds}")
        return seconds

    rounds = dataclasses.replace(settings.rounds, far_behind=float("inf"), resolved=0.0)  # every version in every round
    return sample_rounds(sampler, calls, rounds, processes=pool.processes)


def _git(*args, cwd=None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise CompareError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


@contextlib.contextmanager
def worktrees(commits, repo="."):
    """{commit as given: worktree path} of each commit, removed afterwards (also on Ctrl-C)."""
    top = _git("rev-parse", "--show-toplevel", cwd=repo)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="stratbench-compare-"))
    made = {}
    try:
        for commit in commits:
            try:
                sha = _git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", cwd=top)
            except CompareError:
                raise CompareError(f"{commit!r} is not a commit of the repository at {top} "
                                   "(accepted: a commit hash, branch, tag or expression such as HEAD~1)") from None
            path = scratch / sha[:12]
            if not path.exists():
                _git("worktree", "add", "--detach", str(path), sha, cwd=top)
            made[commit] = str(path)
        yield made
    finally:
        for path in set(made.values()):
            subprocess.run(["git", "worktree", "remove", "--force", path], cwd=top, capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True)


def compare_commits(old: str, new: str, cases, settings, processes: int = 2, threshold: float = THRESHOLD,
                    progress=None, verbose: bool = False, timeout_s: float = 300.0,
                    confirm_budget_s: float = CONFIRM_BUDGET_S) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per case: old and new seconds per call, the ratio new/old with its interval and
    the verdict; every sample) for `cases` at commits `old` and `new`."""
    progress = progress or (lambda items, desc: items)
    rows, measured = {}, {}  # case key -> its Measurement (both passes' once measured again)

    def measure(case, pool, roots, settings):  # (judged figures, or why not measured; the Measurement or None)
        versions = {old: Version(case, roots[old]), new: Version(case, roots[new])}
        try:
            m = measure_versions(versions, pool, settings, timeout_s)
        except (NotMeasured, CaseTimeout, WorkerDied) as e:
            if not isinstance(e, NotMeasured) or e.status in status.NEEDS_FRESH_WORKER:
                pool.close(kill=True)  # suspect workers: the next case gets fresh ones
            return {"verdict": "not measured", "reason": str(e)[:300]}, None
        return {"old_s": m.time(old).value, "new_s": m.time(new).value, **judged(m, new, old, threshold), "reason": ""}, m

    with worktrees([old, new]) as roots:
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
                                                       both.ratio(new, old) if both else None, threshold)
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
