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

import pandas as pd
import pytest

import impls
from stratbench import across, loaders, matrix, results, status
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
    params = common.params_for("softmax")
    strategies, sizes, directions = params["all"]
    assert strategies == list(impls.strategies_for("softmax"))
    assert "4096x2048" in sizes or common.QUICK
    assert directions == list(matrix.KERNEL_DIRECTIONS)
    assert params["largest"] == [strategies, sizes[-1:], directions]
    assert params["forward_backward"] == [strategies, sizes[-1:], ["forward_backward"]]


def test_asv_suites_share_one_harness_pass_per_commit():
    # asv runs a setup_cache once per key (its source line): one key for every class and op,
    # so the whole matrix is measured once per commit, not once per class.
    from asv_runner.benchmarks._base import get_setup_cache_key

    module = _benchmarks("bench_ops")
    classes = [getattr(module, n) for n in dir(module) if n.endswith(("Time", "Tracked"))]
    assert {get_setup_cache_key(cls().setup_cache) for cls in classes} == {
        get_setup_cache_key(_benchmarks("common").measure_matrix)}
    # asv's timer on one case per strategy; every other number is read from that one pass
    spiky_time = module.SpikyTime
    assert [n for n in dir(spiky_time) if n.startswith(("time_", "peakmem_", "track_"))] == ["time_step"]


def test_asv_records_why_a_case_has_no_figures(monkeypatch):
    common = _benchmarks("common")
    cases = [matrix.Case("spiky", s, "forward", "float32", "CPU", (1000,)) for s in ("native", "graph")]
    monkeypatch.setattr(common, "op_names", lambda: ["spiky"])
    monkeypatch.setattr(common, "matrix_cases", lambda op: cases)
    real_impl_for = common.impl_for

    def impl_for(case):  # graph as if absent at this commit
        if case.strategy == "graph":
            raise NotImplementedError("no such thing")
        return real_impl_for(case)

    monkeypatch.setattr(common, "impl_for", impl_for)
    figures = common.measure_matrix()
    assert figures[cases[0].key]["median_s"] > 0
    assert figures[cases[1].key] == "no such thing"
    spiky_time, spiky_tracked = common.make_suites("spiky")
    with pytest.raises(NotImplementedError, match="no such thing"):
        spiky_tracked().setup(figures, "graph", "1000", "forward")
    with pytest.raises(NotImplementedError, match="no such thing"):
        spiky_time().setup(figures, "graph", "1000", "forward")  # before TensorFlow would be imported
    with pytest.raises(NotImplementedError, match="not measured"):
        spiky_tracked().setup(figures, "xla", "1000", "forward")
    tracked = spiky_tracked()
    tracked.setup(figures, "native", "1000", "forward")
    assert tracked.track_seconds_per_call(figures, "native", "1000", "forward") == figures[cases[0].key]["median_s"]
    # the paired speedup over the baseline, which asv also tracks: the baseline's own is 1 exactly
    assert tracked.track_speedup_over_native(figures, "native", "1000", "forward") == 1.0


def test_asv_harness_projects_a_case_too_slow_instead_of_calling_it(monkeypatch):
    common = _benchmarks("common")

    small, big = (matrix.Case("spiky", "native", "forward", "float32", "CPU", (n,)) for n in (1000, 10**12))
    monkeypatch.setattr(common, "op_names", lambda: ["spiky"])
    monkeypatch.setattr(common, "matrix_cases", lambda op: [small, big])
    real_measure = common._measure
    ran = []

    def measure(timing, cases, settings):
        ran.extend(c.shape for c in cases)
        for case, result in real_measure(timing, cases, settings):
            yield case, result | {"median_s": 1.0}  # as if 1 s a call at 1000 elements

    monkeypatch.setattr(common, "_measure", measure)
    figures = common.measure_matrix()
    assert ran == [(1000,)]  # 10^12 elements would need 10^9 s a call: never built, never called
    assert figures[big.key].startswith("too slow: projected")


def test_pytest_benchmark_json_lands_in_a_folder_that_did_not_exist(benchmark_suite_run):
    _, out = benchmark_suite_run
    table = loaders.load_any(out)
    assert table["key"].tolist() == [f"{op}/{s}/forward/float32/CPU/default/1000" for op, s in
                                     (("spiky", "native"), ("silu", "builtin"))]
    assert (table["median_s"] > 0).all()


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
    figures = {matrix.Case("spiky", "native", "forward", "float32", "CPU", (1000,)).key: {"median_s": 1e-4}}
    first, second = spiky_time(), spiky_time()
    first.setup(figures, "native", "1000", "forward")
    second.setup(figures, "native", "1000", "forward")
    assert second.call is first.call
    first.time_step(figures, "native", "1000", "forward")


