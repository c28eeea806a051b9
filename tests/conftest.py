import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import impls  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
USER_OP_EXAMPLE = ROOT / "examples" / "silu_op.py"

# Every (op, strategy) declared, of every registered op: the tests hold each one to its op's
# reference, so a new op folder is tested by adding it.  Read from the declarations: nothing
# is built at collection; a pair unavailable here skips, saying why (stratbench.testing.usable).
ALL_PAIRS = [(op, s) for op in impls.OPS for s in impls.strategies_for(op)]


def pair_id(pair):
    return f"{pair[0]}-{pair[1]}"


def takes_axis(op):
    return impls.spec(op).takes_axis


@pytest.fixture
def fake_strategies(monkeypatch):
    """The strategies of tests/fixtures/fake_strategies.py registered, in this process and (through
    the environment) in every worker it starts."""
    from impls.strategies import ENV_VARIABLE

    monkeypatch.setenv(ENV_VARIABLE, str(pathlib.Path(__file__).parent / "fixtures" / "fake_strategies.py"))


@pytest.fixture(scope="session")
def _session_pools():
    pools = {}
    yield pools
    for pool in pools.values():
        for worker in pool:
            worker.close()


@pytest.fixture
def shared_workers(fake_strategies, _session_pools):
    """Worker pools (run.Options.workers) kept across the in-process runs of the tests that take
    them, all with the fake strategies registered: a pool's start imports TensorFlow in each
    worker, seconds.  Tests of what becomes of a worker after a fault start their own."""
    return _session_pools


@pytest.fixture(scope="session")
def benchmark_suite_run(tmp_path_factory):
    """(its output, its JSON path): one run of the pytest-benchmark suite as a user starts it, on
    a shipped op and on the README's own op from the environment (examples/silu_op.py), the JSON
    written into a folder that did not exist.  Shared by the tests of both: a pytest process
    that imports TensorFlow costs seconds."""
    import subprocess
    import sys

    from impls.ops import ENV_VARIABLE

    out = tmp_path_factory.mktemp("pytest-benchmark") / "results" / "pytest-benchmark" / "run.json"
    one_case = "forward and not backward and 1000 and not 100000"
    env = dict(os.environ, STRATBENCH_QUICK="1", TF_CPP_MIN_LOG_LEVEL="2", **{ENV_VARIABLE: str(USER_OP_EXAMPLE)})
    for xdist_worker in [name for name in env if name.startswith("PYTEST_XDIST_")]:
        del env[xdist_worker]  # this test's own worker's: pytest-benchmark would take the run for one and time nothing
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/pytest_suite", "--benchmark-only", "-q", "-p", "no:cacheprovider",
         "-k", f"((spiky and native) or (silu and builtin)) and {one_case}", "--benchmark-json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, out
