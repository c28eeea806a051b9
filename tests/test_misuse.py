"""Results a user can trust under misuse: concurrent runs into one folder, stored figures
of other measuring settings, bad input, damaged files, a worker after out-of-memory, the
xla strategy inside a caller's XLA compile, and projections of too-slow cases."""

import json
import os
import threading

import pytest

import impls
from stratbench import commands, matrix, recommend, results, timing
from stratbench.limits import projected_too_slow
from stratbench.matrix import Case
from stratbench.measurement import Rounds
from stratbench.run import Options, run

FAST = timing.Settings(target_sample_s=0.01, rounds=Rounds(max_rounds=6), case_budget_s=20)


def spiky_case(strategy, size=1000, direction="forward"):
    return Case("spiky", strategy, direction, "float32", "CPU", (size,))


def row(key, **fields):
    return {"key": key, "status": "ok", "median_s": 1e-3} | fields


# --- the run store ----------------------------------------------------------------
def test_concurrent_writers_into_one_folder_keep_every_case(tmp_path):
    stores = [results.RunStore(tmp_path, {"machine": "m"}) for _ in range(2)]

    def write(store, name):
        for i in range(40):
            store.add(row(f"{name}/{i}"))

    threads = [threading.Thread(target=write, args=(s, n)) for s, n in zip(stores, "ab")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results.RunStore(tmp_path, {"machine": "m"}).measured()) == 80


def test_result_files_are_readable_by_others(tmp_path):
    results.RunStore(tmp_path, {"machine": "m"}).add(row("a"))
    umask = os.umask(0)
    os.umask(umask)
    for name in ("cases.csv", "cases.json", "environment.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_figures_of_other_measuring_settings_are_measured_again(shared_workers, tmp_path):
    logged = []
    case = spiky_case("sleepy")
    options = dict(cases=[case], out=tmp_path, verify=False, capabilities=False, roofline=False, workers=shared_workers)
    run(Options(settings=FAST, **options), log=logged.append)
    slower = timing.Settings(target_sample_s=0.03, rounds=Rounds(min_rounds=7, max_rounds=7), case_budget_s=20)
    table, _ = run(Options(settings=slower, **options), log=logged.append)
    assert any("1 cases were stored with other measuring settings: measuring them again" in m for m in logged)
    [measured] = table.to_dict("records")
    assert measured["measured_with"] == slower.describe() and measured["samples"] == 7
    table, _ = run(Options(settings=slower, **options), log=logged.append)  # same settings: resumed, not redone
    assert f"1 of 1 cases already measured with {slower.describe()}" in logged[-1]


def test_a_reworded_settings_description_does_not_measure_a_case_again(shared_workers, tmp_path, monkeypatch):
    """Resuming compares the settings as data (measuring_settings), not their wording."""
    logged = []
    options = dict(cases=[spiky_case("sleepy")], out=tmp_path, verify=False, capabilities=False, roofline=False,
                   workers=shared_workers)
    run(Options(settings=FAST, **options), log=logged.append)
    monkeypatch.setattr(timing.Settings, "describe", lambda self: "the same settings, in other words")
    _, run_dir = run(Options(settings=FAST, **options), log=logged.append)
    assert "1 of 1 cases already measured" in logged[-1]
    assert json.loads((run_dir / "cases.json").read_text())["schema_version"] == results.SCHEMA_VERSION


def test_rows_of_schema_1_are_resumed_by_their_description(tmp_path):
    """A row stored before measuring_settings existed is compared by its measured_with."""
    store = results.RunStore(tmp_path, {"machine": "m"})
    store.add(row("old", measured_with=FAST.describe()), row("other", measured_with="something else"),
              row("new", **results.measuring_columns(FAST)))
    assert store.measured(FAST) == {"old", "new"}
    changed = timing.Settings(target_sample_s=0.02, rounds=FAST.rounds, case_budget_s=FAST.case_budget_s)
    assert store.measured(changed) == set()


def test_a_run_on_a_subset_shows_only_its_cases(shared_workers, tmp_path):
    options = dict(out=tmp_path, settings=FAST, verify=False, capabilities=False, roofline=False, workers=shared_workers)
    run(Options(cases=[spiky_case("sleepy", 1000)], **options))
    table, run_dir = run(Options(cases=[spiky_case("sleepy", 2000)], **options))
    assert table["key"].tolist() == [spiky_case("sleepy", 2000).key]
    assert len(results.load(run_dir)) == 2  # the folder keeps both


# --- a worker after a failure --------------------------------------------------------
def test_out_of_memory_keeps_its_message_and_the_next_case_gets_a_fresh_worker(fake_strategies, tmp_path, monkeypatch):
    pids = tmp_path / "pids"
    monkeypatch.setenv("STRATBENCH_TEST_PIDS", str(pids))
    cases = [spiky_case("oom", 1000), spiky_case("oom", 10)]
    table, _ = run(Options(cases=cases, out=tmp_path, settings=FAST, verify=False,
                           capabilities=False, roofline=False))
    rows = {r["size"]: r for r in table.to_dict("records")}
    assert rows[1000]["status"] == "oom" and "out of memory on purpose" in rows[1000]["reason"]
    assert rows[10]["status"] == "ok"
    assert len(set(pids.read_text().split())) == 2  # the case after the oom ran in another process


# --- bad input: one clear line, exit status 2 ----------------------------------------
@pytest.mark.parametrize("argv, said", [
    (["run", "--sizes", "0,1e12"], "'0' is not a whole number of at least 1"),
    (["run", "--sizes", "inf"], "'inf' is not a whole number"),
    (["run", "--shapes", "0x5"], "'0' is not a whole number"),
    (["run", "--shapes", "10"], "shape 10 must be RxC"),
    (["run", "--strategies", "custom_op,pyfunc", "--ops", "softmax_nosg"], "no case selected"),
    (["recommend", "--op", "softmax", "--size", "1e6"], "--size for softmax is a RxC shape"),
    (["recommend", "--ops", "spiky,gelu", "--size", "1e6"], "takes one op, got 2 (spiky, gelu)"),
    (["noise", "--sizes", "1e3,1e4"], "takes one size, got 2 (1e3,1e4): run the command once per size"),
    (["run", "--dry-run", "--strategies", "custom_op", "--ops", "softmax_nosg"], "no case selected"),
])
def test_bad_input_is_one_clear_line(argv, said, capsys, tmp_path):
    try:
        code = commands.main(argv + (["--out", str(tmp_path)] if argv[0] == "run" else []))
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing left behind


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    file = tmp_path / "file"
    file.write_text("")
    assert commands.main(["run", "--quick", "--out", str(file / "sub")]) == 2
    assert f"{file} is a file, not a folder" in capsys.readouterr().err


def test_report_on_an_empty_folder_or_a_damaged_file_names_it(tmp_path, capsys):
    assert commands.main(["report", str(tmp_path)]) == 2
    assert "holds no stratbench results" in capsys.readouterr().err
    (tmp_path / "cases.json").write_text("{not json")
    assert commands.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'cases.json'} is not valid JSON" in err and "Traceback" not in err


