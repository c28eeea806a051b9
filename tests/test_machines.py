"""Results named by the machine type that made them, and `recommend` saying whose numbers it uses."""

import pandas as pd
import pytest

from stratbench import across, environment, recommend, results

XEON = {"cpu_model": "Intel(R) Xeon(R) Processor", "cpu_flags": "sse4_2 avx avx2 avx512f avx512_vnni amx_tile",
        "cpu_count": 2, "memory_bytes": 24 * 2**30, "gpus": [], "onednn": True}
EPYC = {"cpu_model": "AMD EPYC 9R14 96-Core Processor", "cpu_flags": "sse4_2 avx avx2 avx512f avx512_vnni",
        "cpu_count": 2, "memory_bytes": 24 * 2**30, "gpus": [], "onednn": True}


def test_the_same_machine_type_gets_the_same_name_and_another_cpu_another():
    assert environment.machine_identity(XEON | {"host": "a"}) == environment.machine_identity(XEON | {"host": "b"})
    assert environment.machine_identity(XEON) == "intel-xeon-amx-2cpu-24gib-nogpu"
    assert environment.machine_identity(EPYC) == "amd-epyc-9r14-avx512_vnni-2cpu-24gib-nogpu"
    for change in ({"cpu_model": "Intel(R) Xeon(R) Platinum 8488C CPU @ 2.40GHz"}, {"cpu_count": 4},
                   {"cpu_flags": "avx2"}, {"memory_bytes": 64 * 2**30}, {"gpus": [{"name": "NVIDIA H200"}]}):
        assert environment.machine_identity(XEON | change) != environment.machine_identity(XEON), change
    assert environment.machine_identity(XEON | {"memory_bytes": None}).endswith("mem-unrecorded-nogpu")


def test_this_machine_is_read_without_tensorflow():
    import sys

    had_tf = "tensorflow" in sys.modules
    mine = environment.this_machine()
    assert mine["cpu_count"] >= 1 and mine["cpu_isa"] and isinstance(mine["gpus"], list)
    assert ("tensorflow" in sys.modules) == had_tf


def _run(root, machine: dict, commit: str, host: str, fastest: str):
    env = machine | {"machine": environment.machine_identity(machine), "host": host, "commit": commit * 8,
                     "tensorflow": "2.21.0"}
    store = results.RunStore(root / env["machine"] / commit, env)
    for strategy, seconds in (("xla", 1e-3 if fastest == "xla" else 2e-3),
                              ("custom_op", 1e-3 if fastest == "custom_op" else 2e-3)):
        store.add({"op": "spiky", "strategy": strategy, "direction": "forward", "device": "CPU", "dtype": "float32",
                   "size": 1000, "shape": "1000", "env": "default", "status": "ok", "median_s": seconds,
                   "iqr_s": 0.0, "noisy": False, "elements_per_s": 1000 / seconds,
                   "key": f"spiky/{strategy}/forward/float32/CPU/default/1000"})


def test_recommend_prefers_this_machines_type_and_says_which_run_and_why(tmp_path):
    _run(tmp_path, XEON, "aaaa", "box1", fastest="custom_op")
    _run(tmp_path, EPYC, "bbbb", "box2", fastest="xla")  # newer, but another CPU
    ask = lambda **kw: recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward", **kw)  # noqa: E731
    text = ask(this_machine=XEON)
    assert "machine intel-xeon-amx-2cpu-24gib-nogpu, host box1" in text and "commit aaaaaaaa" in text
    assert "Why this run: the newest run made on this machine's type" in text and "Use custom_op:" in text
    # on an AMD machine the AMD run answers; --machine picks the other
    assert "Use xla:" in ask(this_machine=EPYC)
    picked = ask(this_machine=EPYC, machine="intel-xeon-amx-2cpu-24gib-nogpu")
    assert "Use custom_op:" in picked and "the newest run of machine intel-xeon" in picked
    assert "Use custom_op:" in ask(this_machine=EPYC, machine="box1")  # the host label works too
    with pytest.raises(recommend.NoResult, match="machines that do: amd-epyc"):
        ask(this_machine=EPYC, machine="nosuch")


def test_recommend_prefers_the_published_run_to_newer_ones_committed_beside_it(tmp_path):
    from stratbench.which_run import FROM_RUN

    _run(tmp_path, XEON, "aaaa", "box1", fastest="custom_op")
    _run(tmp_path, XEON, "bbbb", "box1", fastest="xla")  # newer: an A/A or held-out run
    ask = lambda: recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward", this_machine=XEON)  # noqa: E731
    assert "Use xla:" in ask() and "the newest run made on this machine's type" in ask()
    (tmp_path / "README.md").write_text(FROM_RUN.format("intel-xeon-amx-2cpu-24gib-nogpu/aaaa") + "\n")
    text = ask()
    assert "Use custom_op:" in text and "Why this run: the published run made on this machine's type" in text


