"""pytest-benchmark over the shared case matrix: every strategy side by side, in one run.

    .venv/bin/python -m pytest benchmarks/pytest_suite --benchmark-only \\
        --benchmark-json results/pytest-benchmark/$(hostname).json

Groups are (op, direction, size), so each group table compares the strategies.  Each
case runs in its production mode, synchronised after every call; throughput, bytes,
and the fraction of a copy's bandwidth go to extra_info.  STRATBENCH_QUICK=1 selects the
matrix's quick sizes (CI runs that with --benchmark-disable: every case once, as a test).
"""

import os

import pytest

import impls
from stratbench import matrix, metrics, timing

QUICK = os.environ.get("STRATBENCH_QUICK") == "1"
CASES = matrix.cases(quick=QUICK)
_copies = {}


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_case(benchmark, case):
    impl = impls.get(case.op, case.strategy)
    if not impl.available:
        pytest.skip(impl.reason)
    x, dy = timing.make_inputs(case)
    step = timing.step_function(impl, case)
    step(x, dy)  # tracing and compiling stay out of the timings
    timing.sync()

    def call():
        step(x, dy)
        timing.sync()

    benchmark.group = f"{case.op} {case.direction} {case.shape_text}"
    benchmark.extra_info.update(
        op=case.op, strategy=case.strategy, direction=case.direction, dtype=case.dtype, device=case.device,
        shape=case.shape_text, size=case.size, mode=case.mode, bytes_moved=case.bytes_moved,
    )
    benchmark(call)
    if benchmark.disabled:
        return
    roofline = None
    if case.bytes_moved:
        if case.bytes_moved not in _copies:
            _copies[case.bytes_moved] = timing.copy_bandwidth(case.device, case.bytes_moved,
                                                              timing.Settings(target_sample_s=0.05))["bytes_per_s"]
        roofline = benchmark.extra_info["roofline_bytes_per_s"] = _copies[case.bytes_moved]
    benchmark.extra_info.update(metrics.throughput(case.size, case.bytes_moved, benchmark.stats.stats.median, roofline))
