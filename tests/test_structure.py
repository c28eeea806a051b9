"""The codebase stays one a newcomer can change: no module of stratbench/ over MAX_LINES, no
function over MAX_FUNCTION_LINES, no command line parsed to get a command's defaults, and
the benchmarks use stratbench's public names only.  The modules still over the limit are listed
with their size today: they may shrink, not grow, and a new one may not join them."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAX_LINES = 300
MAX_FUNCTION_LINES = 80
# still over MAX_LINES: each at most this long until it is split
OVER_MAX_LINES = {}
# still over MAX_FUNCTION_LINES
OVER_MAX_FUNCTION_LINES = {}


def _modules():
    return sorted((ROOT / "stratbench").rglob("*.py"))


def test_no_module_grows_past_the_limit():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in _modules()}
    too_long = {name: n for name, n in sizes.items() if n > max(MAX_LINES, OVER_MAX_LINES.get(name, 0))}
    assert not too_long, f"over {MAX_LINES} lines (split by job): {too_long}"
    shrunk = {name: sizes.get(name) for name, n in OVER_MAX_LINES.items() if sizes.get(name, 0) <= MAX_LINES}
    assert not shrunk, f"now within {MAX_LINES} lines: take them off OVER_MAX_LINES: {shrunk}"


def test_no_function_grows_past_the_limit():
    found = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[f"{path.relative_to(ROOT).as_posix()}:{node.name}"] = node.end_lineno - node.lineno + 1
    too_long = {name: n for name, n in found.items()
                if n > max(MAX_FUNCTION_LINES, OVER_MAX_FUNCTION_LINES.get(name, 0))}
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_the_command_line_is_a_package_of_commands():
    assert not (ROOT / "stratbench" / "cli.py").exists()
    commands = ROOT / "stratbench" / "commands"
    from stratbench.commands import COMMANDS

    for name, module in COMMANDS.items():
        assert pathlib.Path(module.__file__).parent == commands, name
        assert callable(module.add_parser) and callable(module.main) and isinstance(module.NEEDS_TENSORFLOW, bool)


def test_benchmarks_use_public_names_of_stratbench():
    private = re.compile(r"\b(?:cli|commands|stratbench\.\w+)\._[a-z]\w*|from stratbench[\w.]* import [^\n]*\b_[a-z]")
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in sorted((ROOT / "benchmarks").rglob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if private.search(line)]
    assert not hits, "private names of stratbench used by benchmarks:\n" + "\n".join(hits)
