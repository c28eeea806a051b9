"""Choosing a strategy: Keras layers, the train_step case, the capability matrix,
`stratbench report` and `stratbench recommend`, on real runs and real checks."""

import json
import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import impls
from impls.keras import OpLayer
from stratbench import (capabilities, commands, correctness, matrix, metrics, publishing, recommend, report, results,
                        savedmodel, tables, timing, which_run)
from stratbench.testing import usable

ROOT = pathlib.Path(__file__).resolve().parents[1]
# A real default `stratbench run` of commit 042ace3, committed by an earlier session.
STORED_RUN = ROOT / "results" / "intel-xeon-amx-2cpu-mem-unrecorded-nogpu" / "042ace3415-f9b83230"


# --- Keras layers -----------------------------------------------------------------
@pytest.mark.parametrize("op,strategy", [(op, s) for op in impls.OPS for s in impls.strategies_for(op)
                                         if s in ("native", "xla", "pyfunc", "custom_op")])
def test_layer_matches_the_op_and_says_if_xla_can_compile_it(op, strategy):
    impl = usable(op, strategy)
    layer = OpLayer(op, strategy)
    x = tf.constant([[0.2, 0.7, 1.2, 1.7]])
    np.testing.assert_array_equal(layer(x).numpy(), correctness.call(impl, x).numpy())
    assert layer.supports_jit is impls.get(op, strategy).xla_compatible
    again = OpLayer.from_config(layer.get_config())
    assert (again.op, again.strategy) == (op, strategy)


def test_layer_runs_along_its_axis_and_rejects_what_does_not_exist():
    x = tf.random.normal([3, 5])
    y = OpLayer("softmax", "graph", axis=0)(x)
    np.testing.assert_allclose(y.numpy().sum(axis=0), np.ones(5), rtol=1e-6)
    with pytest.raises(ValueError, match="unknown op 'relu'"):
        OpLayer("relu")
    with pytest.raises(ValueError, match="strategies for softmax_nosg"):
        OpLayer("softmax_nosg", "builtin")


def test_train_step_trains_the_mlp():
    case = matrix.Case("spiky", "graph", matrix.TRAIN_STEP, "float32", "CPU", (128,))
    features, labels = timing.make_inputs(case)
    step = timing.step_function(impls.get("spiky", "graph"), case)
    losses = [float(step(features, labels)) for _ in range(30)]
    assert losses[-1] < losses[0]  # the same batch 30 times: Adam must fit it
    assert features.shape == (128, impls.keras.MLP_FEATURES) and labels.dtype == tf.int32


