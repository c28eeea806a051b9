"""The measurement harness: matrix, synchronised timing, results on disk, fault isolation."""

import json
import queue
import threading
import time

import pandas as pd
import pytest

import impls
from stratbench import commands, matrix, metrics, results, timing
from stratbench.matrix import Case
from stratbench.measurement import Rounds
from stratbench.run import Options, run
from stratbench.tables import comparison

DESIGN_COLUMNS = [
    "op", "strategy", "direction", "device", "dtype", "size", "shape", "median_s", "iqr_s", "samples",
    "elements_per_s", "bytes_per_s", "roofline_fraction", "peak_tf_bytes", "peak_rss_bytes", "compile_s",
    "status", "reason", "commit", "run_id",
]
FAST = timing.Settings(target_sample_s=0.01, rounds=Rounds(max_rounds=6), case_budget_s=20)


def spiky_case(strategy, direction="forward", size=1000, device="CPU"):
    return Case("spiky", strategy, direction, "float32", device, (size,))


def by_strategy(table):
    return {r["strategy"]: r for _, r in table.iterrows()}


# --- the matrix -------------------------------------------------------------------
def test_default_matrix_covers_the_design():
    cases = matrix.cases()
    assert {c.op for c in cases} == set(impls.OPS)
    assert {c.direction for c in cases} == set(matrix.DIRECTIONS)
    for op in impls.OPS:  # each op at its spec's sizes, under every strategy that implements it
        assert {c.shape for c in cases if c.op == op and c.direction != matrix.TRAIN_STEP} == set(impls.spec(op).sizes)
        assert {c.strategy for c in cases if c.op == op} == set(impls.strategies_for(op))
    assert len({c.key for c in cases}) == len(cases)
    # the training step runs at batch sizes, for every strategy of every op, and has no roofline
    train = [c for c in cases if c.direction == matrix.TRAIN_STEP]
    assert {c.shape for c in train} == set(matrix.TRAIN_BATCHES)
    assert {(c.op, c.strategy) for c in train} == {(c.op, c.strategy) for c in cases}
    assert all(c.bytes_moved is None for c in train)


def test_bytes_moved_is_written_down_per_op_and_direction():
    assert spiky_case("native", "forward", 1000).bytes_moved == 8 * 1000
    assert spiky_case("native", "backward", 1000).bytes_moved == 12 * 1000
    assert spiky_case("native", "forward_backward", 1000).bytes_moved == 16 * 1000


def test_modes_are_production_modes():
    assert spiky_case("native").mode == "eager"
    assert spiky_case("xla").mode == "xla"
    assert spiky_case("graph").mode == spiky_case("pyfunc").mode == "tf.function"


def test_bad_matrix_choices_are_named():
    with pytest.raises(ValueError, match="unknown direction 'sideways'.*forward_backward"):
        matrix.cases(directions=["sideways"])
    with pytest.raises(ValueError, match="not an element count"):
        matrix.parse_size("big")
    with pytest.raises(ValueError, match="must be RxC"):
        matrix.cases(ops=["softmax"], shapes=[(5,)])


# --- timing -----------------------------------------------------------------------
def test_timing_waits_for_asynchronous_work(monkeypatch):
    """A step that only queues 20 ms of work on a serial 'device' stream (as a GPU call
    does) measures 20 ms, because every sample ends with sync()."""
    stream = queue.Queue()

    def device():
        while True:
            time.sleep(stream.get())
            stream.task_done()

    threading.Thread(target=device, daemon=True).start()
    monkeypatch.setattr(timing, "sync", stream.join)
    queued = timing.Prepared(lambda: stream.put(0.02), [()], "CPU")
    assert 0.019 <= queued.run(3) < 0.04


def test_too_slow_is_refused_before_sampling():
    with pytest.raises(timing.TooSlow, match="case budget"):
        timing.warm_up(timing.Prepared(lambda: time.sleep(0.2), [()], "CPU"), timing.Settings(case_budget_s=1.0))
    # a first call longer than the whole budget is not followed by a second one to find out
    calls = []
    with pytest.raises(timing.TooSlow, match="the first call took 0.3. s .*more than the 0.2 s case budget"):
        timing.warm_up(timing.Prepared(lambda: calls.append(time.sleep(0.3)), [()], "CPU"), timing.Settings(case_budget_s=0.2))
    assert len(calls) == 1


# --- runs through worker processes -------------------------------------------------
def test_known_time_measures_as_that(shared_workers, tmp_path):
    table, _ = run(Options(cases=[spiky_case("sleepy")], out=tmp_path, settings=FAST,
                           verify=False, capabilities=False, roofline=False, workers=shared_workers))
    row = by_strategy(table)["sleepy"]
    assert row["status"] == "ok", row["reason"]
    assert 0.019 <= row["median_s"] < 0.04


def test_faults_stay_local(shared_workers, tmp_path):
    # the shared pool's workers the hang and the crash kill are replaced in it, as in any run
    cases = [spiky_case(s) for s in ("broken", "hang", "crash")] + [spiky_case("native")]
    table, _ = run(Options(cases=cases, out=tmp_path, settings=FAST, case_timeout_s=3,
                           verify=False, capabilities=False, roofline=False, workers=shared_workers))
    rows = by_strategy(table)
    assert rows["broken"]["status"] == "error" and "broken on purpose" in rows["broken"]["reason"]
    assert rows["hang"]["status"] == "timeout" and "3 s" in rows["hang"]["reason"]
    assert rows["crash"]["status"] == "crashed" and "-9" in rows["crash"]["reason"]
    assert rows["native"]["status"] == "ok" and rows["native"]["median_s"] > 0


