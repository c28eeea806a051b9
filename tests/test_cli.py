"""`stratbench verify` and the project's own entry points."""

import argparse
import pathlib
import re

import pandas as pd
import pytest

import impls
from stratbench import commands, verify
from stratbench.commands import options

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_verify_passes_and_prints_the_table(capsys):
    assert commands.main(["verify", "--ops", "spiky", "--strategies", "native,xla,custom_op"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"spiky\s+native\s+pass\s+pass", out)
    assert re.search(r"spiky\s+custom_op\s+pass\s+pass", out)


def test_verify_fails_when_nothing_is_available():
    unavailable = {"op": "spiky", "strategy": "custom_op", "forward": "unavailable", "gradient": "unavailable"}
    assert not verify.passed(pd.DataFrame([unavailable]))
    assert not verify.passed(pd.DataFrame(columns=["forward", "gradient"]))


def test_verify_refuses_a_selection_with_nothing_in_it(capsys):
    assert commands.main(["verify", "--ops", "softmax_nosg", "--strategies", "custom_op"]) == 2
    assert "no strategy" in capsys.readouterr().err


def test_verify_reports_a_broken_impl_as_failed():
    native = impls.get("spiky", "native")
    broken = impls.Impl(**{**native.__dict__, "fn": lambda x: x})
    row = verify.verify_one(broken)
    assert row["forward"] == "FAIL"
    assert not verify.passed(pd.DataFrame([row]))


def test_verify_reports_a_raising_impl_as_failed():
    native = impls.get("softmax", "native")

    def boom(x, axis=-1):
        raise RuntimeError("kernel exploded")

    row = verify.verify_one(impls.Impl(**{**native.__dict__, "fn": boom}))
    assert row["forward"] == "FAIL" and "kernel exploded" in row["note"]


def test_unknown_names_are_refused_with_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        commands.main(["verify", "--ops", "relu"])
    assert exit_.value.code == 2
    assert "accepted: " + ", ".join(impls.OPS) in capsys.readouterr().err


@pytest.mark.parametrize("reruns", ["0", "-2", "2.5", "many"])
def test_noise_refuses_a_rerun_count_that_is_not_a_whole_number_of_at_least_one(capsys, reruns):
    with pytest.raises(SystemExit) as exit_:
        commands.main(["noise", "--reruns", reruns])
    assert exit_.value.code == 2
    assert "--reruns: must be a whole number of at least 1, got" in capsys.readouterr().err


def test_help_explains_each_command(capsys):
    with pytest.raises(SystemExit):
        commands.main(["verify", "--help"])
    assert "reference" in capsys.readouterr().out


def test_ci_runs_the_readme_quickstart():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    quickstart = [line for line in block.strip().splitlines() if line.strip()]
    assert len(quickstart) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    for command in quickstart:
        assert command in ci


def test_each_measuring_command_keeps_its_own_defaults():
    # argparse parents share their argument objects: one command's set_defaults once gave
    # `stratbench run` compare's 0.1 s samples and 3 s group budget
    parser = commands.build_parser()
    run = parser.parse_args(["run"])
    compare = parser.parse_args(["compare", "main", "HEAD"])
    noise = parser.parse_args(["noise"])
    assert (run.sample_time, run.group_budget, run.case_budget) == (0.02, 8.0, 30.0)
    assert (compare.sample_time, compare.group_budget, compare.case_budget) == (0.1, 3.0, 10.0)
    assert (noise.sample_time, noise.group_budget, noise.case_budget) == (0.1, 3.0, 10.0)
    assert options.settings(run).describe() != options.settings(compare).describe()
    # noise checks compare's detector, so both judge with the same rule
    assert (noise.threshold, noise.confirm_budget) == (compare.threshold, compare.confirm_budget) == (0.07, 12.0)


def test_every_help_text_reads_as_written():
    """Descriptions are not %-formatted by argparse (help strings are): a '%%' there shows as is."""
    parser = commands.build_parser()
    [subcommands] = [a for a in parser._actions if a.dest == "command"]
    for name, sub in subcommands.choices.items():
        assert "%%" not in sub.format_help(), name


def _subcommands():
    parser = commands.build_parser()
    [subcommands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subcommands.choices


# How an option or command was chosen (dates, machines, past runs' figures) belongs in the README
HISTORY = re.compile(r"\b20\d\d-\d\d-\d\d\b|\bmeasured on\b|\bVMs?\b|\bA/A (compares|interval) (was|of)\b|"
                     r"\bin \d+(-\d+)? of \d+ (re)?runs\b|\bwas ±", re.I)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_option_has_help_of_at_most_two_lines_without_history(command):
    """Each option's help, as argparse formats it for a 100-column terminal (the help column), is
    there and takes at most two lines; what the option does and its default, not how it was chosen."""
    formatter = argparse.HelpFormatter("stratbench", width=100 - 2)  # argparse keeps 2 of the terminal's free
    width = formatter._width - formatter._max_help_position  # the help column's width
    for action in _subcommands()[command]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"{command} {name} has no help"
        text = formatter._expand_help(action)
        lines = formatter._split_lines(text, width)
        assert len(lines) <= 2, f"{command} {name}: {len(lines)} lines: {text}"
        assert not HISTORY.search(text), f"{command} {name} tells history: {text}"


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_descriptions_hold_no_measurement_history(command):
    description = _subcommands()[command].description or ""
    assert not HISTORY.search(description), f"{command}: {HISTORY.search(description)[0]!r} in {description}"


# --- one convention: plural and singular flags, --out a folder, a dry run ---------------------
def test_plural_and_singular_flags_are_the_same_option():
    parser = commands.build_parser()
    singular = parser.parse_args(["run", "--op", "spiky", "--strategy", "xla", "--direction", "forward", "--dtype",
                                  "float16", "--device", "CPU", "--size", "1e3", "--shape", "8x8"])
    plural = parser.parse_args(["run", "--ops", "spiky", "--strategies", "xla", "--directions", "forward", "--dtypes",
                                "float16", "--devices", "CPU", "--sizes", "1e3", "--shapes", "8x8"])
    assert vars(singular) == vars(plural)
    assert singular.ops == ["spiky"] and singular.shapes == [(8, 8)]
    assert parser.parse_args(["verify", "--op", "gelu", "--strategy", "xla"]).strategies == ["xla"]
    in_model = parser.parse_args(["in-model", "--op", "gelu", "--direction", "forward", "--size", "1e3"])
    assert (in_model.ops, in_model.directions, in_model.sizes) == (["gelu"], ["forward"], [(1000,)])
    noise = parser.parse_args(["noise", "--ops", "gelu", "--strategies", "native", "--directions", "backward",
                               "--sizes", "1e4"])
    assert (noise.op, noise.strategy, noise.direction, noise.size) == ("gelu", "native", "backward", (10000,))
    recommend = parser.parse_args(["recommend", "--ops", "spiky", "--sizes", "1e3", "--devices", "GPU",
                                   "--dtypes", "float16", "--directions", "forward"])
    assert (recommend.op, recommend.device, recommend.dtype, recommend.direction) == ("spiky", "GPU", "float16", "forward")


@pytest.mark.parametrize("argv, said", [
    (["noise", "--ops", "spiky,gelu"], "argument --op/--ops: takes one op, got 2 (spiky, gelu): run the command once per op"),
    (["noise", "--strategies", "xla,native"], "takes one strategy, got 2 (xla, native)"),
    (["noise", "--sizes", "1e3,1e4"], "takes one size, got 2 (1e3,1e4)"),
    (["recommend", "--op", "spiky", "--size", "1e3", "--devices", "CPU,GPU"], "takes one device, got 2 (CPU, GPU)"),
    (["noise", "--op", "relu"], "unknown op 'relu'; accepted: "),
])
def test_commands_of_one_case_refuse_a_list_saying_so(argv, said, capsys):
    with pytest.raises(SystemExit) as exit_:
        commands.main(argv)
    assert exit_.value.code == 2
    assert said in capsys.readouterr().err


def test_noise_and_in_model_write_into_the_out_folder(tmp_path, capsys):
    from stratbench import matrix, publishing
    from stratbench.commands import noise

    case = matrix.Case("spiky", "xla", "forward", "float32", "CPU", (16_000_000,))
    csv, samples = noise.paths(tmp_path / "noise", case)
    assert (csv.name, samples.name) == ("noise_spiky_xla_forward_16e6.csv", "noise_spiky_xla_forward_16e6.samples.csv.gz")
    other = matrix.Case("softmax", "custom_op", "backward", "float32", "CPU", (4096, 2048), "onednn")
    assert noise.paths(tmp_path, other)[0].name == "noise_softmax_custom_op_backward_4096x2048_onednn.csv"
    assert [matrix.size_label((n,)) for n in (1000, 10000, 16_000_000, 1_600_000, 999, 12_345_000)] == \
        ["1e3", "1e4", "16e6", "16e5", "999", "12345e3"]
    # what `report --publish` reads under results/noise: the files noise writes there
    csv.parent.mkdir()
    pd.DataFrame([{"rerun": 0, "change": "A again", "ratio": 1.0, "half_width": 0.05, "verdict": "unchanged",
                   "cpu_model": "CPU X", "op": "spiky", "strategy": "xla", "direction": "forward",
                   "shape": "16000000"}]).to_csv(csv, index=False)
    assert f"from `{csv.name}`" in publishing.noise_check(csv.parent, {"cpu_model": "CPU X"})
    # a CSV path, as --out took before, is refused before anything is measured
    for command in ("noise", "in-model"):
        assert commands.main([command, "--out", str(tmp_path / "table.csv")]) == 2
        assert "--out is a folder" in capsys.readouterr().err
    assert not (tmp_path / "table.csv").exists()


def test_default_settings_are_each_commands_own():
    noise = commands.default_settings("noise")
    # the defaults as data are the defaults the command line gives
    parser = commands.build_parser()
    for command, positional in (("noise", []), ("run", []), ("compare", ["OLD", "NEW"])):
        parsed = options.settings(parser.parse_args([command, *positional]))
        assert commands.default_settings(command).describe() == parsed.describe(), command
    assert (noise.target_sample_s, commands.default_settings("run").target_sample_s) == (0.1, 0.02)
    assert commands.default_settings("compare", sample_time=0.05).target_sample_s == 0.05
    with pytest.raises(ValueError, match="does not measure"):
        commands.default_settings("report")


def test_dry_run_counts_the_cases_and_estimates_the_time_without_tensorflow():
    import subprocess
    import sys
    import time

    from stratbench import matrix

    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "stratbench", "run", "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "impls" in imported and not any(m.split(".")[0] == "tensorflow" for m in imported)
    assert wall < 2.0, f"the dry run took {wall:.2f} s"
    cases = matrix.cases(devices=["CPU"])
    out = done.stdout
    assert f"stratbench run --dry-run: {len(cases)} cases, on CPU" in out and "CPU only, assumed" in out
    assert "estimated time: " in out and "ESTIMATE" in out and "TensorFlow start-up" in out
    spiky_xla = sum(c.op == "spiky" and c.strategy == "xla" and c.direction == "forward" for c in cases)
    assert re.search(rf"spiky\s+xla\s+{spiky_xla}\s", out)


def test_dry_run_lists_every_case_with_verbose_and_counts_a_gpu_only_when_asked(capsys):
    assert commands.main(["run", "--dry-run", "-v", "--ops", "spiky", "--strategies", "xla", "--devices", "CPU,GPU",
                     "--directions", "forward", "--sizes", "1e3,1e6", "--no-capabilities"]) == 0
    out = capsys.readouterr().out
    assert "4 cases, on CPU, GPU" in out and "assumed" not in out and "capability matrix" not in out
    assert "    spiky/xla/forward/float32/GPU/default/1000000" in out.splitlines()


def test_compare_dry_run_touches_no_commit(capsys):
    import subprocess

    before = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout
    assert commands.main(["compare", "HEAD~1", "HEAD", "--dry-run", "--ops", "spiky", "--strategies", "xla"]) == 0
    out = capsys.readouterr().out
    assert "stratbench compare --dry-run: 6 cases" in out and "at OLD and NEW" in out and "ESTIMATE" in out
    assert subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout == before


def test_in_model_writes_its_table_and_markdown_into_the_out_folder(tmp_path, capsys):
    out = tmp_path / "in_model"
    assert commands.main(["in-model", "--op", "spiky", "--strategy", "native", "--direction", "forward", "--size", "1e3",
                     "--applications", "2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["in_model.csv", "in_model.md"]
    assert pd.read_csv(out / "in_model.csv")["status"].eq("ok").all()
    assert f"written to {out / 'in_model.csv'} and {out / 'in_model.md'}" in capsys.readouterr().out


# --- the research scripts ---------------------------------------------------------------------
RESEARCH = ROOT / "benchmarks" / "research"
OWN = ("stratbench", "impls", "asv")  # packages whose private names and state scripts leave alone


def test_every_research_script_has_its_line_and_uses_public_names_only():
    import ast

    scripts = sorted(p for p in RESEARCH.iterdir() if p.suffix in (".py", ".cc"))
    readme = (RESEARCH / "README.md").read_text()
    assert scripts and all(f"| `{p.name}` |" in readme for p in scripts)
    assert not (ROOT / "benchmarks" / "scripts").exists()
    for path in (p for p in scripts if p.suffix == ".py"):
        tree = ast.parse(path.read_text(), str(path))
        modules = set()  # names bound to our packages or their modules
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in OWN:
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"
                modules |= {a.asname or a.name for a in node.names if not a.name[:1].isupper()}
            elif isinstance(node, ast.Import):
                modules |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in OWN}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
                assert not node.attr.startswith("_"), f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}"
                assert not isinstance(node.ctx, ast.Store), f"{path.name}:{node.lineno} sets {node.value.id}.{node.attr}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setattr":
                assert getattr(node.args[0], "id", "") not in modules, f"{path.name}:{node.lineno} patches a module"
