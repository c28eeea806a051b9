"""Does a step take page faults on every call?  If an allocator handed large tensors back to
the OS between calls, every call would fault its pages in again, and what that costs on a
VM depends on the host: a source of run-to-run variance.  This counts the minor page faults
per call (getrusage) of each strategy of one case, steady state, in this process and its
environment (set TF_ENABLE_ONEDNN_OPTS / TF_CPU_ALLOCATOR_USE_BFC to try another allocator).

    python benchmarks/research/page_faults.py [--op gelu] [--direction forward] [--shape 16e6]
        [--calls 20]
"""

from __future__ import annotations

import argparse
import pathlib
import resource
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import impls  # noqa: E402
from stratbench import timing  # noqa: E402
from stratbench.matrix import Case, parse_size  # noqa: E402
from stratbench.testing import usable  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--op", default="gelu", choices=impls.OPS)
    parser.add_argument("--direction", default="forward")
    parser.add_argument("--shape", default="16e6", help="elements, or rows x columns (default: 16e6)")
    parser.add_argument("--calls", type=int, default=20, help="steady calls counted (default: 20)")
    args = parser.parse_args(argv)
    for strategy in impls.strategies_for(args.op):
        if strategy.startswith("pyfunc"):
            continue  # seconds a call at this size, and NumPy's own temporaries: not the question here
        case = Case(args.op, strategy, args.direction, "float32", "CPU", parse_size(args.shape))
        prepared = timing.prepare(usable(args.op, strategy), case)
        prepared.run(3)  # tracing, compiling, the allocator's first growth
        before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        prepared.run(args.calls)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / args.calls
        print(f"{case.key}: {1e3 * (time.perf_counter() - start) / args.calls:.2f} ms a call, "
              f"{faults:.0f} minor page faults a call ({faults * resource.getpagesize() / 2**20:.1f} MiB of pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
