"""One engine for measuring in worker processes, shared by `stratbench run` (a comparison
group's strategies, call floors and roofline) and `stratbench compare` / `noise` (a case at two
commits, or with more elements): every worker asked at once (`answers`), then the entries
sampled in paired rounds that alternate the workers (`sample`, stratbench/measurement.py).  A
worker that hangs, dies or answers with an error stops the measurement as EntryFailed, naming
the entry and its status; the caller decides what to measure again, in which workers."""

from __future__ import annotations

from stratbench import status
from stratbench.measurement import Measurement, sample_rounds
from stratbench.worker import CaseTimeout, WorkerDied


class EntryFailed(RuntimeError):
    """An entry could not be set up or sampled: its key, a status (stratbench/status.py) and
    why.  Its workers stay usable unless the status says they are suspect (NEEDS_FRESH_WORKER)."""

    def __init__(self, key: str, outcome: str, reason: str):
        super().__init__(f"{outcome}: {reason}")
        self.key, self.status, self.reason = key, outcome, reason


def answers(requests, settings, timeout_s: float, key: str) -> list:
    """Sends every (worker, kind, payload) of `requests` at once (their setups run in parallel),
    then returns each worker's answer, (status, result), in order; a hang or a death is
    EntryFailed for `key`."""
    for worker, kind, payload in requests:
        worker.send(kind, payload, settings)
    try:
        return [worker.answer(timeout_s) for worker, _, _ in requests]
    except CaseTimeout:
        raise EntryFailed(key, status.TIMEOUT, f"still running after the {timeout_s:g} s case limit; killed") from None
    except WorkerDied as e:
        raise EntryFailed(key, status.CRASHED, str(e)) from None


def sample(workers_of, calls: dict, rounds, timeout_s: float, processes: int, entry_of=None, contenders=None,
           keep=()) -> Measurement:
    """Paired rounds over `calls` ({name: calls per sample}): round r of `name` runs in worker
    workers_of(name)[r % processes] on the entry entry_of(name) (default: the name), input set
    r // processes.  `contenders` and `keep` as measurement.sample_rounds takes them."""
    def sampler(name, round_, process):
        entry = entry_of(name) if entry_of else name
        try:
            outcome, result = workers_of(name)[process].ask("sample", (entry, round_ // processes), None, timeout_s)
        except CaseTimeout:
            raise EntryFailed(name, status.TIMEOUT, f"a sample ran past the {timeout_s:g} s case limit") from None
        except WorkerDied as e:
            raise EntryFailed(name, status.CRASHED, str(e)) from None
        if outcome != status.OK:
            raise EntryFailed(name, outcome, f"while sampling: {result}")
        return result

    return sample_rounds(sampler, calls, rounds, contenders=contenders, keep=keep, processes=processes)