def test_one_damaged_run_does_not_break_recommend(tmp_path):
    good = results.RunStore(tmp_path / "m" / "good", {"machine": "m", "commit": "abc"})
    good.add(row("spiky/native/forward/float32/CPU/default/1000", op="spiky", strategy="native", direction="forward",
                 device="CPU", dtype="float32", shape="1000", size=1000, env="default", iqr_s=0.0, noisy=False,
                 elements_per_s=1e6))
    damaged = tmp_path / "m" / "damaged"
    damaged.mkdir(parents=True)
    (damaged / "cases.json").write_text("")
    os.utime(damaged / "cases.json")  # the newest run: read first
    text = recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward")
    assert "Use native: 1 ms" in text and "skipped, unreadable" in text and "damaged" in text


# --- xla inside a caller's XLA compile -----------------------------------------------
@pytest.mark.parametrize("op", ["softmax_nosg", "spiky"])
def test_xla_inside_a_jit_step_is_compiled_with_it_not_nested(op):
    inner = impls.get(op, "xla").fn.jitted
    before = inner.experimental_get_tracing_count()
    for direction, shape in ((matrix.TRAIN_STEP, (64,)), ("forward_backward", (8, 16))):
        case = Case(op, "xla", direction, "float32", "CPU", shape)
        step = timing.step_function(impls.get(op, "xla"), case)
        args = timing.make_inputs(case)
        for _ in range(3):
            step(*args)
    assert inner.experimental_get_tracing_count() == before  # traced inline, never as a nested jit function
    impls.get(op, "xla").fn(args[0])  # called eagerly, it is its own jit function
    assert inner.experimental_get_tracing_count() == before + 1


# --- projecting a case too slow --------------------------------------------------------
def _measured(*measured):
    case = spiky_case("pyfunc_seed")
    return [{"key": f"{case.series}/{size}", "status": "ok", "size": size, "median_s": t, "shape": str(size)}
            for size, t in measured]


def test_no_projection_from_a_case_that_is_mostly_call_overhead():
    big = spiky_case("pyfunc_seed", 16_000_000)
    # 0.4 ms at 1000 elements is the call itself: 16M elements says nothing of it
    assert projected_too_slow(big, _measured((1000, 4e-4)), timing.Settings()) == ""
    assert projected_too_slow(big, _measured((1000, 4e-4), (10_000, 6e-4)), timing.Settings()) == ""


def test_projection_from_a_case_that_is_mostly_work_says_from_what():
    big = spiky_case("pyfunc_seed", 16_000_000)
    said = projected_too_slow(big, _measured((1000, 1e-3), (1_000_000, 0.3)), timing.Settings())
    assert said.startswith("projected 4.79 s per call, linearly in size from the 1000000 case's 0.3 s per call, "
                           "less 0.001 s of per-call overhead (the 1000 case)")
    assert projected_too_slow(spiky_case("pyfunc_seed", 2_000_000), _measured((1000, 1e-3), (1_000_000, 0.3)),
                               timing.Settings()) == ""  # 0.6 s a call fits the budget
    assert projected_too_slow(big, _measured((0, 0.0)), timing.Settings()) == ""  # no zero-size division
