"""pytest-benchmark over the shared case matrix: every strategy side by side, in one run.

    .venv/bin/python -m pytest benchmarks/pytest_suite --benchmark-only \\
        --benchmark-json results/pytest-benchmark/$(hostname).json

Groups are (op, direction, size), so each group table compares the strategies.  Each
case runs in its production mode, synchronised after every call; throughput, bytes,
and the fraction of the memory roofline (stratbench/roofline.py) go to extra_info.  STRATBENCH_QUICK=1 selects the
matrix's quick sizes (CI runs that with --benchmark-disable: every case once, as a test).
"""

import os

import pytest

import impls
from stratbench import matrix, metrics, roofline, timing

QUICK = os.environ.get("STRATBENCH_QUICK") == "1"
CASES = matrix.cases(quick=QUICK)
_roof = roofline.Roofline()  # extended with each case's traffic as the cases come


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_case(benchmark, case):
    impl = impls.get(case.op, case.strategy)
    if not impl.available:
        pytest.skip(impl.reason)
    prepared = timing.prepare(impl, case)  # inputs, the step in its production mode, its device
    prepared.run()  # tracing and compiling stay out of the timings

    def call():
        prepared.run()  # one synchronised call under the case's device scope

    benchmark.group = f"{case.op} {case.direction} {case.shape_text}"
    benchmark.extra_info.update(
        op=case.op, strategy=case.strategy, direction=case.direction, dtype=case.dtype, device=case.device,
        shape=case.shape_text, size=case.size, mode=case.mode, bytes_moved=case.bytes_moved,
    )
    benchmark(call)
    if benchmark.disabled:
        return
    global _roof
    bytes_per_s = None
    if case.traffic:
        try:
            _roof = _roof.extended([case.traffic])
            bytes_per_s = benchmark.extra_info["roofline_bytes_per_s"] = case.bytes_moved / _roof.seconds(case.traffic)
        except roofline.Unmeasured as e:  # a missing metric never fails a case
            benchmark.extra_info["unmeasured"] = f"roofline_fraction: {e}"
    benchmark.extra_info.update(metrics.throughput(case.size, case.bytes_moved, benchmark.stats.stats.median, bytes_per_s))
