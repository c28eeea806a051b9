"""Any machine: environment settings (oneDNN, the CPU allocator) chosen per worker, read
back from TensorFlow, recorded in every row; no missing metric fails a case; the compiled
op builds for the CPU it runs on."""

import json
import pathlib
import re
import shutil
import subprocess

import pandas as pd
import pytest
import tensorflow as tf

from stratbench import commands, environment, memory, recommend, report, results, tables, timing
from stratbench.matrix import Case
from stratbench.run import Options, run
from stratbench.worker import starting
from stratbench.measurement import Rounds
from test_custom_op import python

FAST = timing.Settings(target_sample_s=0.01, rounds=Rounds(max_rounds=6), case_budget_s=20)
# What TensorFlow must do under each forced setting, on any CPU.
EXPECTED = {"plain": (False, "plain"), "bfc": (False, "bfc"), "onednn": (True, "onednn")}


def test_every_setting_measures_and_only_the_plain_allocator_leaves_tf_peaks_empty(tmp_path):
    """A worker of each setting says what TensorFlow does in it, and its case is measured so."""
    cases = [Case("spiky", "native", "forward_backward", "float32", "CPU", (100_000,), env) for env in EXPECTED]
    # the roofline is another test's (test_harness's quick run), and alternating workers too: here
    # what each setting does to TF, in one worker each, the three started side by side
    pools = {name: starting([None], False, name) for name in EXPECTED}
    try:
        table, run_dir = run(Options(cases=cases, out=tmp_path, settings=FAST, verify=False, capabilities=False,
                                     roofline=False, processes=1, workers=pools))
    finally:
        for [worker] in pools.values():
            worker.close()
    rows = {r["env"]: r for _, r in table.iterrows()}
    for name, (onednn, allocator) in EXPECTED.items():
        row = rows[name]
        assert row["status"] == "ok", row["reason"]
        assert row["median_s"] > 0 and row["bytes_per_s"] > 0 and row["peak_rss_bytes"] > 0
        others = [note for note in row["unmeasured"].split("; ") if note and not note.startswith("roofline_fraction")]
        assert bool(row["onednn"]) is onednn and row["cpu_allocator"].split("+")[0] == allocator
        if allocator == "plain":
            assert pd.isna(row["peak_tf_bytes"]) and any("plain CPU allocator keeps no statistics" in n for n in others)
        else:  # y and dx of 100000 float32 at least pass through the allocator
            assert row["peak_tf_bytes"] >= 400_000 and not others
    env = json.loads((run_dir / "environment.json").read_text())
    assert set(env["settings"]) == set(EXPECTED)
    for name, (onednn, allocator) in EXPECTED.items():  # what the setting's worker found TensorFlow doing
        found = env["settings"][name]["effective"]
        assert found["onednn"] is onednn and found["cpu_allocator"].split("+")[0] == allocator
        # the plain allocator is the one without statistics: the cause of the any-machine bug
        assert (found["tf_allocator_stats"] == "yes") is (allocator != "plain"), found["tf_allocator_stats"]
        assert found["variables"]["TF_ENABLE_ONEDNN_OPTS"] == environment.ENV_SETTINGS[name]["TF_ENABLE_ONEDNN_OPTS"]
    assert env["settings"]["bfc"]["effective"]["cpu_allocator"].startswith("bfc")
    assert {"cpu_isa", "onednn", "cpu_allocator", "custom_op_build"} <= env.keys()
    assert env["custom_op_build"]["isa"] in ("avx512", "avx2", "generic")


def test_memory_without_allocator_statistics_is_empty_with_its_reason(monkeypatch):
    def no_stats(device):
        raise ValueError(f"Cannot reset memory stats for device '{device}'")

    monkeypatch.setattr(tf.config.experimental, "reset_memory_stats", no_stats)
    with memory.measure_memory("CPU") as peaks:
        tf.ones([1000]) * 2.0
    assert peaks["peak_tf_bytes"] is None
    assert peaks["unmeasured"].startswith("peak_tf_bytes: TF's plain CPU allocator keeps no statistics")
    assert peaks["peak_rss_bytes"] > 0


def test_cpu_isa_names_the_best_vector_level():
    assert environment.cpu_isa("fpu sse4_2 avx avx2 fma") == "avx2"
    assert environment.cpu_isa("avx2 avx512f avx512_vnni") == "avx512_vnni"
    assert environment.cpu_isa("avx2 avx512f amx_tile amx_bf16") == "amx"
    assert environment.cpu_isa("fpu sse2") == "baseline"


def test_transparent_hugepages_reads_the_kernels_chosen_mode(tmp_path):
    mode = tmp_path / "enabled"
    mode.write_text("always [madvise] never\n")
    assert environment.transparent_hugepages(str(mode)) == "madvise"
    assert environment.transparent_hugepages(str(tmp_path / "absent")) == ""


def test_unknown_setting_is_refused_with_the_accepted_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        commands.main(["run", "--env", "default,fast"])
    assert exit_.value.code == 2
    assert "unknown environment setting 'fast'; accepted: default, plain, bfc, onednn" in capsys.readouterr().err