def test_release_table_gives_each_release_its_speedup_over_the_one_before(tmp_path):
    rows = []
    for version, seconds in (("2.21.0", None), ("2.9.0", 4e-3), ("2.17.1", 2e-3)):  # 2.9 is older than 2.17
        for shape in ("1000", "16000000"):
            rows.append({"op": "spiky", "strategy": "xla", "direction": "forward", "shape": shape, "size": int(shape),
                         "dtype": "float32", "device": "CPU", "tensorflow": version, "commit": "c" * 40, "machine": "m",
                         "status": "ok" if seconds else "skipped", "measured_with": "asv timer",
                         "median_s": (seconds if shape == "16000000" else 1e-5) if seconds else None})
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    written = across.write_releases(table, tmp_path, log=lambda m: None)
    text = written["table"].read_text()
    assert text.index("TF 2.9.0") < text.index("TF 2.17.1") < text.index("TF 2.21.0")  # oldest first
    assert "4 ms" in text and "2 ms (2.00x)" in text and "not measured" in text and "1e-05" not in text
    assert all(path.exists() for path in written["figures"])
    with pytest.raises(ValueError, match="asv.releases.conf.json"):
        across.write_releases(table[table["tensorflow"] == "2.9.0"], tmp_path, log=lambda m: None)


def test_the_committed_release_matrix_holds_the_whole_matrix_under_each_release():
    # results/asv/vm-epyc/94f4a130-*: `asv run --config asv.releases.conf.json HEAD^!`, committed
    # from the 2-core VM: one commit under TensorFlow 2.17.1, 2.19.1 and 2.21.0.

    table = loaders.load_any(ROOT / "results" / "asv" / "vm-epyc")
    one = table[table["commit"].str.startswith("94f4a130")]
    whole_matrix = {c.key for op in impls.OPS if op in set(one["op"])
                  for c in matrix.cases(ops=[op], directions=matrix.KERNEL_DIRECTIONS)}
    for release, rows in one.groupby("tensorflow"):
        assert set(rows["key"]) == whole_matrix, release  # every case of the matrix, measured or skipped
        skipped = rows[rows["status"] != "ok"]
        assert set(skipped["strategy"]) == {"pyfunc_seed"} and set(skipped["size"]) == {16_000_000}, release
    releases = across.release_rows(table)
    assert sorted(set(releases["tensorflow"]), key=across.version_key) == ["2.17.1", "2.19.1", "2.21.0"]
    ok = releases[releases["status"] == "ok"]
    timed_by_asv = ok["direction"] == "forward_backward"
    assert (ok.loc[timed_by_asv, "measured_with"] == "asv timer").all()
    assert ok.loc[~timed_by_asv, "measured_with"].str.startswith("stratbench harness").all()


def test_an_op_the_measured_commit_lacks_still_has_its_asv_classes_which_skip(monkeypatch):
    # asv finds benchmarks by the names it discovered at another commit (gelu's at HEAD,
    # measuring 4a8688a, which has no gelu): the classes must exist and skip, not fail.
    common = _benchmarks("common")
    monkeypatch.setattr(common, "op_names", lambda: ["spiky"])
    assert common.suite_ops()[0] == "spiky" and set(common.CHECKOUT_OPS) <= set(common.suite_ops())
    monkeypatch.setattr(common, "DISCOVERING", True)  # asv discovering at that commit: no 1000-index classes
    assert common.suite_ops() == ["spiky"]
    gelu_time, gelu_tracked = common.make_suites("gelu")
    assert gelu_time.time_step.params == gelu_tracked.track_seconds_per_call.params == common.ABSENT_PARAMS
    for suite in (gelu_time, gelu_tracked):
        with pytest.raises(NotImplementedError, match="gelu is not an op at this commit"):
            suite().setup({}, "absent 104", "-", "-")


@pytest.mark.parametrize("run_dir", sorted(p.parent.relative_to(ROOT).as_posix()
                                           for p in (ROOT / "results").rglob("cases.json")))
def test_every_shipped_run_still_loads(run_dir):
    """Each `stratbench run` folder committed under results/, of every schema version, reads into
    the one table (results.COLUMNS), with its cases, their status and, where measured, a time."""
    table = results.load(ROOT / run_dir)
    assert list(table.columns) == COLUMNS and len(table)
    assert table["status"].isin(status.ALL).all() and table["key"].notna().all()
    ok = table[table["status"] == status.OK]
    assert len(ok) and (ok["median_s"] > 0).all()
    assert loaders.load_any(ROOT / run_dir)["key"].tolist() == table["key"].tolist()


def test_every_shipped_noise_file_still_reads():
    """The noise checks committed under results/noise, whatever rule they were made with, say
    what the machine resolves (what `report --publish` quotes)."""
    from stratbench import noise

    files = sorted((ROOT / "results" / "noise").glob("*.csv"))
    assert files
    for path in files:
        assert "A/A interval" in noise.resolves(pd.read_csv(path)), path.name
