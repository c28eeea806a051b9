"""`stratbench compare A B`: did a commit make a case slower?  From paired rounds
(stratbench/measurement.py); the rule that judges each ratio is stratbench/decision.py, where
each side's code comes from stratbench/sources.py.

Each version of a case (a commit's, or the same case with more elements) runs in worker
processes of its own, `processes` per version: their rounds alternate in a random order,
so every ratio new/old comes from samples seconds apart, and the process a sample ran in
changes every round (some variance lives in the process: buffer placement).
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from stratbench import status
from stratbench.decision import (CONFIRM_BUDGET_S, CONFIRM_COLUMNS, FASTER, SLOWER, THRESHOLD, confirmed,
                                 for_confirming, judged, pooled, recorded_rule)
from stratbench.engine import EntryFailed, answers, sample
from stratbench.measurement import Measurement
from stratbench.sources import Repository, checkouts, repositories
from stratbench.worker import CaseTimeout, Worker, WorkerDied, starting


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
    """Paired rounds over `versions` ({name: Version}); raises EntryFailed naming the version
    that could not be set up (an op or strategy its commit lacks, too slow, a failing step)."""
    roots = list(dict.fromkeys(v.place for v in versions.values()))  # places: a root and its variables
    cases = {root: list({v.case.key: v.case for v in versions.values() if v.place == root}.values()) for root in roots}

    def ask_all(kind, payload_of, key):  # every worker of every root at once: setups run in parallel
        workers = pool.counterbalanced(roots)
        return zip((root for root, _ in workers),
                   answers([(w, kind, payload_of(root)) for root, w in workers], settings, timeout_s, key))

    first = next(iter(versions))
    for root, (outcome, why) in ask_all("group", lambda root: cases[root][0], first):
        if outcome != status.OK:
            raise EntryFailed(first, outcome, why)
    figures = {}
    for i in range(max(len(c) for c in cases.values())):
        nth = {root: cases[root][min(i, len(cases[root]) - 1)] for root in roots}  # a root with fewer repeats its last
        for root, (outcome, answer) in ask_all("add", nth.get, first):
            if outcome != status.OK:
                raise EntryFailed(nth[root].key, outcome, answer)
            if answer[0] != status.OK:  # the case's own status (too slow, an error in its step)
                raise EntryFailed(nth[root].key, answer[0], f"{nth[root].key} at {root[0] or 'this checkout'}: {answer[1]}")
            key = (root, nth[root].key)
            figures[key] = max(figures.get(key, 1), answer[1]["calls"])
    calls = {name: figures[(v.place, v.case.key)] for name, v in versions.items()}
    rounds = dataclasses.replace(settings.rounds, far_behind=float("inf"), resolved=0.0)  # every version in every round
    return sample(lambda name: [pool.worker(versions[name].place, p) for p in range(pool.processes)], calls, rounds,
                  timeout_s, pool.processes, entry_of=lambda name: versions[name].case.key)


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
        except (EntryFailed, CaseTimeout, WorkerDied) as e:  # the last two: a worker that did not start
            if not isinstance(e, EntryFailed) or e.status in status.NEEDS_FRESH_WORKER:
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
    return with_confirm_columns(pd.DataFrame(list(rows.values()))), \
        (pd.concat(samples, ignore_index=True) if samples else pd.DataFrame())


def kept_samples(m: Measurement, case_key: str, **columns) -> pd.DataFrame:
    """Every sample of `m` as stored with a compare or noise run: its version (the name it was
    sampled under), the case's key and any `columns` (noise: the rerun)."""
    frame = m.frame()
    return frame.assign(version=frame["key"], key=case_key, **columns)


def with_confirm_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The table with the confirm_* columns even where nothing needed confirming, so that a
    reader can tell a run with the confirmation from one before it."""
    return table.reindex(columns=list(table.columns) + [c for c in CONFIRM_COLUMNS if c not in table])
