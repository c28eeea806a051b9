"""asv and pytest-benchmark results as the tidy table, from files those runners wrote.

The fixtures are real outputs: tests/fixtures/asv_spiky_time.json from
`STRATBENCH_QUICK=1 asv run --quick HEAD^! -b SpikyTime`, and
tests/fixtures/pytest_benchmark_spiky.json from `STRATBENCH_QUICK=1 pytest
benchmarks/pytest_suite --benchmark-only -k "spiky and forward/ and CPU/1000"
--benchmark-json ...`, both on the 2-core development machine."""

import pathlib
import sys

import pytest

import impls
from stratbench import loaders, matrix
from stratbench.results import COLUMNS

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
ROOT = pathlib.Path(__file__).resolve().parents[1]


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
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import bench_softmax, bench_spiky
    finally:
        sys.path.remove(str(ROOT))
    for module in (bench_spiky, bench_softmax):
        for name in dir(module):
            cls = getattr(module, name)
            if isinstance(cls, type) and name.endswith(("Time", "Tracked")):
                assert cls.__name__ == name
                assert loaders._op_of_class(name) in impls.OPS


def test_asv_params_come_from_the_matrix():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import common
    finally:
        sys.path.remove(str(ROOT))
    strategies, sizes, directions = common.params_for("softmax")
    assert strategies == list(impls.strategies_for("softmax"))
    assert "4096x2048" in sizes or common.QUICK
    assert directions == list(matrix.KERNEL_DIRECTIONS)
