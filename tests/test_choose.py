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
from stratbench import capabilities, cli, correctness, matrix, publishing, recommend, report, results, tables, timing
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
    reloaded = capabilities.reload_in_fresh_process([cells.pop("_savedmodel_job") for cells in pairs.values()])
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
    for r in largest.itertuples():
        assert head.loc[("spiky", r.direction, "16000000"), r.strategy].endswith("~") == bool(r.noisy)


def test_publish_rewrites_only_the_marked_block(tmp_path, stored_report):
    _, written, table, env, caps = stored_report
    top = tmp_path / "README.md"
    top.write_text(f"# title\n\nbefore\n\n{publishing.README_BEGIN}\nold\n{publishing.README_END}\n\nafter\n")
    publishing.publish(STORED_RUN, written, table, env, caps, tmp_path / "results.md", top, command="test")
    text = top.read_text()
    assert text.startswith("# title\n\nbefore") and text.endswith("after\n") and "old" not in text
    assert tables.headline(table).loc[("spiky", "backward", "16000000"), "xla"] in text
    assert "throughput_spiky.png" in text
    assert "## Environment" in (tmp_path / "results.md").read_text()
    top.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        publishing.publish(STORED_RUN, written, table, env, caps, tmp_path / "results.md", top, command="test")


def test_published_noise_check_is_one_made_with_the_shipped_rule(tmp_path):
    """Of this CPU's noise files, the one made with compare's shipped rule wins over a newer
    one made with another threshold; another CPU's files are never quoted."""
    from stratbench import compare
    row = {"rerun": 0, "op": "spiky", "strategy": "xla", "direction": "forward", "shape": "16000000",
           "change": "A again", "ratio": 1.0, "half_width": 0.04, "verdict": compare.UNCHANGED,
           "pooled_ratio": None, "cpu_model": "CPU X"}
    shipped = pd.DataFrame([row | compare.recorded_rule(compare.THRESHOLD)])
    shipped.to_csv(tmp_path / "b_shipped.csv", index=False)
    pd.DataFrame([row | compare.recorded_rule(compare.THRESHOLD + 0.01)]).to_csv(tmp_path / "c_other_rule.csv", index=False)
    pd.DataFrame([row | compare.recorded_rule(compare.THRESHOLD) | {"cpu_model": "CPU Y"}]).to_csv(
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
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["recommend", "--op", "spiky", "--size", "77", "--results", str(tmp_path)]) == 1
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
    from stratbench import figures

    registered = [figures.color(s) for s in impls.STRATEGIES]
    assert len(set(registered)) == len(registered)  # told apart in one figure
    own = [figures.color(f"my_strategy_{i}") for i in range(30)]  # past any palette: no KeyError
    assert figures.color("my_strategy_3") == own[3]  # and the same in every figure