def test_recommend_from_another_machine_says_how_it_differs_and_how_to_measure_here(tmp_path):
    _run(tmp_path, EPYC, "bbbb", "box2", fastest="xla")
    here = XEON | {"cpu_count": 4, "onednn": False}
    text = recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward", this_machine=here)
    assert "no stored run from this machine's type (intel-xeon-amx-4cpu-24gib-nogpu)" in text
    assert "vector ISA avx512_vnni (here: amx)" in text and "logical CPUs 2 (here: 4)" in text
    assert "oneDNN on (here: off)" in text
    assert "Measure it here with:\n  stratbench run --ops spiky" in text


def test_a_run_that_did_not_record_memory_still_counts_as_this_type(tmp_path):
    _run(tmp_path, XEON | {"memory_bytes": None}, "aaaa", "box1", fastest="custom_op")
    text = recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward", this_machine=XEON)
    assert "Why this run: the newest run made on this machine's type" in text
    assert "the same type, though that run did not record its memory" in text


def test_report_puts_every_machine_type_side_by_side(tmp_path):
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "results"
    written = across.write_machines(root, tmp_path, log=lambda m: None)
    # each CPU's runs join one type whatever memory the newest recorded: a run made here (the
    # Quickstart's `stratbench run` before the tests, on either VM) adds one and may rename it
    names = set(written["runs"])
    for cpu in ("amd-epyc-avx512_vnni-2cpu-", "intel-xeon-amx-2cpu-"):
        assert len([n for n in names if n.startswith(cpu)]) == 1, names
    text = written["table"].read_text()
    assert "largest: 16000000" in text and "smallest: 1000" in text
    table = pd.read_csv(tmp_path / "machines.csv", index_col=[0, 1, 2, 3])
    row = table.loc[("spiky", "forward_backward", "largest: 16000000", "native")]
    assert all(cell.startswith("1.00x") for cell in row)  # the baseline, on every machine
    assert {p.name for p in written["figures"]} == {"machines.png", "machines.svg"}


def test_cli_machine_prints_this_machines_identity(capsys):
    from stratbench import commands

    assert commands.main(["machine"]) == 0
    assert capsys.readouterr().out.strip() == environment.machine_identity(environment.this_machine())


def test_recommend_prefers_a_run_with_onednn_as_this_machine_has_it(tmp_path):
    _run(tmp_path, XEON | {"onednn": True}, "aaaa", "box1", fastest="custom_op")
    _run(tmp_path, XEON | {"onednn": False}, "bbbb", "box1", fastest="xla")  # the same type, oneDNN off
    on = recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward", this_machine=XEON | {"onednn": True})
    off = recommend.recommend(tmp_path, "spiky", "CPU", "1000", "forward", this_machine=XEON | {"onednn": False})
    assert "Use custom_op:" in on and "with oneDNN on as here" in on
    assert "Use xla:" in off and "with oneDNN off as here" in off


def test_runs_that_did_not_record_memory_join_their_type_in_the_side_by_side(tmp_path):
    _run(tmp_path, XEON | {"memory_bytes": None}, "aaaa", "old", fastest="custom_op")
    _run(tmp_path, XEON | {"started_at": 2e9}, "bbbb", "new", fastest="xla")
    _run(tmp_path, EPYC, "cccc", "amd", fastest="xla")
    runs = across.machine_runs(tmp_path)
    assert list(runs) == ["amd-epyc-9r14-avx512_vnni-2cpu-24gib-nogpu", "intel-xeon-amx-2cpu-24gib-nogpu"]
    assert runs["intel-xeon-amx-2cpu-24gib-nogpu"][0].name == "bbbb"  # the newest of the type


def test_the_side_by_side_takes_the_published_run_of_a_type_before_newer_ones(tmp_path):
    _run(tmp_path, XEON | {"started_at": 1e9}, "aaaa", "box", fastest="custom_op")
    _run(tmp_path, XEON | {"started_at": 2e9}, "bbbb", "box", fastest="xla")  # newer: an A/A or held-out run
    published = tmp_path / "intel-xeon-amx-2cpu-24gib-nogpu" / "aaaa"
    assert across.machine_runs(tmp_path, published=published)["intel-xeon-amx-2cpu-24gib-nogpu"][0].name == "aaaa"
    assert across.machine_runs(tmp_path)["intel-xeon-amx-2cpu-24gib-nogpu"][0].name == "bbbb"


def test_the_side_by_side_takes_a_run_with_the_machines_default_onednn(tmp_path):
    _run(tmp_path, XEON | {"onednn": True, "started_at": 1e9}, "aaaa", "box", fastest="custom_op")
    _run(tmp_path, XEON | {"onednn": False, "started_at": 2e9}, "bbbb", "box", fastest="xla")  # newer, oneDNN off
    assert across.machine_runs(tmp_path)["intel-xeon-amx-2cpu-24gib-nogpu"][0].name == "aaaa"
