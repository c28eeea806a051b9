"""`stratbench verify` and the project's own entry points."""

import pathlib
import re

import pandas as pd
import pytest

import impls
from stratbench import cli, verify

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_verify_passes_and_prints_the_table(capsys):
    assert cli.main(["verify", "--ops", "spiky", "--strategies", "native,xla,custom_op"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"spiky\s+native\s+pass\s+pass", out)
    assert re.search(r"spiky\s+custom_op\s+pass\s+pass", out)


def test_verify_fails_when_nothing_is_available():
    unavailable = {"op": "spiky", "strategy": "custom_op", "forward": "unavailable", "gradient": "unavailable"}
    assert not verify.passed(pd.DataFrame([unavailable]))
    assert not verify.passed(pd.DataFrame(columns=["forward", "gradient"]))


def test_verify_refuses_a_selection_with_nothing_in_it(capsys):
    assert cli.main(["verify", "--ops", "softmax_nosg", "--strategies", "custom_op"]) == 2
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
        cli.main(["verify", "--ops", "relu"])
    assert exit_.value.code == 2
    assert "accepted: " + ", ".join(impls.OPS) in capsys.readouterr().err


@pytest.mark.parametrize("reruns", ["0", "-2", "2.5", "many"])
def test_noise_refuses_a_rerun_count_that_is_not_a_whole_number_of_at_least_one(capsys, reruns):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["noise", "--reruns", reruns])
    assert exit_.value.code == 2
    assert "--reruns: must be a whole number of at least 1, got" in capsys.readouterr().err


def test_help_explains_each_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["verify", "--help"])
    assert "reference" in capsys.readouterr().out


def test_ci_runs_the_readme_quickstart():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    for command in commands:
        assert command in ci


def test_each_measuring_command_keeps_its_own_defaults():
    # argparse parents share their argument objects: one command's set_defaults once gave
    # `stratbench run` compare's 0.1 s samples and 3 s group budget
    parser = cli.build_parser()
    run = parser.parse_args(["run"])
    compare = parser.parse_args(["compare", "main", "HEAD"])
    noise = parser.parse_args(["noise"])
    assert (run.sample_time, run.group_budget, run.case_budget) == (0.02, 8.0, 30.0)
    assert (compare.sample_time, compare.group_budget, compare.case_budget) == (0.1, 3.0, 10.0)
    assert (noise.sample_time, noise.group_budget, noise.case_budget) == (0.1, 3.0, 10.0)
    assert cli._settings(run).describe() != cli._settings(compare).describe()
    # noise checks compare's detector, so both judge with the same rule
    assert (noise.threshold, noise.confirm_budget) == (compare.threshold, compare.confirm_budget) == (0.07, 12.0)


def test_every_help_text_reads_as_written():
    """Descriptions are not %-formatted by argparse (help strings are): a '%%' there shows as is."""
    from stratbench import cli

    parser = cli.build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    for name, sub in commands.choices.items():
        assert "%%" not in sub.format_help(), name
