"""Does a worker process's start order set its speed for life?  Four workers of this code
time one case (default: spiky graph forward 16M), started one after another and then all
at once (worker.live), three trials each; each prints the median seconds per call of each
worker, in start order, over 12 alternating rounds (the first two dropped).

    python benchmarks/research/start_order.py [OP STRATEGY DIRECTION SIZE]
"""

from __future__ import annotations

import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

_prepared = None


def time_case(op: str, strategy: str, direction: str, size: int, calls: int = 5) -> float:
    """Seconds per call of the case in this worker, prepared on its first request."""
    global _prepared
    import impls
    from stratbench import timing
    from stratbench.matrix import Case

    if _prepared is None:
        case = Case(op, strategy, direction, "float32", "CPU", (size,))
        _prepared = timing.prepare(impls.get(op, strategy), case)
        _prepared.run(3)
    return _prepared.run(calls)


def main(argv) -> int:
    from stratbench import status
    from stratbench.worker import Worker, live

    op, strategy, direction, size = argv if argv else ("spiky", "graph", "forward", "16000000")
    args = (op, strategy, direction, int(float(size)))
    for trial in range(3):
        for mode in ("one after another", "all at once"):
            workers = [Worker() for _ in range(4)] if mode == "one after another" else live([None] * 4, False, "default")
            times = [[] for _ in workers]
            for r in range(12):
                for i in (range(4) if r % 2 == 0 else range(3, -1, -1)):
                    outcome, seconds = workers[i].ask("call", (time_case, args), None, 300)
                    if outcome != status.OK:
                        raise SystemExit(f"worker {i}: {outcome}: {seconds}")
                    times[i].append(seconds)
            medians = [statistics.median(t[2:]) * 1e3 for t in times]
            print(f"trial {trial} {mode:17s} " + " ".join(f"{m:6.2f}" for m in medians) + " ms, in start order",
                  flush=True)
            for w in workers:
                w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