# --- the capability matrix -----------------------------------------------------------
@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Real capability cells of spiky under native and pyfunc, SavedModels reloaded by a fresh process."""
    scratch = tmp_path_factory.mktemp("capabilities")
    pairs = {("spiky", strategy): capabilities.check_pair("spiky", strategy, str(scratch)) for strategy in ("native", "pyfunc")}
    reloaded = savedmodel.reload_in_fresh_process([cells.pop("_savedmodel_job") for cells in pairs.values()])
    for pair, cells in pairs.items():
        cells["savedmodel"] = capabilities.dataclasses.asdict(reloaded[pair])
    return {f"{op}/{strategy}": cells for (op, strategy), cells in pairs.items()}


def test_capabilities_are_found_by_exercising_them(checked):
    native, pyfunc = checked["spiky/native"], checked["spiky/pyfunc"]
    assert set(native) == set(capabilities.CHECKS)
    for name in ("forward", "gradient", "eager", "tf_function", "jit_compile", "savedmodel", "keras", "threads"):
        assert native[name]["status"] == "yes", (name, native[name])
    assert pyfunc["jit_compile"]["status"] == "no" and "PyFunc" in pyfunc["jit_compile"]["detail"]
    assert pyfunc["savedmodel"]["status"] == "no" and "callback" in pyfunc["savedmodel"]["detail"]
    assert pyfunc["keras"]["status"] == "yes"  # .keras rebuilds the layer from Python: it survives
    assert native["dtypes"]["detail"] == "float16,bfloat16,float32,float64"
    expected_gpu = "yes" if tf.config.list_physical_devices("GPU") else "skipped"
    assert native["gpu"]["status"] == expected_gpu
    table = capabilities.table(checked)
    assert table.loc[("spiky", "pyfunc"), "savedmodel"] == "no"
    assert table.loc[("spiky", "native"), "thread_scaling"].endswith("x")


# --- report --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stored_report(tmp_path_factory):
    """The report of the stored real run, written once for the tests that read it (10 s):
    (where, what report.write returned, the run's table, environment, capabilities)."""
    table, env, caps, default_out = report.source_of(STORED_RUN)
    assert default_out == STORED_RUN / "report"
    out = tmp_path_factory.mktemp("report")
    return out, report.write(table, out, env, caps, log=lambda m: None), table, env, caps


def test_report_writes_figures_and_tables_from_a_real_run(stored_report):
    out, written, table, _, _ = stored_report
    names = {p.name for p in written["figures"]}
    for op in set(table["op"]):
        for kind in ("throughput", "speedup", "memory", "compile"):
            assert {f"{kind}_{op}.png", f"{kind}_{op}.svg"} <= names
    assert all(p.stat().st_size > 1000 for p in written["figures"])
    numbers = pd.read_csv(out / "tables" / "spiky_backward.csv", index_col=[0, 1])
    run = table[(table["op"] == "spiky") & (table["direction"] == "backward") & (table["status"] == "ok")]
    xla = run[(run["strategy"] == "xla") & (run["size"] == 16_000_000)].iloc[0]
    native = run[(run["strategy"] == "native") & (run["size"] == 16_000_000)].iloc[0]
    assert numbers.loc[(16000000, "speedup over native"), "xla"] == pytest.approx(native.median_s / xla.median_s)
    text = (out / "tables" / "spiky_backward.md").read_text()
    assert "too_slow" in text  # pyfunc_seed at 16M is recorded, not dropped


def test_headline_marks_the_fastest_and_the_noisy():
    table = results.load(STORED_RUN)
    head = tables.headline(table)
    row = head.loc[("spiky", "backward", "16000000")]
    largest = table[(table["op"] == "spiky") & (table["size"] == 16_000_000) & (table["status"] == "ok")]
    backward = largest[largest["direction"] == "backward"].set_index("strategy")["median_s"]
    assert row["native"].startswith("1.00x")
    assert row["xla"].startswith(f"{backward['native'] / backward['xla']:.2f}x")
    assert row[backward.idxmin()].split("x")[1].startswith("*")
    shown = tables.comparison(table)
    for r in largest.itertuples():  # this run kept no intervals: noisy is its IQR over 10% of the median
        assert "~" not in head.loc[("spiky", r.direction, "16000000"), r.strategy]  # speedups alone: no time
        cell = shown.loc[("spiky", r.direction, "CPU", "float32", "16000000"), r.strategy]
        assert cell.endswith("~") == metrics.is_noisy_row(r), cell


def test_publish_rewrites_only_the_marked_block(tmp_path, stored_report):
    _, written, table, env, caps = stored_report
    top = tmp_path / "README.md"
    top.write_text(f"# title\n\nbefore\n\n{publishing.README_BEGIN}\nold\n{publishing.README_END}\n\nafter\n")
    publishing.publish(STORED_RUN, written, table, env, caps, tmp_path / "results.md", top, command="test")
    text = top.read_text()
    assert text.startswith("# title\n\nbefore") and text.endswith("after\n") and "old" not in text
    assert tables.headline(table).loc[("spiky", "backward", "16000000"), "xla"] in text
    assert "](headline/relative_spiky.png)" in text  # copied beside results.md: a link that outlives the run
    assert (tmp_path / "headline" / "relative_spiky.png").stat().st_size > 1000
    assert "## Environment" in (tmp_path / "results.md").read_text()
    top.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        publishing.publish(STORED_RUN, written, table, env, caps, tmp_path / "results.md", top, command="test")


def test_published_noise_check_is_one_made_with_the_shipped_rule(tmp_path):
    """Of this CPU's noise files, the one made with compare's shipped rule wins over a newer
    one made with another threshold; another CPU's files are never quoted."""
    from stratbench import decision
    row = {"rerun": 0, "op": "spiky", "strategy": "xla", "direction": "forward", "shape": "16000000",
           "change": "A again", "ratio": 1.0, "half_width": 0.04, "verdict": decision.UNCHANGED,
           "pooled_ratio": None, "cpu_model": "CPU X"}
    shipped = pd.DataFrame([row | decision.recorded_rule(decision.THRESHOLD)])
    shipped.to_csv(tmp_path / "b_shipped.csv", index=False)
    pd.DataFrame([row | decision.recorded_rule(decision.THRESHOLD + 0.01)]).to_csv(tmp_path / "c_other_rule.csv", index=False)
    pd.DataFrame([row | decision.recorded_rule(decision.THRESHOLD) | {"cpu_model": "CPU Y"}]).to_csv(
        tmp_path / "d_other_cpu.csv", index=False)
    assert "from `b_shipped.csv`" in publishing.noise_check(tmp_path, {"cpu_model": "CPU X"})
    assert "from `d_other_cpu.csv`" in publishing.noise_check(tmp_path, {"cpu_model": "CPU Y"})
    assert publishing.noise_check(tmp_path, {"cpu_model": "CPU Z"}) == ""


# --- recommend -----------------------------------------------------------------------
def test_recommend_picks_the_fastest_and_respects_needs(tmp_path, checked):
    run = tmp_path / "vm" / "run"
    shutil.copytree(STORED_RUN, run, ignore=shutil.ignore_patterns("report"))
    text = recommend.recommend(tmp_path, "spiky", "CPU", "16000000", "backward")
    assert next(line for line in text.splitlines() if line.startswith("Use ")).startswith("Use xla:")
    # with capabilities where native survives SavedModel and pyfunc does not
    (run / capabilities.FILE).write_text(json.dumps({"checks": capabilities.CHECKS, "pairs": checked}))
    text = recommend.recommend(tmp_path, "spiky", "CPU", "16000000", "backward", ["savedmodel"])
    assert "Use native:" in text and "gives up xla" in text
    with pytest.raises(recommend.NoResult, match="stratbench run --ops spiky"):
        recommend.recommend(tmp_path, "spiky", "CPU", "123", "backward")
    with pytest.raises(ValueError, match="accepted: xla"):
        recommend.parse_needs("savedmodel,warp")
    assert recommend.parse_needs("xla,keras") == ["jit_compile", "keras"]


def test_cli_report_and_recommend_explain_bad_input(tmp_path, capsys):
    assert commands.main(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert commands.main(["recommend", "--op", "spiky", "--size", "77", "--results", str(tmp_path)]) == 1
    assert "Measure it with" in capsys.readouterr().err


def test_recommend_ranks_and_constrains_by_memory(tmp_path):
    store = results.RunStore(tmp_path / "m" / "run", {"machine": "m", "commit": "abc"})
    for strategy, seconds, kept in (("xla", 1e-3, 12_000), ("custom_op", 2e-3, 4_000), ("native", 3e-3, 17_000),
                                    ("pyfunc", 9e-3, None)):
        store.add({"op": "spiky", "strategy": strategy, "direction": "forward_backward", "device": "CPU",
                   "dtype": "float32", "size": 1000, "shape": "1000", "env": "default", "status": "ok",
                   "median_s": seconds, "iqr_s": 0.0, "noisy": False, "elements_per_s": 1000 / seconds,
                   "kept_for_backward_bytes": kept, "peak_tf_bytes": 20_000,
                   "key": f"spiky/{strategy}/forward_backward/float32/CPU/default/1000"})
    ask = lambda **kw: recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward_backward", **kw)  # noqa: E731
    assert "Use xla:" in ask() and "12 bytes per element kept for the backward" in ask()
    by_memory = ask(by="memory")
    assert "Use custom_op:" in by_memory and "ranked by memory" in by_memory
    assert by_memory.index("native: 17 bytes") < by_memory.index("pyfunc: memory not measured")
    capped = ask(max_memory_per_element=8)
    assert "Use custom_op:" in capped and "gives up xla" in capped and "has 12" in capped
    assert "pyfunc (lacks memory within 8 bytes per element (not measured))" in capped
    assert "No measured strategy meets every need" in ask(max_memory_per_element=1)
    with pytest.raises(ValueError, match="accepted: time, memory"):
        ask(by="size")


def test_every_strategy_has_a_colour_however_many_there_are():
    from stratbench import plotting

    registered = [plotting.color(s) for s in impls.STRATEGIES]
    assert len(set(registered)) == len(registered)  # told apart in one figure
    own = [plotting.color(f"my_strategy_{i}") for i in range(30)]  # past any palette: no KeyError
    assert plotting.color("my_strategy_3") == own[3]  # and the same in every figure


# --- what recommend and the tables print never contradicts itself ----------------------
# a committed run whose figures these tests know (it was the published run until 2026-12-07)
AMD_RUN = ROOT / "results" / "amd-epyc-avx512_vnni-2cpu-24gib-nogpu" / "c695584c3a-38a74e55"


def _tie_run(root: pathlib.Path) -> None:
    """A run where xla has the lower median but custom_op's per-round ratio to it is below 1
    (0.97-1.02: a tie within 5%), native 3x slower; rows hold NaN (roofline_fraction of one
    strategy only, no call floor), as real rows do."""
    times = {"xla": [1.0] * 11 + [2.0] * 10,
             "custom_op": [1.02] * 6 + [0.97] * 5 + [1.94] * 10,
             "native": [3.0] * 11 + [6.0] * 10}
    store = results.RunStore(root / "m" / "run", {"machine": "m", "commit": "c" * 40, "host": "h"})
    samples = []
    for strategy, seconds in times.items():
        key = f"spiky/{strategy}/forward/float32/CPU/default/1000"
        samples += [{"key": key, "process": 0, "round": i, "seconds": s * 1e-3, "calls": 1, "steal": None}
                    for i, s in enumerate(seconds)]
        store.add({"key": key, "op": "spiky", "strategy": strategy, "direction": "forward", "device": "CPU",
                   "dtype": "float32", "shape": "1000", "size": 1000, "env": "default", "status": "ok",
                   "median_s": float(np.median(seconds)) * 1e-3, "iqr_s": 1e-4, "samples": len(seconds),
                   "elements_per_s": 1e6 / float(np.median(seconds)),
                   "roofline_fraction": 0.5 if strategy == "native" else None})
    store.add_samples(pd.DataFrame(samples))


def _faster_ratios(text: str) -> list[float]:
    import re

    return [float(m) for m in re.findall(r"(\d+\.\d+)x (?:\[[^\]]*\] )?faster", text)]


def test_recommend_words_a_tie_as_a_tie_on_every_line_even_with_nan_in_the_rows(tmp_path):
    """Rows holding NaN never equal themselves: the tie is found by key, and custom_op's own line
    says tie, never 'beyond'; its ratio below 1 is not 'faster'."""
    _tie_run(tmp_path)
    table = results.load(tmp_path / "m" / "run")
    assert table["roofline_fraction"].isna().any()  # the rows do hold NaN
    text = recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward")
    assert "Use xla:" in text and "It ties custom_op" in text
    custom_op = [line for line in text.splitlines() if "custom_op (" in line]
    assert custom_op and all("tie" in line and "beyond" not in line for line in custom_op), custom_op
    assert not [line for line in text.splitlines() if "tie" in line and "beyond" in line]
    assert "faster than native" in text and all(r >= 1 for r in _faster_ratios(text)), _faster_ratios(text)
    # ranked by memory (none measured here) the same verdicts, worded the same way
    by_memory = recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward", by="memory")
    assert not [line for line in by_memory.splitlines() if "tie" in line and "beyond" in line]
    assert all(r >= 1 for r in _faster_ratios(by_memory))


def test_noisy_is_defined_once_and_is_both_true_and_false_on_a_stored_run():
    table = results.load(AMD_RUN)
    ok = table[table["status"] == "ok"]
    noisy = ok.apply(metrics.is_noisy_row, axis=1)
    assert noisy.any() and not noisy.all()
    pick = lambda **kw: ok[np.logical_and.reduce([ok[k] == v for k, v in kw.items()])].iloc[0]  # noqa: E731
    wide = pick(op="gelu", strategy="pyfunc", direction="forward", size=16_000_000)  # [88.7 ms, 470 ms] around 93.7
    narrow = pick(op="spiky", strategy="xla", direction="forward", size=16_000_000)
    assert metrics.is_noisy_row(wide) and not metrics.is_noisy_row(narrow)
    assert metrics.is_noisy(1.0, iqr_s=0.2) and not metrics.is_noisy(1.0, iqr_s=0.05)  # results without an interval
    assert metrics.is_noisy(1.0, 0.05, 0.8, 1.3) and not metrics.is_noisy(1.0, 0.5, 0.95, 1.05)  # the interval decides
    assert f"±{metrics.NOISY_HALF_WIDTH:.0%}" in metrics.MARKS_LEGEND
    # a table that shows times marks `~` exactly where is_noisy_row says so; the headline shows
    # speedups alone, each with its interval: no `~`, and its legend does not offer one
    shown = tables.comparison(table)
    for _, r in ok.iterrows():
        cell = shown.loc[(r["op"], r["direction"], r["device"], r["dtype"], r["shape"]), r["strategy"]]
        assert ("~" in cell) == metrics.is_noisy_row(r), (cell, r["key"])
    assert not any("~" in cell for cell in tables.headline(table).values.ravel())
    assert "`~`" not in metrics.SPEEDUP_MARKS_LEGEND and "`~`" in metrics.MARKS_LEGEND


def test_recommend_says_whose_run_first_and_when_it_is_call_bound(tmp_path):
    env = json.loads((AMD_RUN / "environment.json").read_text())
    text = recommend.recommend(AMD_RUN, "spiky", "CPU", "1000", "forward", this_machine=env)
    first = text.splitlines()[0]
    assert first.startswith("Answered from a run committed to this repository, not the published reference run")
    assert "made 2026-12-03" in first
    assert "amd-epyc-avx512_vnni-2cpu-24gib-nogpu" in first and "commit c695584c" in first
    published = which_run.published_run(ROOT / "results" / "README.md")
    published_env = json.loads((published / "environment.json").read_text())
    assert recommend.recommend(published, "spiky", "CPU", "1000", "forward", this_machine=published_env).startswith(
        "Answered from the published reference run")
    assert "call-bound" in text and "stratbench in-model --ops spiky --directions forward --sizes 1000" in text
    # oneDNN's allocator counted none of these small tensors (0 recorded): not measured, never 0 bytes
    assert "memory not measured" in text and "0 bytes" not in text
    assert "call-bound" not in recommend.recommend(AMD_RUN, "spiky", "CPU", "16000000", "forward",
                                                   this_machine=env)
    # a run made here and not committed is the user's own
    _tie_run(tmp_path)
    assert recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward").startswith("Answered from your own run")


def test_tables_print_not_measured_where_the_allocator_counted_nothing():
    table = results.load(AMD_RUN)
    _, text = tables.metric_table(table, "spiky", "forward")
    peaks = text.loc[("1000", "TF allocator peak (MB)")]
    assert (peaks == "not measured").all(), peaks
    _, text = tables.metric_table(table, "spiky", "forward_backward")
    assert (text.loc[("1000", "kept for backward (bytes/element)")] == "not measured").all()
    assert any("peak_tf_bytes: TF's allocator counted none" in n for n in tables.unmeasured_notes(table))
