"""A user's own op, from a file outside the package (examples/silu_op.py, the README's worked
example), through every command with no edit to stratbench: verify, run (its workers,
its capability matrix), report, recommend, the pytest-benchmark suite and asv."""

import importlib
import pathlib
import sys

import pytest

import impls
from impls.ops import ENV_VARIABLE, OpModuleError
from impls.strategies import ENV_VARIABLE as STRATEGY_VARIABLE
from stratbench import commands, recommend, results, worker

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "silu_op.py")
STRATEGY_EXAMPLE = str(ROOT / "examples" / "recompute_strategy.py")


@pytest.fixture
def with_example(monkeypatch):
    monkeypatch.setenv(ENV_VARIABLE, EXAMPLE)


def test_the_registry_finds_it_and_offers_what_its_spec_gives(with_example):
    assert "silu" in impls.OPS
    assert impls.strategies_for("silu") == ("pyfunc_seed", "pyfunc", "native", "graph", "xla", "builtin")


def test_a_broken_op_module_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV_VARIABLE, "")
    empty = tmp_path / "nothing.py"
    empty.write_text("x = 1\n")
    twice = tmp_path / "twice.py"
    twice.write_text(pathlib.Path(EXAMPLE).read_text().replace('name="silu"', 'name="spiky"'))
    for module, said in ((str(empty), "must define SPEC"), (str(twice), "'spiky' of .* is already declared"),
                         ("no_such_module_here", "cannot import op module 'no_such_module_here'")):
        monkeypatch.setenv(ENV_VARIABLE, module)
        with pytest.raises(OpModuleError, match=said):
            impls.OPS
    monkeypatch.setenv(ENV_VARIABLE, "")
    assert commands.main(["verify", "--op-module", str(tmp_path / "missing.py")]) == 2
    assert "does not exist" in capsys.readouterr().err
    monkeypatch.delenv(ENV_VARIABLE)


def test_every_command_measures_it(tmp_path, monkeypatch, capsys):
    """verify and run as given on the command line (the run's workers import the module again,
    and a user's strategy module beside it), then report and recommend from the stored run."""
    for variable in (ENV_VARIABLE, STRATEGY_VARIABLE):
        monkeypatch.setenv(variable, "")  # what --op-module and --strategy-module add to: restored afterwards
    assert commands.main(["verify", "--op-module", EXAMPLE, "--ops", "silu", "--strategies", "native,pyfunc_seed"]) == 0
    assert "every available strategy matches the reference" in capsys.readouterr().out
    started, start = [], worker.Worker.__init__  # worker processes: capabilities are checked in a measuring one

    def counted(self, *args, **kwargs):
        started.append(self)
        start(self, *args, **kwargs)

    monkeypatch.setattr(worker.Worker, "__init__", counted)
    assert commands.main(["run", "--op-module", EXAMPLE, "--strategy-module", STRATEGY_EXAMPLE, "--ops", "silu",
                     "--strategies", "native,xla,recompute", "--quick", "--directions", "forward,train_step",
                     "--no-roofline", "--out", str(tmp_path), "--machine", "m"]) == 0
    [run_dir] = (tmp_path / "m").iterdir()
    table = results.load(run_dir)
    assert len(table) == 9 and set(table["status"]) == {"ok"}, table[["key", "status", "reason"]]
    kernels = table[table["direction"] == "forward"]  # train_step moves no bytes of its own: no roofline anyway
    assert table["roofline_fraction"].isna().all() and kernels["unmeasured"].str.contains("--no-roofline").all()
    capabilities = (run_dir / "capabilities.json").read_text()
    assert len(started) == 2, started  # --processes 2
    assert "silu/xla" in capabilities and "silu/recompute" in capabilities
    assert (run_dir / "report" / "throughput_silu.png").stat().st_size > 1000
    monkeypatch.setenv(ENV_VARIABLE, EXAMPLE)
    text = recommend.recommend(tmp_path, "silu", "CPU", "1000", "forward")
    assert "Use " in text


def test_the_benchmark_suites_take_it_from_the_environment(with_example, benchmark_suite_run):
    sys.modules.pop("benchmarks.bench_ops", None)  # imported again, as asv's process imports it with the variable set
    sys.path.insert(0, str(ROOT))
    try:
        suite = importlib.import_module("benchmarks.bench_ops")
    finally:
        sys.path.remove(str(ROOT))
        sys.modules.pop("benchmarks.bench_ops", None)  # no other test sees silu's classes
    assert hasattr(suite, "SiluTime") and hasattr(suite, "SiluTracked")
    assert "silu/builtin/forward" in benchmark_suite_run[0] and " passed" in benchmark_suite_run[0]


def test_a_failing_op_is_shown_where_it_goes_wrong(monkeypatch):
    monkeypatch.setenv(ENV_VARIABLE, str(ROOT / "tests" / "fixtures" / "naive_squareplus_op.py"))
    try:
        from stratbench import verify

        row = verify.verify_one(impls.get("squareplus", "native"), ["float32"])
    finally:
        monkeypatch.delenv(ENV_VARIABLE)
    assert row["forward"] == "FAIL"
    # the input, the dtype, the direction and mode, the reference's value and what the strategy returned
    assert "float32 forward (eager) worst at x=1e+20 (element 5): reference 1e+20, got inf" in row["note"], row["note"]
