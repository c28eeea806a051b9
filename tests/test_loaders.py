"""asv and pytest-benchmark results as the tidy table, from files those runners wrote.

The fixtures are real outputs: tests/fixtures/asv_spiky_time.json from
`STRATBENCH_QUICK=1 asv run --quick HEAD^! -b SpikyTime`, and
tests/fixtures/pytest_benchmark_spiky.json from `STRATBENCH_QUICK=1 pytest
benchmarks/pytest_suite --benchmark-only -k "spiky and forward/ and CPU/1000"
--benchmark-json ...`, both on the 2-core development machine."""

import importlib
import json
import os
import pathlib
import subprocess
import sys
import time
import types

import pytest

import impls
from stratbench import loaders, matrix
from stratbench.results import COLUMNS

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _benchmarks(module):
    """benchmarks/<module>.py, imported as asv imports it (the repository root on sys.path)."""
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module(f"benchmarks.{module}")
    finally:
        sys.path.remove(str(ROOT))


def test_asv_results_become_the_tidy_table():
    table = loaders.load_any(FIXTURES / "asv_spiky_time.json")
    assert list(table.columns) == COLUMNS
    quick = {c.key for c in matrix.cases(ops=["spiky"], quick=True)}
    assert set(table["key"]) <= quick and len(table) == 36
    ok = table[table["status"] == "ok"]
    assert len(ok) == len(table)
    assert (ok["median_s"] > 0).all() and (ok["bytes_per_s"] > 0).all()
    assert (ok["peak_rss_bytes"] > 100e6).all()  # a process with TensorFlow in it
    assert (ok["iqr_s"] >= 0).all()
    assert ok["commit"].str.fullmatch("[0-9a-f]{40}").all()


def test_pytest_benchmark_json_becomes_the_tidy_table():
    table = loaders.load_any(FIXTURES / "pytest_benchmark_spiky.json")
    assert list(table.columns) == COLUMNS
    assert set(table["strategy"]) == {"pyfunc_seed", "pyfunc", "native", "graph", "xla", "custom_op"}
    assert set(table["direction"]) == {"forward"} and set(table["shape"]) == {"1000", "100000"}
    assert (table["roofline_fraction"] > 0).all() and (table["elements_per_s"] > 0).all()
    # bytes/s from the matrix's bytes per case: forward moves 8 bytes per float32 element
    row = table.iloc[0]
    assert row["bytes_per_s"] == pytest.approx(8 * row["size"] / row["median_s"])


def test_run_directories_still_load(tmp_path):
    from stratbench.results import RunStore

    store = RunStore(tmp_path, {"machine": "m"})
    store.add({"key": "spiky/native/forward/float32/CPU/1000", "op": "spiky", "status": "ok", "median_s": 1e-3})
    assert loaders.load_any(tmp_path)["median_s"].tolist() == [1e-3]


def test_asv_suite_names_match_the_loader():
    module = _benchmarks("bench_ops")
    found = {}
    for name in dir(module):
        cls = getattr(module, name)
        if isinstance(cls, type) and name.endswith(("Time", "Tracked")):
            assert cls.__name__ == name
            found.setdefault(loaders._op_of_class(name), set()).add(name)
    assert set(found) == set(impls.OPS) and all(len(names) == 2 for names in found.values())


def test_asv_params_come_from_the_matrix():
    common = _benchmarks("common")
    strategies, sizes, directions = common.params_for("softmax")
    assert strategies == list(impls.strategies_for("softmax"))
    assert "4096x2048" in sizes or common.QUICK
    assert directions == list(matrix.KERNEL_DIRECTIONS)


def test_asv_skips_a_case_too_slow_for_the_case_budget():
    from stratbench.timing import Settings  # imports TensorFlow: only in the test that needs it

    calls = []

    def step(seconds):
        calls.append(seconds)
        time.sleep(seconds)

    harness = types.SimpleNamespace(Settings=lambda: Settings(case_budget_s=0.7, min_samples=5), sync=lambda: None)
    common = _benchmarks("common")
    common.skip_if_too_slow(step, (0.0,), harness)  # limit 0.1 s per call
    assert calls == [0.0]  # a fast case pays one call, as its tracing call
    with pytest.raises(NotImplementedError, match="too slow: a warm call takes 0.2 s"):
        common.skip_if_too_slow(step, (0.2,), harness)
    assert calls == [0.0, 0.2, 0.2]  # a slow first call (compiling?) gets a second, warm one


def test_pytest_benchmark_json_lands_in_a_folder_that_did_not_exist(tmp_path):
    out = tmp_path / "results" / "pytest-benchmark" / "run.json"
    env = dict(os.environ, STRATBENCH_QUICK="1", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/pytest_suite", "--benchmark-only", "-q", "-p", "no:cacheprovider",
         "-k", "spiky and native and forward and not backward and 1000 and not 100000", "--benchmark-json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = loaders.load_any(out)
    assert table["key"].tolist() == ["spiky/native/forward/float32/CPU/default/1000"]
    assert table["median_s"].iloc[0] > 0


def test_asv_skips_and_the_full_run_of_the_published_commit():
    # results/asv/vm/21e962ea-*.json: `asv run HEAD^!` at full sizes, committed from the 2-core VM.
    [path] = (ROOT / "results" / "asv" / "vm").glob("21e962ea-*.json")
    table = loaders.load_any(path)
    # one row per parameter set the file declares (its own matrix, not today's)
    declared = {}
    for name, values in json.loads(path.read_text())["results"].items():
        params = values[1]
        declared[loaders._op_of_class(name.split(".")[1])] = len(params[0]) * len(params[1]) * len(params[2])
    assert table.groupby("op").size().to_dict() == declared
    skipped = table[table["status"] != "ok"]
    assert set(skipped["key"]) == {f"spiky/pyfunc_seed/{d}/float32/CPU/default/16000000" for d in matrix.KERNEL_DIRECTIONS}
    assert (skipped["status"] == "skipped").all() and skipped["median_s"].isna().all()
    ok = table[table["status"] == "ok"]
    assert (ok["median_s"] > 0).all() and (ok["peak_rss_bytes"] > 100e6).all() and (ok["compile_s"] >= 0).all()


def test_asv_setup_reuses_the_warm_case_across_samples():
    # asv_runner re-runs setup before every timed sample; the step must not be traced again.
    spiky_time, _ = _benchmarks("common").make_suites("spiky")
    first, second = spiky_time(), spiky_time()
    first.setup("native", "1000", "forward")
    second.setup("native", "1000", "forward")
    assert second.step is first.step and second.args is first.args
    first.time_step("native", "1000", "forward")