def test_failing_verify_unavailable_and_absent_device_are_recorded_not_timed(shared_workers, tmp_path):
    cases = [spiky_case("wrong"), spiky_case("unbuilt"), spiky_case("native", device="GPU")]
    table, _ = run(Options(cases=cases, out=tmp_path, capabilities=False, roofline=False, workers=shared_workers))
    rows = {r["key"]: r for _, r in table.iterrows()}
    assert rows[cases[0].key]["status"] == "failed_verify" and "forward FAIL" in rows[cases[0].key]["reason"]
    assert rows[cases[1].key]["status"] == "skipped" and "failed to build" in rows[cases[1].key]["reason"]
    if "GPU" not in table["device"].unique() or rows[cases[2].key]["status"] == "skipped":
        assert "no GPU" in rows[cases[2].key]["reason"]
    assert table["median_s"].isna().all()


def test_quick_run_end_to_end_then_resume(tmp_path, capsys):
    # two ops (elementwise and along an axis) of the quick matrix, every strategy: the whole
    # matrix and the capability checks run in CI's Quickstart (`stratbench run`) and test_choose,
    # the report of a real run in test_choose and test_user_op
    quick = ["run", "--quick", "--ops", "spiky,softmax", "--no-capabilities", "--no-report", "--out", str(tmp_path),
             "--machine", "testbox"]
    assert commands.main(quick) == 0
    out = capsys.readouterr().out
    assert "native" in out and "speedup over native" in out
    [run_dir] = (tmp_path / "testbox").iterdir()
    csv = pd.read_csv(run_dir / "cases.csv")
    assert set(DESIGN_COLUMNS) <= set(csv.columns)
    ok = csv[csv["status"] == "ok"]
    assert len(ok) >= 40 and (ok["samples"] >= 6).all()
    # every sample is kept with its round and process, and the rounds alternated two processes
    samples = results.read_samples(run_dir)
    assert set(ok["key"]) <= set(samples["key"]) and set(samples["process"]) == {0, 1}
    assert ok["speedup_low"].notna().all() and (ok["speedup_low"] <= ok["speedup"]).all()
    assert set(ok["rank"].fillna("")) <= {"fastest", "tie", ""}
    kernels = ok[ok["direction"] != matrix.TRAIN_STEP]  # train_step has no bytes, so no roofline
    assert (kernels["roofline_fraction"] > 0).all() and (kernels["bytes_per_s"] > 0).all()
    assert ok.loc[ok["direction"] == matrix.TRAIN_STEP, "roofline_fraction"].isna().all()
    assert (kernels["roofline_fraction"] <= metrics.ROOFLINE_EXCEEDED).all(), "a case beat the memory roofline"
    # every kernel row has its strategy's call floor, timed at its series' smallest size
    assert kernels["floor_s"].notna().all() and (kernels["floor_s"] > 0).all()
    assert kernels["call_bound"].isin([True, False]).all()
    assert (ok["peak_rss_bytes"] > 0).all()
    env = json.loads((run_dir / "environment.json").read_text())
    assert {r["pattern"] for r in env["roofline"]["machine"]} == {"read", "write", "copy"}
    assert {"tensorflow", "python", "numpy", "cpu_model", "cpu_count", "commit", "dirty", "machine"} <= env.keys()

    # The same command again measures nothing: every case is already in this run.
    before = (run_dir / "cases.csv").read_text()
    assert commands.main(quick) == 0
    assert "resuming run" in capsys.readouterr().err
    assert (run_dir / "cases.csv").read_text() == before


# --- the results store ------------------------------------------------------------
def test_store_keeps_the_last_good_file_when_a_write_fails(tmp_path, monkeypatch):
    store = results.RunStore(tmp_path, {"machine": "m"})
    store.add({"key": "a", "status": "ok", "median_s": 1.0})
    good = (tmp_path / "cases.json").read_text()

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch, pytest.raises(OSError):
        patch.setattr(results.os, "replace", disk_full)
        store.add({"key": "b", "status": "ok", "median_s": 2.0})
    assert (tmp_path / "cases.json").read_text() == good
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".lock") == ["cases.csv", "cases.json", "environment.json"]
    reloaded = results.RunStore(tmp_path, {"machine": "m"})
    assert reloaded.measured() == {"a"}


def test_comparison_marks_best_speedup_and_noise():
    """Results without paired rounds: the lowest median is fastest only where its spread (here
    the IQR) is clear of the others', and `~` is metrics.is_noisy (IQR over 10% of the median
    without an interval), whatever the stored `noisy` cell says."""
    rows = [
        {"op": "spiky", "direction": "forward", "device": "CPU", "dtype": "float32", "shape": "1000", "size": 1000,
         "strategy": s, "median_s": t, "iqr_s": iqr, "noisy": None, "status": "ok"}
        for s, t, iqr in (("native", 2e-3, 0.1e-3), ("xla", 1e-3, 0.5e-3))
    ]
    rows.append(dict(rows[0], strategy="custom_op", status="skipped", median_s=None))
    cell = comparison(pd.DataFrame(rows)).iloc[0]
    assert cell["native"] == "2 ms (1.00x)"
    assert cell["xla"] == "1 ms (2.00x)*~"
    assert cell["custom_op"] == "skipped"
    # spreads that overlap, or none recorded: a tie, as `stratbench recommend` words it
    for iqr in (2.5e-3, None):
        rows[1]["iqr_s"] = iqr
        cell = comparison(pd.DataFrame(rows)).iloc[0]
        assert cell["native"].endswith("=") and cell["xla"].startswith("1 ms (2.00x)=")