# --- the compiled op fits the CPU ---------------------------------------------------
def test_build_targets_what_the_cpu_and_compiler_support(monkeypatch):
    from impls.kernels import build

    monkeypatch.delenv("STRATBENCH_CPU_ISA", raising=False)
    monkeypatch.setattr(build, "_cpu_flags", lambda: {"sse2", "sse4_2", "avx"})  # no AVX2 or FMA
    assert build.target_isa("g++") == "generic"
    monkeypatch.setattr(build, "_cpu_flags", lambda: {"avx", "avx2", "fma", "f16c"})
    assert build.target_isa("g++") == "avx2"
    assert build.target_isa("/bin/false") == "generic"  # a compiler that refuses -mavx2
    monkeypatch.setattr(build, "_cpu_flags", lambda: {"avx", "avx2", "fma", "f16c", "avx512f", "avx512vl",
                                                      "avx512dq", "avx512bw"})
    assert build.target_isa("g++") == "avx512"
    monkeypatch.setenv("STRATBENCH_CPU_ISA", "avx2")
    assert build.target_isa("g++") == "avx2"  # asked for: a smaller target than the CPU's best
    monkeypatch.setenv("STRATBENCH_CPU_ISA", "avx10")
    with pytest.raises(build.BuildError, match="not a known target; accepted: avx512, avx2, generic"):
        build.target_isa("g++")
    monkeypatch.setattr(build, "_cpu_flags", lambda: {"sse2"})
    monkeypatch.setenv("STRATBENCH_CPU_ISA", "avx2")
    with pytest.raises(build.BuildError, match="needs CPU features this machine lacks: avx2, f16c, fma"):
        build.target_isa("g++")


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils) to read the library's code")
def test_generic_build_has_no_avx_and_matches_the_reference(tmp_path):
    """The library a CPU without AVX2/FMA gets: not one VEX/EVEX (ymm/zmm) instruction, and
    still correct (held to the reference like the default build)."""
    out = python("""
        from concurrent.futures import ThreadPoolExecutor
        import impls
        from impls.kernels import build
        from stratbench import verify
        with ThreadPoolExecutor(2) as side_by_side:  # two libraries into an empty cache: as fast as the cores allow
            [(path, _), _] = side_by_side.map(lambda op: build.build(build.library_of(impls.spec(op))), ("spiky", "softmax"))
        print(path)
        for op in ("spiky", "softmax"):
            row = verify.verify_one(impls.get(op, "custom_op"))
            assert row["forward"] == row["gradient"] == "pass", row
        print(build.plan(build.library_of(impls.spec("spiky")))["isa"])
    """, env={"STRATBENCH_CPU_ISA": "generic", "STRATBENCH_CACHE": str(tmp_path), "STRATBENCH_CUDA": "0"})
    library, isa = out.split()
    assert isa == "generic"
    code = subprocess.run(["objdump", "-d", library], capture_output=True, text=True, check=True).stdout
    # it did disassemble our kernels: their functions' symbols, not the file name in objdump's header
    assert re.search(r"^[0-9a-f]+ <[^>@]*SpikyRange[^>@]*>:", code, re.MULTILINE)
    wide = [line for line in code.splitlines() if "%ymm" in line or "%zmm" in line]
    assert not wide, wide[:5]


# --- reading several settings back ---------------------------------------------------
def _two_setting_run(tmp_path) -> pathlib.Path:
    rows = []
    for env, scale in (("plain", 8.0), ("bfc", 1.0)):
        for strategy, t in (("native", 2e-3), ("xla", 1e-3)):
            rows.append({"op": "spiky", "strategy": strategy, "direction": "forward_backward", "device": "CPU",
                         "dtype": "float32", "size": 1000, "shape": "1000", "env": env, "status": "ok",
                         "median_s": t * scale, "iqr_s": 0.0, "noisy": False, "bytes_per_s": 16000 / (t * scale),
                         "roofline_bytes_per_s": 16000 / (5e-4 * scale), "elements_per_s": 1000 / (t * scale),
                         "key": f"spiky/{strategy}/forward_backward/float32/CPU/{env}/1000", "commit": "abc",
                         "machine": "m", "onednn": False, "cpu_allocator": env})
    run_dir = tmp_path / "m" / "run"
    store = results.RunStore(run_dir, {"machine": "m", "commit": "abc", "onednn": False, "cpu_allocator": "plain",
                                       "settings": {e: {"effective": {"onednn": False, "cpu_allocator": e}}
                                                    for e in ("plain", "bfc")}})
    for row in rows:
        store.add(row)
    return run_dir


def test_settings_table_compares_each_strategy_and_the_roofline_across_settings(tmp_path):
    table = results.load(_two_setting_run(tmp_path))
    assert tables.headline_setting(table, {"onednn": False, "cpu_allocator": "plain",
                                           "settings": {"plain": {"effective": {"onednn": False,
                                                                                "cpu_allocator": "plain"}}}}) == "plain"
    settings = tables.settings_table(table, "plain")
    cells = {idx[3]: row for idx, row in settings.iterrows()}
    assert cells["native"]["plain"] == "16 ms (1.00x)" and cells["native"]["bfc"] == "2 ms (8.00x)"
    assert cells["memory roofline"]["bfc"] == "500 us (8.00x)"
    written = report.write(table, tmp_path / "report", log=lambda m: None)
    assert written["settings"] is not None
    names = {p.name for p in written["figures"]}
    assert {"throughput_spiky_plain.png", "throughput_spiky_bfc.png", "settings_spiky.png"} <= names


def test_recommend_weighs_strategy_and_setting_together(tmp_path):
    _two_setting_run(tmp_path)
    text = recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward_backward")
    assert "Use xla under bfc: 1 ms" in text and "faster than native under plain" in text
    only_plain = recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward_backward", envs=["plain"])
    assert "Use xla: 8 ms" in only_plain and "bfc" not in only_plain.split("\n", 2)[2]


def test_a_setting_that_did_not_take_effect_is_named():
    assert environment.not_in_effect("onednn", {"onednn": True, "cpu_allocator": "onednn"}) == ""
    assert environment.not_in_effect("default", {"onednn": False, "cpu_allocator": "plain"}) == ""
    said = environment.not_in_effect("bfc", {"onednn": False, "cpu_allocator": "plain"})
    assert "asked for oneDNN off with the bfc allocator" in said and "plain allocator" in said
